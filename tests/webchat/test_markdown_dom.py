"""markdown.js in real Chromium: every hostile input becomes an inert DOM (no script, handler or bad href)."""

from __future__ import annotations

import pytest

from tests.webchat.jsrun import STATIC
from tests.webchat.test_markdown import HOSTILE

pytestmark = pytest.mark.browser

CHECK = """
(inputs) => {
    window.__pwned = 0;
    const out = document.getElementById('out');
    const problems = [];
    inputs.forEach((text, i) => {
        const box = document.createElement('div');
        box.appendChild(SomaMarkdown.render(text + '\\n\\n' + text.replace(/\\(/g, '( ') , document));
        out.appendChild(box);
        box.querySelectorAll('*').forEach(el => {
            const banned = ['SCRIPT', 'IMG', 'IFRAME', 'OBJECT', 'EMBED', 'STYLE', 'SVG', 'LINK', 'META'];
            if (banned.includes(el.tagName) || el.tagName === 'FORM') problems.push([i, el.tagName]);
            for (const a of el.attributes) {
                const name = a.name;
                if (name.startsWith('on') || name === 'style' || name === 'srcdoc') problems.push([i, name]);
                const safe = ['http:', 'https:', 'mailto:'];
                if (name === 'href' && !safe.includes(new URL(a.value).protocol)) {
                    problems.push([i, a.value]);
                }
            }
        });
    });
    return problems;
}
"""


def test_hostile_markdown_renders_inert_in_chromium(browser):
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    try:
        page.set_content("<!doctype html><html><body><div id='out'></div></body></html>")
        page.add_script_tag(path=str(STATIC / "markdown-inline.js"))
        page.add_script_tag(path=str(STATIC / "markdown.js"))
        assert page.evaluate(CHECK, HOSTILE) == []
        page.wait_for_timeout(300)  # give any injected handler a chance to fire
        assert page.evaluate("window.__pwned") == 0 and dialogs == []  # every payload calls alert()
        assert page.evaluate("document.querySelectorAll('#out a').length") > 0  # safe links do render
        text = page.inner_text("#out")
        assert "<script>alert(1)</script>" in text and "<img src=x onerror=alert(1)>" in text
    finally:
        page.close()
