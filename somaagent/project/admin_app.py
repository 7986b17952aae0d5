"""Django's admin app with our site, whose login is throttled (somaagent/project/admin_site.py).

Its own module: ``somaagent/apps.py`` may declare one default AppConfig only, and the site
itself imports models, which cannot load while INSTALLED_APPS is being read.
"""

from __future__ import annotations

from django.contrib.admin import options
from django.contrib.admin.apps import AdminConfig
from django.db import models

from somaagent.json_input import JsonFormField


class SomaAdminConfig(AdminConfig):
    default_site = "somaagent.project.admin_site.SomaAdminSite"

    def ready(self) -> None:
        # Every JSON field of every ModelAdmin parses with json_input's bounded parser (before
        # autodiscovery: each ModelAdmin copies these defaults when it is registered).
        options.FORMFIELD_FOR_DBFIELD_DEFAULTS[models.JSONField] = {"form_class": JsonFormField}
        super().ready()
