"""One way for async code to reach the database (issue 16): ``somaagent.async_db.db_call``.

It runs on a small shared pool of threads and gives the connection back after each call;
Channels' ``database_sync_to_async`` (a thread per consumer, a connection held between calls)
was a second way with other behaviour. This test keeps it from coming back."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("somaagent", "conversations", "tools", "memory")


def test_application_code_reaches_the_database_from_async_code_only_through_db_call() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "database_sync_to_async" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
