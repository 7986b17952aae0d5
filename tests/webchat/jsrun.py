"""Run the web chat's pure JavaScript modules (markdown.js, timeline.js) in node, from pytest."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

STATIC = Path(__file__).resolve().parents[2] / "somaagent" / "project" / "webchat" / "static" / "webchat"
NODE = shutil.which("node")


def node_eval(module: str, body: str, payload: Any, *, prelude: str = "") -> Any:
    """``body`` sees ``mod`` (the module's export) and ``input``; whatever it returns (or the value
    its promise resolves to) comes back as JSON. ``prelude`` runs before the module loads (the
    browser globals a module expects)."""
    if NODE is None:
        pytest.skip(
            "JS TESTS SKIPPED: no `node` on PATH — install Debian's nodejs (`apt-get install -y nodejs`, "
            "as .ci/run does) to test the web chat's renderer and timeline."
        )
    script = (
        f"{prelude};"
        f"const mod = require({json.dumps(str(STATIC / module))});"
        "let raw = ''; process.stdin.on('data', d => raw += d); process.stdin.on('end', () => {"
        "  const input = JSON.parse(raw);"
        f"  Promise.resolve((function () {{ {body} }})())"
        "    .then(out => process.stdout.write(JSON.stringify(out)));"
        "});"
    )
    done = subprocess.run(
        [NODE, "-e", script],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
