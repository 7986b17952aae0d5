"""Counting what a piece of work costs the database: SQL statements and transactions, on every thread.

A statement inside ``transaction.atomic()`` belongs to the transaction of its
outermost block (a run of statements under one outermost ``Atomic`` on one
connection); a statement outside any block is a transaction of its own
(autocommit). SQLite's ``BEGIN`` is not counted: PostgreSQL begins implicitly.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections
from django.db.backends.signals import connection_created


@dataclasses.dataclass
class Statements:
    sql: list[str] = dataclasses.field(default_factory=list)
    # one entry per statement: the outermost atomic block it ran in (None: autocommit)
    blocks: list[tuple[int, object | None]] = dataclasses.field(default_factory=list)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    closed: bool = False  # the counting block has ended (the wrapper stays on open connections)
    ignored_threads: tuple[str, ...] = ()  # names of threads whose statements are not counted

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.lstrip().upper().startswith("BEGIN"):  # SQLite's explicit start (implicit on PostgreSQL)
            return execute(sql, params, many, context)
        if self.closed or threading.current_thread().name in self.ignored_threads:
            return execute(sql, params, many, context)
        conn = context["connection"]
        outer = conn.atomic_blocks[0] if conn.in_atomic_block and conn.atomic_blocks else None
        with self.lock:
            self.sql.append(sql)
            self.blocks.append((id(conn), outer))
        return execute(sql, params, many, context)

    def count(self, prefix: str = "") -> int:
        return sum(1 for s in self.sql if s.lstrip().upper().startswith(prefix))

    def transactions(self) -> int:
        """Autocommit statements, plus runs of statements under one outermost atomic block."""
        count = 0
        last: dict[int, object | None] = {}
        for conn, outer in self.blocks:
            if outer is None or last.get(conn) is not outer:
                count += 1
            last[conn] = outer
        return count

    def listing(self, width: int = 300) -> str:
        return "\n".join(
            f"{'T' if outer is not None else 'A'} {sql[:width]}"
            for sql, (_, outer) in zip(self.sql, self.blocks, strict=True)
        )


@contextmanager
def statements_on_every_thread(*, ignoring: tuple[str, ...] = ()) -> Iterator[Statements]:
    """Every statement run by any thread of this process while the block runs, except on the
    threads named in ``ignoring`` (a process-wide batcher that may or may not run meanwhile)."""
    seen = Statements(ignored_threads=ignoring)

    def install(sender: Any, connection: Any, **_: Any) -> None:
        if seen not in connection.execute_wrappers:
            connection.execute_wrappers.append(seen)

    for conn in connections.all(initialized_only=True):
        conn.close()  # every thread opens its connection anew, with the wrapper
    connection_created.connect(install)
    try:
        yield seen
    finally:
        connection_created.disconnect(install)
        with seen.lock:
            seen.closed = True
