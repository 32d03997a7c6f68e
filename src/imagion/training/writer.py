"""What a training run leaves on disk: `last.pt` and `metrics.csv` after every epoch, `best.pt`
whenever the validation metric improves (all written atomically)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from imagion.files import atomic_path, output_file
from imagion.models.card import TrainingRecord
from imagion.models.checkpoints import card_for, checkpoint_payload, save_checkpoint
from imagion.models.networks import ImagionModel
from imagion.models.transforms import Calibration
from imagion.spreadsheet import write_rows

METRIC_KEYS = ["epoch", "train_loss", "val_loss", "val_pairwise_accuracy", "images_per_s"]
RUN_FILES = ("best.pt", "last.pt", "metrics.csv")


def check_run_files(out: Path) -> None:
    """Before the work: no file in the run folder `out` that a run writes is one imagion did
    not write (a user's metrics.csv or last.pt stays; `files.output_file`)."""
    for name in RUN_FILES:
        if os.path.lexists(out / name):
            output_file(out / name, "out", (Path(name).suffix,), header=tuple(METRIC_KEYS))


@dataclass
class Best:
    accuracy: float = -1.0
    epoch: int = 0
    state: dict[str, torch.Tensor] | None = None


class CheckpointWriter:
    """`last.pt` + `metrics.csv` after each epoch, `best.pt` whenever the metric improves."""

    def __init__(self, out: Path, record: TrainingRecord, enabled: bool) -> None:
        self.out, self.record, self.enabled = out, record, enabled

    def last(
        self,
        model: ImagionModel,
        optim: torch.optim.Optimizer,
        history: list[dict[str, float]],
        best: Best,
    ) -> None:
        if not self.enabled:
            return
        # the same card as best.pt's, without a calibration (fitted only at the end)
        card = card_for(model, None, self.record, {"per_epoch": history})
        payload = checkpoint_payload(
            model,
            card,
            history=history,
            epoch=len(history),
            optimizer=optim.state_dict(),
            best_acc=best.accuracy,
            best_epoch=best.epoch,
            best_state=best.state,
        )
        save_checkpoint(self.out / "last.pt", payload)
        with atomic_path(self.out / "metrics.csv") as tmp, open(tmp, "w", newline="") as f:
            write_rows(f, METRIC_KEYS, history)

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
        payload = checkpoint_payload(model, card_for(model, calibration, self.record, metrics))
        save_checkpoint(self.out / "best.pt", payload)
