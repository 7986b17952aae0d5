"""``manage.py revoke_api_key PREFIX``: revoke a key by its public prefix (audited)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from somaagent.audit import Actor
from somaagent.identity.apikeys import KEY_RE, api_key_revoke
from somaagent.models import ApiKey


class Command(BaseCommand):
    help = "Revoke an API key by its prefix (the 12 characters after 'soma_')."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix", help="the key's prefix, as shown in admin and by create_api_key")

    def handle(self, *args: Any, **options: Any) -> None:
        prefix = options["prefix"].strip()
        match = KEY_RE.match(prefix)
        if match:  # a whole key was pasted: use only its public part
            prefix = match.group(1)
        if not prefix or len(prefix) > 32:
            raise CommandError("give the key's prefix (12 characters)")
        already = ApiKey.objects.filter(prefix=prefix, revoked_at__isnull=False).exists()
        key = api_key_revoke(prefix=prefix, actor=Actor.cli())
        if key is None:
            raise CommandError(f"no API key with prefix {prefix!r}")
        state = "was already revoked" if already else "is now revoked"
        self.stdout.write(
            f"API key {key.prefix} ({key.name or 'unnamed'}, tenant {key.tenant.name}) {state}."
        )
