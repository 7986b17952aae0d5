"""A web process and a worker that never rank document vectors, meet an MCP server or validate a
tool call do not load numpy, the MCP SDK (with pydantic and starlette) or jsonschema: ~80 MB
resident of each process between them (jsonschema alone ~2.5 MB of the web process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.live import ROOT

HEAVY = ("numpy", "mcp", "mcp_types", "pydantic", "starlette", "jsonschema", "referencing")

PROBE = """
import json, sys
import somaagent.asgi  # the web process: every URL, view, consumer and the policy engine
from somaagent.celery import app
app.loader.import_default_modules()  # the worker: every task module
import conversations.turn.runner, documents.search, tools.selectors  # a turn's modules
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in %r)))
"""


def test_start_up_loads_neither_numpy_nor_the_mcp_sdk_nor_jsonschema():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE % (HEAVY,)],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "somaagent.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
