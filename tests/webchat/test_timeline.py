"""timeline.js in node: folding events into what the chat shows, exactly once, across replays and restarts."""

from __future__ import annotations

from typing import Any

from tests.webchat.jsrun import node_eval

FOLD = """
const t = new mod(input.after || 0);
const changed = input.events.map(e => t.apply(e) !== null);
return {items: t.items, last: t.last, busy: t.busy(), changed: changed};
"""


def ev(seq: int, type: str, **data: Any) -> dict[str, Any]:
    return {"id": str(seq), "event_id": f"e{seq}", "session_id": "s", "type": type, "role": "x", "data": data}


def fold(events: list[dict[str, Any]], after: int = 0) -> dict[str, Any]:
    return node_eval("timeline.js", FOLD, {"events": events, "after": after})


def turn(start: int, text: str = "Hello world", model: str = "m1") -> list[dict[str, Any]]:
    words = [text[: len(text) // 2], text[len(text) // 2 :]]
    return [
        ev(start, "user.message", message="hi", attachments=[]),
        ev(start + 1, "assistant.started", model=model, reply_to=f"e{start}", restart=False),
        ev(start + 2, "assistant.delta", text=words[0], index=0),
        ev(start + 3, "assistant.delta", text=words[1], index=1),
        ev(start + 4, "assistant.final", message=text, model=model),
    ]


def test_a_turn_becomes_a_user_item_and_a_finished_reply():
    out = fold(turn(1))
    user, reply = out["items"]
    assert user == {
        "kind": "user",
        "eventId": "e1",
        "parentId": None,
        "seq": 1,
        "text": "hi",
        "attachments": [],
    }
    assert reply["text"] == "Hello world" and reply["state"] == "done" and reply["model"] == "m1"
    assert reply["replyTo"] == "e1" and out["busy"] is False and out["last"] == 5


def test_replayed_and_duplicated_events_are_ignored():
    events = turn(1)
    replay = events[:3] + events[1:4] + events[3:]  # a reconnect replays what was seen
    out = fold(replay)
    assert [i["kind"] for i in out["items"]] == ["user", "reply"]
    assert out["items"][1]["text"] == "Hello world"
    assert out["changed"] == [True, True, True, False, False, True, False, True]


def test_streaming_from_a_cursor_continues_the_text_without_doubling():
    events = turn(1)
    out = fold(events[3:], after=0)
    # a client that had nothing: the reply it gets is the final one
    assert out["items"][-1]["text"] == "Hello world"
    out = fold([ev(1, "user.message", message="hi"), *events[1:4]])
    assert out["items"][1]["text"] == "Hello world" and out["items"][1]["state"] == "streaming"
    assert out["busy"] is True


def test_restart_clears_the_partial_text():
    events = [
        ev(1, "user.message", message="hi"),
        ev(2, "assistant.started", model="m", reply_to="e1", restart=False),
        ev(3, "assistant.delta", text="Partial from the dead worker", index=0),
        ev(4, "assistant.started", model="m2", reply_to="e1", restart=True),
        ev(5, "assistant.delta", text="Fresh ", index=0),
        ev(6, "assistant.delta", text="start", index=1),
    ]
    out = fold(events)
    assert len(out["items"]) == 2
    reply = out["items"][1]
    assert reply["text"] == "Fresh start" and reply["restarted"] is True and reply["model"] == "m2"


def test_error_and_cancel_end_the_reply():
    out = fold(
        [
            ev(1, "user.message", message="a"),
            ev(2, "assistant.started", model="m", reply_to="e1", restart=False),
            ev(3, "assistant.delta", text="so far", index=0),
            ev(
                4,
                "assistant.error",
                code="llm_error",
                message="The model failed.",
                retryable=True,
                partial="so far",
            ),
            ev(5, "user.message", message="b"),
            ev(6, "user.message", message="c"),
            ev(7, "assistant.cancelled", partial=""),  # b was cancelled while queued: no started
        ]
    )
    kinds = [(i["kind"], i.get("state")) for i in out["items"]]
    assert kinds == [
        ("user", None),
        ("reply", "error"),
        ("user", None),
        ("user", None),
        ("reply", "cancelled"),
    ]
    assert out["items"][1]["error"] == {
        "code": "llm_error",
        "message": "The model failed.",
        "retryable": True,
    }
    assert out["items"][4]["replyTo"] == "e5"  # the oldest waiting message
    assert out["busy"] is True  # c still waits for its reply


def test_trim_page_cuts_at_turn_boundaries():
    persisted = [e for e in turn(1) + turn(6) if e["type"] != "assistant.delta"]
    running = [ev(11, "user.message", message="x"), ev(12, "assistant.started", model="m", reply_to="e11")]
    page = persisted[2:] + running  # starts mid-turn (final of the first turn)
    cut = node_eval(
        "timeline.js", "return mod.trimPage(input.page, input.atStart);", {"page": page, "atStart": False}
    )
    assert [e["id"] for e in cut["kept"]] == ["6", "7", "10", "11", "12"]
    assert [e["id"] for e in cut["events"]] == ["6", "7", "10"]
    assert cut["after"] == 10 and cut["startCursor"] == 6
    cut = node_eval("timeline.js", "return mod.trimPage(input.page, true);", {"page": running})
    assert cut["events"] == [] and cut["after"] == 10 and cut["startCursor"] == 11


def test_prepend_puts_older_turns_first():
    older = turn(1, "first reply")
    newer = turn(6, "second reply")
    out = node_eval(
        "timeline.js",
        "const t = new mod(0); input.newer.forEach(e => t.apply(e)); t.prepend(input.older);"
        "return {texts: t.items.map(i => i.text), last: t.last};",
        {"older": older, "newer": newer},
    )
    assert out["texts"] == ["hi", "first reply", "hi", "second reply"] and out["last"] == 10


def test_a_fallback_start_only_changes_the_model():
    events = [
        ev(1, "user.message", message="hi", attachments=[]),
        ev(2, "assistant.started", model="m1", reply_to="e1", restart=False),
        ev(3, "assistant.delta", text="Hel", index=0),
        ev(4, "tool.start", tool_name="current_time"),
        ev(
            5,
            "assistant.started",
            model="m2",
            reply_to="e1",
            restart=False,
            fallback={"from": "a", "to": "b"},
        ),
        ev(6, "assistant.delta", text="lo", index=1),
    ]
    reply = fold(events)["items"][1]
    assert reply["text"] == "Hello" and reply["model"] == "m2" and len(reply["tools"]) == 1


def test_a_finished_reply_knows_the_event_its_feedback_is_about():
    _, reply = fold(turn(1))["items"]
    assert reply["finalEventId"] == "e5" and reply["feedback"] is None
    errored = fold([*turn(1)[:3], ev(4, "assistant.error", code="x", message="m", retryable=True)])["items"][
        1
    ]
    assert errored["finalEventId"] is None


def test_a_reply_knows_where_it_sits_among_its_messages_replies():
    events = [dict(e, parent_id=f"e{int(e['id']) - 1}" if e["id"] != "1" else None) for e in turn(1)]
    reply = fold(events)["items"][1]
    assert reply["firstEventId"] == "e2" and reply["parentId"] == "e1"


def test_cutting_after_a_message_makes_room_for_its_next_reply():
    out = node_eval(
        "timeline.js",
        """
        const t = new mod(0);
        input.events.forEach(e => t.apply(e));
        t.cutAfterMessage("e1");
        t.apply(input.again);
        return {items: t.items, busy: t.busy()};
        """,
        {"events": turn(1), "again": ev(9, "assistant.started", model="m2", reply_to="e1", restart=False)},
    )
    assert [i["kind"] for i in out["items"]] == ["user", "reply"]
    assert out["items"][1]["text"] == "" and out["items"][1]["model"] == "m2" and out["busy"] is True
