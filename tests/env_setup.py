"""Loaded first (``-p tests.env_setup``): isolates this test run's Redis keys per xdist worker.

Every process of one run shares a run id; each xdist worker gets its own
Redis key prefix (cache, stream buffers, broker queues, channel layer), so
parallel workers and concurrent runs never see each other's messages.
"""

from __future__ import annotations

import os
import uuid

os.environ.setdefault("SOMA_TEST_RUN", uuid.uuid4().hex[:8])
_worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
os.environ["SOMA_REDIS_PREFIX"] = f"t{os.environ['SOMA_TEST_RUN']}{_worker}:"
os.environ.setdefault("SOMA_DEPLOYMENT_MODE", "DEV")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "somaagent.settings")
# Fast sweeps and short leases so fault tests finish in seconds, not minutes.
os.environ.setdefault("SOMA_TURN_LEASE_SECONDS", "3")
os.environ.setdefault("SOMA_TURN_SWEEP_SECONDS", "1")
os.environ.setdefault("SOMA_OUTBOX_SWEEP_SECONDS", "1")
os.environ.setdefault("SOMA_OUTBOX_SWEEP_MIN_AGE_SECONDS", "0.5")
os.environ.setdefault("SOMA_TURN_REDISPATCH_AFTER_SECONDS", "5")
os.environ.setdefault("SOMA_SCHEDULE_TICK_SECONDS", "1")  # schedules due within a second in live tests
# Cached configuration is checked against its version on every read, so a row a test
# writes applies at once (production checks at most once a second).
os.environ.setdefault("SOMA_CACHE_FRESH_SECONDS", "0")
# Every test client logs in from 127.0.0.1: the per-address login limit would count all of a
# worker's logins together (tests/somaagent/test_login_throttle.py sets its own limits).
os.environ.setdefault("SOMA_LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE", "100000")
# Heartbeats often enough that a test reading a quiet stream notices its own deadline.
os.environ.setdefault("SOMA_SSE_HEARTBEAT_SECONDS", "2")
# Unit tests never reach a model unless a test points them at a stub.
os.environ.pop("SOMA_LLM_BASE_URL", None)
# ... nor the embedded local model, even when it is installed (its own test turns it on).
os.environ["SOMA_LOCAL_LLM"] = "0"
# No background title requests to the model after a first reply: tests that count the model's
# requests or compare a session before and after see only their own (test_titles turns it on).
os.environ["SOMA_TITLE_FROM_MODEL"] = "0"

# --- what this run leaves behind --------------------------------------------------------------
# The run (the xdist controller, or the only process) holds the embedded Redis server when it
# is the one in use, so the server stops with the run if the run started it.
_CONTROLLER = "PYTEST_XDIST_WORKER" not in os.environ
_held = None
if _CONTROLLER:
    from somaagent import embedded_redis, environment, paths

    environment.load_dotenv_file()
    if not environment.env("REDIS_URL"):
        _held = embedded_redis.acquire(paths.VAR_DIR, label="a test run")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    from tests.run_logs import run_logs_finish

    if _CONTROLLER:
        note = run_logs_finish(passed=exitstatus in (0, 5))  # 5: no tests ran
        if note:
            terminalreporter.write_line(note)


def pytest_unconfigure(config) -> None:
    global _held
    if _held is not None:
        from somaagent import embedded_redis

        released = embedded_redis.release(_held)
        _held = None
        if released.stopped_pid is not None or released.running:
            print(released.message())
