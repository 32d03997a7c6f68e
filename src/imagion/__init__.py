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
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("imagion")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+local"

from imagion.errors import (
    CatalogError,
    CheckpointError,
    ImagionError,
    InputError,
    MissingExtraError,
    ModelError,
    OptionError,
    ServiceError,
)

_LAZY = {
    "import_posts": "imagion.workflows.verbs",
    "architectures": "imagion.workflows.verbs",
    "Architecture": "imagion.workflows.verbs",
    "info": "imagion.workflows.verbs",
    "posts": "imagion.workflows.verbs",
    "PostsFrame": "imagion.workflows.verbs",
    "score": "imagion.workflows.verbs",
    "featurize": "imagion.workflows.verbs",
    "train": "imagion.workflows.verbs",
    "evaluate": "imagion.workflows.verbs",
    "cross_validate": "imagion.workflows.verbs",
    "label": "imagion.workflows.verbs",
    "LabelReport": "imagion.workflows.verbs",
    "rank": "imagion.workflows.photos",
    "rank_on_ray": "imagion.workflows.photos",
    "BatchRankResult": "imagion.scale.ray_data",
    "compare": "imagion.workflows.photos",
    "group": "imagion.workflows.photos",
    "pick": "imagion.workflows.photos",
    "load_model": ("imagion.models.checkpoints", "load_checkpoint"),
    "read_card": "imagion.models.checkpoints",
    "rewrite_card": "imagion.models.checkpoints",
    "CheckpointCard": "imagion.models.card",
    "TrainingRecord": "imagion.models.card",
    "Catalog": "imagion.catalog.store",
    "CatalogInfo": "imagion.catalog.store",
    "PathLike": "imagion._types",
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

if TYPE_CHECKING:  # what a type checker and an IDE see: the real signatures and results
    from imagion._types import PathLike as PathLike
    from imagion.catalog.importers import ImportReport as ImportReport
    from imagion.catalog.scoring import ScoreReport as ScoreReport
    from imagion.catalog.store import Catalog as Catalog
    from imagion.catalog.store import CatalogInfo as CatalogInfo
    from imagion.evaluation.metrics import EvalReport as EvalReport
    from imagion.inference.groups import Group as Group
    from imagion.inference.groups import GroupResult as GroupResult
    from imagion.inference.pick import Pick as Pick
    from imagion.inference.pick import PickResult as PickResult
    from imagion.inference.rank import Comparison as Comparison
    from imagion.inference.rank import Ranked as Ranked
    from imagion.inference.rank import RankResult as RankResult
    from imagion.models.card import CheckpointCard as CheckpointCard
    from imagion.models.card import TrainingRecord as TrainingRecord
    from imagion.models.checkpoints import load_checkpoint as load_model  # noqa: F401 (re-exported)
    from imagion.models.checkpoints import read_card as read_card
    from imagion.models.checkpoints import rewrite_card as rewrite_card
    from imagion.scale.ray_data import BatchRankResult as BatchRankResult
    from imagion.training.options import Recipe as Recipe
    from imagion.training.options import TrainOptions as TrainOptions
    from imagion.training.options import TrainResult as TrainResult
    from imagion.workflows.photos import compare as compare
    from imagion.workflows.photos import group as group
    from imagion.workflows.photos import pick as pick
    from imagion.workflows.photos import rank as rank
    from imagion.workflows.photos import rank_on_ray as rank_on_ray
    from imagion.workflows.verbs import Architecture as Architecture
    from imagion.workflows.verbs import LabelReport as LabelReport
    from imagion.workflows.verbs import PostsFrame as PostsFrame
    from imagion.workflows.verbs import architectures as architectures
    from imagion.workflows.verbs import cross_validate as cross_validate
    from imagion.workflows.verbs import evaluate as evaluate
    from imagion.workflows.verbs import featurize as featurize
    from imagion.workflows.verbs import import_posts as import_posts
    from imagion.workflows.verbs import info as info
    from imagion.workflows.verbs import label as label
    from imagion.workflows.verbs import posts as posts
    from imagion.workflows.verbs import score as score
    from imagion.workflows.verbs import train as train

__all__ = [
    "CatalogError",
    "CheckpointError",
    "ImagionError",
    "InputError",
    "MissingExtraError",
    "ModelError",
    "OptionError",
    "ServiceError",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:  # the lazy import at run time
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'imagion' has no attribute {name!r}")
    module, attr = (where, name) if isinstance(where, str) else where
    value = getattr(import_module(module), attr)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
