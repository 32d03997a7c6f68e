"""The package is found the same way by Python and by a type checker, from anywhere: the src/
layout makes the editable install a plain path, so a folder named `imagion` beside a user's script
(the clone itself, say) shadows nothing, and mypy outside the clone sees imagion's types."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _outside_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # only what the install put on the path
    env.pop("MYPYPATH", None)
    return env


def _a_folder_named_imagion_beside(tmp_path: Path) -> None:
    clone = tmp_path / "imagion"  # what `git clone …/imagion` makes next to a script
    clone.mkdir()
    (clone / "README.md").write_text("a clone's top folder\n")
    (clone / "docs").mkdir()


def test_a_folder_named_imagion_beside_a_script_does_not_shadow_the_package(tmp_path):
    _a_folder_named_imagion_beside(tmp_path)
    script = tmp_path / "use.py"
    script.write_text("import imagion\nprint(imagion.__file__)\nprint(callable(imagion.rank))\n")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=_outside_env(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    where, rank_is_there = done.stdout.split()
    assert Path(where).parent.name == "imagion" and Path(where).name == "__init__.py"
    assert not Path(where).is_relative_to(tmp_path) and rank_is_there == "True"


@pytest.mark.slow
def test_mypy_strict_outside_the_clone_sees_imagions_types(tmp_path):
    _a_folder_named_imagion_beside(tmp_path)
    script = tmp_path / "user.py"
    script.write_text(
        "import imagion\n\n"
        "ranked = imagion.rank(['photos'], top=2)\n"
        "best: float = ranked[0].score\n"
        "oops: str = ranked[0].score\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "user.py"],
        cwd=tmp_path,
        env=_outside_env(),
        capture_output=True,
        text=True,
    )
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    # the one error is ours (a float is not a str): mypy found imagion and read its types
    assert len(errors) == 1 and "user.py:5" in errors[0] and '"float"' in errors[0], done.stdout
