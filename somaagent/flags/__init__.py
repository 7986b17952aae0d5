"""Feature flags: database rows, edited in admin, cached (``services.flag_enabled(name, tenant=None)``).

An installed app: Django imports this package while it reads INSTALLED_APPS, before any
model can load, so it imports nothing; the code is in ``services``, ``models`` and ``admin``.
"""
