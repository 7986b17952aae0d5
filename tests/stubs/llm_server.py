"""A stub OpenAI-compatible chat server over real HTTP, for tests and benchmarks.

Run: ``python -m tests.stubs.llm_server --port 0`` (prints ``PORT <n>`` when ready).

Behaviour is chosen per request by directives in the last user message, so
parallel tests can share one server:

- ``[[reply=some text]]``   answer exactly this text (default: an echo)
- ``[[tokens=N]]``          answer N tokens ``t0 t1 …``
- ``[[delay=S]]``           sleep S seconds between chunks (``--delay`` sets a default)
- ``[[first_delay=S]]``     sleep S seconds before the first chunk
- ``[[status=CODE]]``       answer HTTP CODE with an OpenAI-style error body
- ``[[retry_after=S]]``     add ``Retry-After: S`` to an error answer
- ``[[fail_first=N]]``      answer HTTP 500 to the first N requests with this last user
                            message, then answer normally (to see the client retry)
- ``[[break_after=N]]``     send N chunks, then drop the connection
- ``[[hang]]``              accept the request and never answer
- ``[[stall_after=N]]``     send N chunks, then go silent (the connection stays open)
- ``[[no_usage]]``          omit the usage chunk
- ``[[tool=NAME:JSON]]``    ask for a tool call (repeatable: parallel calls); once a
                            tool result is in the conversation, answer normally
- ``[[tool_b64=NAME:B64]]`` the same with base64 (urlsafe) JSON arguments, for code with ``]``
- ``[[tool_rounds=N]]``     keep asking for the tools until N rounds of results are in
- ``[[echo_tools]]``        once tool results are in, answer with their contents
- ``[[ignore_tool_choice]]`` ask for tools even when the request says ``tool_choice: none``

``GET /_requests`` returns the recorded request bodies (with ``_received_at``, epoch
seconds); ``DELETE /_requests`` clears them.

Several "providers" on one server: directives may also come from a path prefix
``/d/<name>=<value>,<name>=<value>/…`` before ``/v1/chat/completions`` (path
directives win over the message's), so two model profiles whose base URLs
differ only in that prefix behave differently for the same user message.
Two path-only directives count requests per prefix:

- ``fail_first=N``   apply the prefix's other directives to the first N requests
                     on this prefix only, then answer normally (retry tests)
- ``key=anything``   only makes the prefix (and so its counter) unique to a test

``GET /_streams`` returns ``{"open": n, "max_open": m}``: streamed completions open now and
the most open at once since the last ``DELETE /_streams`` (to see turns overlap).

``GET /_log`` returns ``[{path, body, authorization}]`` for every recorded completion request.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from typing import Any

from tests.stubs.asgi import read_body, respond, serve, stub_arguments

DIRECTIVE = re.compile(r"\[\[(\w+)(?:=([^\]]*))?\]\]")
REQUESTS: list[dict[str, Any]] = []
LOG: list[dict[str, Any]] = []
PREFIX_COUNTS: dict[str, int] = {}
DEFAULTS: dict[str, float] = {"delay": 0.0}
SEEN: dict[str, int] = {}  # last user message -> requests so far (for fail_first)
STREAMS = {"open": 0, "max_open": 0}


def _directives(body: dict[str, Any]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            for name, value in DIRECTIVE.findall(str(message.get("content") or "")):
                found.setdefault(name, []).append(value)
            break
    return found


def _reply_text(body: dict[str, Any], d: dict[str, list[str]]) -> list[str]:
    if "reply" in d:
        text = d["reply"][0]
        return [w + " " for w in text.split(" ")[:-1]] + [text.split(" ")[-1]]
    if "tokens" in d:
        n = int(d["tokens"][0])
        return [f"t{i} " for i in range(n)]
    last = ""
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            last = DIRECTIVE.sub("", str(message.get("content") or "")).strip()
            break
    words = f"You said: {last}".split(" ")
    return [w + " " for w in words[:-1]] + [words[-1]]


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    doc = {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(doc).encode() + b"\n\n"


async def _send_json(
    send: Any, status: int, doc: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await respond(send, status, json.dumps(doc).encode(), headers=headers)


def _tool_rounds_done(body: dict[str, Any]) -> int:
    return sum(1 for m in body.get("messages") or [] if m.get("role") == "assistant" and m.get("tool_calls"))


def _tool_specs(body: dict[str, Any], d: dict[str, list[str]]) -> list[str]:
    specs = list(d.get("tool", []))
    for raw in d.get("tool_b64", []):
        name, _, encoded = raw.partition(":")
        specs.append(f"{name}:{base64.urlsafe_b64decode(encoded.encode()).decode()}")
    if not specs or _tool_rounds_done(body) >= int(d.get("tool_rounds", ["1"])[0]):
        return []
    if body.get("tool_choice") == "none" and "ignore_tool_choice" not in d:
        return []
    return specs


def _tool_results_text(body: dict[str, Any]) -> str:
    return " | ".join(str(m.get("content")) for m in body.get("messages") or [] if m.get("role") == "tool")


def _last_user_content(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            return str(message.get("content") or "")
    return ""


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path, method = scope["path"], scope["method"]
    raw = await read_body(receive)
    if path == "/_requests":
        if method == "DELETE":
            REQUESTS.clear()
            LOG.clear()
        await _send_json(send, 200, REQUESTS)
        return
    if path == "/_streams":
        if method == "DELETE":
            STREAMS["max_open"] = STREAMS["open"]
        await _send_json(send, 200, STREAMS)
        return
    if path == "/_log":
        await _send_json(send, 200, LOG)
        return
    if path.endswith("/models"):
        await _send_json(send, 200, {"object": "list", "data": [{"id": "stub-model", "object": "model"}]})
        return
    if not path.endswith("/chat/completions") or method != "POST":
        await _send_json(send, 404, {"error": {"message": "not found"}})
        return
    try:
        body = json.loads(raw)
    except ValueError:
        await _send_json(send, 400, {"error": {"message": "body is not JSON"}})
        return
    REQUESTS.append({**body, "_received_at": time.time()})
    del REQUESTS[:-500]
    headers = dict(scope.get("headers") or [])
    authorization = headers.get(b"authorization", b"").decode()
    LOG.append({"path": path, "body": body, "authorization": authorization})
    del LOG[:-500]
    await _complete(body, send, _path_directives(path))


def _path_directives(path: str) -> dict[str, list[str]]:
    """Directives from a ``/d/a=1,b=2/`` prefix, with ``fail_first`` resolved per prefix."""
    match = re.match(r"^/d/([^/]*)/", path)
    if match is None:
        return {}
    found: dict[str, list[str]] = {}
    for item in match.group(1).split(","):
        name, _, value = item.partition("=")
        if name:
            found.setdefault(name, []).append(value)
    if "fail_first" in found:
        prefix = match.group(1)
        PREFIX_COUNTS[prefix] = PREFIX_COUNTS.get(prefix, 0) + 1
        if PREFIX_COUNTS[prefix] > int(found["fail_first"][0]):
            return {}
    found.pop("fail_first", None)
    found.pop("key", None)
    return found


async def _complete(body: dict[str, Any], send: Any, overrides: dict[str, list[str]] | None = None) -> None:
    d = {**_directives(body), **(overrides or {})}
    model = str(body.get("model") or "stub-model")
    if "hang" in d:
        await asyncio.sleep(3600)
    if "fail_first" in d:
        last = _last_user_content(body)
        SEEN[last] = SEEN.get(last, 0) + 1
        if SEEN[last] <= int(d["fail_first"][0]):
            await _send_json(send, 500, {"error": {"message": "stub failing on purpose", "type": "stub"}})
            return
    if "status" in d:
        headers = [(b"retry-after", d["retry_after"][0].encode())] if "retry_after" in d else []
        await _send_json(
            send,
            int(d["status"][0]),
            {"error": {"message": f"stub error {d['status'][0]}", "type": "stub"}},
            headers,
        )
        return
    delay = float(d["delay"][0]) if "delay" in d else DEFAULTS["delay"]
    if "first_delay" in d:
        await asyncio.sleep(float(d["first_delay"][0]))
    tools = _tool_specs(body, d)
    if "echo_tools" in d and not tools and _tool_rounds_done(body):
        d["reply"] = ["Tool results: " + _tool_results_text(body)]
    if not body.get("stream"):
        await _send_json(send, 200, _non_streaming(model, body, d, tools))
        return
    STREAMS["open"] += 1
    STREAMS["max_open"] = max(STREAMS["max_open"], STREAMS["open"])
    try:
        await _stream(body, send, d, model, tools, delay)
    finally:
        STREAMS["open"] -= 1


async def _stream(
    body: dict[str, Any], send: Any, d: dict[str, list[str]], model: str, tools: list[str], delay: float
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
        }
    )
    await send(
        {"type": "http.response.body", "body": _chunk(model, {"role": "assistant"}), "more_body": True}
    )
    pieces = [] if tools else _reply_text(body, d)
    break_after = int(d["break_after"][0]) if "break_after" in d else None
    stall_after = int(d["stall_after"][0]) if "stall_after" in d else None
    for i, piece in enumerate(pieces):
        if break_after is not None and i >= break_after:
            await asyncio.sleep(0.1)  # let what was sent reach the client first
            raise ConnectionAbortedError("stub: breaking the stream on purpose")
        if stall_after is not None and i >= stall_after:
            await asyncio.sleep(3600)
        if delay:
            await asyncio.sleep(delay)
        await send(
            {"type": "http.response.body", "body": _chunk(model, {"content": piece}), "more_body": True}
        )
    for index, spec in enumerate(tools):
        name, _, args = spec.partition(":")
        half = len(args) // 2
        # Like OpenAI: id and name first, the arguments streamed in pieces after.
        call: dict[str, Any] = {
            "index": index,
            "id": f"call_{_tool_rounds_done(body)}_{index}",
            "type": "function",
            "function": {"name": name, "arguments": args[:half]},
        }
        rest: dict[str, Any] = {"index": index, "function": {"arguments": args[half:]}}
        for part in (call, rest):
            await send(
                {
                    "type": "http.response.body",
                    "body": _chunk(model, {"tool_calls": [part]}),
                    "more_body": True,
                }
            )
    finish = "tool_calls" if tools else "stop"
    tail = _chunk(model, {}, finish)
    if "no_usage" not in d:
        prompt = sum(len(str(m.get("content") or "")) for m in body.get("messages") or []) // 4
        usage = {
            "id": "chatcmpl-stub",
            "object": "chat.completion.chunk",
            "model": model,
            "choices": [],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": len(pieces),
                "total_tokens": prompt + len(pieces),
            },
        }
        tail += b"data: " + json.dumps(usage).encode() + b"\n\n"
    await send({"type": "http.response.body", "body": tail + b"data: [DONE]\n\n"})


def _non_streaming(
    model: str, body: dict[str, Any], d: dict[str, list[str]], tools: list[str]
) -> dict[str, Any]:
    text = "".join(_reply_text(body, d)) if not tools else None
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tools:
        message["tool_calls"] = [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": s.partition(":")[0], "arguments": s.partition(":")[2]},
            }
            for i, s in enumerate(tools)
        ]
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tools else "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": len((text or "").split()), "total_tokens": 1},
    }


def main() -> None:
    parser = stub_arguments()
    parser.add_argument("--delay", type=float, default=0.0, help="default seconds between chunks")
    args = parser.parse_args()
    DEFAULTS["delay"] = args.delay
    serve(app, args)


if __name__ == "__main__":
    main()
