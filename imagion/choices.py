"""Choices shared by the library and the CLI, kept import-light so `imagion --help` is instant."""

from enum import StrEnum


class ScoreMapping(StrEnum):
    """How per-account z-scores become 0–10 image scores."""

    percentile = "percentile"
    normal = "normal"
    minmax = "minmax"


class Loss(StrEnum):
    mse = "mse"
    pairwise = "pairwise"


class Device(StrEnum):
    auto = "auto"
    cuda = "cuda"
    cpu = "cpu"


class Split(StrEnum):
    all = "all"
    val = "val"


class Provider(StrEnum):
    """Where labels come from."""

    google = "google"
    local = "local"
    instagram = "instagram"
    hashtags = "hashtags"
