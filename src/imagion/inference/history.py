"""What your own past says: the scored posts of an account most like each photo, and the post a
photo is a near-copy of ("already posted").

The catalog's posts go through the SAME engine as the photos ranked (the same checkpoint, its
preprocessing, decoding and pooled features), so a post and a photo are compared on one footing;
each post's features (and its perceptual hash, for the re-saved-copy rule) are cached per
engine and image SHA-256 with the cache's one entry reader/writer, computed on first use with
progress. Similarity is the cosine of the L2-normalised pooled features. "Already posted" is the
grouping rule of `rank --groups` (inference/groups.py `cluster`), applied to the photo and each
of its nearest posts. Only scored posts of the chosen account are ever used, and with `before`
only posts published before that time (each post judged only from earlier ones).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imagion.catalog.store import connect_readonly, probe_catalog, sqlite_error
from imagion.errors import CatalogError, ImagionError, OptionError
from imagion.images import sha256_file
from imagion.inference.decode import run_files
from imagion.inference.engine import Engine
from imagion.inference.groups import (
    Shots,
    ShotsHook,
    _score_shots,
    cluster,
    fingerprints,
)
from imagion.inference.near_copies import BURST_EASING, HASH_BITS, SIMILARITY
from imagion.inference.past_posts import PastPost
from imagion.inference.photo_index import PhotoIndex
from imagion.models.cache_entries import read_entry, save_entry
from imagion.progress import Progress, in_stage, logged
from imagion.scores import score_text
from imagion.settings import default_cache_dir

if TYPE_CHECKING:
    from imagion.inference.rank import Ranked, Scored

K_SIMILAR = 3  # similar past posts shown per photo


def similar_words(posts: list[PastPost]) -> str:
    """The one compact cell: 'like your posts that scored 7.4 · 6.9 · 6.1'."""
    if not posts:
        return ""
    return "like your posts that scored " + " · ".join(score_text(p.score) for p in posts)


def posted_words(post: PastPost) -> str:
    """'you already posted this on 12 May 2023; it scored 3.2'."""
    return f"you already posted this on {post.date}; it scored {score_text(post.score)}"


def past_shown(
    already_posted: PastPost | None, similar_posts: list[PastPost] | None
) -> tuple[list[PastPost], str]:
    """What a card or a sheet shows of a photo's past: the post it already is, else its most
    similar past posts, with their words ("you already posted this …", "like your posts …");
    ([], "") without a history."""
    if already_posted is not None:
        return [already_posted], posted_words(already_posted)
    if similar_posts:
        return similar_posts, similar_words(similar_posts)
    return [], ""


def opinion(posts: list[PastPost]) -> float | None:
    """The history's second opinion: the neighbours' similarity-weighted mean score (weights
    clipped at 0; the plain mean when none is positive)."""
    if not posts:
        return None
    s = np.array([p.score for p in posts])
    w = np.clip([p.similarity for p in posts], 0.0, None)
    return float(s @ w / w.sum()) if w.sum() > 0 else float(s.mean())


@dataclass
class History:
    """The scored posts of one account with their features (row k for `posts[k]`)."""

    catalog: Path
    account: str
    posts: list[PastPost]  # similarity 0 here; lookups fill it in
    features: np.ndarray  # N×F, L2-normalised
    hashes: np.ndarray  # N uint64 difference hashes of the model input
    colours: np.ndarray  # N×3 mean colours
    times: np.ndarray  # N posted_at (NaN unknown)
    problems: list[str] = field(default_factory=list)  # posts whose image could not be read

    def __len__(self) -> int:
        return len(self.posts)

    def neighbours(
        self, feats: np.ndarray, k: int = K_SIMILAR, before: float | None = None
    ) -> list[list[tuple[int, float]]]:
        """For each row of `feats` (L2-normalised), its k most similar posts as (row,
        similarity), most similar first; `before`: only posts published before that time."""
        if not len(self.posts) or not len(feats):
            return [[] for _ in range(len(feats))]
        sim = feats.astype(np.float32) @ self.features.T
        if before is not None:
            sim[:, ~(self.times < before)] = -np.inf
        k = min(k, sim.shape[1])
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        out = []
        for i, rows in enumerate(top):
            rows = rows[np.argsort(-sim[i, rows], kind="stable")]
            out.append([(int(r), float(sim[i, r])) for r in rows if np.isfinite(sim[i, r])])
        return out

    def post(self, row: int, similarity: float) -> PastPost:
        p = self.posts[row]
        return PastPost(p.account, p.post_id, p.posted_at, p.score, similarity, p.image)


def check_k(k: int) -> int:
    if k < 1:
        raise OptionError("similar", k, f"show at least 1 similar post (default {K_SIMILAR}).")
    return int(k)


def _accounts(db: Any) -> list[tuple[str, int]]:
    return db.execute(
        "SELECT account, COUNT(*) FROM posts WHERE score IS NOT NULL AND image IS NOT NULL "
        "GROUP BY account ORDER BY account"
    ).fetchall()


def choose_account(catalog: Path, account: str | None) -> str:
    """The account whose posts are the history: `account`, or the catalog's only one."""

    if not Path(catalog).is_file() or probe_catalog(Path(catalog)) is None:
        raise CatalogError(f"{catalog}: no catalog here; `imagion import` your posts first.")
    try:
        db = connect_readonly(Path(catalog))
        try:
            found = _accounts(db)
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise sqlite_error(Path(catalog), exc) from exc
    names = [a for a, _ in found]
    listed = ", ".join(f"{a} ({n} posts)" for a, n in found)
    if not found:
        raise CatalogError(f"{catalog}: no scored post with an image; run `imagion score` first.")
    if account is None:
        if len(found) > 1:
            raise CatalogError(
                f"{catalog} holds several accounts; choose one with `account`: {listed}."
            )
        return names[0]
    if account not in names:
        raise OptionError("account", account, f"{catalog} has scored posts of {listed} only.")
    return account


def _rows(catalog: Path, account: str) -> list[tuple[str, int | None, float, str, str]]:

    db = connect_readonly(Path(catalog))
    try:
        return db.execute(
            "SELECT post_id, posted_at, score, image, image_sha256 FROM posts "
            "WHERE account=? AND score IS NOT NULL AND image IS NOT NULL "
            "ORDER BY posted_at, post_id",
            (account,),
        ).fetchall()
    finally:
        db.close()


def engine_key(engine: Engine) -> str:
    """One cache folder per engine: the checkpoint's SHA-256 and the input size."""
    return f"engine-{sha256_file(engine.path)[:32]}-{engine.preprocess.size}"


def load_history(
    catalog: str | Path,
    engine: Engine,
    *,
    account: str | None = None,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> History:
    """The scored posts of `account` (or the catalog's only account) with the engine's features,
    cached per post image; a post whose image cannot be read is left out and reported."""

    catalog = Path(catalog)
    account = choose_account(catalog, account)
    rows = _rows(catalog, account)
    entries, problems = post_entries(
        engine, [r[3] for r in rows], [r[4] for r in rows], cache_dir, progress
    )
    posts, vecs = [], []
    for post_id, posted_at, score, image, sha in rows:
        if sha in entries:
            posts.append(PastPost(account, str(post_id), posted_at, float(score), 0.0, image))
            vecs.append(entries[sha])
    if not posts:
        first = f": {problems[0]}" if problems else ""
        raise CatalogError(
            f"{catalog}: none of the {len(rows)} images of {account}'s scored posts could be "
            f"read{first}; import the posts again from where their images are now."
        )
    return _assemble(catalog, account, posts, vecs, problems)


def post_entries(
    engine: Engine,
    images: list[str],
    shas: list[str],
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Each post image's cache entry (hash halves, mean colour, then the engine's pooled
    features) by SHA-256, computed with the ranking pass's decoding and forward where not cached;
    and the images that could not be read."""
    folder = (cache_dir or default_cache_dir()) / "features" / engine_key(engine)
    entries: dict[str, np.ndarray] = {}
    todo: dict[str, str] = {}  # sha → image
    for image, sha in zip(images, shas, strict=True):
        if sha in entries or sha in todo:
            continue
        got = _read(folder, sha, image)
        if got is None:
            todo[sha] = image
        else:
            entries[sha] = got
    if not todo:
        return entries, []
    by_path = {str(Path(todo[s])): s for s in todo}
    extra: list[np.ndarray] = []

    def forward(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        h, c = fingerprints(batch)
        extra.append(np.column_stack([h >> np.uint64(32), h & np.uint64(0xFFFFFFFF), c]))
        raw, f = engine.forward(batch, True)
        if f is None:
            raise ImagionError(
                f"{engine.arch} has no pooled features: the similar posts need a model "
                "that has them (the bundled one does)."
            )
        return raw, f

    done, _, feats, problems = run_files(
        [Path(i) for i in todo.values()],
        engine.preprocess.size,
        forward,
        engine.batch_size,
        logged(in_stage(progress, "past posts"), "past posts"),
    )
    if feats is not None and len(done):
        more = np.concatenate(extra).astype(np.float64)
        for p, f, e in zip(done, feats, more, strict=True):
            entry = np.concatenate([e, f.astype(np.float64)])
            sha = by_path[str(p)]
            entries[sha] = entry
            save_entry(folder / f"{sha}.npy", entry)
    return entries, problems


def entry_features(entries: list[np.ndarray]) -> np.ndarray:
    """The L2-normalised pooled features of cache entries (one row each)."""
    m = np.array(entries, dtype=np.float64).reshape(len(entries), -1)
    feats = m[:, 5:].astype(np.float32)
    return feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)


def _read(folder: Path, sha: str, image: str) -> np.ndarray | None:
    path = folder / f"{sha}.npy"
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    return read_entry(path, arr.shape, image) if arr.ndim == 1 and len(arr) > 5 else None


def _assemble(
    catalog: Path, account: str, posts: list[PastPost], vecs: list[np.ndarray], problems: list[str]
) -> History:
    m = np.array(vecs, dtype=np.float64).reshape(len(vecs), -1)
    hashes = (m[:, 0].astype(np.uint64) << np.uint64(32)) | m[:, 1].astype(np.uint64)
    feats = entry_features(vecs)
    times = np.array(
        [np.nan if p.posted_at is None else float(p.posted_at) for p in posts], dtype=np.float64
    )
    return History(catalog, account, posts, feats, hashes, m[:, 2:5], times, problems)


def already_posted(history: History, shots: Shots, i: int, rows: list[int]) -> int | None:
    """The first of `rows` (posts, most similar first) that photo `i` of `shots` is a near-copy
    of, by the grouping rule of `rank --groups`; None when none is."""

    if shots.features is None:
        return None
    for r in rows:
        near = float(history.features[r] @ shots.features[i]) >= SIMILARITY - BURST_EASING
        bits = bin(int(history.hashes[r]) ^ int(shots.hashes[i])).count("1")
        if not near and bits > HASH_BITS:
            continue  # neither rule of `cluster` can join these two: not worth asking it
        pair = Shots(
            [Path(history.posts[r].image), shots.paths[i]],
            np.stack([history.features[r], shots.features[i]]),
            np.array([history.hashes[r], shots.hashes[i]], dtype=np.uint64),
            np.stack([history.colours[r], shots.colours[i]]),
        )
        if len(cluster([0, 1], pair, SIMILARITY)) == 1:
            return r
    return None


def attach(history: History, items: list[Ranked], shots: Shots, k: int = K_SIMILAR) -> None:
    """Give each scored item its k most similar past posts, and the post it already is."""
    if shots.features is None:
        raise ImagionError(
            "this model has no pooled features: the similar posts need a model that has them "
            "(the bundled one does)."
        )
    row = {str(p): j for j, p in enumerate(shots.paths)}
    near = history.neighbours(shots.features, max(k, K_SIMILAR))
    for item in items:
        j = row[str(item.path)]
        item.similar_posts = [history.post(r, s) for r, s in near[j][:k]]
        hit = already_posted(history, shots, j, [r for r, _ in near[j]])
        if hit is not None:
            sim = dict(near[j])[hit]
            item.already_posted = history.post(hit, sim)


def history_hook(catalog: Path, account: str | None, k: int = K_SIMILAR) -> ShotsHook:
    """What the grouping pass (`group_images`, `pick_images`) calls with a history: each photo's
    k similar past posts and the post it already is. The account is checked here, first."""
    check_k(k)
    account = choose_account(catalog, account)

    def hook(
        engine: Engine, items: list[Ranked], shots: Shots, progress: Progress | None
    ) -> list[str]:
        past = load_history(catalog, engine, account=account, progress=progress)
        attach(past, items, shots, k)
        return past.problems

    return hook


def history_scorer(catalog: Path, account: str | None, k: int = K_SIMILAR) -> Scored:
    """What `rank_images` calls to score with a history: the ranking pass of `rank --groups`
    (scores and what grouping needs), then `history_hook`. Returns (items, failures, account)."""
    hook = history_hook(catalog, account, k)
    name = choose_account(catalog, account)

    def score(
        engine: Engine,
        files: list[Path],
        batch_size: int | None,
        suggest: bool,
        progress: Progress | None,
        index: PhotoIndex | None = None,
    ) -> tuple[list[Ranked], list[str], str]:
        items, shots, bad = _score_shots(engine, files, batch_size, suggest, progress, index)
        return items, bad + hook(engine, items, shots, progress), name

    return score
