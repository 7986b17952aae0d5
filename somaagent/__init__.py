"""SomaAgent's Django project and its platform core, kept apart.

The project wiring assembles the apps into one service and may import any of them:
``settings.py``, ``urls.py``, ``asgi.py``, ``celery.py`` and ``beat.py`` (where Django,
Celery, uvicorn and the deployment files name them) and the ``project`` package (the
HTTP middleware, the admin site, Celery's signal handlers, the web chat, ``make run``).

Everything else is the core, at the bottom of the dependency order: it imports none of
``conversations``, ``tools``, ``memory``, ``documents`` and never the wiring (``make lint``
checks both with import-linter, ``.importlinter``). ``identity/`` (who calls, API keys,
JWTs, single sign-on), ``models/`` (tenancy, governance, the outbox), ``policy/``,
``budgets/``, ``flags/``, ``metrics/``, the outbox, health, and one module per small
rule (``retry``, ``tokens``, ``db_hold``, ``environment``, ``soma_settings``…).
docs/architecture.md has the map.
"""

# Loaded first, so that shared tasks bind to the project's Celery app in every process.
from somaagent.celery import app as celery_app

__all__ = ["celery_app"]
