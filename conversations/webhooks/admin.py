"""Admin: endpoints (the secret shown once when staff add one) and each endpoint's delivery log."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from conversations.webhooks.endpoints import events_check, timeout_check, url_check
from conversations.webhooks.models import WebhookDelivery, WebhookEndpoint
from conversations.webhooks.signing import secret_new
from somaagent.admin_base import ReadOnlyAdmin
from somaagent.errors import ValidationFailed
from somaagent.secrets import encrypt


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https")

    class Meta:
        model = WebhookEndpoint
        fields = ["tenant", "url", "description", "events", "enabled", "allow_private", "timeout_seconds"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            if "url" in data:
                data["url"] = url_check(data["url"], allow_private=bool(data.get("allow_private")))
            if "events" in data:
                data["events"] = events_check(data["events"])
            if "timeout_seconds" in data:
                data["timeout_seconds"] = timeout_check(data["timeout_seconds"])
        except ValidationFailed as exc:
            raise forms.ValidationError(exc.message) from None
        return data


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "tenant", "events", "enabled", "allow_private", "deliveries_link", "created_at"]
    list_filter = ["enabled", "allow_private", "tenant"]
    search_fields = ["url", "description"]
    fields = ["tenant", "url", "description", "events", "enabled", "allow_private", "timeout_seconds"]

    @admin.display(description="deliveries")
    def deliveries_link(self, obj: WebhookEndpoint) -> str:
        url = reverse("admin:conversations_webhookdelivery_changelist") + f"?endpoint__id__exact={obj.pk}"
        return format_html('<a href="{}">log</a>', url)

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool) -> None:
        secret = ""
        if not change:
            secret = secret_new()
            obj.secret_encrypted = encrypt(secret)
            obj.created_by = f"user:{request.user.get_username()}"[:120]
        super().save_model(request, obj, form, change)
        if secret:
            messages.warning(request, f"Signing secret (shown this once; give it to the receiver): {secret}")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "event", "endpoint", "status", "attempts", "last_status_code", "last_error"]
    list_filter = ["status", "event", "endpoint"]
    search_fields = ["id", "subject"]
    date_hierarchy = "created_at"
    actions = ["send_now"]

    @admin.action(description="Try the selected pending or dead deliveries again now")
    def send_now(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        now = timezone.now()
        count = queryset.exclude(status=WebhookDelivery.Status.DELIVERED).update(
            status=WebhookDelivery.Status.PENDING, next_attempt_at=now, retry_from=now, lease_until=None
        )
        messages.info(request, f"{count} deliveries are due now; the sweep sends them within seconds.")
