"""Groups of near-duplicates (`rank --groups`, `imagion.group`) and the pick (`imagion pick`,
`imagion.pick`, the page's /api/pick), on generated bursts and the bundled model."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import imagion
from imagion.cli import app
from imagion.inference.groups import (
    BURST_SECONDS,
    SIMILARITY,
    Group,
    Shots,
    cluster,
    fingerprints,
    make_groups,
)
from imagion.inference.rank import Ranked
from imagion.models.transforms import Calibration
from tests.bursts import source_image, write_bursts


@pytest.fixture(scope="module")
def bursts(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    """10 distinct generated photos × 5 variants (crop, exposure, JPEG quality, rotation, shift)."""
    folder = tmp_path_factory.mktemp("bursts") / "shoot"
    return folder, write_bursts(folder, 10)


def test_rank_groups_json_keeps_each_burst_together(runner, bursts):
    folder, truth = bursts
    res = runner.invoke(app, ["rank", str(folder), "--groups", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert len(rows) == 50 and {"group", "best_in_group", "rank", "score"} <= set(rows[0])
    groups: dict[int, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["group"], []).append(r)
    for members in groups.values():  # never two sources in one group
        assert len({truth[Path(r["path"]).name] for r in members}) == 1, members
        assert [r["best_in_group"] for r in members] == [True] + [False] * (len(members) - 1)
        assert members[0]["group_size"] == len(members)
        rest = [r["raw"] for r in members[1:]]
        assert rest == sorted(rest, reverse=True)
        # the likes model's favourite leads, unless its technical quality chose another (said)
        assert members[0]["raw"] >= max(rest, default=-1e9) or "chosen_for" in members[0]
    with_own = 0
    for s in set(truth.values()):  # the variants in the group where most of their source is
        counts: dict[int, int] = {}
        for r in rows:
            if truth[Path(r["path"]).name] == s:
                counts[r["group"]] = counts.get(r["group"], 0) + 1
        with_own += max(counts.values())
    assert with_own >= 45
    # groups are ordered by their best photo, and `rank` is the place in the whole ranking
    tops = [max(r["raw"] for r in m) for _, m in sorted(groups.items())]
    assert tops == sorted(tops, reverse=True)  # by the likes model's favourite of each
    assert sorted(r["rank"] for r in rows) == list(range(1, 51))


def test_pick_returns_one_photo_per_moment(bursts):
    folder, truth = bursts
    result = imagion.pick([folder], n=5)
    assert isinstance(result, imagion.PickResult) and len(result) == 5
    sources = [truth[p.photo.path.name] for p in result]
    assert len(set(sources)) == 5
    for p in result:
        assert isinstance(p.group, imagion.Group) and p.photo is p.group.best
        assert len(p.group) == 5 and p.group.p_beats_next is not None
        assert p.text.startswith("#1 of 5 similar shots")
    # the best of the best groups: the picks are the 5 groups with the best photos, in order
    grouping = result.grouping
    assert [p.group for p in result] == grouping.groups[:5]
    row = result.to_list()[0]
    assert set(row) >= {"pick", "path", "score", "group_size", "p_beats_runner_up", "verdict"}
    assert len(row["runners_up"]) == 4
    more = imagion.pick([folder], n=12)
    assert len(more) == 10 and "only 10 distinct moment(s) among 50 photos" in more.notes[0]


def test_group_api_and_similarity(bursts):
    folder, _ = bursts
    strict = imagion.group([folder], similarity=0.999)
    assert isinstance(strict, imagion.GroupResult) and strict.similarity == 0.999
    assert len(strict) > 10  # nearly every variant alone
    with pytest.raises(imagion.OptionError) as info:
        imagion.group([folder], similarity=1.5)
    assert info.value.option == "similarity"


def _shots(feats: np.ndarray | None, batch: np.ndarray, times=None) -> Shots:
    h, c = fingerprints(batch)
    return Shots([Path(f"{k}.jpg") for k in range(len(batch))], feats, h, c, times or [])


def test_resaved_copies_group_without_features_and_distinct_photos_do_not():
    a = np.asarray(source_image(1).resize((64, 64)), dtype=np.uint8)
    b = np.asarray(source_image(2).resize((64, 64)), dtype=np.uint8)
    a2 = np.clip(a.astype(int) + 2, 0, 255).astype(np.uint8)  # a re-save: tiny changes
    flat1, flat2 = np.full_like(a, 40), np.full_like(a, 200)  # same hash, other colours
    groups = cluster(range(5), _shots(None, np.stack([a, b, a2, flat1, flat2])))
    assert groups == [[0, 2], [1], [3], [4]]


def test_a_burst_needs_less_similarity():
    batch = np.stack([np.asarray(source_image(k).resize((32, 32))) for k in range(2)])
    sim = SIMILARITY - 0.03  # below the threshold, within the easing of a burst
    feats = np.array([[1.0, 0.0], [sim, np.sqrt(1 - sim**2)]])
    assert len(cluster([0, 1], _shots(feats, batch))) == 2
    assert len(cluster([0, 1], _shots(feats, batch, [100.0, 100.0 + BURST_SECONDS / 2]))) == 1
    assert len(cluster([0, 1], _shots(feats, batch, [100.0, 100.0 + 60]))) == 2


def _group(raws: list[float], cal: Calibration) -> Group:
    items = [Ranked(Path(f"{k}.jpg"), 5.0, r) for k, r in enumerate(raws)]
    engine = SimpleNamespace(calibration=cal)
    return make_groups(engine, items, [list(range(len(raws)))])[0]  # type: ignore[arg-type]


def test_the_verdict_says_a_toss_up_and_what_is_unknown():
    q = list(np.linspace(-1, 1, 101))
    cal = Calibration(q, pair_scale=2.0, pair_source="held-out pairs (100)")
    sure = _group([1.0, 0.0, -0.5], cal)  # σ(2) = 88% against the runner-up
    assert sure.verdict() == "#1 of 3 similar shots; 88% likely to beat the next best"
    close = _group([0.05, 0.0, -0.02, -1.0], cal)  # 52%, 53%: even; 89%: not
    assert close.even == 3
    assert close.verdict() == (
        "#1 of 4 similar shots, but a toss-up between the top 3: 52% likely to beat the next best"
    )
    assert "a toss-up between the two:" in _group([0.01, 0.0], cal).verdict()
    none = _group([1.0, 0.0], Calibration(q))  # no held-out calibration: no probability
    assert none.p_beats_next is None
    assert "unknown for this model (no held-out calibration)" in none.verdict(calibrated=False)
    assert _group([1.0], cal).verdict() == "the only shot of this moment"


def test_pick_copy_to_never_replaces_a_file_and_draws_a_sheet(runner, bursts, tmp_path):
    folder, _ = bursts
    dest = tmp_path / "post"
    cmd = ["pick", str(folder), "-n", "3", "--copy-to", str(dest), "--json"]
    res = runner.invoke(app, cmd)
    assert res.exit_code == 0, res.output
    first = sorted(dest.iterdir())
    assert len(first) == 3 and first[0].name.startswith("01_")
    mine = first[0]
    mine.write_bytes(b"the user's own edit")  # same name next time: must survive
    res = runner.invoke(app, [*cmd, "--sheet", str(tmp_path / "pick.html")])
    assert res.exit_code == 0, res.output
    assert mine.read_bytes() == b"the user's own edit"
    assert len(list(dest.iterdir())) == 6 and (dest / f"{mine.stem} (2){mine.suffix}").is_file()
    sheet = (tmp_path / "pick.html").read_text()
    assert sheet.count("<section>") == 3 and sheet.count("<img") == 3 + 3 * 4
    picks = json.loads(res.stdout)
    assert [p["pick"] for p in picks] == [1, 2, 3]


def test_pick_and_groups_refuse_bad_options(runner, bursts, tmp_path):
    folder, _ = bursts
    res = runner.invoke(app, ["pick", str(folder), "-n", "0"])
    assert res.exit_code == 1 and "error: -n 0: pick at least 1 photo." in res.stderr
    res = runner.invoke(app, ["rank", str(folder), "--groups", "--similarity", "2"])
    assert res.exit_code == 1 and "error: --similarity 2" in res.stderr
    res = runner.invoke(app, ["rank", str(folder), "--groups", "--copy-to", str(tmp_path / "x")])
    assert res.exit_code == 1 and "imagion pick" in res.stderr and not (tmp_path / "x").exists()
    res = runner.invoke(app, ["pick", str(folder), "--copy-to", str(folder)])
    assert res.exit_code == 1 and "choose another folder" in res.stderr


def test_rank_groups_table_and_csv(runner, bursts):
    folder, _ = bursts
    res = runner.invoke(
        app, ["rank", str(folder), "--groups", "--top", "2"], env={"COLUMNS": "160"}
    )
    assert res.exit_code == 0, res.output
    assert res.stdout.count("  └ ") == 8 and "#1 of 5 similar shots" in res.stdout
    assert "in 10 groups of near-duplicates" in res.stderr
    res = runner.invoke(app, ["rank", str(folder), "--groups", "--csv", "--top", "1"])
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith("rank,path,score,score_low,score_high,raw") and len(lines) == 6


def test_page_pick_endpoint_groups_a_shoot(bursts):
    from fastapi.testclient import TestClient

    from imagion.serve.limits import Limits
    from imagion.serve.runner import build_app
    from tests.serve_helpers import multipart

    folder, _ = bursts
    files = [(p.name, p.read_bytes()) for p in sorted(folder.glob("s00[0-3]_*.jpg"))]
    app_, scorer = build_app(None, "cpu", Limits(max_pick_files=25))
    try:
        with TestClient(app_) as client:
            body, ctype = multipart([*files, ("broken.jpg", b"\xff\xd8 no")])
            res = client.post("/api/pick", content=body, headers={"Content-Type": ctype})
            assert res.status_code == 200, res.text
            data = res.json()
            assert len(data["picks"]) == 4 and len({p["path"][:4] for p in data["picks"]}) == 4
            assert all(p["group_size"] == 5 for p in data["picks"])
            assert all(p["score_low"] <= p["score"] <= p["score_high"] for p in data["picks"])
            assert "broken.jpg" in data["problems"][0]
            # groups: a list of groups, each listing its members best first
            groups = data["groups"]
            assert [g["group"] for g in groups] == [1, 2, 3, 4]
            assert all(g["size"] == len(g["photos"]) == 5 for g in groups)
            assert [g["photos"][0]["path"] for g in groups] == [p["path"] for p in data["picks"]]
            assert all(m["group"] == g["group"] for g in groups for m in g["photos"])
            body, ctype = multipart(files, fields={"n": "3"})
            res = client.post(
                "/pick", content=body + b"", headers={"Content-Type": ctype}
            )  # the page: one block per pick, the others small
            assert res.status_code == 200 and res.text.count('class="pick"') == 3
            assert "similar shots" in res.text
            assert 'name="n" value="3"' in res.text  # the form keeps the number asked
            too_many = [(f"{k}.jpg", files[0][1]) for k in range(26)]
            body, ctype = multipart(too_many)
            res = client.post("/api/pick", content=body, headers={"Content-Type": ctype})
            assert res.status_code == 400 and "at most 25" in res.json()["error"]
            # the 5-picture scoring is as it was
            res = client.post("/api/score", content=body, headers={"Content-Type": ctype})
            assert res.status_code == 400 and "at most 5" in res.json()["error"]
            assert client.get("/pick").status_code == 200 and 'href="/pick"' in client.get("/").text
    finally:
        scorer.close()


def test_every_pick_and_group_output_carries_the_80_range(runner, bursts):
    """`pick --json`, `pick --csv` and `rank --groups --csv` carry score_low/score_high; a CSV is
    the JSON rows' flat fields (one place builds a row)."""
    import csv
    import io

    from imagion.inference.groups import GROUPS_CSV
    from imagion.inference.pick import PICK_CSV

    folder, _ = bursts
    res = runner.invoke(app, ["pick", str(folder), "-n", "3", "--json"])
    assert res.exit_code == 0, res.output
    picks = json.loads(res.stdout)
    for p in picks:
        assert p["score_low"] <= p["score"] <= p["score_high"], p
    res = runner.invoke(app, ["pick", str(folder), "-n", "3", "--csv"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert list(rows[0]) == PICK_CSV and len(rows) == 3
    for row, p in zip(rows, picks, strict=True):
        assert float(row["score_low"]) == p["score_low"] and row["verdict"] == p["verdict"]
        assert row["runners_up"].split("; ") == p["runners_up"]
    res = runner.invoke(app, ["pick", str(folder), "--csv", "--json"])
    assert res.exit_code == 1 and "choose one" in res.stderr
    res = runner.invoke(app, ["rank", str(folder), "--groups", "--csv", "--top", "1"])
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert list(rows[0]) == GROUPS_CSV and {"score_low", "score_high"} <= set(GROUPS_CSV)
    assert all(float(r["score_low"]) <= float(r["score"]) for r in rows)
    assert rows[0]["p_beats_runner_up"] and rows[0]["group_size"] == "5"


def test_the_summary_says_when_nothing_was_a_duplicate(runner, bursts):
    folder, _ = bursts
    one_each = sorted(folder.glob("*_crop.jpg"))[:4]
    res = runner.invoke(app, ["pick", *map(str, one_each), "-n", "2"])
    assert res.exit_code == 0, res.output
    assert "picked 2 of 4 photos, no near-duplicates" in res.stderr, res.stderr
    res = runner.invoke(app, ["pick", str(folder), "-n", "2"])
    assert "picked 2 of 50 photos in 10 groups of near-duplicates" in res.stderr, res.stderr
