"""First-run set-up for ``make run``: a development tenant, staff user and API key.

The credentials go to ``var/dev-credentials.txt``; ``make run``'s launcher
prints them, with the URL it verified, once everything answers. A stored key
that no longer works (the database was reset, the key revoked) is replaced.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from somaagent.dev_credentials import (
    DevCredentials,
    dev_credentials_path,
    dev_credentials_read,
    dev_credentials_write,
)
from somaagent.identity.apikeys import api_key_authenticate, api_key_create, tenant_get_or_create
from somaagent.models import Membership
from somaagent.paths import VAR_DIR

DEV_TENANT = "dev"
DEV_USER = "admin"
UNKNOWN_PASSWORD = f"(set earlier; `python manage.py changepassword {DEV_USER}` sets a new one)"


class Command(BaseCommand):
    help = "Create the development tenant, staff user and API key once (make run prints them)."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.DEPLOYMENT_MODE != "DEV":
            self.stdout.write("bootstrap_dev: not in DEV mode, nothing to do.")
            return
        path = dev_credentials_path(VAR_DIR)
        stored = dev_credentials_read(path)
        User = get_user_model()
        if (
            stored is not None
            and api_key_authenticate(stored.api_key) is not None
            and User.objects.filter(username=stored.user, is_active=True).exists()
        ):
            self.stdout.write(f"Development credentials: kept in {path}")
            return
        tenant = tenant_get_or_create(name=DEV_TENANT)
        user, created = User.objects.get_or_create(
            username=DEV_USER, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            user.save()
        elif stored is not None and stored.user == DEV_USER and user.check_password(stored.password):
            password = stored.password
        else:
            password = UNKNOWN_PASSWORD
        Membership.objects.get_or_create(user=user, tenant=tenant, defaults={"role": Membership.Role.ADMIN})
        _, raw_key = api_key_create(tenant=tenant, name="dev")
        dev_credentials_write(
            path, DevCredentials(user=DEV_USER, password=password, tenant=DEV_TENANT, api_key=raw_key)
        )
        self.stdout.write(f"Development credentials: created in {path} (make run prints them when ready)")
