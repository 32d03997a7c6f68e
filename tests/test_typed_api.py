"""The library's verbs: typed (a type checker sees the results), options checked at the verb
before anything is written or billed, and the command line goes through them."""

from __future__ import annotations

import subprocess
import sys

import pytest

import imagion
from imagion.errors import OptionError
from tests.helpers import ROOT, make_instaloader, scored_catalog


def test_rank_top_keeps_the_best_k():
    ranked = imagion.rank([ROOT / "data" / "samples"], top=2)
    assert len(ranked) == 2 and ranked.scored == 5
    assert ranked[0].score >= ranked[1].score
    with pytest.raises(OptionError) as err:
        imagion.rank([ROOT / "data" / "samples"], top=0)
    assert err.value.option == "top"


def test_a_bad_timezone_is_refused_before_a_catalog_exists(tmp_path):
    make_instaloader(tmp_path / "ig", {"a": [1, 2, 3]})
    with pytest.raises(OptionError) as err:
        imagion.import_posts([tmp_path / "ig"], tmp_path / "c.db", timezone="Mars/Olympus")
    assert err.value.option == "timezone"
    assert not (tmp_path / "c.db").exists()


def test_a_mapping_typo_is_refused_not_replaced(tmp_path):
    db = scored_catalog(tmp_path, 2, 4)
    before = db.read_bytes()
    for kwargs in ({"mapping": "percentil"}, {"metric": "like"}):
        with pytest.raises(OptionError) as err:
            imagion.score(db, **kwargs)
        assert err.value.option == next(iter(kwargs))
    assert db.read_bytes() == before
    assert imagion.score(db, mapping="minmax").settings["mapping"] == "minmax"


def test_label_checks_for_scores_before_labelling(tmp_path, monkeypatch):
    from imagion.workflows import verbs

    make_instaloader(tmp_path / "ig", {"a": [1, 2, 3], "b": [4, 5, 6]})
    imagion.import_posts([tmp_path / "ig"], tmp_path / "c.db")
    calls = []
    monkeypatch.setattr(verbs, "label_catalog", lambda *a, **k: calls.append(a))
    with pytest.raises(imagion.CatalogError, match="run `imagion score` first"):
        imagion.label(tmp_path / "c.db", provider="hashtags")
    assert calls == []  # nothing labelled, nothing billed
    with pytest.raises(OptionError):
        imagion.label(tmp_path / "c.db", provider="gogle")


@pytest.mark.slow
def test_a_type_checker_sees_the_results(tmp_path):
    script = tmp_path / "user.py"
    script.write_text(
        "import imagion\n\n"
        "ranked = imagion.rank(['photos'], top=2)\n"
        "best: float = ranked[0].score\n"
        "report = imagion.score('me.db', mapping='normal')\n"
        "n: int = report.scored\n"
        "oops = ranked[0].score + 'x'\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--follow-imports=silent",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(script),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and "user.py:7" in errors[0] and '"float" and "str"' in errors[0], (
        done.stdout
    )


def test_the_type_checkers_facade_names_what_the_lazy_table_names():
    import ast

    tree = ast.parse((ROOT / "src" / "imagion" / "__init__.py").read_text())
    block = next(
        n for n in tree.body if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)
    )
    seen = {a.asname or a.name for n in ast.walk(block) if isinstance(n, ast.ImportFrom)
            for a in n.names}  # fmt: skip
    from imagion import _LAZY

    assert seen == set(_LAZY)


def test_compare_group_and_pick_check_their_options_at_the_verb(tmp_path):
    a, b = (str(ROOT / "data" / "samples" / n) for n in ("rocket.jpg", "coffee.jpg"))
    calls = [
        (lambda: imagion.compare(a, b, device="gpu"), "device"),
        (lambda: imagion.group([a, b], device="gpu"), "device"),
        (lambda: imagion.pick([a, b], device="gpu"), "device"),
        (lambda: imagion.pick([a, b], n=0), "n"),
        (lambda: imagion.group([a, b], similarity=2.0), "similarity"),
        (lambda: imagion.group([a, b], batch_size=0), "batch_size"),
        (lambda: imagion.rank([a, b], batch_size=0), "batch_size"),
    ]
    for call, option in calls:
        with pytest.raises(OptionError) as err:
            call()
        assert err.value.option == option
    c = imagion.compare(a, b)  # str paths, as the docs show them
    assert {c.a.path.name, c.b.path.name} == {"rocket.jpg", "coffee.jpg"}


RESULTS = [  # every public result type: what the verbs return, and the records inside
    "RankResult", "Ranked", "Comparison", "GroupResult", "Group", "PickResult", "Pick",
    "ImportReport", "ScoreReport", "EvalReport", "TrainResult", "BatchRankResult", "LabelReport",
    "PostsFrame", "Architecture", "CheckpointCard", "TrainingRecord", "Recipe", "CatalogInfo",
]  # fmt: skip


def _annotations(cls: type) -> dict[str, str]:
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        for name, ann in getattr(klass, "__annotations__", {}).items():
            found[name] = ann if isinstance(ann, str) else repr(ann)
    return found


def test_no_public_result_has_any_inside():
    import dataclasses
    import re
    import typing

    seen: set[type] = set()
    untyped: list[str] = []

    def walk(cls: type) -> None:
        if cls in seen:
            return
        seen.add(cls)
        module = sys.modules[cls.__module__]
        for name, text in _annotations(cls).items():
            if re.search(r"\bAny\b|\b(dict|list)\b(?!\[)", text):
                untyped.append(f"{cls.__name__}.{name}: {text}")
            for word in re.findall(r"[A-Za-z_]\w*", text):
                inner = getattr(module, word, None) or getattr(imagion, word, None)
                if (
                    isinstance(inner, type)
                    and inner.__module__.startswith("imagion")
                    and (dataclasses.is_dataclass(inner) or typing.is_typeddict(inner))
                ):
                    walk(inner)

    for name in RESULTS:
        walk(getattr(imagion, name))
    assert untyped == []
    assert len(seen) > len(RESULTS)  # the walk went inside (EvalReport's figures, …)


def test_train_takes_typed_fields_and_refuses_a_wrong_one(tmp_path):
    from dataclasses import fields

    from imagion.training.options import TrainFields

    assert set(TrainFields.__annotations__) == {f.name for f in fields(imagion.TrainOptions)}
    db = tmp_path / "none.db"
    for kwargs, option in (({"epochs": "three"}, "epochs"), ({"epoch": 3}, "epoch")):
        with pytest.raises(OptionError) as err:
            imagion.train(db, **kwargs)
        assert err.value.option == option
    assert "`epochs`" in str(err.value)  # the nearest field is suggested
    assert not db.exists()


@pytest.mark.slow
def test_mypy_strict_on_a_user_script_with_str_paths(tmp_path):
    script = tmp_path / "user.py"
    script.write_text(
        "import imagion\n\n"
        "ranked = imagion.rank(['photos'], top=2, model='default')\n"
        "c = imagion.compare('a.jpg', 'b.jpg', device='cpu')\n"
        "g = imagion.group(['photos'], similarity=0.9)\n"
        "p = imagion.pick(['photos'], n=3)\n"
        "info = imagion.info('me.db')\n"
        "posts: int = info['posts']\n"
        "imagion.import_posts(['export.zip'], 'me.db')\n"
        "t = imagion.train('me.db', epochs=3, out='runs/me', split='time')\n"
        "e = imagion.evaluate('me.db', t.checkpoint)\n"
        "worst: float = min(a['accuracy'] for a in e.per_account)\n"
        "r = imagion.score('me.db')\n"
        "card = imagion.read_card('runs/me/best.pt')\n"
        "with imagion.Catalog('me.db') as cat:\n    print(cat.path, card.arch)\n"
        "print(ranked[0].score, c.p_a_wins, len(g), len(p), r.scored, worst)\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--cache-dir",
         str(tmp_path / "cache"), str(script)],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout
