"""The web chat's page is chat.js plus the chat-*.js modules it installs on one shared `chat`
object (each calls the others through it). In node: every name a file calls on `chat` is one a
module installs (or chat.js sets), and chat.html loads every module before chat.js."""

from __future__ import annotations

import json
import re

from tests.webchat.jsrun import STATIC, node_eval

MODULES = {
    "chat-render.js": "SomaChatRender",
    "chat-session.js": "SomaChatSession",
    "chat-send.js": "SomaChatSend",
    "chat-replies.js": "SomaChatReplies",
    "chat-head.js": "SomaChatHead",
}
SET_BY_CHAT_JS = {"state", "sidebar", "uploads", "chatFiles"}
TEMPLATE = STATIC.parents[1] / "templates" / "webchat" / "chat.html"

# The browser globals the modules read when they load (not called while installing).
PRELUDE = "global.window = {SomaHttp: {api() {}, errorText() {}, uuid() {}}};"


def _installed() -> set[str]:
    body = (
        "const chat = {state: {}};"
        "for (const [file, name] of input) {"
        f"  require({json.dumps(str(STATIC))} + '/' + file);"
        "  window[name](chat);"
        "}"
        "return Object.keys(chat);"
    )
    first = next(iter(MODULES))
    return set(node_eval(first, body, list(MODULES.items()), prelude=PRELUDE))


def test_every_name_called_on_chat_is_installed():
    installed = _installed() | SET_BY_CHAT_JS
    missing = {}
    for file in [*MODULES, "chat.js"]:
        code = re.sub(r"/\*.*?\*/", "", (STATIC / file).read_text(), flags=re.S)  # not the comments
        used = set(re.findall(r"\bchat\.(\w+)", code))
        if used - installed:
            missing[file] = sorted(used - installed)
    assert not missing, f"called on `chat` but installed by no module: {missing}"
    assert {"openSession", "submit", "renderAll", "rate", "setTitle"} <= installed


def test_the_page_loads_every_module_before_chat_js():
    html = TEMPLATE.read_text()
    scripts = re.findall(r"static 'webchat/([\w.-]+\.js)'", html)
    assert "chat.js" in scripts
    before = scripts[: scripts.index("chat.js")]
    assert set(MODULES) <= set(before), set(MODULES) - set(before)
