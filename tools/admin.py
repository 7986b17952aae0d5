"""Admin: staff enable and configure tools per tenant and persona; tool runs are read-only."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.html import format_html_join

from somaagent.admin_base import ReadOnlyAdmin
from tools import admin_mcp  # noqa: F401  (MCP servers)
from tools.models import ToolRun, ToolSetting
from tools.registry import all_tools, config_error, get_tool


def _tool_help() -> str:
    parts = []
    for tool in all_tools():
        defaults = json.dumps(tool.default_config) if tool.default_config else "{}"
        state = "on" if tool.default_enabled else "off"
        why = tool.unavailable()
        parts.append(
            f"{tool.name} (default {state}; config defaults {defaults})"
            + (f" — unavailable: {why}" if why else "")
        )
    return "; ".join(parts)


class ToolSettingForm(forms.ModelForm):
    tool = forms.ChoiceField(choices=())

    class Meta:
        model = ToolSetting
        fields = ["tenant", "persona", "tool", "enabled", "timeout_seconds", "config"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tool"].choices = [(t.name, t.name) for t in all_tools()]  # type: ignore[attr-defined]
        self.fields["config"].help_text = (
            "JSON object; keys depend on the tool (http_fetch: allowed_hosts, allow_private, max_bytes, "
            "max_redirects). Tools: " + _tool_help()
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        tenant, persona = data.get("tenant"), data.get("persona")
        if persona is not None and tenant is not None and persona.tenant_id != tenant.pk:
            self.add_error("persona", "This persona belongs to another tenant.")
        tool = get_tool(data.get("tool") or "")
        if tool is not None:
            config = data.get("config")
            if config is None:
                config = data["config"] = {}
            problem = config_error(tool, config)
            if problem:
                self.add_error("config", f"Invalid configuration for {tool.name}: {problem}")
        return data


@admin.register(ToolSetting)
class ToolSettingAdmin(admin.ModelAdmin):
    form = ToolSettingForm
    list_display = ["tool", "tenant", "persona", "enabled", "timeout_seconds", "updated_at"]
    list_filter = ["tool", "enabled", "tenant"]
    search_fields = ["tool", "tenant__name", "persona__name"]
    list_select_related = ["tenant", "persona"]
    autocomplete_fields = ["tenant", "persona"]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        # A tool this deployment cannot run (the python tool without proven isolation) is said
        # at the top of the list, not only in the form's help text.
        for tool in all_tools():
            why = tool.unavailable()
            if why:
                self.message_user(
                    request, f"Tool {tool.name} is not offered to the model: {why}", messages.WARNING
                )
        return super().changelist_view(request, extra_context)


@admin.register(ToolRun)
class ToolRunAdmin(ReadOnlyAdmin):
    list_display = ["request_id", "tool", "status", "tenant", "session", "duration_ms", "created_at"]
    list_filter = ["status", "tool", "tenant"]
    search_fields = ["request_id", "session__id", "turn__id", "call_id"]
    date_hierarchy = "created_at"
    list_select_related = ["tenant", "session"]
    readonly_fields = ["pretty_args", "pretty_result"]
    exclude = ["args", "result"]

    @admin.display(description="args")
    def pretty_args(self, obj: ToolRun) -> str:
        return _pre(obj.args)

    @admin.display(description="result")
    def pretty_result(self, obj: ToolRun) -> str:
        return _pre(obj.result)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)


def _pre(doc: Any) -> str:
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    return format_html_join("", "<pre style='white-space:pre-wrap'>{}</pre>", [(text,)])
