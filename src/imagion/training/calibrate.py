"""Win probabilities fitted on posts the model did not train on: the validation posts when the
run has them; otherwise the out-of-fold predictions of a K-fold CV of the same recipe (frozen
backbones only, where refitting a head takes seconds). Without either, no probability."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, replace

import numpy as np
import torch

from imagion.choices import SplitKind
from imagion.evaluation.calibration import calibration_metrics
from imagion.evaluation.pairs import same_account_pairs
from imagion.models.expected_score import ScoreModel
from imagion.models.transforms import Calibration, sigmoid
from imagion.training.fitter import Fitter
from imagion.training.prepare import TrainingData

log = logging.getLogger(__name__).info  # the CLI shows these; Python: configure logging

OOF_FOLDS = 4


def pairs_of(
    raw: np.ndarray, likes: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(raw differences, 1 where the first post won) of every same-account pair."""
    i, j, _ = same_account_pairs(groups, likes)
    return raw[i] - raw[j], (likes[i] > likes[j]).astype(float)


def oof_folds(data: TrainingData, k: int, seed: int, by_account: bool = True) -> np.ndarray:
    """A fold per training post: by account when there are k accounts (and `by_account`: a
    model for accounts it never saw), else by post within each account (a time-split model
    predicts new posts of accounts it has seen: its held-out posts must be of seen accounts)."""
    tr = data.train_idx
    groups = data.groups[tr]
    accounts = np.unique(groups)
    rng = np.random.default_rng(seed)
    if by_account and len(accounts) >= k:
        fold_of = dict(
            zip(rng.permutation(accounts).tolist(), np.arange(len(accounts)) % k, strict=True)
        )
        return np.array([fold_of[g] for g in groups.tolist()])
    fold = np.empty(len(tr), dtype=np.int64)
    for g in accounts:
        idx = np.flatnonzero(groups == g)
        fold[rng.permutation(idx)] = np.arange(len(idx)) % k
    return fold


@dataclass
class HeldOutPairs:
    """Pairs scored by a model that did not train on them: the raw-output gaps, whether the
    first of each pair got more likes, how many posts they came from, and what they were."""

    gaps: np.ndarray
    wins: np.ndarray
    posts: int
    source: str
    positions: np.ndarray | None = (
        None  # each held-out post's place among its model's training outputs (0–1)
    )
    actual: np.ndarray | None = None  # and its actual 0–10 score
    post_source: str = ""  # what the held-out posts were


def out_of_fold_pairs(fit: Fitter, initial: dict[str, torch.Tensor]) -> HeldOutPairs | None:
    """Pairs scored by heads that never saw them: K heads of the same recipe, each trained on
    the other folds from the run's starting point."""
    data, opts = fit.data, fit.opts
    fold = oof_folds(data, OOF_FOLDS, opts.seed, by_account=opts.split != SplitKind.time)
    tr = data.train_idx
    ds, ys, us, actual, posts = [], [], [], [], 0
    for f in range(OOF_FOLDS):
        held = tr[(fold == f) & (tr < data.posts)]  # predicted: posts, not augmented copies
        if len(held) < 2 or not (fold != f).any():
            continue
        model = copy.deepcopy(fit.model)
        model.load_state_dict(initial, strict=False)
        sub = replace(data, train_idx=tr[fold != f], val_idx=np.array([], dtype=np.int64))
        inner = Fitter(model, sub, replace(opts, compile=False), fit.device, world=1)
        for epoch in range(opts.epochs):
            inner.epoch(epoch, 1, None)
        raw = inner.predict(held)
        d, y = pairs_of(raw, data.likes[held], data.groups[held])
        posts += len(held)
        ds.append(d)
        ys.append(y)
        us.append(Calibration.fit(inner.predict(sub.train_posts)).position(raw))
        actual.append(data.target[held])
    if not ds or not sum(len(d) for d in ds):
        log("no win probability: too few posts for an out-of-fold calibration")
        return None
    d, y = np.concatenate(ds), np.concatenate(ys)
    log(
        f"win probability calibrated on {len(d)} out-of-fold pairs ({OOF_FOLDS}-fold CV of this recipe)"
    )
    source = f"out-of-fold predictions of a {OOF_FOLDS}-fold CV of the same recipe ({len(d):,} pairs of {posts:,} posts)"
    u, a = np.concatenate(us), np.concatenate(actual)
    posts_source = (
        f"out-of-fold predictions of a {OOF_FOLDS}-fold CV of the same recipe ({posts} posts)"
    )
    return HeldOutPairs(d, y, posts, source, u, a, posts_source)


def _fitted(raw_tr: np.ndarray, held: HeldOutPairs) -> Calibration:
    """The calibration with its pair scale from these held-out pairs, and how well the fitted
    probabilities do on them (recorded in the checkpoint as `pair_metrics`)."""
    cal = Calibration.fit(raw_tr, (held.gaps, held.wins), held.source, held.posts)
    p = sigmoid((cal.pair_scale or 0.0) * held.gaps)
    cal.pair_metrics = dict(calibration_metrics(p, held.wins, with_bins=False))
    if held.positions is not None and held.actual is not None and len(held.actual) >= 2:
        cal.expected = ScoreModel.fit(held.positions, held.actual, held.post_source or held.source)
        log(
            f"expected score and its 80% interval fitted on {len(held.actual)} held-out posts "
            f"(expected scores {cal.expected.spread[0]:.1f}–{cal.expected.spread[1]:.1f})"
        )
    return cal


def calibrate(fit: Fitter, initial: dict[str, torch.Tensor] | None) -> Calibration:
    """The run's calibration: scores from its training outputs, the win probability from
    held-out pairs (validation, else out-of-fold, else none)."""
    data = fit.data
    raw_tr = fit.predict(data.train_posts)
    va = data.val_idx
    if len(va):
        raw_va = fit.predict(va)
        d, y = pairs_of(raw_va, data.likes[va], data.groups[va])
        if len(d):
            kind = (
                "newest posts of each account"
                if fit.opts.split == SplitKind.time
                else "held-out accounts"
            )
            source = f"validation pairs ({len(d)} of {len(va)} posts; {kind})"
            u = Calibration.fit(raw_tr).position(raw_va)
            held = HeldOutPairs(
                d, y, len(va), source, u, data.target[va], f"{len(va)} validation posts ({kind})"
            )
            return _fitted(raw_tr, held)
    if initial is not None and fit.model.frozen:
        oof = out_of_fold_pairs(fit, initial)
        if oof is not None:
            return _fitted(raw_tr, oof)
    elif initial is not None:
        log("no win probability: no validation posts (train with `val_fraction` > 0 to get one)")
    return Calibration.fit(raw_tr)
