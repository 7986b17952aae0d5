"""Admin: schedules (pause, resume) and their run history."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from conversations.schedules.models import Schedule, ScheduleRun
from conversations.schedules.services import next_due
from somaagent.admin_base import ReadOnlyAdmin


class RunInline(admin.TabularInline):
    model = ScheduleRun
    extra = 0
    can_delete = False
    fields = ("due_at", "manual", "status", "session_id", "turn_id", "tokens", "error", "ended_at")
    readonly_fields = fields
    ordering = ["-due_at"]
    max_num = 0


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
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
