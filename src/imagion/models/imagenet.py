"""EfficientNet-Lite0's own ImageNet classifier, applied in numpy to the pooled features the
engine shares (the `local` label provider, offline), and the ImageNet class names it reads."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from imagion.settings import imagenet_classes_path

LOCAL_THRESHOLD = 0.10  # stored in the catalog from here on (for `labels --table` to explore)
SEEN_THRESHOLD = 0.6  # a label is shown ("seen: …") and counted in the statistics behind the
# suggestions only when the network gives it clearly more weight than all its other ImageNet
# classes together: ImageNet's classes rarely fit portraits, and a wrong label ("bobsled" for an
# astronaut at 0.52) costs trust
LOCAL_TOP = 5


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
