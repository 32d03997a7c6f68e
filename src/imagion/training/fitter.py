"""The model, its data on the device and the optimizer: one epoch at a time (bf16 autocast and
channels_last on CUDA, DDP under torchrun, flips as augmentation on the device)."""

from __future__ import annotations

import time

import numpy as np
import torch

from imagion.choices import Loss
from imagion.evaluation.pairs import pairwise_accuracy
from imagion.models.networks import ImagionModel
from imagion.progress import Progress
from imagion.training.losses import training_loss
from imagion.training.options import TrainOptions
from imagion.training.prepare import TrainingData, shuffled_batches


class Fitter:
    """The model, its data on the device and the optimizer: one epoch at a time."""

    def __init__(
        self,
        model: ImagionModel,
        data: TrainingData,
        opts: TrainOptions,
        device: torch.device,
        world: int,
    ) -> None:
        self.model, self.data, self.opts, self.device, self.world = model, data, opts, device, world
        self.frozen = model.frozen
        self.net: torch.nn.Module = model.head if self.frozen else model
        if not self.frozen:
            model.to(memory_format=torch.channels_last)
        train_net: torch.nn.Module = self.net
        if world > 1:
            ids = [device.index] if device.type == "cuda" else None
            train_net = torch.nn.parallel.DistributedDataParallel(self.net, device_ids=ids)
        self.step_net = torch.compile(train_net) if opts.compile else train_net
        params = [p for p in self.net.parameters() if p.requires_grad]
        self.optim = torch.optim.AdamW(params, lr=opts.lr, weight_decay=opts.weight_decay)
        self.y = torch.from_numpy(data.target).to(device)
        self.g = torch.from_numpy(data.groups).to(device)
        self.amp = device.type == "cuda"

    def inputs(self, idx: np.ndarray, augment: bool) -> torch.Tensor:
        xb = self.data.x[torch.as_tensor(idx, device=self.data.x.device)]
        if self.frozen:
            return xb
        xb = xb.to(self.device, non_blocking=True)
        if augment:  # random horizontal flip, on the device
            flip = torch.rand(len(xb), device=self.device) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(2), xb)
        return self.model.preprocess.normalize(xb)

    def _train_mode(self) -> None:
        self.net.train()
        if self.frozen:
            self.model.train()  # EffNetLite keeps its frozen backbone in eval mode

    @torch.no_grad()
    def predict(self, idx: np.ndarray) -> np.ndarray:
        self.net.eval()
        outs = []
        for s in range(0, len(idx), 256):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                o = self.net(self.inputs(idx[s : s + 256], False))
            outs.append(o.float().reshape(-1).cpu())
        self._train_mode()
        return torch.cat(outs).numpy() if outs else np.array([])

    def epoch(self, epoch: int, rank: int, progress: Progress | None) -> dict[str, float]:
        """One pass over the training posts; returns the epoch's metrics row."""
        opts, data, world = self.opts, self.data, self.world
        torch.manual_seed(opts.seed * 100_003 + epoch)
        rng = np.random.default_rng(opts.seed * 100_003 + epoch)
        tr = data.train_idx
        batches = shuffled_batches(
            len(tr), opts.batch_size * world, data.groups[tr], opts.loss == Loss.pairwise, rng
        )
        self._train_mode()
        t0, seen, total = time.perf_counter(), 0, 0.0
        for b, batch in enumerate(batches):
            local = tr[batch][rank::world] if world > 1 else tr[batch]
            if len(local) == 0:
                continue
            idx = torch.as_tensor(local, device=self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                pred = self.step_net(self.inputs(local, True)).float().reshape(-1)
            loss = training_loss(opts.loss, pred, self.y[idx], self.g[idx])
            self.optim.zero_grad(set_to_none=True)
            loss.backward()
            self.optim.step()
            total += float(loss.detach()) * len(local)
            seen += len(local)
            if progress and rank == 0:
                rate = seen * world / max(time.perf_counter() - t0, 1e-9)
                progress(
                    b + 1,
                    len(batches),
                    f"epoch {epoch + 1}/{opts.epochs}",
                    f"loss {total / seen:.4f} · {rate:,.0f} img/s",
                )
        row = {
            "epoch": epoch + 1,
            "train_loss": total / max(seen, 1),
            "images_per_s": seen * world / max(time.perf_counter() - t0, 1e-9),
        }
        return row | self.validate()

    def validate(self) -> dict[str, float]:
        va, data = self.data.val_idx, self.data
        if not len(va):
            return {}
        pv = self.predict(va)
        with torch.no_grad():
            loss = training_loss(
                self.opts.loss,
                torch.from_numpy(pv),
                torch.from_numpy(data.target[va]),
                torch.from_numpy(data.groups[va]),
            )
        return {
            "val_loss": float(loss),
            "val_pairwise_accuracy": pairwise_accuracy(pv, data.likes[va], data.groups[va]),
        }
