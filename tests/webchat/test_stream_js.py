"""stream.js in node: a message the server could not take for now (an error frame with 503,
its database or Redis away) stays queued and goes again after its retry_after, the same
frame (so the same idempotency key), while the page says it is retrying; never twice, and
not handed back to the page as a failure. A real refusal (4xx) is handed back at once."""

from __future__ import annotations

from typing import Any

from tests.webchat.jsrun import node_eval

# A browser's globals, a WebSocket the test drives, and timers the test runs by hand.
PRELUDE = """
global.window = global;
global.location = {protocol: "http:", host: "chat.test"};
Object.defineProperty(global, "navigator", {value: {onLine: true}, configurable: true});
global.timers = [];
global.setTimeout = (fn, ms) => { timers.push({fn, ms}); return timers.length; };
global.clearTimeout = id => { if (id) timers[id - 1] = null; };
global.sockets = [];
class FakeSocket {
  constructor(url) { this.url = url; this.sent = []; this.readyState = 0; sockets.push(this); }
  send(text) { this.sent.push(JSON.parse(text)); }
  close() { this.readyState = 3; }
  open() { this.readyState = 1; this.onopen(); }
  receive(frame) { this.onmessage({data: JSON.stringify(frame)}); }
}
FakeSocket.OPEN = 1;
global.WebSocket = FakeSocket;
"""

RUN = """
const frames = [];
const statuses = [];
const stream = new mod({
  path: "/ws/sessions/s1/", after: () => 0,
  onFrame: (frame, sent) => frames.push({type: frame.type, status: frame.status || null, sent: !!sent}),
  onStatus: text => statuses.push(text), probe: () => Promise.resolve(200),
});
stream.open();
const ws = sockets[0];
ws.open();
const message = {type: "message", message: "hi", idempotency_key: "k1", ref: "r1"};
stream.send(message);
for (const answer of input.answers) {
  ws.receive(Object.assign({ref: "r1"}, answer));
  // The resend waits on a timer (not the 45 s watchdog): run the last one that is due.
  const due = timers.map((t, i) => [t, i]).filter(([t]) => t && t.ms < 45000).pop();
  if (due) { timers[due[1]] = null; due[0].fn(); }
}
return {sent: ws.sent, frames, statuses, waits: timers.filter(t => t && t.ms < 45000).map(t => t.ms)};
"""


def run(answers: list[dict[str, Any]]) -> dict[str, Any]:
    return node_eval("stream.js", RUN, {"answers": answers}, prelude=PRELUDE)


UNAVAILABLE = {
    "type": "error",
    "status": 503,
    "retry_after": 5,
    "error": {"code": "database_unavailable", "message": "The database is unavailable; try again shortly."},
}


def test_a_message_refused_for_now_is_sent_again_with_the_same_key_and_the_page_says_so() -> None:
    out = run([UNAVAILABLE, UNAVAILABLE, {"type": "ack", "status": 202, "body": {}}])
    assert [f["idempotency_key"] for f in out["sent"]] == ["k1", "k1", "k1"], out["sent"]
    # The failures are not handed to the page (it would put the text back and show an error).
    assert out["frames"] == [{"type": "ack", "status": 202, "sent": True}], out["frames"]
    assert "Can't reach the server, retrying in 5 s… (your message is kept)" in out["statuses"]
    assert out["statuses"][-1] == "", "the retrying state ends with the acknowledgement"


def test_a_real_refusal_is_handed_back_at_once() -> None:
    refused = {"type": "error", "status": 400, "error": {"code": "validation_error", "message": "no"}}
    out = run([refused])
    assert len(out["sent"]) == 1
    assert out["frames"] == [{"type": "error", "status": 400, "sent": True}]
    assert not any("retrying" in s for s in out["statuses"])
