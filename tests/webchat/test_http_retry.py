"""http.js in node: a call the server could not take (503, 502, 504, no network) is tried again,
with the same request (so its Idempotency-Key), until it lands or the time to give up is spent."""

from __future__ import annotations

from typing import Any

from tests.webchat.jsrun import node_eval

RUN = """
const calls = [];
const waits = [];
const answers = input.answers.slice();
const call = (method, url, body, headers) => {
  calls.push({method, url, key: headers["Idempotency-Key"]});
  const next = answers.shift();
  if (next === "network") return Promise.reject(new Error("Failed to fetch"));
  const ok = next.status < 400;
  return Promise.resolve({status: next.status, ok, data: null, retryAfter: next.retryAfter || 0});
};
const sleep = ms => { waits.push(ms); return Promise.resolve(); };
return mod.apiRetrying("POST", "/v1/session/message", {message: "hi"}, {"Idempotency-Key": "k1"},
                       {call, sleep, giveUpMs: input.giveUpMs, onWaiting: () => {}})
  .then(res => ({status: res.status, calls, waits}), err => ({error: err.message, calls, waits}));
"""


def run(answers: list[Any], give_up_ms: int = 120000) -> dict[str, Any]:
    return node_eval("http.js", RUN, {"answers": answers, "giveUpMs": give_up_ms})


def test_a_refused_send_is_tried_again_with_the_same_key_until_it_lands() -> None:
    out = run([{"status": 503, "retryAfter": 5}, "network", {"status": 503}, {"status": 202}])
    assert out["status"] == 202
    assert [c["key"] for c in out["calls"]] == ["k1"] * 4, "the same Idempotency-Key every time"
    assert out["waits"][0] == 5000, "Retry-After is honoured"
    assert len(out["waits"]) == 3


def test_a_real_answer_is_not_retried() -> None:
    out = run([{"status": 400}, {"status": 202}])
    assert out["status"] == 400 and len(out["calls"]) == 1


def test_it_gives_up_after_its_time_and_says_so() -> None:
    assert run([{"status": 503}] * 10, give_up_ms=2500)["status"] == 503
    out = run(["network"] * 10, give_up_ms=2500)
    assert out["error"] == "Failed to fetch" and len(out["calls"]) == 2
