"""The project wiring: what assembles the apps into one running service.

``somaagent`` is both the Django project and the platform core. The wiring is
``somaagent/settings.py``, ``urls.py``, ``asgi.py``, ``celery.py`` and ``beat.py``
(kept where Django, Celery, uvicorn and the deployment files name them) and this
package:

- ``middleware``, ``django_middleware``, ``db_unavailable``, ``body_limit``,
  ``error_views``: the HTTP stack around every view (settings.MIDDLEWARE, the ASGI app,
  the URLconf's 404/500 handlers);
- ``admin_app``, ``admin_site``, ``admin_dashboard``: the admin site (each app's
  ``admin.py`` registers its own models);
- ``celery_signals``: what the Celery app connects (task metrics, the request id across
  the broker); ``flower_auth``: Flower's start-up check;
- ``webchat``: the web chat's pages (the browser UI);
- ``devrun``: ``make run``'s launcher.

The wiring may import any app. Nothing else imports the wiring: the core (the rest of
``somaagent``) and the apps never do (import-linter contract ``wiring``, ``make lint``).
"""
