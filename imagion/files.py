"""Writing files safely: atomic replacement, output folders checked before the work starts, and
the clean-up of temporary files that a killed process left behind."""

from __future__ import annotations

import os
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from imagion.errors import InputError

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
        raise InputError(f"{option} {folder}: is a file, not a folder.") from None
    except OSError as exc:
        raise InputError(f"{option} {folder}: cannot write there ({exc.strerror}).") from None
    return folder


def regular_file(path: str | os.PathLike, what: str) -> Path:
    """`path` as a regular file, or one line saying what it is instead: reading a FIFO blocks
    until someone writes to it, and a device may never end."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"{what} {path}: no such file.") from None
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot be read ({exc.strerror}).") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{what} {path}: is a folder, not a file.")
    if not stat.S_ISREG(mode):
        raise InputError(f"{what} {path}: {NOT_REGULAR}.")
    return path


def unused_path(folder: Path, name: str) -> Path:
    """A path in `folder` that no file has, created empty here (O_EXCL) so that no other writer
    can take it: `name`, else `stem (2).ext`, `stem (3).ext`… A file already there is never
    replaced: it may be the user's."""
    stem, suffix = Path(name).stem, Path(name).suffix
    for k in range(1, 10_000):
        path = folder / (name if k == 1 else f"{stem} ({k}){suffix}")
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return path
    raise InputError(f"{folder}: 10,000 files named like {name} already; choose another folder.")


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


def output_file(path: str | os.PathLike, option: str, suffixes: tuple[str, ...]) -> Path:
    """Check an output file's folder and suffix before any work; ImagionError names the option."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise InputError(f"{option} {path}: use one of {', '.join(suffixes)}.")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"{option} {path}: folder {folder} does not exist.")
    if path.is_dir():
        raise InputError(f"{option} {path}: is a folder; name a file in it.")
    if path.exists() and not stat.S_ISREG(path.stat().st_mode):
        raise InputError(f"{option} {path}: not a regular file; name another file.")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError(
            f"{option} {path}: cannot write there (permissions); choose another place."
        )
    return path
