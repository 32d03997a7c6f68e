"""Labels: a fake Cloud Vision client with real-shaped responses, offline providers, cache, table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from google.api_core import exceptions as gexc
from google.cloud import vision

from imagion.catalog.store import Catalog
from imagion.choices import Provider
from imagion.cli import app
from imagion.errors import ImagionError
from imagion.labels import cloud_vision as vis
from imagion.labels.providers import parse_alt_text
from imagion.labels.store import label_catalog, post_labels
from imagion.labels.suggestions import label_stats, suggest
from tests.helpers import dataset, scored_catalog, write_image

# A response recorded in the shape the real API returns (BatchAnnotateImagesResponse JSON).
CAT = {"mid": "/m/01yrx", "description": "Cat", "score": 0.97, "topicality": 0.97}
SKY = {"mid": "/m/01bqvp", "description": "Sky", "score": 0.93, "topicality": 0.93}


def response(n: int, error_at: int | None = None) -> vision.BatchAnnotateImagesResponse:
    items = []
    for k in range(n):
        if k == error_at:
            items.append({"error": {"code": 3, "message": "Bad image data."}})
        else:
            items.append({"labelAnnotations": [CAT, SKY] if k % 2 == 0 else [SKY]})
    return vision.BatchAnnotateImagesResponse.from_json(json.dumps({"responses": items}))


class FakeVision:
    """Stands in for ImageAnnotatorClient: records requests, replays scripted outcomes."""

    def __init__(self, script: list | None = None, error_at: int | None = None) -> None:
        self.calls: list[list[vision.AnnotateImageRequest]] = []
        self.script = list(script or [])
        self.error_at = error_at

    def batch_annotate_images(self, requests, **kwargs):
        self.calls.append(list(requests))
        if self.script:
            outcome = self.script.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
        return response(len(requests), self.error_at)


@pytest.fixture
def big_images(tmp_path) -> list[str]:
    paths = []
    for k in range(20):
        size = 2000 if k == 0 else 48
        paths.append(str(write_image(tmp_path / f"im{k}.jpg", 0.1 + 0.04 * k, size=size, seed=k)))
    return paths


def test_requests_are_real_label_detection_batches(big_images):
    client = FakeVision()
    results, problems = vis.label_images(big_images, client=client, sleep=lambda s: None)
    assert [len(c) for c in client.calls] == [16, 4]
    for call in client.calls:
        for req in call:
            assert isinstance(req, vision.AnnotateImageRequest)
            assert req.features[0].type_ == vision.Feature.Type.LABEL_DETECTION
            assert req.features[0].max_results == vis.MAX_RESULTS
    first = client.calls[0][0].image.content
    assert len(first) < Path(big_images[0]).stat().st_size  # a 2000×2000 photo is downscaled
    assert (
        client.calls[0][1].image.content == Path(big_images[1]).read_bytes()
    )  # small ones go as they are
    assert (
        results[0] == [("cat", pytest.approx(0.97)), ("sky", pytest.approx(0.93))] and not problems
    )


def test_quota_error_then_success(big_images):
    waits = []
    client = FakeVision(script=[gexc.ResourceExhausted("quota"), gexc.ServiceUnavailable("busy")])
    results, _ = vis.label_images(big_images[:3], client=client, sleep=waits.append)
    assert len(client.calls) == 3 and waits == [1.0, 2.0] and len(results) == 3
    forever = FakeVision(script=[gexc.ResourceExhausted("quota")] * 10)
    with pytest.raises(ImagionError, match="kept failing"):
        vis.label_images(big_images[:1], client=forever, sleep=lambda s: None)


def test_per_image_error_keeps_the_batch(big_images):
    results, problems = vis.label_images(
        big_images[:5], client=FakeVision(error_at=2), sleep=lambda s: None
    )
    assert sorted(results) == [0, 1, 3, 4]
    assert len(problems) == 1 and "im2.jpg" in problems[0] and "Bad image data" in problems[0]


def test_missing_credentials_say_how_to_set_up(monkeypatch, tmp_path):
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    def no_creds(*a, **k):
        raise DefaultCredentialsError("none")

    monkeypatch.setattr(google.auth, "default", no_creds)
    with pytest.raises(ImagionError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        vis.make_client()


def test_google_provider_caches_in_catalog(tmp_path, monkeypatch, runner):
    db = scored_catalog(tmp_path, 3, 4)
    client = FakeVision()
    with Catalog(db) as cat:
        first = label_catalog(cat, Provider.google, client=client)
        again = label_catalog(cat, Provider.google, client=client)
        assert first["labelled"] == 12 and again["labelled"] == 0 and again["cached"] == 12
        assert sum(len(c) for c in client.calls) == 12  # nothing is paid for twice
        label_catalog(cat, Provider.google, client=client, refresh=True)
        assert sum(len(c) for c in client.calls) == 24
    # the CLI asks before paying; without a terminal it needs --yes
    monkeypatch.setattr(vis, "make_client", lambda: FakeVision())
    res = runner.invoke(app, ["labels", "--catalog", str(db), "-p", "google", "--refresh"])
    assert res.exit_code == 1 and "--yes" in res.stderr and "12 billable" in res.stderr
    res = runner.invoke(
        app, ["labels", "--catalog", str(db), "-p", "google", "--refresh", "--yes", "--json"]
    )
    assert res.exit_code == 0 and json.loads(res.stdout)["providers"][0]["labelled"] == 12


def test_alt_text_parsing():
    assert parse_alt_text("May be an image of 1 person and playing a sport") == [
        "person",
        "playing a sport",
    ]
    assert parse_alt_text("May be an image of 2 people, people standing and outdoors") == [
        "people",
        "people standing",
        "outdoors",
    ]
    assert parse_alt_text(
        "Photo by NASA on May 01, 2022. May be an image of text that says 'HELLO'"
    ) == ["text"]
    assert parse_alt_text(None) == [] and parse_alt_text("No photo description available.") == []


def test_offline_providers_table_and_suggestion(tmp_path, runner, monkeypatch):
    db = scored_catalog(tmp_path, 4, 8)
    monkeypatch.setenv("IMAGION_CACHE", str(tmp_path / "cache"))
    res = runner.invoke(
        app,
        [
            "labels",
            "--catalog",
            str(db),
            "-p",
            "hashtags",
            "-p",
            "instagram",
            "-p",
            "local",
            "--table",
            "--min-support",
            "2",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    by = {p["provider"]: p for p in data["providers"]}
    assert by["hashtags"]["labelled"] == 32 and by["local"]["labelled"] == 32
    tags = next(t for t in data["tables"] if t["provider"] == "hashtags")
    assert set(tags["per_bucket"]) == {str(b) for b in range(11)}
    assert {r["label"] for r in tags["lift"]} == {"tag0", "tag1", "tag2"}
    alt = next(t for t in data["tables"] if t["provider"] == "instagram")
    # "May be an image of a0": one alt-text label per account, each on 8 posts
    assert {r["label"] for r in alt["lift"]} == {"a0", "a1", "a2", "a3"}
    res = runner.invoke(
        app, ["labels", "--catalog", str(db), "-p", "local", "--table", "--min-support", "2"]
    )
    # flat generated pictures: no ImageNet label is sure enough, said in one line, no empty table
    assert "no labels to tabulate (local" in res.stdout and "from the cache" in res.stderr
    res = runner.invoke(app, ["labels", "--catalog", str(db), "-p", "hashtags", "--table"])
    assert "top labels per image score (hashtags" in res.stdout and "tag0" in res.stdout


def test_lift_and_suggestion_on_known_data():
    import pandas as pd

    rows, labs = [], []
    for k in range(40):
        score = 8.0 + (k % 3) * 0.5 if k < 20 else 2.0 + (k % 3) * 0.5
        rows.append({"item": f"i{k}", "score": score})
        labs.append({"item": f"i{k}", "score": score, "label": "sunset" if k < 20 else "selfie"})
        labs.append({"item": f"i{k}", "score": score, "label": "sky"})
    stats = label_stats(pd.DataFrame(rows), pd.DataFrame(labs), "test", min_support=5)
    lift = {r["label"]: r for r in stats.lift}
    assert (
        lift["sunset"]["lift"] > 5 and lift["sunset"]["ci95"][0] > 0 and lift["selfie"]["lift"] < -5
    )
    assert "sky" not in lift  # on every post: no "without" group to compare with
    assert (
        stats.per_bucket["8"][0]["label"] == "sunset"
        and stats.per_bucket["2"][0]["label"] == "selfie"
    )
    s = suggest(["selfie"], 2.5, stats)
    assert s.add == ["sunset"] and s.level == "a low score" and "sunset" in s.text
    # the evidence with the advice, and the photo's own content with a clearly negative lift
    assert (
        "sunset scored 6.0 above their account's other posts on average (20 posts of 40)"
        in s.advice
    )
    assert s.avoid == ["selfie"] and "selfie scored 6.0 below" in s.caution
    has_it = suggest(["sunset"], 8.0, stats)
    assert has_it.add == [] and "No content suggestion" in has_it.text
    # never "no label's effect is clearly above zero" while sunset is advised to others
    assert "clearly above zero" not in has_it.text and "already shows" in has_it.text
    assert "sunset" in has_it.text and not has_it.text.endswith("..")


def test_suggestions_name_only_labels_whose_interval_clears_zero():
    """Random statistics: whatever is suggested has a lift interval above zero at the support,
    jointly over every label tested (Bonferroni); when nothing has, the text says so and names
    no label (no 'weak evidence' fallback)."""
    from imagion.labels.suggestions import (
        LabelStats,
        clearly_positive,
        family_z,
        load_bundled_stats,
    )

    rng = np.random.default_rng(3)
    for _ in range(200):
        rows = []
        for k in range(12):
            lift = float(rng.normal(0, 1))
            half = float(rng.uniform(0.1, 2))
            rows.append(
                {
                    "label": f"l{k}",
                    "support": int(rng.integers(1, 30)),
                    "mean_with": 5 + lift,
                    "mean_without": 5.0,
                    "lift": lift,
                    "ci95": [lift - half, lift + half],
                }
            )
        rows.sort(key=lambda r: -r["lift"])
        stats = LabelStats("test", 100, 5.0, rows, {}, min_support=10)
        have = [f"l{k}" for k in range(12) if rng.random() < 0.3]
        s = suggest(have, float(rng.uniform(0, 10)), stats)
        z = family_z(sum(r["support"] >= 10 for r in rows))
        ok = {
            r["label"]
            for r in rows
            if r["support"] >= 10 and r["lift"] - z * (r["ci95"][1] - r["ci95"][0]) / 3.92 > 0
        } - set(have)
        assert set(s.add) <= ok and len(s.add) == min(len(ok), 5)
        assert bool(s.add) or bool(s.avoid) or "No content suggestion" in s.text
        assert "weak" not in s.text
    bundled = load_bundled_stats()
    assert bundled is not None and bundled.posts > 10_000  # instagram-2017
    s = suggest([], 5.0, bundled)
    assert s.add == [r["label"] for r in clearly_positive(bundled)][:5]


@pytest.mark.slow
def test_real_offline_labels(tmp_path):
    celeb = dataset("ig-celeb12")
    crawl = dataset("profilecrawl-978")
    from imagion.catalog.importers import import_sources
    from imagion.catalog.scoring import score_catalog

    for src, provs in (
        (crawl, [Provider.hashtags, Provider.instagram]),
        (celeb, [Provider.instagram]),
    ):
        with Catalog(tmp_path / f"{src.name}.db", create=True) as cat:
            import_sources(cat, [src])
            score_catalog(cat)
            for prov in provs:
                assert label_catalog(cat, prov)["labelled"] > 0
            posts, labelled = post_labels(cat, provs[0])
            assert len(label_stats(posts, labelled, str(provs[0]), min_support=3).lift) > 0


def test_shipped_imagenet_names_match_torchvision():
    from torchvision.models import ResNet50_Weights

    from imagion.models.imagenet import imagenet_names

    assert imagenet_names() == [
        n.lower() for n in ResNet50_Weights.IMAGENET1K_V2.meta["categories"]
    ]


class FailingVision(FakeVision):
    """Answers requests until call number `fail_at`, which raises `exc`."""

    def __init__(self, fail_at: int, exc: BaseException) -> None:
        super().__init__()
        self.fail_at, self.exc = fail_at, exc
        self.answered = 0

    def batch_annotate_images(self, requests, **kwargs):
        call = len(self.calls)
        self.calls.append(list(requests))
        if call == self.fail_at:
            raise self.exc
        self.answered += len(requests)
        return response(len(requests))


def _labelled(db) -> int:
    with Catalog(db) as cat:
        return cat.db.execute("SELECT COUNT(*) FROM labelled WHERE provider='google'").fetchone()[0]


@pytest.fixture(scope="module")
def many_images(tmp_path_factory):
    """A scored catalog of 70 distinct images: 5 Cloud Vision batches (16, 16, 16, 16, 6)."""
    return scored_catalog(tmp_path_factory.mktemp("many"), 7, 10)


@pytest.mark.parametrize("concurrency", [1, 3])
@pytest.mark.parametrize("fail_at", [0, 2, 4])
@pytest.mark.parametrize(
    "exc",
    [KeyboardInterrupt(), gexc.PermissionDenied("quota"), ConnectionError("reset")],
    ids=["ctrl-c", "refused", "network"],
)
def test_interrupted_cloud_vision_run_keeps_every_paid_label(
    many_images, tmp_path, fail_at, concurrency, exc
):
    db = tmp_path / "c.db"
    db.write_bytes(many_images.read_bytes())
    client = FailingVision(fail_at, exc)
    with Catalog(db) as cat:
        expected = KeyboardInterrupt if isinstance(exc, KeyboardInterrupt) else ImagionError
        with pytest.raises(expected):
            label_catalog(cat, Provider.google, client=client, concurrency=concurrency)
    saved = _labelled(db)
    assert saved == client.answered  # every returned batch was saved
    assert saved >= 16 * fail_at // concurrency * (concurrency == 1)
    # the next run pays only for the rest
    again = FakeVision()
    with Catalog(db) as cat:
        summary = label_catalog(cat, Provider.google, client=again, concurrency=concurrency)
    assert sum(len(c) for c in again.calls) == 70 - saved == summary["labelled"]
    assert _labelled(db) == 70


def test_labels_command_shows_progress_of_paid_work(many_images, tmp_path, runner, monkeypatch):
    db = tmp_path / "c.db"
    db.write_bytes(many_images.read_bytes())
    with Catalog(db) as cat, pytest.raises(KeyboardInterrupt):
        label_catalog(
            cat, Provider.google, client=FailingVision(2, KeyboardInterrupt()), concurrency=1
        )
    monkeypatch.setattr(vis, "make_client", lambda: FakeVision())
    res = runner.invoke(
        app, ["labels", "--catalog", str(db), "-p", "google", "--yes", "--concurrency", "2"]
    )
    assert res.exit_code == 0, res.output
    assert "32 already labelled, 38 to go" in res.stderr and "~$0.06" in res.stderr


def test_save_stats_writes_loadable_label_statistics(tmp_path, runner):
    from imagion.labels.suggestions import LabelStats

    db = scored_catalog(tmp_path, 4, 8)
    out = tmp_path / "stats.json"
    res = runner.invoke(
        app,
        [
            "labels",
            "--catalog",
            str(db),
            "-p",
            "hashtags",
            "--save-stats",
            str(out),
            "--min-support",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    stats = LabelStats.load(out)
    assert stats.provider == "hashtags" and stats.posts == 32
    assert {r["label"] for r in stats.lift} == {"tag0", "tag1", "tag2"}
    assert not list(tmp_path.glob(".stats.json*"))  # written atomically
