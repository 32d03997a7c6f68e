"""The house: module map (docs/architecture.md) = tree, no import cycles, every module imports alone, a light CLI,
commands in workflow order, every command documented with an example."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from imagion.cli import app
from tests.helpers import ROOT, write_image

SRC = ROOT / "src"
PACKAGE = SRC / "imagion"
README = (ROOT / "README.md").read_text(encoding="utf-8")
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
WORKFLOW = [  # what a newcomer wants first, then their own model in workflow order
    "rank",
    "compare",
    "pick",
    "import",
    "score",
    "info",
    "posts",
    "labels",
    "models",
    "featurize",
    "train",
    "eval",
    "serve",
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def test_the_module_map_in_docs_architecture_is_the_tree():
    section = ARCHITECTURE.split("### Module map", 1)[1].split("```", 2)[1]
    listed = set(re.findall(r"^(imagion/[\w/]+\.py)", section, flags=re.M))
    actual = {str(p.relative_to(SRC)) for p in PACKAGE.rglob("*.py")}
    sub_inits = {
        p
        for p in actual
        if p.endswith("/__init__.py") and p.count("/") == 2 and p != "imagion/cli/__init__.py"
    }
    assert listed == actual - sub_inits, (
        sorted(listed - actual),
        sorted(actual - sub_inits - listed),
    )
    for init in sub_inits:  # "hold only their docstring"
        body = ast.parse((SRC / init).read_text()).body
        assert len(body) == 1 and isinstance(body[0], ast.Expr), init


def _imagion_imports(nodes) -> set[str]:
    """The imagion modules (and module.attribute names) these import statements name."""
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("imagion")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("imagion"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _top_level_imports(path: Path, name: str) -> set[str]:
    """imagion modules imported when `name` is imported (module level, not TYPE_CHECKING)."""
    body = ast.parse(path.read_text()).body
    return _imagion_imports(
        n for n in body if not (isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test))
    )


def _all_imports(path: Path) -> set[str]:
    """imagion modules `path` imports anywhere: module level, inside functions, under
    TYPE_CHECKING too (a function-level import is still an arrow between the modules). The
    package's own TYPE_CHECKING block is its facade for type checkers (what `_LAZY` names at
    run time), not a dependency: it is left out, as the lazy table is."""
    if path == PACKAGE / "__init__.py":
        return _top_level_imports(path, "imagion")
    return _imagion_imports(ast.walk(ast.parse(path.read_text())))


def _graph(imports) -> dict[str, set[str]]:
    modules = _modules()
    return {m: {d for d in imports(p) if d in modules and d != m} for m, p in modules.items()}


@pytest.mark.parametrize("level", ["module level", "any level"])
def test_no_import_cycles(level):
    if level == "module level":
        graph = _graph(lambda p: _top_level_imports(p, ""))
    else:
        graph = _graph(_all_imports)
    state: dict[str, int] = {}

    def visit(m: str, trail: list[str]) -> None:
        state[m] = 1
        for d in graph[m]:
            if state.get(d) == 1:
                pytest.fail("import cycle: " + " → ".join([*trail, m, d]))
            if d not in state:
                visit(d, [*trail, m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])


# third-party packages too heavy for the light paths (`imagion --help`, rank, compare, serve)
HEAVY = {
    "torch",
    "torchvision",
    "efficientnet_lite_pytorch",
    "pandas",
    "ray",
    "onnxruntime",
    "onnx",
    "fastapi",
    "starlette",
    "uvicorn",
    "matplotlib",
    "google",
    "cv2",
    "pyarrow",
    "scipy",
}


def _module_level_nodes(tree: ast.Module) -> list[ast.AST]:
    """The nodes run when the module is imported (outside defs and TYPE_CHECKING)."""
    return [
        node
        for top in tree.body
        if not isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and not (isinstance(top, ast.If) and "TYPE_CHECKING" in ast.unparse(top.test))
        for node in ast.walk(top)
    ]


def _heavy_at_import() -> dict[str, set[str]]:
    """For each imagion module, the heavy packages that importing it loads (at module level,
    through other imagion modules and the parent packages)."""
    modules = _modules()
    direct: dict[str, set[str]] = {}
    deps: dict[str, set[str]] = {}
    for name, path in modules.items():
        nodes = _module_level_nodes(ast.parse(path.read_text()))
        roots = {a.name for n in nodes if isinstance(n, ast.Import) for a in n.names}
        roots |= {
            n.module for n in nodes if isinstance(n, ast.ImportFrom) and n.module and not n.level
        }
        direct[name] = {r.split(".")[0] for r in roots} & HEAVY
        parents = {".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 1)}
        deps[name] = (_imagion_imports(nodes) | parents) & set(modules) - {name}
    out: dict[str, set[str]] = {}

    def heavy(name: str) -> set[str]:
        if name not in out:
            out[name] = set()  # no cycles at module level (tested above); this only guards
            out[name] = direct[name].union(*(heavy(d) for d in deps[name]))
        return out[name]

    for name in modules:
        heavy(name)
    return out


def _unjustified_function_imports(
    modules: dict[str, Path] | None = None,
) -> list[tuple[str, int, str]]:
    """Function-level imports of imagion modules that neither keep a heavy package off the
    importing module nor carry a comment (on the line or the line above) saying why."""
    known = _modules()
    heavy = _heavy_at_import()
    found = []
    for name, path in (modules or known).items():
        text = path.read_text()
        lines = text.splitlines()
        tree = ast.parse(text)
        at_import = {id(n) for n in _module_level_nodes(tree)}
        typing_only = {
            id(n)
            for top in tree.body
            if isinstance(top, ast.If) and "TYPE_CHECKING" in ast.unparse(top.test)
            for n in ast.walk(top)
        }
        mine = heavy.get(name, set())
        for node in ast.walk(tree):
            if (
                not isinstance(node, ast.Import | ast.ImportFrom)
                or id(node) in at_import | typing_only
            ):
                continue
            targets = _imagion_imports([node]) & set(known)
            if not targets or set().union(*(heavy[t] for t in targets)) - mine:
                continue
            said = lines[node.lineno - 2 : node.end_lineno]
            if any("#" in line for line in said[1:]) or said[0].strip().startswith("#"):
                continue
            found.append((name, node.lineno, ", ".join(sorted(targets))))
    return found


def test_function_level_imports_say_why():
    """An import of an imagion module inside a function either keeps a heavy package (HEAVY)
    off the importing module or says why on its line or the line above (a cycle, the order of
    `imagion --help`...); any other belongs at the top of the module."""
    assert _unjustified_function_imports() == []


def test_the_function_import_check_catches_one(tmp_path):
    fake = tmp_path / "fake.py"
    fake.write_text(
        "def light():\n"
        "    from imagion.errors import InputError\n"
        "\n"
        "\n"
        "def said():\n"
        "    # keeps this module's import order\n"
        "    from imagion.files import output_file\n"
        "    import imagion.problems  # says why\n"
        "\n"
        "\n"
        "def heavy():\n"
        "    from imagion.inference.torch_forward import forward_uint8\n"
    )
    found = _unjustified_function_imports({"imagion.fake": fake})
    assert found == [("imagion.fake", 2, "imagion.errors")]


# the layers, import-linter style: (importer prefix, forbidden prefix, why)
LIBRARY = [
    "catalog",
    "scale",
    "models",
    "training",
    "evaluation",
    "inference",
    "labels",
    "serve",
    "workflows",
]
FORBIDDEN = [
    *(
        (f"imagion.{p}", "imagion.cli", "the library never imports the command line")
        for p in LIBRARY
    ),
    ("imagion.inference", "imagion.training", "inference never imports training"),
    ("imagion.evaluation", "imagion.training", "evaluation metrics import no training code"),
    ("imagion.evaluation", "imagion.workflows", "evaluation metrics sit below the workflows"),
    ("imagion.models", "imagion.training", "models sit below training"),
    ("imagion.models", "imagion.labels", "models sit below the labels (the ImageNet labeller too)"),
    ("imagion.catalog", "imagion.models", "the catalog knows no models"),
]


def test_layers_are_respected_at_any_level():
    graph = _graph(_all_imports)
    broken = [
        f"{m} imports {d}: {why}"
        for m, deps in graph.items()
        for d in deps
        for low, high, why in FORBIDDEN
        if m.startswith(low) and d.startswith(high)
    ]
    assert broken == []


def test_the_layer_check_catches_a_violation(tmp_path):
    """The check above cannot pass vacuously: a function-level import of training from
    inference is seen."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from imagion.training.loop import train\n")
    assert "imagion.training.loop" in _all_imports(bad)


def test_every_module_imports_on_its_own():
    code = (
        "import importlib, sys\n"
        f"names = {sorted(_modules())!r}\n"
        "for n in names:\n"
        "    for k in [k for k in sys.modules if k == 'imagion' or k.startswith('imagion.')]:\n"
        "        del sys.modules[k]\n"
        "    importlib.import_module(n)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]


def test_cli_and_rank_path_import_neither_torch_nor_pandas(tmp_path):
    image = write_image(tmp_path / "a.jpg", 0.5)
    env_cache = str(tmp_path / "cache")
    warm = [sys.executable, "-m", "imagion", "rank", str(image), "--device", "cpu", "--json"]
    subprocess.run(
        warm,
        check=True,
        capture_output=True,
        env={"IMAGION_CACHE": env_cache, "PATH": "/usr/bin:/bin"},
    )
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "import imagion.cli\n"
        "light = not ({'torch', 'pandas'} & set(sys.modules))\n"
        f"r = CliRunner().invoke(imagion.cli.app, ['rank', {str(image)!r}, '--device', 'cpu', '--json'])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = {'torch', 'pandas'} & set(sys.modules)\n"
        "print(light, sorted(heavy))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"IMAGION_CACHE": env_cache, "PATH": "/usr/bin:/bin"},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.split("\n")[-2] == "True []"


def test_help_lists_commands_in_workflow_order(runner):
    res = runner.invoke(app, ["--help"])
    names = re.findall(r"^│ (\w+) ", res.stdout, flags=re.M)
    assert names == WORKFLOW


@pytest.mark.parametrize("command", WORKFLOW)
def test_every_command_is_documented_with_help_and_example(command, runner):
    res = runner.invoke(app, [command, "--help"])
    assert res.exit_code == 0 and "Example:" in res.stdout
    assert f"imagion {command}" in README  # the README shows it in use


def test_version(runner):
    from imagion import __version__

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.stdout.strip() == f"imagion {__version__}"


def test_models_command_lists_the_registry(runner):
    import json

    res = runner.invoke(app, ["models", "--json"])
    rows = {r["arch"]: r for r in json.loads(res.stdout)}
    assert rows["seed-cnn"]["parameters"] == 17_400_865 and rows["seed-cnn"]["input"] == 100
    assert rows["effnet-lite0"]["input"] == 224


def _literals_outside_docstrings(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
    ]


def test_no_module_outside_the_cli_names_a_flag():
    """The library names parameters (`min_ratio`); the command line maps them to flags."""
    flag = re.compile(r"(?<![\w-])--[a-z][a-z-]+")
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for path in PACKAGE.rglob("*.py")
        if "cli" not in path.relative_to(PACKAGE).parts
        for line, text in _literals_outside_docstrings(path)
        if flag.search(text)
    ]
    assert found == []


def test_the_cli_writes_library_parameters_as_flags(runner, tmp_path):
    from imagion.errors import OptionError
    from imagion.training.options import TrainOptions

    with pytest.raises(OptionError) as info:
        TrainOptions(epochs=0).check()
    assert (info.value.option, info.value.value) == ("epochs", 0)
    assert str(info.value).startswith("`epochs` 0:")  # the library's own wording
    from tests.helpers import scored_catalog

    db = scored_catalog(tmp_path, 2, 4)
    res = runner.invoke(app, ["score", "--catalog", str(db), "--window", "1"])
    assert res.exit_code == 1 and "error: --window 1: use at least 2 posts." in res.stderr
    res = runner.invoke(app, ["train", "--catalog", str(db), "--epochs", "0"])
    assert "error: --epochs 0: train at least 1 epoch." in res.stderr


def test_only_the_scale_package_imports_ray():
    """The light install stays free of Ray: one module knows it, behind the `ray` extra."""

    def imports_ray(path: Path) -> bool:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            if any(n == "ray" or n.startswith("ray.") for n in names):
                return True
        return False

    users = sorted(m for m, path in _modules().items() if imports_ray(path))
    assert users == ["imagion.scale.ray_data"]
    pyproject = (ROOT / "pyproject.toml").read_text()
    core = pyproject.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert "ray" not in core and 'ray = ["ray[data]' in pyproject


def test_the_library_warns_through_its_logger():
    """Outside the command line nothing prints or calls warnings.warn: what the library has to
    say goes to the `imagion` logger (INFO, WARNING), which the CLI shows and a program sets."""
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in PACKAGE.rglob("*.py")
        if "cli" not in path.relative_to(PACKAGE).parts
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and ast.unparse(node.func) in {"print", "warnings.warn", "warn"}
    ]
    assert found == []
