"""``manage.py rotate_fernet_keys``: re-encrypt every LLM credential with the newest Fernet key.

Rotation: put a new key first in ``SOMA_FERNET_KEYS`` (keep the old ones after
it), restart, run this command, then drop the old keys.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from somaagent.audit import Actor
from somaagent.llm_credentials import RotationFailed, llm_credentials_rotate


class Command(BaseCommand):
    help = "Re-encrypt every LLM credential with the newest key in SOMA_FERNET_KEYS (all or none)."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            count = llm_credentials_rotate(actor=Actor.cli())
        except RotationFailed as exc:
            raise CommandError(
                f"nothing was changed: {exc}. Add the key they were encrypted with to SOMA_FERNET_KEYS."
            ) from None
        self.stdout.write(f"Re-encrypted {count} credential(s) with the newest key.")
