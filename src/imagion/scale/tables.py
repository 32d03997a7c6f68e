"""The Parquet table a Ray run writes (`rank --engine ray --out`), without Ray: its columns, the
check made before any work, the write into a folder this run creates and the one rename that
publishes it, and the counts read back from its metadata.

The rule: nothing already at `out` is replaced or removed, whatever it is (a folder of photos, a
file, a link, an older table); the only folder ever removed is the temporary one made here."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imagion.errors import OptionError

MAX_PROBLEMS_SHOWN = 20


def schema(features: bool = False, labels: bool = False) -> Any:
    """The table's columns, the same types in every block (an error is a string or null in all
    of them, a score a float64, NaN where there is none), so that blocks without a failure and
    blocks with one make one table."""
    import pyarrow as pa

    fields = [("path", pa.string()), ("score", pa.float64())]
    fields += [("score_low", pa.float64()), ("score_high", pa.float64()), ("raw", pa.float64())]
    fields.append(("error", pa.string()))
    if features:  # what grouping from the table needs: the features and the quality measures
        fields.append(("features", pa.list_(pa.float32())))
        fields.append(("quality", pa.list_(pa.float32())))
        fields.append(("thumb", pa.binary()))  # inference/highlights.py
        fields += [
            ("hash", pa.int64()),
            ("colour", pa.list_(pa.float32())),
            ("taken", pa.float64()),
        ]
    if labels:
        fields.append(("labels", pa.string()))
    return pa.schema(fields)


def _in_the_way(out: Path) -> str | None:
    """What is at `out` already (a link, even a dangling one, is something), or None."""
    if out.is_symlink():
        return "a link"
    if not os.path.lexists(out):
        return None
    return "a folder" if out.is_dir() else "a file" if out.is_file() else "a special file"


def _folder(out: Path) -> Path:
    return out.parent if str(out.parent) else Path(".")


def check_table(out: Path) -> None:
    """Checked before any work: a new .parquet path in a folder that exists and is writable."""
    if out.suffix.lower() != ".parquet":
        raise OptionError("out", out, "name the table FILE.parquet (a Parquet dataset folder).")
    parent = _folder(out)
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise OptionError("out", out, f"folder {parent} does not exist or cannot be written.")
    there = _in_the_way(out)
    if there is not None:
        raise OptionError(
            "out", out, f"{there} is already there, and nothing is replaced: choose another "
            "name (or move it away first)."
        )  # fmt: skip


def write_table(write: Callable[[str], None], out: Path) -> None:
    """`write(folder)` into a new folder beside `out` (made here, removed if the write fails),
    then that folder renamed to `out`; if something appeared at `out` meanwhile, it is kept and
    so is the table, in the temporary folder (the error names it)."""
    tmp = Path(tempfile.mkdtemp(prefix=f"{out.name}.imagion-tmp-", dir=_folder(out)))
    try:
        write(str(tmp.resolve()))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    there = _in_the_way(out)
    if there is not None:
        raise OptionError(
            "out", out, f"{there} appeared there during the run and is kept; the table is in {tmp}."
        )
    os.rename(tmp, out)


def tally(table: Path) -> tuple[int, int, list[str]]:
    """(rows, failed rows, the first reasons) of a written table, read with pyarrow from the
    Parquet metadata and the `error` column alone: no second pass of Ray over the data."""
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    data = pads.dataset(str(table), format="parquet")
    rows = data.count_rows()
    failing = data.filter(pc.field("error").is_valid())
    failed = failing.count_rows()
    shown = failing.head(MAX_PROBLEMS_SHOWN, columns=["error"]).column("error").to_pylist()
    return rows, failed, [str(e) for e in shown]
