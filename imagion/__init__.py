"""imagion: predict how well an Instagram image will do before it is posted.

The public API, imported lazily (`import imagion` loads neither torch nor pandas):

    import imagion
    ranked = imagion.rank(["data/samples"])          # best first: ranked[0].path, ranked[0].score
    imagion.import_posts(["posts.csv"], "me.db"); imagion.score("me.db")
    report = imagion.cross_validate("me.db", folds=5, image_size=224)

See docs/python-api.md.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("imagion")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+local"

from imagion.errors import (
    CatalogError,
    CheckpointError,
    ImagionError,
    InputError,
    OptionError,
)

_LAZY = {
    "import_posts": "imagion.workflows.verbs",
    "score": "imagion.workflows.verbs",
    "featurize": "imagion.workflows.verbs",
    "train": "imagion.workflows.verbs",
    "evaluate": "imagion.workflows.verbs",
    "cross_validate": "imagion.workflows.verbs",
    "label": "imagion.workflows.verbs",
    "LabelReport": "imagion.workflows.verbs",
    "rank": "imagion.workflows.verbs",
    "BatchRankResult": "imagion.scale.ray_data",
    "compare": ("imagion.inference.rank", "compare_images"),
    "group": ("imagion.inference.groups", "group_images"),
    "pick": ("imagion.inference.pick", "pick_images"),
    "load_model": ("imagion.models.checkpoints", "load_checkpoint"),
    "read_card": "imagion.models.checkpoints",
    "rewrite_card": "imagion.models.checkpoints",
    "CheckpointCard": "imagion.models.card",
    "TrainingRecord": "imagion.models.card",
    "Catalog": "imagion.catalog.store",
    "TrainOptions": "imagion.training.options",
    "TrainResult": "imagion.training.options",
    "Recipe": "imagion.training.options",
    "EvalReport": "imagion.evaluation.metrics",
    "RankResult": "imagion.inference.rank",
    "Ranked": "imagion.inference.rank",
    "Comparison": "imagion.inference.rank",
    "Group": "imagion.inference.groups",
    "GroupResult": "imagion.inference.groups",
    "Pick": "imagion.inference.pick",
    "PickResult": "imagion.inference.pick",
    "ImportReport": "imagion.catalog.importers",
    "ScoreReport": "imagion.catalog.scoring",
}

__all__ = [
    "CatalogError",
    "CheckpointError",
    "ImagionError",
    "InputError",
    "OptionError",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'imagion' has no attribute {name!r}")
    module, attr = (where, name) if isinstance(where, str) else where
    value = getattr(import_module(module), attr)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
