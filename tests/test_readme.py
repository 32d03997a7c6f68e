"""The README's walk-throughs, run as written: each `$ command` of a text block is run in a fresh
folder and the lines shown under it must appear in its output, in order ("..." stands for lines
left out). A README that drifts from the code fails here."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = ROOT / "docs"


def _git_status() -> str | None:
    """`git status --porcelain` of the repository (None outside a git checkout)."""
    try:
        res = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout if res.returncode == 0 else None


@pytest.fixture(autouse=True)
def _leaves_the_working_tree_as_it_was():
    """A walk-through runs in a temporary folder: nothing it writes (example/, me-stats.json,
    me.png, catalogs) lands in the repository. On a clean checkout the status stays empty."""
    before = _git_status()
    yield
    after = _git_status()
    if before is not None:
        assert after == before, f"the walk-through left files in {ROOT}:\n{after}"


def _block_after(
    heading: str, containing: str = "$ ", text: str = README
) -> list[tuple[str, list[str]]]:
    """(command, expected lines) of the first ```text block after `heading` (in the README, or
    `text`) that holds `containing`."""
    start = text.index(heading)
    blocks = re.findall(r"```text\n(.*?)```", text[start:], re.S)
    block = next((b for b in blocks if containing in b), None)
    assert block is not None, f"no text block with {containing!r} after {heading}"
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
    return steps


def _run(command: str, cwd: Path) -> str:
    argv = shlex.split(command)
    if argv[0] == "imagion":
        argv = [sys.executable, "-m", "imagion", *argv[1:]]
    elif argv[0] == "python":
        argv = [sys.executable, str(ROOT / argv[1]), *argv[2:]]
    env = os.environ | {
        "COLUMNS": "80",
        "IMAGION_CATALOG": str(cwd / "imagion.db"),
        "PYTHONUNBUFFERED": "1",  # stdout and stderr interleaved as a terminal shows them
    }
    res = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, f"{command}\n{res.stdout}"
    return res.stdout


def _check(steps: list[tuple[str, list[str]]], cwd: Path) -> None:
    for command, expected in steps:
        lines = [x.rstrip() for x in _run(command, cwd).splitlines()]
        at = 0
        for want in expected:
            if want.strip() in ("...", ""):
                continue
            assert want.rstrip() in lines[at:], f"{command}: {want!r} not in\n" + "\n".join(lines)
            at = lines.index(want.rstrip(), at) + 1


@pytest.mark.slow
def test_rank_and_compare_as_the_readme_shows(tmp_path):
    steps = _block_after("## Rank your photos")
    steps = [(c.replace("data/samples", str(ROOT / "data/samples")), e) for c, e in steps]
    _check(steps, tmp_path)


@pytest.mark.slow
def test_your_own_account_walk_through(tmp_path):
    pytest.importorskip("torch", reason="training needs the train layer")
    _check(_block_after("## Your own account"), tmp_path)


@pytest.mark.slow
def test_the_crawl_examples_in_order(tmp_path):
    """import → score --window 5 → score → labels on profilecrawl-978, as docs/formats.md and
    docs/labels.md show them."""
    from helpers import dataset

    data = dataset("profilecrawl-978").parent
    formats = (DOCS / "formats.md").read_text(encoding="utf-8")
    labels = (DOCS / "labels.md").read_text(encoding="utf-8")
    steps = []
    for heading, text in (
        ("## `imagion import`", formats),
        ("## `imagion score`", formats),
        ("## `imagion labels`", labels),
    ):
        steps += _block_after(heading, "crawl.db", text)
    steps = [
        (c.replace("../shared/datasets", str(data)), e)
        for c, e in steps
        if "crawl.db" in c or "profilecrawl" in c
    ]
    assert len(steps) == 4, steps
    _check(steps, tmp_path)


WRITES = ("--catalog", "--out", "--save-stats", "--plot", "--sheet", "--pairs-out", "--copy-to")


def test_the_own_account_walk_through_writes_only_into_its_scratch_folder():
    """Every file the walk-through writes (the example export, the catalog, the runs, the
    statistics, the plot, the sheet) is under `scratch/`, which git ignores: nothing is left in
    the clone but one folder to delete. Commands that write a run folder by default name one."""
    start = README.index("## Your own account")
    section = README[start : README.index("\n## ", start + 5)]
    commands = [c for c, _ in _block_after("## Your own account")]
    sh = re.findall(r"```sh\n(.*?)```", section, re.S)
    commands += [line.split("  #")[0] for b in sh for line in b.splitlines() if line.strip()]
    written = []
    for command in commands:
        argv = shlex.split(command)
        if argv[:2] == ["python", "scripts/example_export.py"]:
            written.append(argv[2])
        written += [argv[k + 1] for k, a in enumerate(argv[:-1]) if a in WRITES]
        if argv[:2] == ["imagion", "train"] or "--cv" in argv:
            assert "--out" in argv, f"{command}: writes runs/… in the clone"
    assert len(written) >= 8, written
    outside = [w for w in written if not w.startswith("scratch/") and w != "scratch"]
    assert not outside, outside
    assert "/scratch/" in (ROOT / ".gitignore").read_text().splitlines()
    assert "`scratch/`" in section  # and the README says so
