"""Accounts at the company's identity provider linked to local users (issue 21)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class OidcIdentity(models.Model):
    """One provider account (issuer + ``sub``) is one local user; e-mail addresses never link them."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="soma_oidc_identities"
    )
    issuer = models.CharField(max_length=500)
    subject = models.CharField(max_length=255, help_text="The provider's 'sub' claim: stable, never reused.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        db_table = "oidc_identities"
        verbose_name = "single sign-on identity"
        verbose_name_plural = "single sign-on identities"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="oidc_identity_unique_issuer_subject")
        ]

    def __str__(self) -> str:
        return f"{self.user} = {self.subject} at {self.issuer}"
