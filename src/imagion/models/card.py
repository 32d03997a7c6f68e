"""The checkpoint card: everything a checkpoint says about itself apart from its weights, as one
typed record (like a timm or nanochat model card). `best.pt` and `last.pt` carry the same card;
every reader uses its attributes, never string keys. Loads without PyTorch.

"No calibration" is a state, not a default: `calibration is None` (a `last.pt`, written for
--resume, or a run that had nothing held out to fit one on); `rank`, `compare` and `eval` say so.
Checkpoints of earlier imagion versions load (their extra keys at the top level are read into
the card); an unreadable card is refused with one line naming the file and the field."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from imagion import __version__
from imagion._types import JSONValue
from imagion.errors import CheckpointError
from imagion.files import CHECKPOINT_MARK
from imagion.models.transforms import Calibration, Preprocess

CHECKPOINT_FORMAT = CHECKPOINT_MARK  # the card says it is imagion's (files.written_by_imagion)
CHECKPOINT_VERSION = 2  # 2: the card's shape (training, metrics, evaluation); 1 read as well
EVALUATION_KEYS = ("cv", "transfer", "model_card")  # what the bundled model's build records


@dataclass
class TrainingRecord:
    """What a run trained on, and how: enough to tell held-out posts from seen ones."""

    catalog: str | None = None
    split: str = "account"  # "account" or "time"
    train_accounts: list[str] = field(default_factory=list)
    val_accounts: list[str] = field(default_factory=list)
    train_posts: int = 0
    val_posts: int = 0
    skipped_images: int = 0
    train_time_range: dict[str, list[JSONValue]] = field(default_factory=dict)  # [first, last] time
    # [first, last] time of each account's validation posts (what the score range was fitted on)
    val_time_range: dict[str, list[JSONValue]] = field(default_factory=dict)
    undated_excluded: int = 0
    split_seed: int = 0
    val_fraction: float = 0.0
    score_settings: dict[str, JSONValue] = field(default_factory=dict)
    options: dict[str, JSONValue] = field(default_factory=dict)  # the recipe (TrainOptions.to_dict)
    command: str = ""
    world_size: int = 1
    device: str = "cpu"
    init: str | None = None  # the --init checkpoint it started from
    label_stats: dict[str, JSONValue] | None = None  # the user's statistics behind suggestions

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: object) -> TrainingRecord | None:
        if not isinstance(d, dict):
            return None
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known and v is not None})

    def time_range(self, account: str) -> tuple[int | None, int | None]:
        lo, hi = (self.train_time_range.get(account) or [None, None])[:2]
        return (lo if isinstance(lo, int) else None), (hi if isinstance(hi, int) else None)


@dataclass
class CheckpointCard:
    """A checkpoint's description: architecture, preprocessing, calibration, training, results."""

    arch: str
    config: dict[str, JSONValue]
    preprocess: Preprocess
    calibration: Calibration | None = None  # None: no calibration (said, never invented)
    state_scope: str = "head"  # "head": only the head is stored (a frozen backbone), or "full"
    training: TrainingRecord | None = None
    metrics: dict[str, JSONValue] = field(default_factory=dict)  # best_epoch, per_epoch…
    evaluation: dict[str, JSONValue] = field(default_factory=dict)  # cv, transfer, model_card
    imagion_version: str = __version__
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        """The card as the checkpoint file stores it (weights are added beside it)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_VERSION,
            "imagion_version": self.imagion_version,
            "created": self.created,
            "arch": self.arch,
            "config": dict(self.config),
            "preprocess": self.preprocess.to_dict(),
            "state_scope": self.state_scope,
            "calibration": self.calibration.to_dict() if self.calibration else None,
            "training": self.training.to_dict() if self.training else None,
            "metrics": self.metrics,
            "evaluation": self.evaluation,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], path: str | Path = "checkpoint") -> CheckpointCard:
        """The card of a checkpoint's dict (any format version); ImagionError naming the field."""
        if d.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"{path}: not an imagion checkpoint (no '{CHECKPOINT_FORMAT}' header)."
            )
        version = d.get("format_version", 1)
        if not isinstance(version, int) or version > CHECKPOINT_VERSION:
            raise CheckpointError(
                f"{path}: checkpoint format {version!r} comes from a newer imagion "
                f"(this one reads up to {CHECKPOINT_VERSION}); upgrade imagion to use it."
            )
        try:
            preprocess = Preprocess.from_dict(d.get("preprocess"))
            cal = d.get("calibration")
            calibration = None if cal is None else Calibration.from_dict(cal)
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"{path}: damaged checkpoint ({exc}).") from None
        config = d.get("config") or {}
        if not isinstance(config, dict):
            raise CheckpointError(f"{path}: its model config is not a mapping of options.")
        evaluation = dict(d.get("evaluation") or {})
        evaluation |= {k: d[k] for k in EVALUATION_KEYS if k in d}  # format 1: at the top
        metrics = d.get("metrics") if isinstance(d.get("metrics"), dict) else {}
        return cls(
            arch=str(d.get("arch")),
            config=config,
            preprocess=preprocess,
            calibration=calibration,
            state_scope=str(d.get("state_scope") or "head"),
            # format 1's last.pt of imagion 0.2 kept the run's record at the top level
            training=TrainingRecord.from_dict(
                d.get("training") if "training" in d or "train_accounts" not in d else d
            ),
            metrics=metrics or {},
            evaluation=evaluation,
            imagion_version=str(d.get("imagion_version") or "unknown"),
            created=str(d.get("created") or ""),
        )
