"""A stub web for tool tests over real HTTP: a SearxNG-compatible search API and a few pages.

Run: ``python -m tests.stubs.web_server --port 0`` (prints ``PORT <n>`` when ready).

- ``GET /search?q=…&format=json``  SearxNG JSON; directives in ``q``:
  ``[[status=CODE]]`` answer CODE (with ``Retry-After: 0``), ``[[fail_first=N]]`` fail the first N
  requests with this ``q`` (503), ``[[slow=S]]`` sleep S seconds, ``[[not_json]]``
- ``GET /page``            a small HTML page
- ``GET /big``             2 MB of text
- ``GET /image``           a few bytes of ``image/png``
- ``GET /slow?s=S``        answer after S seconds
- ``GET /redirect?to=URL`` 302 to URL (without ``to``: to itself, a loop)
- ``GET /_requests``       what was asked so far (path, query, host header)
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import parse_qs

from tests.stubs.asgi import respond, serve, stub_arguments

DIRECTIVE = re.compile(r"\[\[(\w+)(?:=([^\]]*))?\]\]")
REQUESTS: list[dict[str, Any]] = []
FAILURES: dict[str, int] = {}


async def _search(query: dict[str, list[str]], send: Any) -> None:
    q = (query.get("q") or [""])[0]
    d = {name: value for name, value in DIRECTIVE.findall(q)}
    retry = [(b"retry-after", b"0")]
    if "slow" in d:
        await asyncio.sleep(float(d["slow"]))
    if "status" in d:
        await respond(send, int(d["status"]), b'{"error": "stub"}', "application/json", retry)
        return
    if "fail_first" in d:
        FAILURES[q] = FAILURES.get(q, 0) + 1
        if FAILURES[q] <= int(d["fail_first"]):
            await respond(send, 503, b'{"error": "busy"}', "application/json", retry)
            return
    if "not_json" in d:
        await respond(send, 200, b"<html>nope</html>", "text/html")
        return
    clean = DIRECTIVE.sub("", q).strip()
    results = [
        {
            "title": f"Result {i} for {clean}",
            "url": f"https://example.org/{i}",
            "content": f"About {clean} ({i})",
        }
        for i in range(8)
    ]
    await respond(send, 200, json.dumps({"query": clean, "results": results}).encode(), "application/json")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    query = parse_qs(scope.get("query_string", b"").decode())
    headers = dict(scope["headers"])
    if path != "/_requests":
        REQUESTS.append({"path": path, "query": query, "host": headers.get(b"host", b"").decode()})
        del REQUESTS[:-500]
    if path == "/_requests":
        await respond(send, 200, json.dumps(REQUESTS).encode(), "application/json")
    elif path == "/search":
        await _search(query, send)
    elif path == "/page":
        await respond(
            send, 200, b"<html><body>hello from the stub page</body></html>", "text/html; charset=utf-8"
        )
    elif path == "/big":
        await respond(send, 200, b"a" * (2 * 1024 * 1024), "text/plain")
    elif path == "/image":
        await respond(send, 200, b"\x89PNG\r\n\x1a\n0000", "image/png")
    elif path == "/slow":
        await asyncio.sleep(float((query.get("s") or ["5"])[0]))
        await respond(send, 200, b"slow answer", "text/plain")
    elif path == "/redirect":
        target = (query.get("to") or ["/redirect"])[0]
        await respond(send, 302, b"", "text/plain", [(b"location", target.encode())])
    else:
        await respond(send, 404, b"not found", "text/plain")


def main() -> None:
    serve(app, stub_arguments().parse_args())


if __name__ == "__main__":
    main()
