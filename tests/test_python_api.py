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


def test_the_readme_one_liner():
    code = "import imagion; r = imagion.rank(['data/samples']); print(r[0].path, r[0].score)"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True, text=True
    )
    assert out.stdout.startswith("data/samples/")
