"""First-run set-up for ``make run``: a development tenant, staff user and API key."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from somaagent.apikeys import api_key_create, tenant_get_or_create
from somaagent.config import VAR_DIR
from somaagent.models import Membership

DEV_TENANT = "dev"
DEV_USER = "admin"


class Command(BaseCommand):
    help = "Create the development tenant, staff user and API key once; print how to use them."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.DEPLOYMENT_MODE != "DEV":
            self.stdout.write("bootstrap_dev: not in DEV mode, nothing to do.")
            return
        credentials = VAR_DIR / "dev-credentials.txt"
        if credentials.exists():
            self.stdout.write(credentials.read_text())
            return
        tenant = tenant_get_or_create(name=DEV_TENANT)
        User = get_user_model()
        password = secrets.token_urlsafe(12)
        user, created = User.objects.get_or_create(
            username=DEV_USER, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password(password)
            user.save()
        else:
            password = "(unchanged: the user existed already)"
        Membership.objects.get_or_create(user=user, tenant=tenant, defaults={"role": Membership.Role.ADMIN})
        _, raw_key = api_key_create(tenant=tenant, name="dev")
        port = settings.PORT
        text = (
            "SomaAgent development credentials (DEV mode only)\n"
            f"  web chat & admin: http://127.0.0.1:{port}/  user {DEV_USER}  password {password}\n"
            f"  API key (tenant {DEV_TENANT}): {raw_key}\n"
            "  try:\n"
            f"    curl -s -X POST http://127.0.0.1:{port}/v1/session/message \\\n"
            f"      -H 'Authorization: Bearer {raw_key}' -H 'Content-Type: application/json' \\\n"
            '      -d \'{"message": "Hello!"}\'\n'
            f"    curl -N -H 'Authorization: Bearer {raw_key}' http://127.0.0.1:{port}/v1/sessions/<session_id>/stream\n"
        )
        credentials.write_text(text)
        credentials.chmod(0o600)
        self.stdout.write(text)
