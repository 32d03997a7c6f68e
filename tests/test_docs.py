"""The docs a newcomer reads: every relative link resolves, and no text tells them to install
imagion from the package index, where it is not."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TEXTS = [
    *DOCS,
    ROOT / "Makefile",
    *sorted((ROOT / "src" / "imagion").rglob("*.py")),
    *sorted((ROOT / "scripts").glob("*.py")),
    *sorted((ROOT / "bench").glob("*.py")),
]
# `pip install imagion` or `pip install 'imagion[train]'`: imagion is not on the package index
FROM_THE_INDEX = re.compile(r"pip install\s+(-U\s+)?['\"]?imagion\b")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {_anchor(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def test_every_relative_link_resolves():
    broken = []
    for doc in DOCS:
        text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            file = (doc.parent / path).resolve() if path else doc
            if not file.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_link_checker_sees_a_broken_link(tmp_path):
    doc = tmp_path / "a.md"
    doc.write_text("# Top\n[ok](#top) [bad](missing.md) [bad anchor](a.md#nowhere)\n")
    assert "top" in _anchors(doc) and "nowhere" not in _anchors(doc)
    assert LINK.findall(doc.read_text()) == ["#top", "missing.md", "a.md#nowhere"]


def test_no_text_says_to_install_imagion_from_the_package_index():
    said = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in TEXTS
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if FROM_THE_INDEX.search(line) and "not on the package index" not in line  # the why
    ]
    assert not said, (
        "imagion is installed from its clone (pip install -e '.[train]'):\n" + "\n".join(said)
    )
    assert FROM_THE_INDEX.search("pip install 'imagion[train]'")
    assert not FROM_THE_INDEX.search("pip install -e '.[train]'")
