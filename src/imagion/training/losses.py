"""Training losses: the original design's MSE on the 0–10 score, and the pairwise (RankNet) loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from imagion.choices import Loss


def pairwise_loss(pred: torch.Tensor, target: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """RankNet logistic loss over every same-account pair of the batch with different targets."""
    better = (target[:, None] > target[None, :]) & (group[:, None] == group[None, :])
    if not bool(better.any()):
        return pred.sum() * 0.0
    diff = pred[:, None] - pred[None, :]
    return F.softplus(-diff[better]).mean()


def training_loss(
    kind: Loss, pred: torch.Tensor, target: torch.Tensor, group: torch.Tensor
) -> torch.Tensor:
    if kind == Loss.mse:
        return F.mse_loss(pred, target)
    return pairwise_loss(pred, target, group)
