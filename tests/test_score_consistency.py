"""Scores computed from the likes as they are: read inside the write transaction, and no "run score" for a catalog scored already."""

from __future__ import annotations

from imagion.cli import app
from tests.helpers import scored_catalog, write_image


def test_score_reads_the_likes_inside_its_write_transaction(tmp_path, monkeypatch):
    """An import waits for score's write lock, so score cannot write scores from likes that
    changed between its read and its write (the mechanism of the race, tested directly)."""
    from imagion.catalog.scoring import score_catalog
    from imagion.catalog.store import Catalog

    db = scored_catalog(tmp_path, 2, 4)
    seen: list[bool] = []
    real = Catalog.frame

    def frame(self, *a, **k):
        seen.append(self.db.in_transaction)
        return real(self, *a, **k)

    monkeypatch.setattr(Catalog, "frame", frame)
    with Catalog(db) as cat:
        score_catalog(cat)
    assert seen == [True]


def test_all_equal_likes_do_not_say_run_score(runner, tmp_path):
    import csv as csv_

    rows = [["account", "image", "likes", "posted_at"]]
    for k in range(4):
        write_image(tmp_path / f"p{k}.jpg", 0.2 * k + 0.1, seed=k)
        rows.append(["a", f"p{k}.jpg", "50", f"2020-01-0{k + 1}"])
    with open(tmp_path / "p.csv", "w", newline="") as f:
        csv_.writer(f).writerows(rows)
    db = str(tmp_path / "c.db")
    runner.invoke(app, ["import", str(tmp_path / "p.csv"), "--catalog", db])
    res = runner.invoke(app, ["train", "--catalog", db, "--out", str(tmp_path / "r")])
    assert res.exit_code == 1 and "run `imagion score` first" in res.output
    runner.invoke(app, ["score", "--catalog", db])
    res = runner.invoke(app, ["train", "--catalog", db, "--out", str(tmp_path / "r")])
    assert res.exit_code == 1 and "ran but could score no post" in res.output
