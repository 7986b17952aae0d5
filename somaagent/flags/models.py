"""Named feature flags: one global row per name, optional per-tenant overrides."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from somaagent.models import Tenant

FLAG_NAME = RegexValidator(
    r"^[a-z0-9][a-z0-9_.-]{0,99}$", "Lower-case letters, digits, '.', '_' and '-' (e.g. tools.web_search)."
)


class FeatureFlag(models.Model):
    name = models.CharField(max_length=100, validators=[FLAG_NAME])
    tenant = models.ForeignKey(
        Tenant,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="feature_flags",
        help_text="Empty: the global value. Set: overrides the global value for this tenant.",
    )
    enabled = models.BooleanField(default=False)
    description = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "feature_flags"
        ordering = ["name", "tenant__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=Q(tenant__isnull=True), name="feature_flag_unique_global"
            ),
            models.UniqueConstraint(fields=["name", "tenant"], name="feature_flag_unique_per_tenant"),
        ]

    def __str__(self) -> str:
        scope = self.tenant.name if self.tenant_id else "global"  # type: ignore[union-attr]
        return f"{self.name} ({scope}): {'on' if self.enabled else 'off'}"
