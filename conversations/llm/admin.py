"""Model profiles in the admin, with a connection test that runs the LLM client.

Here rather than with the core's admin: the test needs the model client, which
lives in ``conversations.llm`` (the core does not import conversations).
Imported by ``conversations/admin.py``, which Django's admin autodiscovers.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from conversations.llm.probe import model_profile_probe
from somaagent.admin_base import may
from somaagent.models import ModelProfile


@admin.register(ModelProfile)
class ModelProfileAdmin(admin.ModelAdmin):
    list_display = ["role", "deployment_mode", "model", "base_url", "priority", "enabled"]
    list_filter = ["role", "deployment_mode", "enabled"]
    search_fields = ["model", "base_url"]
    actions = ["test_connection"]

    def has_test_permission(self, request: HttpRequest) -> bool:
        return may(request, self, "test")

    @admin.action(description="Test connection (a one-token completion)", permissions=["test"])
    def test_connection(self, request: HttpRequest, queryset: QuerySet[ModelProfile]) -> None:
        for profile in queryset.select_related("credential"):
            result = model_profile_probe(profile=profile)
            verdict = "OK" if result.ok else f"FAILED ({result.code})"
            self.message_user(
                request,
                f"{profile} at {profile.base_url}: {verdict} in {result.latency_ms} ms — {result.detail}",
                messages.SUCCESS if result.ok else messages.ERROR,
            )
