"""Model profiles, LLM credentials and UI settings: what staff configure in admin."""

from __future__ import annotations

from django.db import models


class LlmCredential(models.Model):
    """A provider secret, encrypted with Fernet; never shown again after it is saved."""

    name = models.CharField(max_length=100, unique=True)
    provider = models.CharField(max_length=100, default="openai-compatible")
    secret_encrypted = models.TextField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "llm_credentials"
        verbose_name = "LLM credential"
        verbose_name_plural = "LLM credentials"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.provider})"


class ModelProfile(models.Model):
    class Role(models.TextChoices):
        DIALOGUE = "dialogue"
        ESCALATION = "escalation"
        CLASSIFIER = "classifier"
        SUMMARY = "summary"

    class Mode(models.TextChoices):
        DEV = "DEV"
        STAGING = "STAGING"
        PROD = "PROD"

    role = models.CharField(max_length=20, choices=Role.choices)
    deployment_mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.DEV)
    model = models.CharField(max_length=200)
    base_url = models.URLField(max_length=500)
    temperature = models.FloatField(default=0.7)
    kwargs = models.JSONField(default=dict, blank=True)
    credential = models.ForeignKey(
        LlmCredential, null=True, blank=True, on_delete=models.SET_NULL, related_name="profiles"
    )
    priority = models.PositiveIntegerField(
        default=0, help_text="Order within a role: lower answers first, the others are fallbacks."
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        db_table = "model_profiles"
        permissions = [("test_modelprofile", "Can test a model profile's connection (spends tokens)")]
        ordering = ["deployment_mode", "role", "priority"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(temperature__gte=0) & models.Q(temperature__lte=2),
                name="model_profile_temperature_range",
            )
        ]

    def __str__(self) -> str:
        return f"{self.role}/{self.deployment_mode}: {self.model}"


class UISetting(models.Model):
    key = models.CharField(max_length=100, unique=True)
    document = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "ui_settings"
        ordering = ["key"]
        verbose_name = "UI setting"

    def __str__(self) -> str:
        return self.key
