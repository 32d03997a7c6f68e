"""CSV that is safe to open in a spreadsheet: a cell that begins with `=`, `+`, `-`, `@`, a tab
or a carriage return is a formula to Excel, LibreOffice and Google Sheets (`=HYPERLINK(…)`,
`=cmd|'/C calc'!A0`), so text from file names, accounts, post ids or captions that begins so is
written with a leading apostrophe, as OWASP recommends. Numbers are written as numbers (a
negative raw score stays `-0.53`): only text is escaped. Every CSV imagion writes goes through
here."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from typing import IO, Any

from imagion.names import encodable

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """`value` as a spreadsheet will read it as text: formula-like text gets a leading `'`."""
    if isinstance(value, str):
        value = encodable(value)  # a name that is not UTF-8 (caf\xe9.jpg) must not stop the CSV
        if value.startswith(FORMULA_START):
            return "'" + value
    return value


def safe_frame(df: Any) -> Any:
    """A copy of a pandas frame with every text cell made safe (numbers untouched)."""
    from pandas.api.types import is_numeric_dtype

    df = df.copy()
    for column in df.columns:
        if not is_numeric_dtype(df[column]):  # object or string columns: text may hide here
            df[column] = df[column].astype(object).map(safe_cell)
    df.columns = [safe_cell(c) for c in df.columns]
    return df


LIST_SEPARATOR = "; "  # a JSON list (labels, runners-up) in one CSV cell


def csv_cell(value: object) -> object:
    """A JSON row's value as one CSV cell: a list joined by LIST_SEPARATOR, then made safe."""
    if isinstance(value, list | tuple):
        value = LIST_SEPARATOR.join(map(str, value))
    return safe_cell(value)


def write_rows(stream: IO[str], fields: list[str], rows: Iterable[Mapping[str, object]]) -> None:
    """Rows as CSV with a header, each cell made safe (a list joined in one cell); keys not in
    `fields` are left out, so a CSV is the JSON rows' chosen columns."""
    w = csv.DictWriter(stream, fieldnames=fields, extrasaction="ignore")
    w.writeheader()
    for row in rows:
        w.writerow({k: csv_cell(v) for k, v in row.items()})
