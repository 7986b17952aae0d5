"""A stub Open Policy Agent server over real HTTP, speaking OPA's ``/v1/data`` REST API.

Run: ``python -m tests.stubs.opa_server --port 0`` (prints ``PORT <n>`` when ready).

It loads the shipped Rego files (``somaagent/policy/rego``) and evaluates them
with the same engine as the embedded adapter (regopy), against the data it
was sent — like OPA, it knows nothing of SomaAgent's database:

- ``POST /v1/data/<path>`` ``{"input": …}``  → ``{"result": <value>}``, or ``{}`` when undefined
- ``GET /v1/data/<path>``                    → the stored data document there
- ``PUT /v1/data/<path>`` (JSON body)        → 204, creating parent documents as OPA does
- ``DELETE /v1/data/<path>``                 → 204, or 404 when there is nothing
- ``POST /_fail`` ``{"status": 500}``        → every ``/v1`` call answers that status (0 = stop)
- ``POST /_reset``                           → forget all data (an OPA restart) and the log
- ``GET /_log``                              → the ``/v1`` requests seen: ``[[method, path], …]``
"""

from __future__ import annotations

import argparse
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from regopy import Interpreter

ROOT = Path(__file__).resolve().parents[2]
REGO_DIR = ROOT / "somaagent" / "policy" / "rego"
SEGMENT = re.compile(r"^[A-Za-z0-9_.-]+$")

STATE: dict[str, Any] = {"data": {}, "fail": 0, "log": []}
LOCK = threading.Lock()


def modules() -> list[tuple[str, str]]:
    return [(p.stem, p.read_text()) for p in sorted(REGO_DIR.glob("*.rego"))]


MODULES = modules()


def evaluate(path: list[str], policy_input: Any) -> tuple[bool, Any]:
    """(defined, value) of ``data.<path>`` for this input, through a fresh interpreter."""
    interpreter = Interpreter()
    for name, source in MODULES:
        interpreter.add_module(name, source)
    with LOCK:
        interpreter.add_data_json(json.dumps(STATE["data"]))
    interpreter.set_input_term(json.dumps(policy_input))
    ref = "data." + ".".join(path) if path else "data"
    output = interpreter.query(f"x := {ref}")
    if not output.ok():
        raise RuntimeError(str(output)[:500])
    if len(output) == 0 or "x" not in output[0].bindings:
        return False, None
    return True, output[0].bindings["x"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, doc: Any = None) -> None:
        body = b"" if doc is None else json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else None

    def _path(self) -> list[str] | None:
        rest = self.path.split("?", 1)[0][len("/v1/data") :].strip("/")
        parts = [p for p in rest.split("/") if p]
        return parts if all(SEGMENT.match(p) for p in parts) else None

    def _handle(self) -> None:
        if self.path.startswith("/_"):
            self._control()
            return
        if not self.path.startswith("/v1/data"):
            self._send(404, {"code": "resource_not_found", "message": "not found"})
            return
        body = self._body()
        with LOCK:
            STATE["log"].append([self.command, self.path])
            fail = STATE["fail"]
        if fail:
            self._send(fail, {"code": "internal_error", "message": "stub failure"})
            return
        path = self._path()
        if path is None:
            self._send(400, {"code": "invalid_parameter", "message": "bad path"})
            return
        if self.command == "POST":
            policy_input = (body or {}).get("input") if isinstance(body, dict) else None
            defined, value = evaluate(path, policy_input)
            self._send(200, {"result": value} if defined else {})
        elif self.command == "GET":
            defined, value = evaluate(path, None)
            self._send(200, {"result": value} if defined else {})
        elif self.command == "PUT":
            with LOCK:
                node = STATE["data"]
                for part in path[:-1]:
                    node = node.setdefault(part, {})
                node[path[-1]] = body
            self._send(204)
        elif self.command == "DELETE":
            with LOCK:
                node = STATE["data"]
                for part in path[:-1]:
                    node = node.get(part, {})
                found = node.pop(path[-1], None) is not None
            self._send(204 if found else 404, None if found else {"code": "resource_not_found"})
        else:
            self._send(405, {"code": "method_not_allowed"})

    def _control(self) -> None:
        body = self._body() or {}
        with LOCK:
            if self.path == "/_fail":
                STATE["fail"] = int(body.get("status", 500))
            elif self.path == "/_reset":
                STATE["data"] = {}
                STATE["log"] = []
            elif self.path == "/_log":
                self._send(200, STATE["log"])
                return
        self._send(200, {"ok": True})

    do_GET = do_POST = do_PUT = do_DELETE = _handle


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
