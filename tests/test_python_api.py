"""The public Python API: light to import, and every example of docs/python-api.md runs."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT

DOC = (ROOT / "docs" / "python-api.md").read_text(encoding="utf-8")
EXAMPLES = re.findall(r"```python\n(.*?)```", DOC, flags=re.S)


def test_import_imagion_is_light_and_offers_the_verbs():
    code = (
        "import sys, imagion\n"
        "assert 'torch' not in sys.modules and 'pandas' not in sys.modules\n"
        "for name in ('rank', 'compare', 'import_posts', 'score', 'featurize', 'train', "
        "'evaluate', 'cross_validate', 'load_model', 'Catalog', 'TrainOptions', 'EvalReport'):\n"
        "    assert callable(getattr(imagion, name)), name\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_unknown_attribute_is_an_attribute_error():
    import imagion

    with pytest.raises(AttributeError):
        _ = imagion.no_such_thing


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"example{k}" for k in range(len(EXAMPLES))])
def test_docs_examples_run(example, monkeypatch):
    monkeypatch.chdir(ROOT)
    exec(compile(example, "docs/python-api.md", "exec"), {"__name__": "__doc_example__"})


README_EXAMPLES = re.findall(
    r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S
)


@pytest.mark.parametrize(
    "example", README_EXAMPLES, ids=[f"readme{k}" for k in range(len(README_EXAMPLES))]
)
def test_readme_python_blocks_run(example, monkeypatch):
    """The README's Python runs as written, from the repository root (no dataset needed)."""
    monkeypatch.chdir(ROOT)
    exec(compile(example, "README.md", "exec"), {"__name__": "__readme_example__"})


def test_the_readme_has_python_to_run():
    assert README_EXAMPLES and all("imagion" in e for e in README_EXAMPLES)


def test_the_readme_one_liner():
    code = "import imagion; r = imagion.rank(['data/samples']); print(r[0].path, r[0].score)"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True, text=True
    )
    assert out.stdout.startswith("data/samples/")


@pytest.mark.slow
def test_the_bundled_model_builds_on_the_public_api(tmp_path):
    """scripts/build_default_model.py, the library's own client, end to end on a tiny generated
    crawl (6 accounts) into a temporary folder: the acceptance test of the front door."""
    import importlib.util
    import sys

    from helpers import ROOT, make_instaloader, write_image

    import imagion

    data = tmp_path / "datasets"
    crawl = data / "instagram-2017"
    rows = ["account,image,likes,posted_at"]
    for a in range(6):
        for i in range(6):
            likes = 100 + 37 * ((a + 3 * i) % 7)
            write_image(crawl / f"a{a}_{i}.jpg", likes / 400, seed=a * 10 + i)
            rows.append(f"acct{a},a{a}_{i}.jpg,{likes},2017-03-{i + 1:02d}")
    (crawl / "posts.csv").write_text("\n".join(rows))
    make_instaloader(data / "ig-celeb12", {"x": [5, 9, 14, 20], "y": [3, 8, 2, 11]})
    spec = importlib.util.spec_from_file_location(
        "build_default", ROOT / "scripts/build_default_model.py"
    )
    build = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["build_default"] = build
    spec.loader.exec_module(build)  # type: ignore[union-attr]
    out = tmp_path / "out"
    out.mkdir()
    build.build(data, out / "m.pt", out / "stats.json", out / "onnx")
    card = imagion.read_card(out / "m.pt")
    assert card.training is not None and len(card.training.train_accounts) == 6
    assert card.evaluation["cv"]["pairs"] > 0 and "model_card" in card.evaluation
    assert card.calibration is not None and (out / "onnx" / "model.onnx").is_file()
    assert (out / "stats.json").is_file()
    ranked = imagion.rank([str(crawl)], model=out / "m.pt")
    assert len(ranked) == 36
