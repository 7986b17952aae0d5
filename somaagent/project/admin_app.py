"""Django's admin app with our site, whose login is throttled (somaagent/project/admin_site.py).

Its own module: ``somaagent/apps.py`` may declare one default AppConfig only, and the site
itself imports models, which cannot load while INSTALLED_APPS is being read.
"""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class SomaAdminConfig(AdminConfig):
    default_site = "somaagent.project.admin_site.SomaAdminSite"
