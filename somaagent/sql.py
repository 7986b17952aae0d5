"""Parameters and values of hand-written SQL, the same way the ORM would convert them.

The few statements on the hot paths that the ORM cannot express in one round
trip (an update that returns a row, a read that joins four tables and locks
one) are written by hand. These helpers give their parameters and results the
ORM's conversions on both backends: PostgreSQL (psycopg adapts most types
itself) and SQLite (UUIDs as 32 hex characters, datetimes as text, JSON as text).
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Model
from django.utils import timezone
from django.utils.dateparse import parse_datetime


def p_uuid(value: uuid.UUID | str | None) -> Any:
    """A UUID parameter."""
    if value is None:
        return None
    parsed = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    return parsed if connection.vendor == "postgresql" else parsed.hex


def p_datetime(value: datetime | None) -> Any:
    """A datetime parameter (aware, as the ORM stores it)."""
    return connection.ops.adapt_datetimefield_value(value)


def p_json(model: type[Model], field: str, value: Any) -> Any:
    """A JSON parameter for ``model.field`` (its encoder, the backend's adapter)."""
    return model._meta.get_field(field).get_db_prep_save(value, connection)  # type: ignore[union-attr]


def v_uuid(value: Any) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))


def v_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else parse_datetime(str(value))
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)  # SQLite: stored naive, in UTC
    return parsed


def v_json(value: Any) -> Any:
    """JSON read back: text on both backends (Django loads jsonb as text), or already decoded."""
    return json.loads(value) if isinstance(value, str | bytes | bytearray) else value


def insert_objects(
    objs: Sequence[Model],
    *,
    ignore_conflicts: bool = False,
    update_on: tuple[list[str], list[str]] | None = None,
    expressions: Mapping[str, tuple[str, Sequence[Any]]] | None = None,
    returning: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """INSERT unsaved model instances of one model in one statement, like ``bulk_create`` without
    its query compiler (a hot path inserts the same shape thousands of times; its SQL is built once).

    ``ignore_conflicts``: ON CONFLICT DO NOTHING. ``update_on=(unique fields, fields)``: ON
    CONFLICT (unique) DO UPDATE SET each field to the new row's. ``expressions``: field name ->
    (SQL, params) computed by the database instead of the object's value (a subquery, a CASE).
    ``returning``: columns of the rows inserted, read back raw (``v_*`` convert them); a row
    that a conflict skipped returns nothing. Auto primary keys are left to the database.
    """
    if not objs:
        return []
    # The thread's connection itself: each field's conversion reads it several times, and
    # ``connection`` (a proxy) finds it anew at every attribute.
    db = connections[DEFAULT_DB_ALIAS]
    model = type(objs[0])
    computed = expressions or {}
    sql = _insert_sql(
        model,
        len(objs),
        db.vendor,
        ignore_conflicts=ignore_conflicts,
        update_on=(tuple(update_on[0]), tuple(update_on[1])) if update_on is not None else None,
        expressions=tuple((name, expr) for name, (expr, _) in computed.items()),
        returning=tuple(returning),
    )
    fields = _insert_fields(model)
    params: list[Any] = []
    for obj in objs:
        for f in fields:
            if f.name in computed:
                params.extend(computed[f.name][1])
            else:
                params.append(f.get_db_prep_save(f.pre_save(obj, True), db))
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(r) for r in cursor.fetchall()] if returning else []


@functools.cache
def _insert_fields(model: type[Model]) -> list[Any]:
    return [
        f
        for f in model._meta.concrete_fields
        if not (f.primary_key and f.get_internal_type().endswith("AutoField"))
    ]


@functools.lru_cache(maxsize=256)
def _insert_sql(
    model: type[Model],
    rows: int,
    vendor: str,  # the key of the cache: quoting differs per backend
    *,
    ignore_conflicts: bool,
    update_on: tuple[tuple[str, ...], tuple[str, ...]] | None,
    expressions: tuple[tuple[str, str], ...],
    returning: tuple[str, ...],
) -> str:
    meta = model._meta
    fields = _insert_fields(model)
    computed = dict(expressions)

    def quote(name: Any) -> str:
        return str(connection.ops.quote_name(str(name)))

    def column(name: str) -> str:
        return quote(meta.get_field(name).column)  # type: ignore[union-attr]

    row = "(" + ", ".join(f"({computed[f.name]})" if f.name in computed else "%s" for f in fields) + ")"
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"
        f" VALUES {', '.join([row] * rows)}"
    )
    if update_on is not None:
        unique, updates = update_on
        sets = ", ".join(f"{column(name)} = EXCLUDED.{column(name)}" for name in updates)
        sql += f" ON CONFLICT ({', '.join(column(name) for name in unique)}) DO UPDATE SET {sets}"
    elif ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    if returning:
        sql += " RETURNING " + ", ".join(column(name) for name in returning)
    return sql
