"""The tool task's side: claim a pending run, execute it, record the outcome, wake the turn.

Idempotent: a run is claimed only while it is ``pending`` and before its
deadline, so a redelivered or duplicated task does nothing, and a result that
arrives after the turn stopped waiting (the turn marked it ``timeout``) is
discarded rather than overwriting what the model was told.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import timedelta
from typing import Any

import redis
from django.utils import timezone

from memory.port import namespace_for
from somaagent.db_hold import db_release
from somaagent.redis_client import key, sync_redis
from tools.breaker import breaker_record
from tools.models import ToolRun
from tools.registry import ToolContext, ToolError
from tools.selectors import tools_for

log = logging.getLogger(__name__)
# The outbox topic a turn dispatches tool calls on (registered in ToolsConfig.ready()).
TOOL_TOPIC = "tools.run"
WAKE_TTL_SECONDS = 600
LOST_AFTER_SECONDS = 60


def wake_key(turn_id: uuid.UUID | str) -> str:
    return key("toolwake", turn_id)


def wake_turn(*, turn_id: uuid.UUID | str, request_id: uuid.UUID | str) -> None:
    """Tell the waiting turn a run finished; the turn also polls the database, so this may fail."""
    try:
        pipe = sync_redis().pipeline()
        pipe.rpush(wake_key(turn_id), str(request_id))
        pipe.expire(wake_key(turn_id), WAKE_TTL_SECONDS)
        pipe.execute()
    except redis.RedisError:
        log.debug("could not wake the turn through Redis", exc_info=True)


def _jsonable(result: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(result, default=str))
    return doc if isinstance(doc, dict) else {"value": doc}


def tool_run_execute(*, request_id: uuid.UUID | str, worker: str = "") -> str | None:
    """Run one tool call; returns its final status, or None when there was nothing to do."""
    now = timezone.now()
    claimed = ToolRun.objects.filter(
        pk=request_id, status=ToolRun.Status.PENDING, deadline_at__gt=now
    ).update(status=ToolRun.Status.RUNNING, started_at=now, worker=worker[:200])
    if not claimed:
        log.info("tool run not claimable (finished, taken or expired)", extra={"request_id": str(request_id)})
        return None
    run = ToolRun.objects.select_related("session", "session__persona").get(pk=request_id)
    status, result = _execute(run)
    duration_ms = int((timezone.now() - now).total_seconds() * 1000)
    saved = ToolRun.objects.filter(pk=run.pk, status=ToolRun.Status.RUNNING).update(
        status=status, result=result, duration_ms=duration_ms, finished_at=timezone.now()
    )
    log.info(
        "tool run finished",
        extra={
            "request_id": str(run.pk),
            "tool": run.tool,
            "status": status,
            "duration_ms": duration_ms,
            "isolation": result.get("isolation"),
            "kept": bool(saved),
        },
    )
    breaker_record(tool=run.tool, tenant_id=run.tenant_id, ok=status == ToolRun.Status.SUCCESS)
    wake_turn(turn_id=run.turn_id, request_id=run.pk)
    return status


def _execute(run: ToolRun) -> tuple[str, dict[str, Any]]:
    effective = tools_for(tenant_id=run.tenant_id, persona_id=run.session.persona_id).get(run.tool)
    if effective is None:
        return ToolRun.Status.ERROR, {"error": "unknown_tool", "message": f"No tool named {run.tool!r}."}
    tool = effective.tool
    session = run.session
    ctx = ToolContext(
        tenant_id=str(run.tenant_id),
        persona_id=str(session.persona_id) if session.persona_id else None,
        session_id=str(run.session_id),
        request_id=str(run.pk),
        timeout=run.timeout_seconds,
        config=effective.config,
        memory_namespace=namespace_for(
            persona_id=session.persona_id,
            owner=session.created_by_id,
            shared=bool(session.persona is not None and session.persona.shared_memory),
        ),
        session_owner_id=session.created_by_id,
    )
    started = time.monotonic()
    db_release()  # a tool may wait seconds (a fetch, the sandbox): it holds no pooled connection
    try:
        return ToolRun.Status.SUCCESS, _jsonable(tool.run(dict(run.args), ctx))
    except ToolError as exc:
        return exc.status, _jsonable(exc.as_result())
    except Exception as exc:  # a tool's bug must end as a recorded error, not a stuck run
        log.exception("tool raised", extra={"tool": run.tool, "request_id": str(run.pk)})
        return ToolRun.Status.ERROR, {
            "error": "internal_error",
            "message": f"The tool failed: {exc.__class__.__name__}.",
            "seconds": round(time.monotonic() - started, 3),
        }


def tool_run_sweep(*, batch_size: int = 200) -> int:
    """Close runs nobody will finish (their worker died and the turn is gone too)."""
    cutoff = timezone.now() - timedelta(seconds=LOST_AFTER_SECONDS)
    lost = list(
        ToolRun.objects.filter(status__in=ToolRun.OPEN_STATUSES, deadline_at__lt=cutoff).values_list(
            "pk", "turn_id"
        )[:batch_size]
    )
    closed = 0
    for request_id, turn_id in lost:
        closed += ToolRun.objects.filter(pk=request_id, status__in=ToolRun.OPEN_STATUSES).update(
            status=ToolRun.Status.ERROR,
            result={"error": "lost", "message": "The tool run was lost: its worker stopped."},
            finished_at=timezone.now(),
        )
        wake_turn(turn_id=turn_id, request_id=request_id)
    if closed:
        log.warning("closed lost tool runs", extra={"count": closed})
    return closed
