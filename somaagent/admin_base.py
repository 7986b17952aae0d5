"""ModelAdmin bases shared by every package's admin (kept apart from ``somaagent.admin``,
which imports ``admin_governance`` at its end and so cannot be imported from there)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest


def may(request: HttpRequest, model_admin: admin.ModelAdmin, verb: str) -> bool:
    """Whether the user holds the model's ``<verb>_<model>`` permission (an admin action's own).

    Actions that change what the system does (revoke keys, replay dead letters, release
    quarantined files, spend tokens on a connection test) need more than being staff.
    """
    opts = model_admin.opts
    return bool(request.user.has_perm(f"{opts.app_label}.{verb}_{opts.model_name}"))


class ReadOnlyAdmin(admin.ModelAdmin):
    """Audit-style rows: staff look, nobody edits."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ImmutableAdmin(ReadOnlyAdmin):
    """Rows that are history (usage, the audit log): nobody deletes them either."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
