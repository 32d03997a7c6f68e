"""Choices shared by the library and the CLI, kept import-light so `imagion --help` is instant."""

from enum import StrEnum
from typing import TypeVar

from imagion.errors import OptionError

E = TypeVar("E", bound=StrEnum)


def choice(kind: type[E], value: object, option: str) -> E:
    """`value` (an enum member or its string) as a member of `kind`; OptionError naming the
    parameter and the choices otherwise (a typo is refused, never replaced by a default)."""
    try:
        return kind(str(value))
    except ValueError:
        names = ", ".join(m.value for m in kind)
        raise OptionError(option, repr(value), f"use one of {names}.") from None


def count(value: object, option: str, reason: str) -> int:
    """`value` as a whole number ≥ 1 (not 2.5, not True), or OptionError saying `reason`:
    checked before the work, never after it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError(option, value, reason)
    return value


class ScoreMapping(StrEnum):
    """How per-account z-scores become 0–10 image scores."""

    percentile = "percentile"
    normal = "normal"
    minmax = "minmax"


class ScoreMetric(StrEnum):
    """What a post's score standardizes: likes (the default), or a statistic of Instagram's own
    exports; `engagement` is likes per account reached."""

    likes = "likes"
    engagement = "engagement"
    comments = "comments"
    saves = "saves"
    shares = "shares"
    reach = "reach"
    impressions = "impressions"


class EngineKind(StrEnum):
    """Where `rank` runs: in this process, or on Ray Data (one machine or a cluster)."""

    local = "local"
    ray = "ray"


class Loss(StrEnum):
    mse = "mse"
    pairwise = "pairwise"


class Device(StrEnum):
    auto = "auto"
    cuda = "cuda"
    cpu = "cpu"


class EvalSplit(StrEnum):
    """Which posts `eval` measures a checkpoint on."""

    all = "all"
    val = "val"  # the ones the checkpoint did not train on (held-out accounts or newer posts)
    time = "time"  # the same, said the way a time-split model was trained


class SplitKind(StrEnum):
    """How `train` holds posts out for validation."""

    account = "account"
    time = "time"


class Provider(StrEnum):
    """Where labels come from."""

    google = "google"
    local = "local"
    instagram = "instagram"
    hashtags = "hashtags"


class Tone(StrEnum):
    """Tone maps `train --tone` offers (imagion.models.transforms.TONES also knows "crawl",
    used by scripts/instagram2017_study.py on checkpoints trained on the crawl's own pixels)."""

    none = "none"
    equalize = "equalize"


class XmpNaming(StrEnum):
    """How an XMP sidecar is named beside its photo `IMG_0001.CR2`."""

    adobe = "adobe"  # IMG_0001.xmp: Lightroom Classic, Camera Raw, Bridge, Capture One, digiKam
    darktable = "darktable"  # IMG_0001.CR2.xmp: darktable, digiKam (one sidecar per file)
