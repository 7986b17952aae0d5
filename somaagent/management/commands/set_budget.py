"""``manage.py set_budget --tenant NAME [--persona ID] --daily-tokens N [--monthly-tokens N]``."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from somaagent.audit import Actor
from somaagent.budgets.services import budget_set
from somaagent.errors import SomaError
from somaagent.models import Budget, Persona, Tenant


def limit(raw: str) -> int | None:
    if raw.lower() in ("none", "unlimited", "-"):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise CommandError(f"a token limit must be a non-negative integer or 'none', got {raw!r}") from None
    if value < 0:
        raise CommandError(f"a token limit must be a non-negative integer or 'none', got {raw!r}")
    return value


class Command(BaseCommand):
    help = (
        "Set the token budget of a tenant (or of one of its personas) per UTC day and month. "
        "'none' removes a limit; a limit left out keeps its current value."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="tenant name (or id)")
        parser.add_argument(
            "--persona", help="persona id (or name) within the tenant; omit for the whole tenant"
        )
        parser.add_argument("--daily-tokens", dest="daily", help="tokens per UTC day, or 'none'")
        parser.add_argument("--monthly-tokens", dest="monthly", help="tokens per UTC month, or 'none'")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["daily"] is None and options["monthly"] is None:
            raise CommandError("give --daily-tokens and/or --monthly-tokens")
        tenant = self._tenant(options["tenant"])
        persona = self._persona(tenant, options["persona"]) if options["persona"] else None
        current = Budget.objects.filter(tenant=tenant, persona=persona).first()
        daily = (
            limit(options["daily"])
            if options["daily"] is not None
            else getattr(current, "daily_tokens", None)
        )
        monthly = (
            limit(options["monthly"])
            if options["monthly"] is not None
            else getattr(current, "monthly_tokens", None)
        )
        try:
            budget_set(
                tenant=tenant, persona=persona, daily_tokens=daily, monthly_tokens=monthly, actor=Actor.cli()
            )
        except SomaError as exc:
            raise CommandError(exc.message) from None
        who = f"persona {persona.name} of tenant {tenant.name}" if persona else f"tenant {tenant.name}"
        self.stdout.write(
            f"Budget of {who}: daily {daily if daily is not None else 'unlimited'}, "
            f"monthly {monthly if monthly is not None else 'unlimited'} tokens."
        )

    @staticmethod
    def _tenant(value: str) -> Tenant:
        tenant = Tenant.objects.filter(name=value).first()
        if tenant is None:
            try:
                tenant = Tenant.objects.filter(pk=uuid.UUID(value)).first()
            except ValueError:
                tenant = None
        if tenant is None:
            raise CommandError(f"no tenant named {value!r}")
        return tenant

    @staticmethod
    def _persona(tenant: Tenant, value: str) -> Persona:
        personas = Persona.objects.for_tenant(tenant)
        try:
            persona = personas.filter(pk=uuid.UUID(value)).first()
        except ValueError:
            persona = personas.filter(name=value).first()
        if persona is None:
            raise CommandError(f"tenant {tenant.name} has no persona {value!r}")
        return persona
