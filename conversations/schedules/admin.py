"""Admin: schedules (pause, resume) and their run history."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from conversations.schedules.models import Schedule, ScheduleRun
from conversations.schedules.services import next_due
from conversations.schedules.timing import cron_parse, zone
from somaagent.admin_base import ReadOnlyAdmin
from somaagent.errors import ValidationFailed


class RunInline(admin.TabularInline):
    model = ScheduleRun
    extra = 0
    can_delete = False
    fields = ("due_at", "manual", "status", "session_id", "turn_id", "tokens", "error", "ended_at")
    readonly_fields = fields
    ordering = ["-due_at"]
    max_num = 0


class ScheduleForm(forms.ModelForm):
    class Meta:
        model = Schedule
        fields = [
            "tenant",
            "name",
            "message",
            "kind",
            "cron",
            "interval_seconds",
            "timezone",
            "session",
            "persona",
            "enabled",
            "ends_at",
            "missed",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            zone(data.get("timezone") or "UTC")
            if data.get("kind") == Schedule.Kind.CRON:
                cron_parse(data.get("cron") or "")
            elif not data.get("interval_seconds"):
                raise ValidationFailed("An interval schedule needs interval_seconds.")
        except ValidationFailed as exc:
            raise forms.ValidationError(exc.message) from None
        return data


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    """Staff see, change, pause and resume schedules; people make them (API, web chat), as the
    owner whose access each run is sent with."""

    form = ScheduleForm
    list_display = [
        "name",
        "tenant",
        "kind",
        "cron",
        "interval_seconds",
        "timezone",
        "enabled",
        "next_run_at",
    ]
    list_filter = ["enabled", "kind", "tenant"]
    search_fields = ["name", "message"]
    readonly_fields = [
        "next_run_at",
        "consecutive_failures",
        "paused_reason",
        "owner_user",
        "owner_key",
        "created_at",
    ]
    inlines = [RunInline]
    actions = ["pause", "resume"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Schedule, form: Any, change: bool) -> None:
        obj.next_run_at = next_due(obj, timezone.now()) if obj.enabled else obj.next_run_at
        super().save_model(request, obj, form, change)

    @admin.action(description="Pause the selected schedules")
    def pause(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        count = queryset.update(enabled=False, paused_reason="Paused by staff.")
        messages.info(request, f"{count} schedules paused.")

    @admin.action(description="Resume the selected schedules (failure count cleared)")
    def resume(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        now = timezone.now()
        for schedule in queryset:
            schedule.enabled, schedule.paused_reason, schedule.consecutive_failures = True, "", 0
            schedule.next_run_at = next_due(schedule, now)
            schedule.save()
        messages.info(request, f"{queryset.count()} schedules resumed.")


@admin.register(ScheduleRun)
class ScheduleRunAdmin(ReadOnlyAdmin):
    list_display = ["due_at", "schedule", "status", "manual", "tokens", "error"]
    list_filter = ["status", "manual"]
    date_hierarchy = "due_at"
