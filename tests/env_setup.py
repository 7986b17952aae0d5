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
# Cached configuration is checked against its version on every read, so a row a test
# writes applies at once (production checks at most once a second).
os.environ.setdefault("SOMA_CACHE_FRESH_SECONDS", "0")
# Heartbeats often enough that a test reading a quiet stream notices its own deadline.
os.environ.setdefault("SOMA_SSE_HEARTBEAT_SECONDS", "2")
# Unit tests never reach a model unless a test points them at a stub.
os.environ.pop("SOMA_LLM_BASE_URL", None)
# ... nor the embedded local model, even when it is installed (its own test turns it on).
os.environ["SOMA_LOCAL_LLM"] = "0"
