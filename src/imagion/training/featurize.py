"""`imagion featurize`: a frozen backbone's features of every catalog image, computed once and
cached (what `train` and `eval` of that backbone then read), with a report of what was done."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from imagion.catalog.store import Catalog, Columns
from imagion.errors import CatalogError, ModelError
from imagion.models.registry import build_model, model_spec
from imagion.progress import Progress
from imagion.scale.ray_data import features_on_ray
from imagion.settings import default_cache_dir, pick_device


@dataclass
class FeaturizeReport:
    images: int  # catalog posts with an image
    computed: int  # features computed by this run
    cached: int  # already in the cache
    seconds: float
    folder: Path
    problems: list[str] = field(default_factory=list)  # one line per reason, with its count

    @property
    def skipped(self) -> int:
        """Images that could not be read (neither computed nor cached)."""
        return max(self.images - self.computed - self.cached, 0)

    @property
    def rate(self) -> float:
        """Images per second of the computed ones (0 when everything came from the cache)."""
        return self.computed / self.seconds if self.computed and self.seconds > 0 else 0.0


def featurize_catalog(
    catalog_path: Path,
    arch: str = "effnet-lite0",
    image_size: int | None = None,
    tone: str | None = None,
    device: str = "auto",
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    engine: str = "local",
    address: str | None = None,
) -> FeaturizeReport:
    """Features of every catalog image with an image, computed once into the cache (here, or on
    Ray Data with `engine="ray"`: the cache folder must then be one every node sees)."""
    import numpy as np

    from imagion.models.caches import feature_folder, frozen_features

    if not model_spec(arch).pretrained:
        raise ModelError(f"{arch} has no frozen backbone: its images are decoded at training time.")
    with Catalog(catalog_path) as cat:
        df = cat.frame(Columns.TRAINING, "WHERE image IS NOT NULL")
    if df.empty:
        raise CatalogError(f"{catalog_path}: no posts with an image to featurize.")
    df = df.drop_duplicates("image_sha256")
    config = {"image_size": image_size, "tone": tone}
    model = build_model(arch, **{k: v for k, v in config.items() if v is not None}).eval()
    cache = cache_dir or default_cache_dir()
    folder = feature_folder(model, cache)
    shas = df["image_sha256"].tolist()
    cached = sum((folder / f"{s}.npy").is_file() for s in shas)
    t = time.perf_counter()
    if engine == "ray":
        todo = [
            (p, s)
            for p, s in zip(df["image"], shas, strict=True)
            if not (folder / f"{s}.npy").is_file()
        ]
        made, problems = (
            features_on_ray(
                arch,
                {k: v for k, v in config.items() if v is not None},
                [p for p, _ in todo],
                [s for _, s in todo],
                cache,
                device,
                address,
                progress,
            )
            if todo
            else (0, [])
        )
        return FeaturizeReport(len(df), made, cached, time.perf_counter() - t, folder, problems)
    feats = frozen_features(model, df["image"].tolist(), shas, cache, pick_device(device), progress)
    seconds = time.perf_counter() - t
    done = int(np.count_nonzero(feats.ok))
    return FeaturizeReport(len(df), max(done - cached, 0), cached, seconds, folder, feats.problems)
