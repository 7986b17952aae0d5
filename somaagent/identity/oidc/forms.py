"""The password forms of the web chat and the admin, saying so when passwords are turned off.

With ``SOMA_LOCAL_LOGIN=0`` every failed password login (wrong password or not a
superuser: the same answer, so it tells nothing about the account) points to the
identity provider instead of "wrong password".
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError


def _passwords_off() -> ValidationError:
    config = settings.SOMA_OIDC
    way = f" {config.button_label}." if config.enabled else ""
    return ValidationError(
        f"Passwords are turned off here except for break-glass administrators.{way}",
        code="local_login_off",
    )


class ChatAuthenticationForm(AuthenticationForm):
    def get_invalid_login_error(self) -> ValidationError:
        return super().get_invalid_login_error() if settings.SOMA_OIDC.local_login else _passwords_off()


class AdminLoginForm(AdminAuthenticationForm):
    def get_invalid_login_error(self) -> ValidationError:
        return super().get_invalid_login_error() if settings.SOMA_OIDC.local_login else _passwords_off()
