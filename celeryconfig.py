"""Celery settings: queues, routes, acknowledgement, limits and the beat schedule.

Loaded by ``somaagent.celery`` with ``config_from_object``. Broker URLs come
from the Django settings so that one set of environment variables configures
every process.

Execution: a worker runs its tasks on a pool of threads (``worker_pool``), as
many as ``SOMA_WORKER_CONCURRENCY``. A turn spends nearly all its time waiting
on the model's socket, which costs a thread (a few hundred kilobytes) and no
database connection (``somaagent.db_hold``), so one process carries hundreds
of conversations; the prefork pool spent a whole process (~125 MB and a
connection) on each. Threads do not support Celery's time limits, so a turn
keeps its own (``SOMA_TURN_TIME_LIMIT_SECONDS``, conversations.turn.watch)
and every outside call has its own timeout.

Worker loss: tasks are acknowledged late and rejected (requeued) when the
worker process dies, so the broker redelivers them. Redis only redelivers an
unacknowledged message after ``visibility_timeout``, which must be longer than
the longest task (else a slow turn would run twice), so it alone cannot bring a
killed turn back quickly. Turns therefore carry their own lease in the
database, renewed while they run, and the beat sweep re-dispatches turns whose
lease has expired (conversations.services.turn_sweep).
"""

from __future__ import annotations

import os

from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "somaagent.settings")

from django.conf import settings

from somaagent.environment import env_float

QUEUES = ("conversation", "tools", "memory", "default")

broker_url = settings.CELERY_BROKER_URL
broker_connection_retry_on_startup = True
broker_connection_timeout = 2.0
broker_transport_options = {
    # Longer than task_time_limit: a running task is never handed to a second worker.
    "visibility_timeout": 3600,
    "global_keyprefix": settings.REDIS_KEY_PREFIX + "celery:",
}
broker_pool_limit = 20

# Results are not used by the product (never .get() in a task); the backend
# exists so benchmarks can time a bare round trip.
result_backend = settings.CELERY_RESULT_URL
result_backend_transport_options = {"global_keyprefix": settings.REDIS_KEY_PREFIX + "results:"}
task_ignore_result = True
result_expires = 600
# One result backend per process rather than per thread: send_task builds an
# AsyncResult, which otherwise creates a backend (entry-point scan, Redis
# client) in every new web request thread. Nothing waits on results in threads.
result_backend_thread_safe = True

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
event_serializer = "json"

# Celery's Django fix-up closes the database connection before and after every
# task unless this is set: a new connection per turn (~3 ms, and on the path to
# the first delta). Reuse it; somaagent.celery checks it before each task.
CELERY_DB_REUSE_MAX = 1000

worker_pool = "threads"
worker_concurrency = settings.SOMA.worker_concurrency
task_acks_late = True
task_reject_on_worker_lost = True
# With acks_late each thread holds at most one unacknowledged message: a worker
# never reserves a turn it has no thread to run.
worker_prefetch_multiplier = 1
# Honoured by the prefork and gevent pools only (an operator's -P prefork); under
# the thread pool the turn's own limit and the outside calls' timeouts apply.
task_time_limit = 900
task_soft_time_limit = 840

task_default_queue = "default"
task_queues = [Queue(name, Exchange(name), routing_key=name) for name in QUEUES]
task_routes = {
    # Background summaries must not queue ahead of user turns (exact names win over globs).
    "conversation.summarise_session": {"queue": "default", "routing_key": "default"},
    "conversation.propose_title": {"queue": "default", "routing_key": "default"},
    "conversation.*": {"queue": "conversation", "routing_key": "conversation"},
    "tools.*": {"queue": "tools", "routing_key": "tools"},
    "memory.*": {"queue": "memory", "routing_key": "memory"},
    "soma.*": {"queue": "default", "routing_key": "default"},
    "documents.*": {"queue": "default", "routing_key": "default"},
    "webhooks.*": {"queue": "default", "routing_key": "default"},
    "schedules.*": {"queue": "default", "routing_key": "default"},
}

# Task events (three broker publishes per task) are off unless someone watches:
# Flower turns them on in the workers it follows (its enable_events option, on by
# default) for as long as it runs. No "task-sent" event: it would be one more
# broker publish inside every accept request.
worker_send_task_events = False
task_send_sent_event = False
worker_hijack_root_logger = False
worker_cancel_long_running_tasks_on_connection_loss = False

beat_scheduler = "somaagent.beat:SomaScheduler"
beat_schedule = {
    "outbox-sweep": {
        "task": "soma.outbox_sweep",
        "schedule": settings.SOMA.outbox_sweep_seconds,
    },
    "turn-lease-sweep": {
        "task": "conversation.turn_sweep",
        "schedule": settings.SOMA.turn_sweep_seconds,
    },
    "memory-sweep": {"task": "memory.sweep", "schedule": settings.SOMA.memory.sweep_seconds},
    "memory-replicate": {"task": "memory.replicate", "schedule": settings.SOMA.memory.replicate_seconds},
    "tool-run-sweep": {
        "task": "tools.sweep",
        "schedule": 30.0,
    },
    "schedules-tick": {"task": "schedules.tick", "schedule": env_float("SOMA_SCHEDULE_TICK_SECONDS", 5.0)},
    "webhook-sweep": {"task": "webhooks.sweep", "schedule": env_float("SOMA_WEBHOOK_SWEEP_SECONDS", 5.0)},
    "housekeeping": {
        "task": "soma.housekeeping",
        "schedule": settings.SOMA_OPS.housekeeping_seconds,
    },
}
