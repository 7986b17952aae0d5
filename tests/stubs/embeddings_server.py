"""A stub OpenAI-compatible ``/v1/embeddings`` server over real HTTP, for tests and the benchmark.

Run: ``python -m tests.stubs.embeddings_server --port 0 [--dimensions 256]`` (prints ``PORT <n>``).

``POST /v1/embeddings`` ``{"model", "input": str | [str]}`` answers
``{"object": "list", "data": [{"object": "embedding", "index": i, "embedding": [...]}], "model", "usage"}``.
The embedder is deterministic (``embed``): each word, lower-cased, without a plural ``s``
and mapped through a small table of synonyms (``SYNONYMS``: car/automobile/vehicle,
maintenance/upkeep/servicing, …), is hashed into one dimension with a sign, so texts that
share words, or synonyms, get close vectors and unrelated texts nearly orthogonal ones.
That is what the tests need: a chunk that full-text search misses (it says "automobile
upkeep", the question "car maintenance") and the vector search finds.

Faults are set with ``POST /_control`` (a JSON object; later posts merge, ``{"reset": true}``
clears): ``{"status": 503, "retry_after": "0"}`` answer that status to every request,
``{"fail_first": N}`` fail the next N requests with 503, ``{"delay": S}`` sleep S seconds,
``{"dimensions": D}`` answer D dimensions from now on, ``{"body": "…"}`` answer 200 with that
body (a malformed answer). ``GET /_requests`` lists the requests
(``inputs``: how many texts, ``authorization``, ``model``); ``DELETE /_requests`` clears it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from typing import Any

from tests.stubs.asgi import read_body, respond, serve, stub_arguments

DIMENSIONS = 256
WORD = re.compile(r"[^\W_]+")
SYNONYM_GROUPS = (
    ("car", "automobile", "vehicle", "auto"),
    ("maintenance", "upkeep", "servicing", "repair"),
    ("holiday", "vacation", "leave"),
    ("doctor", "physician", "clinician"),
    ("salary", "pay", "wage", "compensation"),
)
SYNONYMS = {word: group[0] for group in SYNONYM_GROUPS for word in group}
STATE: dict[str, Any] = {"control": {}, "requests": [], "dimensions": DIMENSIONS}


def _concept(word: str) -> str:
    if word.endswith("s") and len(word) > 3 and not word.endswith("ss"):
        word = word[:-1]
    return SYNONYMS.get(word, word)


def embed(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    """The stub's vector of ``text`` (not normalised: the client scales it)."""
    vector = [0.0] * dimensions
    for word in WORD.findall(text.lower()):
        digest = hashlib.blake2b(_concept(word).encode(), digest_size=8).digest()
        number = int.from_bytes(digest, "big")
        vector[number % dimensions] += 1.0 if (number >> 32) & 1 else -1.0
    if not any(vector):
        vector[0] = 1e-3  # an empty text still has a direction
    return vector


async def _embeddings(body: bytes, headers: dict[bytes, bytes], send: Any) -> None:
    control = STATE["control"]
    try:
        doc = json.loads(body)
        inputs = doc["input"]
    except (ValueError, KeyError, TypeError):
        await respond(send, 400, b'{"error": {"message": "bad request"}}')
        return
    texts = [inputs] if isinstance(inputs, str) else list(inputs)
    STATE["requests"].append(
        {
            "inputs": len(texts),
            "model": doc.get("model"),
            "authorization": headers.get(b"authorization", b"").decode(),
        }
    )
    del STATE["requests"][:-1000]
    if control.get("delay"):
        await asyncio.sleep(float(control["delay"]))
    retry = [(b"retry-after", str(control.get("retry_after", "0")).encode())]
    if control.get("fail_first", 0) > 0:
        control["fail_first"] -= 1
        await respond(send, 503, b'{"error": {"message": "busy"}}', headers=retry)
        return
    if "body" in control:
        await respond(send, 200, str(control["body"]).encode())
        return
    if control.get("status"):
        await respond(send, int(control["status"]), b'{"error": {"message": "stub fault"}}', headers=retry)
        return
    dimensions = int(control.get("dimensions") or STATE["dimensions"])
    vectors = [embed(text, dimensions) for text in texts]
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    answer = {
        "object": "list",
        "data": data,
        "model": doc.get("model") or "stub",
        "usage": {"prompt_tokens": 0, "total_tokens": 0},
    }
    await respond(send, 200, json.dumps(answer).encode())


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    body = await read_body(receive)
    if path == "/v1/embeddings" and method == "POST":
        await _embeddings(body, dict(scope["headers"]), send)
    elif path == "/_control" and method == "POST":
        change = json.loads(body or b"{}")
        if change.pop("reset", False):
            STATE["control"] = {}
        STATE["control"].update(change)
        await respond(send, 200, json.dumps(STATE["control"]).encode())
    elif path == "/_requests":
        if method == "DELETE":
            STATE["requests"] = []
        await respond(send, 200, json.dumps(STATE["requests"]).encode())
    else:
        await respond(send, 404, b'{"error": {"message": "not found"}}')


def main() -> None:
    parser = stub_arguments()
    parser.add_argument("--dimensions", type=int, default=DIMENSIONS)
    args = parser.parse_args()
    STATE["dimensions"] = args.dimensions
    serve(app, args, no_delay=True)  # the benchmark times searches that call it


if __name__ == "__main__":
    main()
