"""Admin for MCP servers: staff add a tenant's server; its headers, token and environment are
write-only (stored encrypted, never shown again, not even masked)."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from somaagent.audit import actor_from_request
from somaagent.errors import ValidationFailed
from tools.mcp.services import mcp_server_save
from tools.mcp.spec import Secrets, server_problems
from tools.models import McpServer

WRITE_ONLY = "Write-only: stored encrypted, never shown again. Leave empty to keep what is stored."


def _json_object(raw: str, what: str) -> dict[str, str]:
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise forms.ValidationError(f"{what} must be a JSON object: {exc}") from None
    if not isinstance(doc, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in doc.items()
    ):
        raise forms.ValidationError(f"{what} must be a JSON object of strings.")
    return doc


MODEL_FIELDS = [
    "tenant",
    "name",
    "transport",
    "url",
    "command",
    "read_only_paths",
    "python_packages",
    "allow_network",
    "allow_private",
    "allowed_tools",
    "timeout_seconds",
    "enabled",
]


class McpServerForm(forms.ModelForm):
    bearer_token = forms.CharField(
        widget=forms.PasswordInput(render_value=False), required=False, strip=True, help_text=WRITE_ONLY
    )
    headers = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text='JSON object, e.g. {"X-Api-Key": "…"}. ' + WRITE_ONLY,
    )
    env = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text='stdio: environment of the server, JSON object, e.g. {"GITHUB_TOKEN": "…"}. ' + WRITE_ONLY,
    )
    clear_secrets = forms.BooleanField(required=False, help_text="Remove the stored token, headers and env.")

    class Meta:
        model = McpServer
        fields = MODEL_FIELDS

    def clean_headers(self) -> dict[str, str]:
        return _json_object(self.cleaned_data.get("headers") or "", "Headers")

    def clean_env(self) -> dict[str, str]:
        return _json_object(self.cleaned_data.get("env") or "", "The environment")

    def secrets(self) -> Secrets | None:
        data = self.cleaned_data
        if data.get("clear_secrets"):
            return Secrets()
        headers = dict(data.get("headers") or {})
        if data.get("bearer_token"):
            headers["Authorization"] = f"Bearer {data['bearer_token']}"
        env = dict(data.get("env") or {})
        return Secrets(headers=headers, env=env) if headers or env else None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        candidate = McpServer(**{name: data[name] for name in MODEL_FIELDS if name in data})
        for field, message in server_problems(candidate, self.secrets()).items():
            self.add_error(field if field in self.fields else None, message)
        return data


@admin.register(McpServer)
class McpServerAdmin(admin.ModelAdmin):
    form = McpServerForm
    list_display = ["name", "tenant", "transport", "enabled", "timeout_seconds", "has_secrets", "updated_at"]
    list_filter = ["transport", "enabled", "tenant"]
    search_fields = ["name", "tenant__name", "url"]
    list_select_related = ["tenant"]
    autocomplete_fields = ["tenant"]

    @admin.display(boolean=True, description="secrets stored")
    def has_secrets(self, obj: McpServer) -> bool:
        return bool(obj.secret_encrypted)

    def save_model(self, request: HttpRequest, obj: McpServer, form: Any, change: bool) -> None:
        try:
            mcp_server_save(server=obj, secrets=form.secrets(), actor=actor_from_request(request))
        except ValidationFailed as exc:  # checked in the form already; a race is still a clear error
            raise forms.ValidationError(exc.message) from None
