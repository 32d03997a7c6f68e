"""Writing files safely: atomic replacement, output folders checked before the work starts, and
the clean-up of temporary files that a killed process left behind."""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from imagion.errors import ImagionError, InputError, OptionError

TMP_SUFFIX = ".imagion-tmp"
NOT_REGULAR = "not a regular file (a FIFO, socket or device); imagion reads files only"
STALE_AFTER_S = 300.0  # a temporary file this old belongs to no live writer


def writable_folder(folder: str | os.PathLike, option: str) -> Path:
    """Create `folder` if needed and prove it takes a file; ImagionError names the option."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except FileExistsError:
        if folder.is_symlink() and not folder.exists():
            raise InputError(
                f"{option} {folder}: is a link to {os.readlink(folder)}, which does not exist; "
                "create that folder or name another."
            ) from None
        raise InputError(f"{option} {folder}: is a file, not a folder.") from None
    except OSError as exc:
        raise InputError(f"{option} {folder}: cannot write there ({exc.strerror}).") from None
    return folder


def parse_json(raw: bytes | str, where: str) -> object:
    """Parsed JSON, or one ImagionError naming `where`: not UTF-8, not JSON, an integer of over
    4,300 digits (Python refuses to convert it: ValueError), or nested deeper than the parser's
    recursion limit (RecursionError). Callers bound the bytes before they get here."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise InputError(f"{where}: JSON nested too deeply.") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, a 5,000-digit integer
        raise InputError(f"{where}: not valid JSON ({exc}).") from None


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """A regular file's bytes, refused past `limit` (ImagionError naming it)."""
    regular_file(path, what)
    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot be read ({exc.strerror or exc}).") from None
    if len(raw) > limit:
        raise InputError(f"{what} {path}: larger than {limit // 2**20} MiB.")
    return raw


def regular_file(path: str | os.PathLike, what: str = "") -> Path:
    """`path` as a regular file, or one line saying what it is instead: reading a FIFO blocks
    until someone writes to it, and a device may never end. `what` (a parameter) leads."""
    path = Path(path)
    said = f"{what} {path}".lstrip()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"{said}: no such file.") from None
    except OSError as exc:
        raise InputError(f"{said}: cannot be read ({exc.strerror}).") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{said}: is a folder, not a file.")
    if not stat.S_ISREG(mode):
        raise InputError(f"{said}: {NOT_REGULAR}.")
    return path


def _names(name: str) -> Iterator[str]:
    """`name`, then `stem (2).ext`, `stem (3).ext`… (10,000 at most)."""
    stem, suffix = Path(name).stem, Path(name).suffix
    yield name
    for k in range(2, 10_000):
        yield f"{stem} ({k}){suffix}"


def _too_many(folder: Path, name: str) -> ImagionError:
    return ImagionError(f"{folder}: 10,000 files named like {name} already; choose another folder.")


def unused_path(folder: Path, name: str) -> Path:
    """A path in `folder` that no file has, created empty here (O_EXCL) so that no other writer
    can take it: `name`, else `stem (2).ext`, `stem (3).ext`… A file already there is never
    replaced: it may be the user's."""
    for candidate in _names(name):
        path = folder / candidate
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return path
    raise _too_many(folder, name)


NAME_BYTES = 200  # a name imagion makes, in bytes: room for ` (2)` and a temporary's affixes


def fitting_name(name: str, limit: int = NAME_BYTES) -> str:
    """`name` cut in its stem to at most `limit` bytes (the extension kept), so that a copy of a
    file with a 251-character name can be written (255 bytes is the usual most)."""
    if len(os.fsencode(name)) <= limit:
        return name
    stem, suffix = os.path.splitext(name)
    room = limit - len(os.fsencode(suffix)) - len(os.fsencode("…"))
    cut = os.fsencode(stem)[: max(room, 1)].decode("utf-8", "ignore")
    return f"{cut}…{suffix}"


def _publish(tmp: Path, folder: Path, name: str) -> Path:
    """`tmp` (finished) under `name` in `folder`, or `stem (2).ext`…: a hard link fails rather
    than replace a file; where links are not supported, a reserved empty name is replaced."""
    for candidate in _names(name):
        path = folder / candidate
        try:
            os.link(tmp, path)
        except FileExistsError:
            continue
        except OSError:  # no hard links here (FAT, some network file systems)
            path = unused_path(folder, candidate)
            os.replace(tmp, path)
        return path
    raise _too_many(folder, name)


def copy_into(source: Path, folder: Path, name: str, option: str) -> Path:
    """Copy `source` into `folder` as `name` (or `name (2)`…: nothing there is replaced),
    through a temporary file published when whole: a failed copy (a full disk, a source gone)
    leaves no partial or empty file under the name; OptionError names the destination."""
    import shutil

    name = fitting_name(name)
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".copy.", suffix=TMP_SUFFIX, dir=folder)
        os.close(fd)
        shutil.copyfile(source, tmp)
        shutil.copystat(source, tmp)
        return _publish(Path(tmp), folder, name)
    except OSError as exc:
        gone = isinstance(exc, FileNotFoundError) and not source.exists()
        reason = f"{source} is gone" if gone else exc.strerror or type(exc).__name__
        raise OptionError(
            option,
            folder / name,
            f"the copy of {source.name} failed ({reason}); nothing is left there.",
        ) from None
    finally:
        if tmp:
            Path(tmp).unlink(missing_ok=True)


def walk_files(root: Path, recursive: bool = True) -> tuple[list[Path], list[str]]:
    """The regular files under `root` (sorted; symlinked folders are not followed, so a cycle
    cannot hang), and one line per folder that could not be read: a folder without permission
    costs its own files, named, never the whole run."""
    files: list[Path] = []
    problems: list[str] = []

    def unreadable(exc: OSError) -> None:
        problems.append(f"{exc.filename}: folder cannot be read ({exc.strerror}); skipped.")

    for folder, dirs, names in os.walk(root, onerror=unreadable, followlinks=False):
        if not recursive:
            dirs.clear()
        for name in names:
            path = Path(folder) / name
            try:
                if stat.S_ISREG(path.stat().st_mode):
                    files.append(path)
                else:
                    problems.append(f"{path}: {NOT_REGULAR}; skipped.")
            except OSError as exc:
                problems.append(f"{path}: cannot be read ({exc.strerror}); skipped.")
    return sorted(files), problems


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path`, renamed onto it when the block succeeds and removed
    when it fails: readers see the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; these are ordinary files
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename in (None, tmp):  # a full disk names no file: name the one being written
            exc.filename = str(path)
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def remove_stale_temporaries(
    folder: str | os.PathLike,
    older_than_s: float = STALE_AFTER_S,
    pattern: str = f".*{TMP_SUFFIX}",
) -> int:
    """Delete temporary files of atomic writes (killed with -9 mid-write) that no live writer
    can still own (older than `older_than_s`); returns how many."""
    removed = 0
    now = time.time()
    for tmp in Path(folder).glob(pattern):
        try:
            if now - tmp.stat().st_mtime > older_than_s:
                tmp.unlink()
                removed += 1
        except OSError:
            pass
    return removed


GENERATOR = "imagion"  # how an output says that imagion wrote it (the marks below)
HTML_MARK = f'<meta name="generator" content="{GENERATOR}">'
_TEXT_MARKS = {  # formats marked by text in the file (read from its first and last bytes)
    ".html": HTML_MARK.encode(),
    ".svg": f"<dc:title>{GENERATOR}</dc:title>".encode(),  # matplotlib's metadata Creator
    ".pdf": f"/Creator ({GENERATOR})".encode(),
}
_IMAGE_MARKS = (".png", ".jpg", ".jpeg")  # PNG Software text, JPEG comment
CHECKPOINT_MARK = "imagion-checkpoint"  # a checkpoint card's `format` (models.card)
_READ_AT_MOST = 1 << 20


def figure_marks(path: str | os.PathLike) -> dict[str, Any]:
    """matplotlib `savefig` keywords that mark a figure at `path` as imagion's."""
    suffix = Path(path).suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        return {"pil_kwargs": {"comment": GENERATOR.encode()}}
    if suffix in (".svg", ".pdf"):
        return {"metadata": {"Creator": GENERATOR}}
    return {"metadata": {"Software": GENERATOR}}


def _ends(path: Path) -> bytes:
    with open(path, "rb") as f:
        head = f.read(_READ_AT_MOST)
        f.seek(0, os.SEEK_END)
        if f.tell() > 2 * _READ_AT_MOST:
            f.seek(-_READ_AT_MOST, os.SEEK_END)
            head += f.read(_READ_AT_MOST)
        return head


def _image_marked(path: Path) -> bool:
    from PIL import Image

    with Image.open(path) as im:
        said = im.info.get("Software") or im.info.get("comment") or b""
    return (said.decode(errors="replace") if isinstance(said, bytes) else str(said)) == GENERATOR


def _json_marked(path: Path) -> bool:
    import json

    if path.stat().st_size > 64 * _READ_AT_MOST:
        return False
    data = json.loads(path.read_bytes())
    return isinstance(data, dict) and data.get("generator") == GENERATOR


def _checkpoint_marked(path: Path) -> bool:
    """A checkpoint whose card says `format: imagion-checkpoint`, read from its pickle's
    opcodes without running it (and without torch)."""
    import pickletools

    with zipfile.ZipFile(path) as z:
        pickles = [i for i in z.infolist() if i.filename.endswith("data.pkl")]
        if len(pickles) != 1 or pickles[0].file_size > 32 * _READ_AT_MOST:
            return False
        with z.open(pickles[0]) as f:
            data = f.read()
    strings = iter(
        arg
        for op, arg, _ in pickletools.genops(data)
        if isinstance(arg, str) and "UNICODE" in op.name
    )
    return any(text == "format" and next(strings, None) == CHECKPOINT_MARK for text in strings)


def _csv_marked(path: Path, header: tuple[str, ...]) -> bool:
    import csv

    with open(path, encoding="utf-8", newline="") as f:
        first = next(csv.reader([f.readline(64 * 1024)]), [])
    return bool(header) and tuple(first[: len(header)]) == header


def written_by_imagion(path: str | os.PathLike, header: tuple[str, ...] = ()) -> bool:
    """Whether the file at `path` carries imagion's mark, so that a new output may replace it:
    a generator in HTML, SVG and PDF, PNG text or a JPEG comment, `generator` in JSON, the
    checkpoint card's format, and for CSV (no room for a mark) the `header` imagion writes."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in _TEXT_MARKS:
            return _TEXT_MARKS[suffix] in _ends(path)
        if suffix in _IMAGE_MARKS:
            return _image_marked(path)
        if suffix == ".json":
            return _json_marked(path)
        if suffix == ".pt":
            return _checkpoint_marked(path)
        if suffix == ".csv":
            return _csv_marked(path, header)
    except Exception:  # a file whose mark cannot be read is not imagion's
        return False
    return False


def output_file(
    path: str | os.PathLike,
    option: str,
    suffixes: tuple[str, ...],
    header: tuple[str, ...] = (),
) -> Path:
    """Check an output file before any work; ImagionError names the option. The one rule of
    every output: a file already there is replaced only when imagion wrote it
    (`written_by_imagion`; `header`: the columns of a CSV); a link is never replaced."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise OptionError(option, path, f"use one of {', '.join(suffixes)}.")
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_symlink():
        raise OptionError(
            option, path, "is a link, and nothing is replaced: name a file, not a link."
        )
    if not folder.is_dir():
        raise OptionError(option, path, f"folder {folder} does not exist.")
    if path.is_dir():
        raise OptionError(option, path, "is a folder; name a file in it.")
    if path.exists() and not stat.S_ISREG(path.stat().st_mode):
        raise OptionError(option, path, "not a regular file; name another file.")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OptionError(option, path, "cannot write there (permissions); choose another place.")
    if path.exists() and not written_by_imagion(path, header):
        raise OptionError(
            option,
            path,
            "a file imagion did not write is there, and nothing is replaced: choose another "
            "name (or move that file away).",
        )
    return path
