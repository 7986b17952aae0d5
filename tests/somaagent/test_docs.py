"""The README and docs/: every relative link reaches a file, and every #anchor a heading in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings (outside code blocks)."""
    text = FENCE.sub("", path.read_text())
    anchors = set()
    for line in text.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def _documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_relative_link_reaches_a_file_and_a_heading() -> None:
    broken = []
    for doc in _documents():
        for target in LINK.findall(FENCE.sub("", doc.read_text())):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not ours to check
            file_part, _, anchor = target.partition("#")
            linked = (doc.parent / file_part).resolve() if file_part else doc
            if not linked.exists():
                broken.append(f"{doc.name}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{doc.name}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_readme_stays_short_and_links_every_document() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 300, "the README is for a newcomer: reference goes to docs/"
    for doc in sorted((ROOT / "docs").glob("*.md")):
        assert f"(docs/{doc.name})" in readme, f"README does not link docs/{doc.name}"


def test_every_path_in_the_readme_code_map_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Where to look", 1)[1].split("\n## ", 1)[0]
    missing = []
    for path in re.findall(r"`((?:somaagent|conversations|tools|memory|tests|bench)/[\w/.]*)`", section):
        if not (ROOT / path).exists():
            missing.append(path)
    assert not missing, f"the code map names paths that do not exist: {missing}"
