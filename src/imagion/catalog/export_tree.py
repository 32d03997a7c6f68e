"""Where an Instagram "Download your information" export lives: a folder, or a .zip read in
place (nothing is unpacked to disk). An export is recognised by its content, not its name: a
list of posts at `your_instagram_activity/content/posts_N.json` (older exports:
`content/posts_N.json`) or the insights of a professional account at
`logged_information/past_instagram_insights/posts.json`, under an optional top folder."""

from __future__ import annotations

import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from imagion.errors import ImagionError, InputError
from imagion.files import parse_json
from imagion.images import ZIP_MEMBER, read_zip_member

MARKER = re.compile(
    r"(your_instagram_activity/content/posts_\d+\.json"
    r"|content/posts_\d+\.json"
    r"|logged_information/past_instagram_insights/posts\.json)$"
)
EXPECTED = (
    "your_instagram_activity/content/posts_1.json, content/posts_1.json or "
    "logged_information/past_instagram_insights/posts.json"
)
MAX_EXPORT_JSON_BYTES = 64 * 2**20  # posts_1.json of an account with 10,000 posts is ~10 MB
MAX_EXPORT_TOTAL_JSON_BYTES = 128 * 2**20  # all of an export's JSON files together
# What parsing costs, not what the bytes say: 40 MiB of real post lists parse to ~220 MB
# (5.5× their size), 40 MiB of `[[],[],…]` to ~850 MB. Estimated from the structural characters
# (measured with tracemalloc: a post list's estimate is within 5% of the real cost; other
# shapes are overestimated); a file whose estimate passes this is refused unparsed.
MAX_PARSE_BYTES = 400 * 2**20
MAX_EXPORT_POSTS = 300_000  # posts of one export (each ~1 KB in memory until written)


def parse_cost(raw: bytes) -> int:
    """About how many bytes `json.loads(raw)` takes (a count of its structural characters, which
    slightly overcounts: braces and commas inside strings count too)."""
    objects, arrays, commas = raw.count(b"{"), raw.count(b"["), raw.count(b",")
    return 120 * objects + 64 * arrays + 56 * (commas + 1) + len(raw)


class OverBudget(ImagionError):
    """A JSON file of an export left unread: the export's JSON came to its bound already (said
    once per export, by ExportTree.budget_note)."""


def export_root(name: str) -> str | None:
    """The export's top folder ('' or 'x/') when `name` is a file that marks an export."""
    m = MARKER.search(name)
    if m is None or (m.start() and name[m.start() - 1] != "/"):
        return None
    return name[: m.start()]


@dataclass
class ExportTree:
    """One export: `source` a folder or a .zip, `root` its top folder inside ('' or 'x/')."""

    source: Path
    root: str
    names: frozenset[str] = field(default_factory=frozenset)  # files, relative to root
    is_zip: bool = False
    duplicates: tuple[str, ...] = ()  # member names the zip holds more than once
    json_bytes: int = field(default=0, compare=False)  # JSON read so far (bounded in all)
    json_skipped: list[str] = field(default_factory=list, compare=False)  # past the bound

    def budget_note(self) -> str | None:
        """One line for the JSON files left unread because the export's bound was reached."""
        if not self.json_skipped:
            return None
        return (
            f"{self.label}: {len(self.json_skipped):,} JSON files skipped ({self.json_skipped[0]}"
            f"{' …' if len(self.json_skipped) > 1 else ''}): this export's JSON files already "
            f"came to {MAX_EXPORT_TOTAL_JSON_BYTES // 2**20} MiB unpacked, more than any real "
            "export holds."
        )

    _zip: zipfile.ZipFile | None = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        """How messages name the export."""
        if not self.root:
            return str(self.source)
        sep = ZIP_MEMBER if self.is_zip else "/"
        return f"{self.source}{sep}{self.root.rstrip('/')}"

    @property
    def name(self) -> str:
        """The export's own name: the top folder inside, else the zip's or folder's name."""
        if self.root:
            return PurePosixPath(self.root).name
        return self.source.stem if self.is_zip else self.source.name

    def where(self, rel: str) -> str:
        return f"{self.source}{ZIP_MEMBER if self.is_zip else '/'}{self.root}{rel}"

    def image_ref(self, rel: str) -> str:
        """What the catalog stores for a file of the export (see imagion.images.zip_member)."""
        if self.is_zip:
            return f"{self.source.resolve()}{ZIP_MEMBER}{self.root}{rel}"
        return str((self.source / self.root / rel).resolve())

    def has(self, rel: str) -> bool:
        return rel in self.names

    def matching(self, pattern: re.Pattern[str]) -> list[str]:
        return sorted(n for n in self.names if pattern.fullmatch(n))

    def read_bytes(self, rel: str, limit: int) -> bytes:
        """A file of the export, at most `limit` bytes (a zip is opened once, then reused)."""
        where = self.where(rel)
        if self.is_zip:
            if self._zip is None:
                try:
                    self._zip = zipfile.ZipFile(self.source)
                except (OSError, zipfile.BadZipFile) as exc:
                    raise InputError(f"{self.source}: cannot open the zip ({exc}).") from exc
            return read_zip_member(self._zip, self.root + rel, where, limit)
        path = self.source / self.root / rel
        try:
            if path.stat().st_size > limit:
                raise InputError(f"{where}: larger than {limit // 2**20} MiB; skipped.")
            return path.read_bytes()
        except OSError as exc:
            raise InputError(f"{where}: cannot read ({exc.strerror or exc}); skipped.") from exc

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def read_json(self, rel: str) -> object:
        """A JSON file of the export, bounded in size (each, and all of them together);
        ImagionError naming it otherwise."""
        left = MAX_EXPORT_TOTAL_JSON_BYTES - self.json_bytes
        if left <= 0:
            self.json_skipped.append(rel)
            raise OverBudget(rel)
        limit = min(MAX_EXPORT_JSON_BYTES, left)
        try:
            raw = self.read_bytes(rel, limit)
        except ImagionError:
            if limit == MAX_EXPORT_JSON_BYTES:
                raise
            self.json_skipped.append(rel)  # within the bound alone, not with the others
            raise OverBudget(rel) from None
        self.json_bytes += len(raw)
        cost = parse_cost(raw)
        if cost > MAX_PARSE_BYTES:
            raise ImagionError(
                f"{self.where(rel)}: would take about {cost // 2**20:,} MB to parse, more than "
                f"{MAX_PARSE_BYTES // 2**20} MB (no real export file does); skipped."
            )
        try:
            return parse_json(raw, self.where(rel))
        except ImagionError as exc:
            raise InputError(f"{exc} Skipped.") from None


def _trees(source: Path, names: list[str], is_zip: bool) -> list[ExportTree]:
    roots = sorted({r for n in names if (r := export_root(n)) is not None})
    twice = sorted(n for n, k in Counter(names).items() if k > 1)
    trees = []
    for root in roots:
        inner = frozenset(n[len(root) :] for n in names if n.startswith(root))
        mine = tuple(n for n in twice if n.startswith(root))
        trees.append(ExportTree(source, root, inner, is_zip, duplicates=mine))
    return trees


def zip_exports(path: Path) -> list[ExportTree]:
    """The exports inside a .zip; ImagionError naming what was found when there is none."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = [i.filename for i in zf.infolist() if not i.is_dir()]
    except (OSError, zipfile.BadZipFile, RuntimeError) as exc:
        raise InputError(f"{path}: not a readable .zip ({exc}); skipped.") from exc
    trees = _trees(path, names, is_zip=True)
    if not trees:
        top = sorted({n.split("/", 1)[0] for n in names})
        shown = ", ".join(top[:8]) + ("…" if len(top) > 8 else "") or "nothing"
        raise InputError(
            f"{path}: a .zip but not an Instagram export (expected {EXPECTED}; found {shown}); "
            "skipped."
        )
    return trees


def folder_exports(folder: Path, files: list[Path]) -> list[ExportTree]:
    """The exports unpacked somewhere under `folder`, given its files (walk_files)."""
    names = [p.relative_to(folder).as_posix() for p in files]
    return _trees(folder, names, is_zip=False)


def inside(tree: ExportTree, path: Path) -> bool:
    """Whether a file found by walking a folder belongs to an unpacked export."""
    if tree.is_zip:
        return False
    try:
        rel = (
            path.relative_to(tree.source / tree.root)
            if tree.root
            else path.relative_to(tree.source)
        )
    except ValueError:
        return False
    return rel.as_posix() in tree.names
