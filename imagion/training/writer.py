"""What a training run leaves on disk: `last.pt` and `metrics.csv` after every epoch, `best.pt`
whenever the validation metric improves (all written atomically)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from imagion.files import atomic_path
from imagion.models.checkpoints import checkpoint_payload, save_checkpoint
from imagion.models.networks import ImagionModel
from imagion.models.transforms import Calibration

METRIC_KEYS = ["epoch", "train_loss", "val_loss", "val_pairwise_accuracy", "images_per_s"]


@dataclass
class Best:
    accuracy: float = -1.0
    epoch: int = 0
    state: dict[str, torch.Tensor] | None = None


class CheckpointWriter:
    """`last.pt` + `metrics.csv` after each epoch, `best.pt` whenever the metric improves."""

    def __init__(self, out: Path, run_meta: dict[str, Any], enabled: bool) -> None:
        self.out, self.run_meta, self.enabled = out, run_meta, enabled

    def last(
        self,
        model: ImagionModel,
        optim: torch.optim.Optimizer,
        history: list[dict[str, float]],
        best: Best,
    ) -> None:
        if not self.enabled:
            return
        payload = checkpoint_payload(
            model,
            None,
            training=self.run_meta,  # the same place as in best.pt: readers find it there
            history=history,
            epoch=len(history),
            optimizer=optim.state_dict(),
            best_acc=best.accuracy,
            best_epoch=best.epoch,
            best_state=best.state,
        )
        save_checkpoint(self.out / "last.pt", payload)
        with atomic_path(self.out / "metrics.csv") as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=METRIC_KEYS, extrasaction="ignore")
            w.writeheader()
            w.writerows(history)

    def best(
        self,
        model: ImagionModel,
        calibration: Calibration,
        best: Best,
        history: list[dict[str, float]],
        validated: bool,
    ) -> None:
        if not self.enabled:
            return
        metrics = {
            "best_epoch": best.epoch,
            "best_val_pairwise_accuracy": best.accuracy if validated else None,
            "per_epoch": history,
        }
        payload = checkpoint_payload(model, calibration, training=self.run_meta, metrics=metrics)
        save_checkpoint(self.out / "best.pt", payload)
