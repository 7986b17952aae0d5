"""A stub SomaBrain-compatible memory service over real HTTP, for tests.

Run: ``python -m tests.stubs.memory_server --port 0 [--token T]`` (prints ``PORT <n>`` when ready).

The wire format of ``memory.adapters.remote``:

- ``POST /memory/remember`` ``{tenant, namespace, key, value, tags?, universe?}`` → ``{"stored": true}``;
  a repeated ``key`` is stored once and counted (``count`` in ``/_stored``)
- ``POST /memory/recall`` ``{tenant, namespace, query, top_k, session_id?}`` →
  ``{"results": [{"score", "key", "payload"}]}`` scored by shared words
- ``POST /memory/forget`` ``{tenant, namespace, session_id, key}`` → ``{"forgotten": n}``

With ``--token`` every call needs ``Authorization: Bearer <token>`` (else 401).

Faults are set at run time with ``POST /_control`` and a JSON object per
endpoint (``remember``, ``recall``, ``forget``, or ``*`` for all); later posts
merge, ``{"reset": true}`` clears everything:

- ``{"status": 503, "retry_after": "2"}``  answer that status (with ``Retry-After``)
- ``{"delay": 3}``                          sleep before answering
- ``{"drop": true}``                        close the connection without an answer
- ``{"reject_substring": "POISON"}``        answer 400 to a remember whose text contains it

``GET /_stored`` lists what was stored (``order`` = arrival order of first
stores, ``count`` = how many times the key arrived), ``GET /_forgotten`` the
forget calls, ``GET /_requests`` every request; ``DELETE`` on them clears.

Built on the standard library's threading HTTP server rather than uvicorn
because dropping a connection without any answer needs the raw socket.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOCK = threading.Lock()
STORED: dict[tuple[str, str, str], dict[str, Any]] = {}
FORGOTTEN: list[dict[str, Any]] = []
REQUESTS: list[dict[str, Any]] = []
CONTROL: dict[str, dict[str, Any]] = {}
TOKEN: dict[str, str] = {"value": ""}
WORD = re.compile(r"[^\W_]+")
ARRIVALS = itertools.count()
ENDPOINTS = ("remember", "recall", "forget")


def _words(text: str) -> set[str]:
    return {w for w in WORD.findall(text.lower()) if len(w) > 2}


def _setting(endpoint: str, name: str) -> Any:
    for scope in (endpoint, "*"):
        if name in CONTROL.get(scope, {}):
            return CONTROL[scope][name]
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # --- plumbing ---------------------------------------------------------------
    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return None

    def _send(self, status: int, doc: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # --- control endpoints ----------------------------------------------------------
    def do_GET(self) -> None:
        with LOCK:
            if self.path.startswith("/_stored"):
                items = [
                    {"tenant": t, "namespace": n, "key": k, **entry} for (t, n, k), entry in STORED.items()
                ]
                self._send(200, {"items": sorted(items, key=lambda i: i["order"])})
            elif self.path.startswith("/_forgotten"):
                self._send(200, FORGOTTEN)
            elif self.path.startswith("/_requests"):
                self._send(200, REQUESTS)
            elif self.path.startswith("/health"):
                self._send(200, {"ok": True})
            else:
                self._send(404, {"error": "not found"})

    def do_DELETE(self) -> None:
        with LOCK:
            if self.path.startswith("/_stored"):
                STORED.clear()
            elif self.path.startswith("/_forgotten"):
                FORGOTTEN.clear()
            elif self.path.startswith("/_requests"):
                REQUESTS.clear()
            self._send(200, {"ok": True})

    def do_POST(self) -> None:
        body = self._body()
        if self.path == "/_control":
            with LOCK:
                if isinstance(body, dict) and body.pop("reset", False):
                    CONTROL.clear()
                for scope, values in (body or {}).items():
                    CONTROL.setdefault(scope, {}).update(values)
                self._send(200, CONTROL)
            return
        endpoint = self.path.rsplit("/", 1)[-1] if self.path.startswith("/memory/") else ""
        if endpoint not in ENDPOINTS:
            self._send(404, {"error": "not found"})
            return
        with LOCK:
            REQUESTS.append({"endpoint": endpoint, "body": body, "at": time.time()})
            del REQUESTS[:-2000]
            delay, drop = _setting(endpoint, "delay"), _setting(endpoint, "drop")
            status, retry_after = _setting(endpoint, "status"), _setting(endpoint, "retry_after")
            reject = _setting(endpoint, "reject_substring")
        if delay:
            time.sleep(float(delay))
        if drop:
            self._drop()
            return
        if status:
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            self._send(int(status), {"error": f"stub status {status}"}, headers)
            return
        if TOKEN["value"] and self.headers.get("Authorization") != f"Bearer {TOKEN['value']}":
            self._send(401, {"error": "bad token"})
            return
        if not isinstance(body, dict) or not isinstance(body.get("tenant"), str):
            self._send(400, {"error": "tenant is required"})
            return
        getattr(self, f"_{endpoint}")(body, reject)

    # --- the service ----------------------------------------------------------------------
    def _remember(self, body: dict[str, Any], reject: str | None) -> None:
        value = body.get("value")
        if not isinstance(body.get("key"), str) or not isinstance(body.get("namespace"), str):
            self._send(400, {"error": "namespace and key are required"})
            return
        if not isinstance(value, dict):
            self._send(400, {"error": "value must be an object"})
            return
        if reject and reject in str(value.get("text", "")):
            self._send(400, {"error": "value rejected as invalid"})
            return
        with LOCK:
            ident = (body["tenant"], body["namespace"], body["key"])
            entry = STORED.get(ident)
            if entry is None:
                STORED[ident] = {
                    "value": value,
                    "tags": body.get("tags") or [],
                    "count": 1,
                    "order": next(ARRIVALS),
                }
            else:
                entry["count"] += 1
        self._send(200, {"stored": True})

    def _recall(self, body: dict[str, Any], reject: str | None) -> None:
        query = _words(str(body.get("query", "")))
        top_k = int(body.get("top_k") or 5)
        scored = []
        with LOCK:
            for (tenant, namespace, key), entry in STORED.items():
                if tenant != body["tenant"] or namespace != body.get("namespace"):
                    continue
                shared = query & _words(str(entry["value"].get("text", "")))
                if shared:
                    scored.append({"score": len(shared) / len(query), "key": key, "payload": entry["value"]})
        scored.sort(key=lambda r: (-r["score"], r["key"]))
        self._send(200, {"results": scored[:top_k]})

    def _forget(self, body: dict[str, Any], reject: str | None) -> None:
        with LOCK:
            gone = [
                ident
                for ident, entry in STORED.items()
                if ident[0] == body["tenant"]
                and ident[1] == body.get("namespace")
                and entry["value"].get("session_id") == body.get("session_id")
            ]
            for ident in gone:
                del STORED[ident]
            FORGOTTEN.append({**body, "forgotten": len(gone)})
        self._send(200, {"forgotten": len(gone)})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="")
    args = parser.parse_args()
    TOKEN["value"] = args.token
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
