"""``python manage.py memory_status [--json]``: the memory write backlog and replication lag."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from memory.selectors import memory_status


class Command(BaseCommand):
    help = "Report the memory write outbox backlog, replication lag and memory dead letters."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON document")

    def handle(self, *args: Any, **options: Any) -> None:
        status = memory_status()
        if options["json"]:
            self.stdout.write(json.dumps(status, sort_keys=True))
            return
        o, r = status["outbox"], status["replication"]
        self.stdout.write(
            "\n".join(
                [
                    f"memory adapter: {status['adapter']}",
                    f"write outbox: {o['pending']} pending ({o['due']} due, {o['leased']} in flight, "
                    f"{o['retrying']} retrying), oldest pending {o['oldest_pending_age_seconds']:.1f} s; "
                    f"{o['delivered']} delivered, {o['dead']} dead",
                    f"replication: {r['wal_pending']} WAL records waiting, lag {r['lag_seconds']:.1f} s, "
                    f"{r['wal_failed']} failed, {r['replica_rows']} replica rows",
                    f"memory dead letters not replayed: {status['dead_letters_unreplayed']}",
                ]
            )
        )
