"""Tool settings per tenant and persona, and the record of every tool call (``tool_runs``)."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from somaagent.models import Persona, Tenant, TenantScopedQuerySet


class ToolSetting(models.Model):
    """Enables and configures one tool for a tenant, or for one persona of it (which wins)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="tool_settings")
    persona = models.ForeignKey(
        Persona,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="tool_settings",
        help_text="Empty: the tenant's default for every persona.",
    )
    tool = models.CharField(max_length=64)
    enabled = models.BooleanField(default=True)
    timeout_seconds = models.FloatField(
        null=True, blank=True, help_text="Empty: the tool's default (SOMA_TOOL_TIMEOUT_SECONDS)."
    )
    config = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "tool_settings"
        ordering = ["tenant__name", "tool", "persona__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "tool"],
                condition=Q(persona__isnull=True),
                name="tool_setting_unique_tenant",
            ),
            models.UniqueConstraint(
                fields=["tenant", "persona", "tool"],
                condition=Q(persona__isnull=False),
                name="tool_setting_unique_persona",
            ),
            models.CheckConstraint(
                condition=Q(timeout_seconds__isnull=True) | Q(timeout_seconds__gt=0),
                name="tool_setting_timeout_positive",
            ),
        ]

    def __str__(self) -> str:
        scope = f"{self.tenant}/{self.persona.name}" if self.persona is not None else str(self.tenant)
        return f"{self.tool} for {scope} ({'on' if self.enabled else 'off'})"


class ToolRun(models.Model):
    """One tool call requested by the model in a turn: what was asked, what came back."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCESS = "success"
        ERROR = "error"
        TIMEOUT = "timeout"
        BLOCKED = "blocked"

    FINAL_STATUSES = (Status.SUCCESS, Status.ERROR, Status.TIMEOUT, Status.BLOCKED)
    OPEN_STATUSES = (Status.PENDING, Status.RUNNING)

    request_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="tool_runs")
    session = models.ForeignKey("conversations.Session", on_delete=models.CASCADE, related_name="tool_runs")
    turn = models.ForeignKey("conversations.Turn", on_delete=models.CASCADE, related_name="tool_runs")
    attempt = models.PositiveIntegerField(default=1, help_text="The turn attempt that asked for it.")
    round = models.PositiveIntegerField(default=1, help_text="The model call (1, 2, …) that asked for it.")
    position = models.PositiveIntegerField(default=0)
    call_id = models.CharField(max_length=200, help_text="The model's tool call id.")
    tool = models.CharField(max_length=64, db_index=True)
    args = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    result = models.JSONField(default=dict, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    timeout_seconds = models.FloatField(default=30.0)
    deadline_at = models.DateTimeField(help_text="After this the turn stops waiting (status timeout).")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, default="", help_text="The worker that ran it.")
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "tool_runs"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["turn", "attempt", "round", "position"], name="tool_run_turn_order"),
            models.Index(
                fields=["status", "deadline_at"],
                name="tool_run_open",
                condition=Q(status__in=["pending", "running"]),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "running", "success", "error", "timeout", "blocked"]),
                name="tool_run_status_valid",
            )
        ]

    def __str__(self) -> str:
        return f"{self.tool} {self.request_id} ({self.status})"


class McpServer(models.Model):
    """An MCP server whose tools a tenant's agent may call (issue 17); configured by staff only.

    Its headers (or bearer token) and, for a local server, its environment are kept in
    ``secret_encrypted`` (Fernet, like LLM credentials) and never shown again. Only the tools named
    in ``allowed_tools`` (``["*"]``: all of them) are offered, as ``<name>__<tool>``.
    """

    class Transport(models.TextChoices):
        STREAMABLE_HTTP = "streamable_http", "Streamable HTTP"
        SSE = "sse", "HTTP + SSE (legacy)"
        STDIO = "stdio", "Local process (stdio, sandboxed)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="mcp_servers")
    name = models.CharField(
        max_length=30,
        help_text="Lower-case letters, digits and single hyphens or underscores; its tools are offered as "
        "<name>__<tool>.",
    )
    transport = models.CharField(max_length=20, choices=Transport.choices, default=Transport.STREAMABLE_HTTP)
    url = models.URLField(max_length=500, blank=True, default="", help_text="HTTP transports: the endpoint.")
    command = models.JSONField(
        default=list,
        blank=True,
        help_text='stdio: the argv, e.g. ["/usr/bin/python3", "/opt/mcp/weather/server.py"].',
    )
    read_only_paths = models.JSONField(
        default=list,
        blank=True,
        help_text="stdio: host directories bound read-only into the sandbox (the server's code). Never the "
        "project or var/.",
    )
    python_packages = models.BooleanField(
        default=False,
        help_text="stdio: bind the worker's installed Python packages read-only (for servers written with "
        "the mcp SDK).",
    )
    allow_network = models.BooleanField(
        default=False, help_text="stdio: let the sandboxed server use the network."
    )
    allow_private = models.BooleanField(
        default=False,
        help_text="HTTP: allow loopback, private and link-local addresses (off: only public addresses).",
    )
    allowed_tools = models.JSONField(
        default=list, blank=True, help_text='Tool names offered to the model; ["*"] for all, [] for none.'
    )
    timeout_seconds = models.FloatField(default=30.0, help_text="Per tool call.")
    enabled = models.BooleanField(default=True)
    secret_encrypted = models.TextField(blank=True, default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "mcp_servers"
        verbose_name = "MCP server"
        ordering = ["tenant__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="mcp_server_unique_name"),
            models.CheckConstraint(condition=Q(timeout_seconds__gt=0), name="mcp_server_timeout_positive"),
            models.CheckConstraint(
                condition=Q(transport__in=["streamable_http", "sse", "stdio"]),
                name="mcp_server_transport_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.transport}) for {self.tenant}"
