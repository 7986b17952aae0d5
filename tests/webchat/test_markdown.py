"""The chat's Markdown renderer (markdown.js) in node: what it renders, and that hostile input stays inert."""

from __future__ import annotations

import re

import pytest

from tests.webchat.jsrun import node_eval


def to_html(*texts: str) -> list[str]:
    return node_eval("markdown.js", "return input.map(t => mod.toHtml(t));", list(texts))


@pytest.mark.parametrize(
    "markdown,html",
    [
        (
            "Hello **bold** *em* _em_ ~~gone~~ `x < y`",
            "<p>Hello <strong>bold</strong> <em>em</em> <em>em</em> "
            "<del>gone</del> <code>x &lt; y</code></p>",
        ),
        ("line one\nline two", "<p>line one<br>line two</p>"),
        ("# Title\n### Small", "<h3>Title</h3><h5>Small</h5>"),
        (
            "```python\nif a < b:\n    print('<hi>')\n```",
            "<pre><code class=\"language-python\">if a &lt; b:\n    print('&lt;hi&gt;')</code></pre>",
        ),
        ("~~~\nno language\n~~~", "<pre><code>no language</code></pre>"),
        ("- a\n- b\n  - nested\n- c", "<ul><li>a</li><li>b<ul><li>nested</li></ul></li><li>c</li></ul>"),
        ("3. three\n4. four", '<ol start="3"><li>three</li><li>four</li></ol>'),
        ("> quoted\n> text", "<blockquote><p>quoted<br>text</p></blockquote>"),
        ("a\n\n---\n\nb", "<p>a</p><hr><p>b</p>"),
        (
            "| a | b |\n|---|--:|\n| 1 | 2 |",
            '<table><thead><tr><th>a</th><th class="md-align-right">b</th></tr></thead>'
            '<tbody><tr><td>1</td><td class="md-align-right">2</td></tr></tbody></table>',
        ),
        (
            '[docs](https://example.com/a_b "Docs")',
            '<p><a href="https://example.com/a_b" title="Docs">docs</a></p>',
        ),
        (
            "see https://example.com/x.",
            '<p>see <a href="https://example.com/x">https://example.com/x</a>.</p>',
        ),
        ("<mailto:a@b.c>", '<p><a href="mailto:a@b.c">mailto:a@b.c</a></p>'),
        ("![chart](https://example.com/c.png)", '<p><a href="https://example.com/c.png">chart</a></p>'),
        (r"\*not em\* snake_case_name", "<p>*not em* snake_case_name</p>"),
    ],
)
def test_renders_common_markdown(markdown, html):
    assert to_html(markdown) == [html]


HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](  javascript:alert(1))",
    "[click](java\tscript:alert(1))",
    "[click](javascript&#58;alert(1))",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](//evil.example/x)",
    "![x](javascript:alert(1))",
    "<javascript:alert(1)>",
    '[a](https://ok.example "x\\" onmouseover=\\"alert(1))',
    "```html\n<script>alert(1)</script>\n```",
    "`<iframe src=javascript:alert(1)>`",
    "<svg onload=alert(1)>",
    "<style>body{display:none}</style>",
    "**<b onclick=alert(1)>x</b>**",
    "| <script>x</script> | b |\n|---|---|\n| <img src=x onerror=alert(1)> | 2 |",
    "- [x](javascript:alert(1))\n  - <iframe srcdoc='<script>alert(1)</script>'>",
]


def test_hostile_markdown_produces_only_text_and_safe_links():
    rendered = node_eval(
        "markdown.js",
        "return input.map(t => ({html: mod.toHtml(t), tree: mod.tree(t)}));",
        HOSTILE,
    )
    allowed_tags = {
        "p", "br", "strong", "em", "del", "code", "pre", "a", "h3", "h4", "h5", "h6", "ul", "ol", "li",
        "blockquote", "hr", "table", "thead", "tbody", "tr", "th", "td", "span",
    }  # fmt: skip

    def walk(node, source):
        if "text" in node:
            return
        assert node["tag"] in allowed_tags, (source, node)
        for name, value in node["attrs"].items():
            assert name in {"href", "title", "class", "start"}, (source, name)
            if name == "href":
                assert re.match(r"^(https?://[^/]|mailto:)", value, re.I), (source, value)
        for child in node["children"]:
            walk(child, source)

    for source, out in zip(HOSTILE, rendered, strict=True):
        for node in out["tree"]:
            walk(node, source)
        html = out["html"]
        assert "<script" not in html and "<img" not in html and "<iframe" not in html, (source, html)
        assert "<svg" not in html and "<style" not in html and "<b " not in html, (source, html)
        assert not re.search(r"<[^>]+\son\w+=", html), (source, html)
        assert not re.search(r'href="(?!https?://|mailto:)', html), (source, html)


def test_raw_html_is_shown_as_text():
    [html] = to_html("<b>bold?</b> & <script>x()</script>")
    assert html == "<p>&lt;b&gt;bold?&lt;/b&gt; &amp; &lt;script&gt;x()&lt;/script&gt;</p>"


def test_pathological_input_renders_in_bounded_time():
    # Would hang for minutes with backtracking regexes or quadratic scans; asserted by completing at all.
    texts = [
        "*" * 40_000,
        "[" * 40_000,
        "`a" * 20_000,
        "_a " * 20_000,
        "**a " * 10_000,
        "http://" + "a" * 40_000,
        "#" * 40_000 + " x",
        "- " * 20_000,
        ">" * 30_000,
        "  - a\n" * 5_000,
        "|" * 30_000 + "\n" + "|-" * 10_000,
        "```" + " " * 30_000 + "`",
    ]
    out = node_eval("markdown.js", "return input.map(t => mod.toHtml(t).length);", texts)
    assert all(n > 0 for n in out)
