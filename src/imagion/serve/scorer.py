"""Scoring uploads: decode in threads (with a pixel limit, no file on disk), one forward pass
for the requests that arrive together (DynamicBatcher), scores and suggestions."""

from __future__ import annotations

import asyncio
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from imagion.errors import ImagionError, InputError
from imagion.images import (
    decoded,
    decoded_bytes,
    is_raw,
    jpeg_data_uri,
    load_square,
    open_image,
    square,
)
from imagion.inference.batching import DynamicBatcher, Outputs
from imagion.inference.crops import CropAdvice, best_crop
from imagion.inference.engine import Engine
from imagion.inference.groups import GroupResult, Shots, capture_time, fingerprints, group_decoded
from imagion.inference.history import History, attach
from imagion.inference.near_copies import Pairing, beside_near_copies, pairing
from imagion.inference.quality import Quality, assess, header_facts, measures_and_thumbnails
from imagion.inference.rank import Ranked, RankRow, no_interval, ranked
from imagion.memory import TRIM_BYTES, ByteBudget, give_back_freed
from imagion.serve.limits import Limits
from imagion.settings import cpu_threads

THUMB = 160  # px, square: every card has the same thumbnail whatever the photo's shape


@dataclass
class Upload:
    name: str  # the file's base name, as sent
    data: bytes


@dataclass
class Scored:
    items: list[Ranked]
    thumbs: dict[int, str]  # upload index → data URI
    index: dict[int, int]  # position in items → upload index
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. "the first 5 of 6 pictures scored"
    no_interval: str | None = None  # why the scores come without a range, when they do
    past_thumbs: dict[str, str] = field(default_factory=dict)  # a past post's image → data URI

    def rows(self) -> list[RankRow]:
        return [r.to_dict(rank=k + 1) for k, r in enumerate(self.items)]


def _thumbnail(im: Image.Image, size: int = THUMB) -> str:
    return jpeg_data_uri(square(im, size))


PAST_THUMB = 64  # px: a past post's thumbnail on a card (serve --history)
PAST_THUMBS_KEPT = 2000  # past posts' thumbnails kept between requests (about 3 kB each)


def _past_thumbnail(image: str) -> str:
    """A past post's small thumbnail from the catalog's image ("" when it cannot be read: the
    card then shows the words alone)."""
    try:
        return _thumbnail(Image.fromarray(load_square(image, PAST_THUMB)), PAST_THUMB)
    except ImagionError:
        return ""


def _pixels(im: Image.Image, size: int, name: str) -> tuple[np.ndarray, str]:
    """The model's input and the thumbnail of an opened upload (its full decode freed on return)."""
    rgb = decoded(im, max(size, THUMB), name)
    return np.asarray(square(rgb, size), dtype=np.uint8), _thumbnail(rgb)


class Scorer:
    """The engine, loaded once, behind a dynamic batcher."""

    def __init__(
        self,
        engine: Engine,
        limits: Limits,
        batching: bool = True,
        crops: bool = False,
        history: History | None = None,
    ) -> None:
        self.engine, self.limits, self.crops = engine, limits, crops
        self.history = history  # serve --history: each card's similar past posts
        self.past_thumbs: dict[str, str] = {}  # their thumbnails, made once each
        self.no_interval = no_interval(engine)  # why scores come without a range, if they do
        want = engine.labeler is not None or history is not None
        self.decoding = 0  # requests between arrival and the batcher (only the event loop writes)
        self.batcher = DynamicBatcher(
            lambda batch: engine.forward(batch, want),
            window_s=limits.batch_window_s if batching else 0.0,
            max_images=engine.batch_size if batching else 0,
            coming=lambda: self.decoding,
        )
        self.decoders = ThreadPoolExecutor(cpu_threads(), thread_name_prefix="imagion-decode")
        self.memory = ByteBudget(limits.max_decode_bytes)

    def close(self) -> None:
        self.batcher.close()
        self.decoders.shutdown(wait=False, cancel_futures=True)

    def decode(self, upload: Upload) -> tuple[np.ndarray, str]:
        """The model's input and a square thumbnail; ImagionError names the file otherwise."""
        size = self.engine.preprocess.size
        if is_raw(upload.data, upload.name):  # LibRaw decodes outside the byte budget
            raise ImagionError(
                f"{upload.name}: camera RAW is not taken by the server; export it as JPEG or HEIC, "
                "or score it with `imagion rank`."
            )
        im = open_image(upload.data, upload.name, self.limits.max_pixels)
        need = 0
        try:
            w, h = im.size
            if im.format != "JPEG" and w * h > self.limits.max_full_pixels:
                # only JPEGs decode at reduced size; a 49 MP PNG would take ~300 MB to decode
                raise InputError(
                    f"{upload.name}: a {w}×{h} {im.format} is decoded in full, and the server takes "
                    f"at most {self.limits.max_full_pixels // 1_000_000} MP in formats other than "
                    "JPEG; send it as a JPEG, or smaller."
                )
            need = decoded_bytes(im, max(size, THUMB))
            with self.memory.hold(need):
                return _pixels(im, size, upload.name)
        except (OSError, ValueError, SyntaxError) as exc:
            raise InputError(f"{upload.name}: image is damaged ({exc}).") from exc
        finally:
            im.close()
            if need >= TRIM_BYTES:
                give_back_freed()  # as the command line's decoders do

    def _crop(self, upload: Upload) -> CropAdvice | None:
        try:
            return best_crop(self.engine, upload.data, upload.name)[0]
        except ImagionError:
            return None

    async def _forward(
        self, uploads: list[Upload]
    ) -> tuple[list[int], list[np.ndarray], dict[int, str], list[str], Outputs | None]:
        """Uploads decoded in threads, then one (batched) forward pass: the indices that
        decoded, their model inputs and thumbnails, the problems, the outputs."""
        loop = asyncio.get_running_loop()
        jobs = [loop.run_in_executor(self.decoders, self.decode, u) for u in uploads]
        self.decoding += 1
        try:
            decoded_ = await asyncio.gather(*jobs, return_exceptions=True)
        finally:
            self.decoding -= 1
        ok, arrays, thumbs, problems = [], [], {}, []
        for k, result in enumerate(decoded_):
            if isinstance(result, ImagionError):
                problems.append(str(result))
            elif isinstance(result, BaseException):
                problems.append(f"{uploads[k].name}: cannot be read ({type(result).__name__}).")
            else:
                ok.append(k)
                arrays.append(result[0])
                thumbs[k] = result[1]
        if not ok:
            return ok, arrays, thumbs, problems, None
        outputs = await asyncio.wrap_future(self.batcher.submit(np.stack(arrays)))
        return ok, arrays, thumbs, problems, outputs

    @staticmethod
    def _qualities(
        uploads: list[Upload],
        ok: list[int],
        arrays: list[np.ndarray],
        outputs: tuple[np.ndarray, np.ndarray | None],
    ) -> list[Quality]:
        """Each decoded upload's technical quality: its model input and its header, and beside
        its near-copies among the uploads (inference/near_copies.py)."""
        batch = np.stack(arrays)
        rows, thumbs = measures_and_thumbnails(batch)
        out = []
        for k, row in zip(ok, rows, strict=True):
            try:
                facts: tuple[int, int, int | None] | None = header_facts(
                    uploads[k].data, uploads[k].name
                )
            except ImagionError:
                facts = None
            out.append(assess(row, facts))
        hashes, colours = fingerprints(batch)
        names = [uploads[k].name for k in ok]
        raw, feats = outputs

        def pairs() -> Pairing:
            return pairing(feats, np.asarray(raw).reshape(-1), names, hashes, colours, None)

        return beside_near_copies(out, thumbs, pairs, names)

    async def score(self, uploads: list[Upload]) -> Scored:
        loop = asyncio.get_running_loop()
        ok, arrays, thumbs, problems, outputs = await self._forward(uploads)
        if outputs is None:
            return Scored([], {}, {}, problems)
        raw, feats = outputs
        want = self.engine.labeler is not None
        qualities = self._qualities(uploads, ok, arrays, outputs)
        items = ranked(
            self.engine, [Path(str(k)) for k in ok], raw, feats if want else None, qualities
        )
        if self.history is not None and feats is not None:
            paths = [Path(str(k)) for k in ok]
            hashes, colours = fingerprints(np.stack(arrays))
            unit = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
            attach(self.history, items, Shots(paths, unit, hashes, colours))
        index = {pos: int(item.path.name) for pos, item in enumerate(items)}
        for pos, item in enumerate(items):
            upload = uploads[index[pos]]
            item.path = Path(upload.name)
            if self.crops:
                item.crop = await loop.run_in_executor(self.decoders, self._crop, upload)
        past = await self._past_thumbnails(items)
        return Scored(
            items, thumbs, index, problems, no_interval=self.no_interval, past_thumbs=past
        )

    async def _past_thumbnails(self, items: list[Ranked]) -> dict[str, str]:
        """The thumbnails of the past posts the cards show (serve --history), made once each."""
        loop = asyncio.get_running_loop()
        wanted = {
            post.image
            for item in items
            for post in [
                *(item.similar_posts or []),
                *[item.already_posted] * bool(item.already_posted),
            ]
            if post is not None and post.image
        }
        for image in wanted - set(self.past_thumbs):
            if len(self.past_thumbs) >= PAST_THUMBS_KEPT:
                self.past_thumbs.clear()
            self.past_thumbs[image] = await loop.run_in_executor(
                self.decoders, _past_thumbnail, image
            )
        return {image: self.past_thumbs[image] for image in wanted}

    async def group(self, uploads: list[Upload], similarity: float) -> Grouped:
        """The uploads in groups of near-duplicates (the features and the decoded input of the
        same forward pass; capture times from each upload's EXIF)."""
        ok, arrays, thumbs, problems, outputs = await self._forward(uploads)
        if outputs is None:
            return Grouped(None, thumbs, {}, problems)
        paths = [Path(str(k)) for k in ok]
        times = [capture_time(io.BytesIO(uploads[k].data)) for k in ok]
        qualities = self._qualities(uploads, ok, arrays, outputs)
        result = group_decoded(
            self.engine, paths, np.stack(arrays), outputs, times, similarity, problems, qualities
        )
        items = [item for g in result.groups for item in g.shots]
        index = {id(item): int(item.path.name) for item in items}
        for item in items:
            item.path = Path(uploads[index[id(item)]].name)
        return Grouped(result, thumbs, index, problems)


@dataclass
class Grouped:
    """Uploads in groups of near-duplicates (None: none could be scored)."""

    result: GroupResult | None
    thumbs: dict[int, str]  # upload index → data URI
    upload_of: dict[int, int]  # id(Ranked) → upload index
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
