"""branches.js in node: which live events go on the branch shown, and the versions to switch between."""

from __future__ import annotations

from typing import Any

from tests.webchat.jsrun import node_eval


def ev(seq: int, type: str, parent: int | None, name: str | None = None) -> dict[str, Any]:
    return {
        "id": str(seq),
        "event_id": name or f"e{seq}",
        "parent_id": f"e{parent}" if parent else None,
        "type": type,
        "data": {},
    }


RUN = """
const b = new mod();
b.seed(input.siblings || {});
(input.shown || []).forEach(e => { b.learn(e); b.take(e); });
const accepted = (input.live || []).map(e => {
  b.learn(e);
  const ok = b.accepts(e);
  if (ok) b.take(e);
  return ok;
});
return {accepted: accepted, leaf: b.leaf, choices: (input.ask || []).map(a => b.choice(a[0], a[1]))};
"""


def run(**payload: Any) -> Any:
    return node_eval("branches.js", RUN, payload)


def test_live_events_after_the_leaf_go_on_and_another_branchs_do_not() -> None:
    shown = [ev(1, "user.message", None), ev(2, "assistant.final", 1)]
    live = [
        ev(3, "user.message", 2, "other"),  # after the leaf: shown
        ev(4, "user.message", 2, "sibling"),  # another child of e2: another branch
        {"id": "5", "event_id": "d5", "parent_id": "x", "type": "assistant.delta", "data": {}},
        ev(6, "assistant.started", 3, "s6"),
    ]
    live[3]["parent_id"] = "other"
    out = run(shown=shown, live=live)
    assert out["accepted"] == [True, False, False, True] and out["leaf"] == "s6"


def test_a_parent_with_several_children_offers_a_choice() -> None:
    out = run(
        siblings={"e2": ["e3", "e7"]},
        shown=[ev(1, "user.message", None), ev(2, "assistant.final", 1), ev(7, "user.message", 2)],
        live=[ev(9, "user.message", 2, "e9")],
        ask=[["e2", "e7"], ["e1", "e2"], [None, "e1"]],
    )
    assert out["choices"][0] == {"index": 2, "count": 3, "prev": "e3", "next": "e9"}
    assert out["choices"][1] is None and out["choices"][2] is None
