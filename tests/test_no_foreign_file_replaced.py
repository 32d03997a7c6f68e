"""One rule for every output of every command: a file imagion did not write is never replaced
(a photo named like a plot, a spreadsheet named like the pairs, a user's metrics.csv in a run
folder), a link is never replaced, and imagion's own earlier output is replaced as before."""

from __future__ import annotations

import importlib.util
import os
import typing
from pathlib import Path

import pytest

from imagion.cli import app
from imagion.files import written_by_imagion
from tests.helpers import scored_catalog, write_image

# every option whose value is a path, by command: what it writes, or that it only reads
OUTPUTS = {
    ("import", "catalog"),
    ("labels", "save_stats"),
    ("train", "out_dir"),
    ("eval", "pairs_out"),
    ("eval", "plot"),
    ("eval", "out_dir"),
    ("rank", "copy_to"),
    ("rank", "crops"),
    ("rank", "sheet"),
    ("rank", "table"),
    ("pick", "copy_to"),
    ("pick", "sheet"),
}
INPUTS = {
    ("import", "sources"),
    *((c, "catalog") for c in ("score", "info", "posts", "labels", "featurize", "train", "eval")),
    *((c, "model") for c in ("eval", "rank", "compare", "pick", "serve")),
    *((c, "stats") for c in ("train", "rank", "compare", "serve")),
    ("compare", "a"),
    ("compare", "b"),
    ("eval", "same_posts_as"),
    ("rank", "from_table"),
    ("pick", "from_table"),
    # the photo index: a file there that is not one is moved aside, never replaced (test_photo_index)
    *((c, "index") for c in ("rank", "compare", "pick")),
    *((c, "history") for c in ("rank", "compare", "pick", "serve")),
}
FOREIGN = b"the user's own file, not imagion's"


def path_options() -> set[tuple[str, str]]:
    found = set()
    for c in app.registered_commands:
        for name, hint in typing.get_type_hints(c.callback).items():
            if Path in (typing.get_args(hint) or (hint,)):
                found.add((c.name, name))
    return found


def test_every_path_option_is_known_as_an_output_or_an_input():
    """A new option that writes a file must join the walk below (OUTPUTS)."""
    assert path_options() == OUTPUTS | INPUTS


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> Path:
    return scored_catalog(tmp_path_factory.mktemp("scored"), 3, 6, seed=2)


@pytest.fixture
def photos(tmp_path) -> Path:
    for i, b in enumerate((0.2, 0.5, 0.8)):
        write_image(tmp_path / "photos" / f"p{i}.jpg", b, size=48, seed=i)
    return tmp_path / "photos"


def _cases(db: Path, ckpt: Path, photos: Path, out: Path) -> dict[str, tuple[list[str], Path]]:
    """Each output option: the command, and the file it would write (a foreign one goes there)."""
    rank = ["rank", str(photos), "--no-suggest"]
    ev = ["eval", "--catalog", str(db), "--model", str(ckpt)]
    return {
        "import --catalog": (["import", str(photos), "--catalog", str(out / "c.db")], out / "c.db"),
        "labels --save-stats": (
            ["labels", "--catalog", str(db), "--save-stats", str(out / "s.json")],
            out / "s.json",
        ),
        "train --out metrics.csv": (
            ["train", "--catalog", str(db), "--epochs", "1", "--out", str(out)],
            out / "metrics.csv",
        ),
        "train --out last.pt": (
            ["train", "--catalog", str(db), "--epochs", "1", "--out", str(out)],
            out / "last.pt",
        ),
        "train --out best.pt": (
            ["train", "--catalog", str(db), "--epochs", "1", "--out", str(out)],
            out / "best.pt",
        ),
        "eval --cv --out": (
            ["eval", "--catalog", str(db), "--cv", "2", "--epochs", "1", "--out", str(out)],
            out / "fold2" / "last.pt",  # the last fold's: said before the first fold trains
        ),
        "eval --pairs-out": ([*ev, "--pairs-out", str(out / "b.csv")], out / "b.csv"),
        "eval --plot": ([*ev, "--plot", str(out / "me.jpg")], out / "me.jpg"),
        "eval --plot .pdf": ([*ev, "--plot", str(out / "me.pdf")], out / "me.pdf"),
        "rank --sheet": ([*rank, "--sheet", str(out / "s.png")], out / "s.png"),
        "rank --sheet .html": ([*rank, "--sheet", str(out / "s.html")], out / "s.html"),
        "rank --out": (
            [*rank, "--engine", "ray", "--out", str(out / "t.parquet")],
            out / "t.parquet",
        ),
        "pick --sheet": (["pick", str(photos), "--sheet", str(out / "p.jpg")], out / "p.jpg"),
    }


def test_no_output_replaces_a_file_imagion_did_not_write(runner, trained, photos, tmp_path):
    db, ckpt = trained
    for case, (args, target) in _cases(db, ckpt, photos, tmp_path / "x").items():
        out = tmp_path / "x"
        out.mkdir(exist_ok=True)
        if case == "rank --out" and importlib.util.find_spec("ray") is None:
            continue  # the pip extra is missing: rank --engine ray says so first
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(FOREIGN)
        res = runner.invoke(app, args)
        assert res.exit_code == 1, (case, res.output)
        assert "nothing is replaced" in res.output or "leaves it untouched" in res.output, case
        assert target.read_bytes() == FOREIGN, case
        assert [p for p in out.rglob("*") if p.is_file()] == [target], case  # nothing else done
        for p in sorted(out.rglob("*"), reverse=True):
            p.unlink() if not p.is_dir() else p.rmdir()


def test_copies_and_crops_are_written_beside_a_foreign_file(runner, photos, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    rank = ["rank", str(photos), "--no-suggest", "--top", "1"]
    res = runner.invoke(app, [*rank, "--copy-to", str(out)])
    assert res.exit_code == 0, res.output
    (copy,) = out.iterdir()
    copy.write_bytes(FOREIGN)
    for args in (
        [*rank, "--copy-to", str(out)],
        ["pick", str(photos), "-n", "1", "--copy-to", str(out)],
    ):
        assert runner.invoke(app, args).exit_code == 0
    assert copy.read_bytes() == FOREIGN and len(list(out.iterdir())) == 3


@pytest.mark.parametrize("suffix", [".png", ".html"])
def test_a_sheet_never_replaces_a_link(runner, photos, tmp_path, suffix):
    kept = tmp_path / f"kept{suffix}"
    for target in (kept, tmp_path / "gone"):  # a link to a file, and a dangling one
        link = tmp_path / f"sheet{suffix}"
        link.unlink(missing_ok=True)
        if target == kept:
            kept.write_bytes(FOREIGN)
        link.symlink_to(target)
        res = runner.invoke(app, ["rank", str(photos), "--no-suggest", "--sheet", str(link)])
        assert res.exit_code == 1 and "link" in res.output, res.output
        assert link.is_symlink() and os.readlink(link) == str(target)
    assert kept.read_bytes() == FOREIGN


def test_imagion_replaces_its_own_outputs(runner, trained, photos, tmp_path):
    """Rerunning to the same paths works: each output carries imagion's mark."""
    db, ckpt = trained
    out = tmp_path / "y"
    out.mkdir()
    cases = _cases(db, ckpt, photos, out)
    for case in (
        "eval --pairs-out",
        "eval --plot",
        "eval --plot .pdf",
        "rank --sheet",
        "rank --sheet .html",
        "pick --sheet",
        "train --out last.pt",
    ):
        args, target = cases[case]
        for _ in range(2):
            res = runner.invoke(app, args)
            assert res.exit_code == 0, (case, res.output)
        assert written_by_imagion(target, ("account", "a", "b"))  # the pairs CSV's columns
    for name in ("best.pt", "last.pt"):
        assert written_by_imagion(out / name)
    assert written_by_imagion(out / "metrics.csv", ("epoch", "train_loss"))


def test_label_statistics_are_replaced_when_imagion_wrote_them(runner, scored, tmp_path):
    stats = tmp_path / "stats.json"
    args = [
        "labels",
        "--catalog",
        str(scored),
        "--provider",
        "hashtags",
        "--save-stats",
        str(stats),
    ]
    for _ in range(2):
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
    assert written_by_imagion(stats)
