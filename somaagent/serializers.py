"""Request and response shapes of the core API (tokens, keys, budget)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from somaagent.identity import scopes as sc


class StrictSerializer(serializers.Serializer):
    """Rejects unknown fields, so a typo is an error rather than silently ignored."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class StringField(serializers.CharField):
    """Text given as a JSON string; DRF's CharField also turns numbers into text."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            raise serializers.ValidationError("Must be a string.")
        return super().to_internal_value(data)


class TokenObtainSerializer(StrictSerializer):
    username = StringField(max_length=150)
    password = StringField(max_length=1024, trim_whitespace=False)
    tenant = StringField(max_length=100, required=False, help_text="tenant name or id")
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=sc.ALL_SCOPES), required=False, max_length=len(sc.ALL_SCOPES)
    )


class TokenRefreshSerializer(StrictSerializer):
    refresh = StringField(max_length=4096)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField()
    tenant = serializers.DictField(child=serializers.CharField())
    role = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())


class MeSerializer(serializers.Serializer):
    tenant = serializers.DictField(child=serializers.CharField())
    role = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())
    via = serializers.CharField()
    key_prefix = serializers.CharField(allow_null=True)


class KeyCreateSerializer(StrictSerializer):
    name = StringField(max_length=100, required=False, allow_blank=True, default="")
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=sc.ALL_SCOPES), required=False, max_length=len(sc.ALL_SCOPES)
    )
    # A tenant admin may tighten a key's limit, never lift it past the operator's: 0 (no limit)
    # and anything above SOMA_RATE_LIMIT_PER_MINUTE are for staff, in the Django admin.
    rate_limit_per_minute = serializers.IntegerField(
        min_value=1,
        # (the column is 32-bit on PostgreSQL: larger was a DataError, a 500)
        max_value=settings.SOMA.rate_limit_per_minute or 2**31 - 1,
        required=False,
        allow_null=True,
        help_text="Requests per minute, 1 to the server's SOMA_RATE_LIMIT_PER_MINUTE; empty: that default.",
        error_messages={
            "min_value": "must be at least {min_value}; only staff can lift a key's limit.",
            "max_value": "must be at most {max_value}; only staff can lift a key's limit.",
        },
    )


class KeySerializer(serializers.Serializer):
    prefix = serializers.CharField()
    name = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())
    rate_limit_per_minute = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class KeyListSerializer(serializers.Serializer):
    keys = KeySerializer(many=True)


class KeyCreatedSerializer(KeySerializer):
    key = serializers.CharField(help_text="the key itself: shown only in this answer")
