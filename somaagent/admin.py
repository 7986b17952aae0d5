"""Admin for the core: tenants, personas, keys, outbox, dead letters, models, settings."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from somaagent.admin_base import ReadOnlyAdmin, may
from somaagent.audit import actor_from_request
from somaagent.errors import SomaError
from somaagent.identity import scopes as sc
from somaagent.identity.apikeys import api_key_create, api_key_revoke
from somaagent.llm_credentials import llm_credential_save
from somaagent.models import (
    ApiKey,
    DeadLetter,
    LlmCredential,
    Membership,
    OidcIdentity,
    OutboxMessage,
    Persona,
    Tenant,
    UISetting,
)
from somaagent.outbox import dead_letter_replay
from somaagent.ui_setting_schemas import REGISTRY
from somaagent.ui_settings import ui_setting_check, ui_setting_save


class PersonaInline(admin.TabularInline):
    model = Persona
    extra = 0
    fields = ["name", "system_prompt", "shared_memory"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "created_at"]
    search_fields = ["name", "id"]
    inlines = [PersonaInline]


@admin.register(Persona)
class PersonaAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "id", "created_at"]
    list_filter = ["tenant"]
    search_fields = ["name", "id"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__username", "tenant__name"]


@admin.register(OidcIdentity)
class OidcIdentityAdmin(admin.ModelAdmin):
    """Accounts at the identity provider linked to users; add one to let a person in when
    SOMA_OIDC_CREATE_USERS=0 (the provider's ``sub``, never an e-mail address)."""

    list_display = ["user", "subject", "issuer", "created_at", "last_sign_in_at"]
    search_fields = ["user__username", "subject", "issuer"]
    raw_id_fields = ["user"]
    readonly_fields = ["created_at", "last_sign_in_at"]


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(s, s) for s in sc.ALL_SCOPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked = every scope but admin.",
    )

    class Meta:
        model = ApiKey
        fields = ["tenant", "name", "scopes", "rate_limit_per_minute"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ["prefix", "name", "tenant", "scopes", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["tenant", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "name", "tenant__name"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    fields = [
        "tenant",
        "name",
        "scopes",
        "rate_limit_per_minute",
        "prefix",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # A key's tenant and scopes are fixed once it exists: make a new key instead.
        fixed = ["tenant", "scopes"] if obj is not None else []
        return [*fixed, *self.readonly_fields]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        key, raw = api_key_create(
            tenant=obj.tenant,
            name=obj.name,
            scopes=list(form.cleaned_data.get("scopes") or []),
            rate_limit_per_minute=obj.rate_limit_per_minute,
            actor=actor_from_request(request),
        )
        obj.pk = key.pk
        obj.prefix = key.prefix
        self.message_user(
            request, f"New API key (copy it now, it is not shown again): {raw}", messages.WARNING
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: the row keeps the key's history

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return may(request, self, "revoke")

    @admin.action(description="Revoke selected keys", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        actor = actor_from_request(request)
        active = list(queryset.filter(revoked_at__isnull=True).values_list("prefix", flat=True))
        for prefix in active:
            api_key_revoke(prefix=prefix, actor=actor)
        self.message_user(request, f"Revoked {len(active)} key(s).")


@admin.register(OutboxMessage)
class OutboxAdmin(ReadOnlyAdmin):
    list_display = ["id", "topic", "created_at", "published_at", "attempts", "next_attempt_at"]
    list_filter = ["topic", ("published_at", admin.EmptyFieldListFilter)]
    search_fields = ["dedupe_key", "last_error"]
    date_hierarchy = "created_at"


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = ["id", "topic", "attempts", "created_at", "replayed_at"]
    list_filter = ["topic", ("replayed_at", admin.EmptyFieldListFilter)]
    search_fields = ["error", "topic"]
    date_hierarchy = "created_at"
    actions = ["replay"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Needed for the replay action to show; the form itself stays read-only.
        return request.user.is_staff and obj is None

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return may(request, self, "replay")

    @admin.action(description="Replay selected dead letters", permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        actor = actor_from_request(request)
        replayed = sum(1 for letter in queryset if dead_letter_replay(dead_letter=letter, actor=actor))
        self.message_user(request, f"Replayed {replayed} of {queryset.count()} dead letter(s).")


class CredentialForm(forms.ModelForm):
    secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        strip=False,
        help_text="Write-only: stored encrypted, never shown again. Leave empty to keep the current one.",
    )

    class Meta:
        model = LlmCredential
        fields = ["name", "provider"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.instance.pk and not data.get("secret"):
            self.add_error("secret", "A new credential needs its secret.")
        return data


@admin.register(LlmCredential)
class LlmCredentialAdmin(admin.ModelAdmin):
    form = CredentialForm
    list_display = ["name", "provider", "created_at", "updated_at"]
    search_fields = ["name", "provider"]

    def save_model(self, request: HttpRequest, obj: LlmCredential, form: Any, change: bool) -> None:
        llm_credential_save(
            credential=obj, secret=form.cleaned_data.get("secret") or None, actor=actor_from_request(request)
        )


class UISettingForm(forms.ModelForm):
    class Meta:
        model = UISetting
        fields = ["key", "document"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        request = getattr(self, "request", None)
        if request is not None and not self.errors:
            try:
                ui_setting_check(
                    key=data.get("key", ""), document=data.get("document"), actor=actor_from_request(request)
                )
            except SomaError as exc:
                raise forms.ValidationError(f"{exc.message} ({exc.code})") from None
        return data


@admin.register(UISetting)
class UISettingAdmin(admin.ModelAdmin):
    form = UISettingForm
    list_display = ["key", "updated_at"]
    search_fields = ["key"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        form.request = request  # type: ignore[attr-defined]
        known = "; ".join(f"{key}: {json.dumps(s.defaults)}" for key, s in sorted(REGISTRY.items()))
        if known and "document" in form.base_fields:
            form.base_fields["document"].help_text = f"Known keys and their defaults — {known}"
        return form

    def save_model(self, request: HttpRequest, obj: UISetting, form: Any, change: bool) -> None:
        ui_setting_save(key=obj.key, document=obj.document, actor=actor_from_request(request), setting=obj)


# budgets, usage, policy data, audit log; django_celery_beat's task form, fixed
from somaagent import admin_beat, admin_governance  # noqa: E402,F401
