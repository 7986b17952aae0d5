"""``manage.py create_api_key --tenant NAME [--name LABEL] [--scopes ...]``: the key is the last line."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from somaagent.audit import Actor
from somaagent.identity.apikeys import api_key_create, tenant_get_or_create
from somaagent.identity.scopes import ALL_SCOPES as KNOWN_SCOPES


class Command(BaseCommand):
    help = "Create an API key (and the tenant if needed); prints the key once, alone on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="tenant name (created if missing)")
        parser.add_argument("--name", default="", help="a label for the key")
        parser.add_argument(
            "--scopes",
            nargs="*",
            default=[],
            help=f"any of {', '.join(KNOWN_SCOPES)} (none: every scope but admin)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["tenant"].strip()
        if not name or len(name) > 100:
            raise CommandError("--tenant must be 1 to 100 characters")
        unknown = sorted(set(options["scopes"]) - set(KNOWN_SCOPES))
        if unknown:
            raise CommandError(f"unknown scopes: {', '.join(unknown)} (known: {', '.join(KNOWN_SCOPES)})")
        tenant = tenant_get_or_create(name=name)
        key, raw = api_key_create(
            tenant=tenant, name=options["name"], scopes=options["scopes"], actor=Actor.cli()
        )
        self.stdout.write(f"Created API key {key.prefix} for tenant {tenant.name}. It is shown only once:")
        self.stdout.write(raw)
