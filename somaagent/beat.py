"""The beat's scheduler: django-celery-beat's database scheduler, sure to install its schedule.

At start-up the database scheduler writes the configured entries (the sweeps)
into ``django_celery_beat`` tables and then schedules what the tables hold.
A beat that starts while the database refuses writes (down, disk full) logs
"Cannot add entry" and goes on with none of them: no outbox sweep, no lease
sweep, ever, until someone restarts it. This one keeps trying at every tick
until every configured entry is in place.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError, InterfaceError
from django_celery_beat.schedulers import DatabaseScheduler

log = logging.getLogger(__name__)


class SomaScheduler(DatabaseScheduler):
    _installed = False
    _schedule: dict[str, Any] | None
    _heap: list[Any]

    def setup_schedule(self) -> None:
        self._install()

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self._installed:
            self._install()
        return float(super().tick(*args, **kwargs))

    def _install(self) -> None:
        try:
            self.install_default_entries(self.schedule)
            self.update_from_dict(self.app.conf.beat_schedule)
            missing = sorted(set(self.app.conf.beat_schedule) - set(self.schedule or {}))
        except (DatabaseError, InterfaceError) as exc:
            missing = [f"(the database did not answer: {exc!r})"]
        if missing:
            # The first read of the tables failed too: read them again next time, and meanwhile
            # tick over an empty schedule rather than none at all.
            if self._schedule is None:
                self._schedule = {}
                self._initial_read = True
            log.warning("beat schedule not installed yet; trying again", extra={"missing": missing})
            return
        self._heap = []  # schedule the entries that just arrived
        self._heap_invalidated = True
        self._installed = True
