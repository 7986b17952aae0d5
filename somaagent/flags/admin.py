"""Staff edit flags in admin, globally or per tenant; every save tells running processes."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from somaagent.flags.models import FeatureFlag
from somaagent.flags.services import flags_changed


@admin.register(FeatureFlag)
class FeatureFlagAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "enabled", "updated_at"]
    list_filter = ["enabled", ("tenant", admin.EmptyFieldListFilter), "tenant"]
    list_editable = ["enabled"]
    search_fields = ["name", "description", "tenant__name"]
    autocomplete_fields = ["tenant"]
    actions = ["turn_on", "turn_off"]

    def save_model(self, request: HttpRequest, obj: FeatureFlag, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        flags_changed()

    def delete_model(self, request: HttpRequest, obj: FeatureFlag) -> None:
        super().delete_model(request, obj)
        flags_changed()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[FeatureFlag]) -> None:
        super().delete_queryset(request, queryset)
        flags_changed()

    @admin.action(description="Turn selected flags on", permissions=["change"])
    def turn_on(self, request: HttpRequest, queryset: QuerySet[FeatureFlag]) -> None:
        self.message_user(request, f"Turned on {queryset.update(enabled=True)} flag(s).")
        flags_changed()

    @admin.action(description="Turn selected flags off", permissions=["change"])
    def turn_off(self, request: HttpRequest, queryset: QuerySet[FeatureFlag]) -> None:
        self.message_user(request, f"Turned off {queryset.update(enabled=False)} flag(s).")
        flags_changed()
