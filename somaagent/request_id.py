"""The request id every log line carries (and, in a task, the task's id and name): context variables.

A request id is born at the HTTP edge (``X-Request-ID`` honoured when it is
sane, otherwise generated), travels into Celery tasks as a message header
(``somaagent.project.celery_signals``) and into the stream events of the turn it
started (``assistant.started`` ``data.request_id``). The JSON log formatter adds
whatever is set here to every record.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

REQUEST_ID_HEADER = "X-Request-ID"
# Celery message header that carries the request id to the task.
TASK_HEADER = "soma_request_id"
_SANE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:=+/-]{0,127}$", re.ASCII)

request_id_var: ContextVar[str | None] = ContextVar("soma_request_id", default=None)
task_var: ContextVar[tuple[str, str] | None] = ContextVar("soma_task", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def sane_request_id(raw: str | None) -> str | None:
    """The client's id if it is short printable ASCII without spaces, else None."""
    if raw and _SANE.match(raw):
        return raw
    return None


def current_request_id() -> str | None:
    return request_id_var.get()


def request_id_data() -> dict[str, str]:
    """``{"request_id": …}`` to merge into an event's data, or nothing outside a request."""
    rid = request_id_var.get()
    return {"request_id": rid} if rid else {}


def adopt_request_id(stored: object) -> str | None:
    """In a task: the request id from the message headers, else the one stored with the event.

    A turn dispatched by a sweep (not by its request) has no header; the id
    recorded in its ``user.message`` then becomes the context's.
    """
    rid = request_id_var.get()
    if rid is None and isinstance(stored, str) and sane_request_id(stored):
        rid = stored
        request_id_var.set(rid)
    return rid


@contextmanager
def request_id_scope(request_id: str | None) -> Iterator[None]:
    token = request_id_var.set(request_id)
    try:
        yield
    finally:
        request_id_var.reset(token)


def context_fields() -> dict[str, str]:
    """What the log formatter adds to a record."""
    fields: dict[str, str] = {}
    rid = request_id_var.get()
    if rid:
        fields["request_id"] = rid
    task = task_var.get()
    if task:
        fields["task_id"], fields["task_name"] = task
    return fields
