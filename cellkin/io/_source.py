"""Reading a source table: a file (CSV/TSV, Excel, parquet) or a DataFrame, and its checksum.

:func:`read_source` is the first step of every reader of :mod:`cellkin.io`: it reads a path by
its extension (CSV may be compressed) or copies a DataFrame, indexes the rows by their 1-based
data-row number (the number every error message cites) and refuses empty tables. Reader
failures (a missing file, a truncated workbook, binary data in a ``.csv``) become
:class:`~cellkin.errors.DataError` naming the file and the fix. :func:`read_header` reads only
the column names (for table recognition) and :func:`sha256` checksums a file (provenance).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pandas as pd

from cellkin._validation import Context
from cellkin.errors import DataError

__all__ = ["TEXT_COLUMNS", "file_kind", "read_header", "read_source", "sha256"]

#: Columns read as text from CSV files so that identifiers such as "001" keep their zeros.
TEXT_COLUMNS = frozenset({"subject", "id", "usubjid", "subjid", "lesion_id", "visit"})
_READERS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".xlsx": "excel"}
_READERS.update({".xlsm": "excel", ".xls": "excel", ".parquet": "parquet", ".pq": "parquet"})
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst")
_ENCODINGS = ("utf-8-sig", "cp1252")


def file_kind(path: Path) -> str | None:
    """``"csv"``, ``"tsv"``, ``"excel"`` or ``"parquet"`` from the file name, or None.

    A compression suffix after a text extension is ignored (``pk.csv.gz`` is CSV).
    """
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if len(suffixes) == 2 and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:1]
    return _READERS.get(suffixes[-1] if suffixes else "")


def read_source(source: Any, sheet_name: int | str = 0) -> tuple[pd.DataFrame, Context]:
    """Read a path or copy a DataFrame; index the rows 1..n and check the table is not empty.

    Column names are stripped of surrounding blanks; rows with every cell empty are dropped
    (they hold no data). The caller's DataFrame is never modified.
    """
    if isinstance(source, pd.DataFrame):
        frame = source.copy(deep=True)
        labels = tuple(source.index)
        default = isinstance(source.index, pd.RangeIndex) and source.index.equals(
            pd.RangeIndex(len(source))
        )
        ctx = Context("DataFrame input", None if default else labels)
    elif isinstance(source, (str, os.PathLike)):
        ctx = Context(os.fspath(source))
        frame = _read_file(ctx, Path(source), sheet_name)
    else:
        raise TypeError(
            f"source must be a file path or a pandas DataFrame, not {type(source).__name__}"
        )
    columns = [str(col).strip() for col in frame.columns]
    repeated = sorted({col for col in columns if columns.count(col) > 1})
    if repeated:
        raise ctx.error(
            f"column name(s) {', '.join(f'`{c}`' for c in repeated)} appear more than once; "
            "give every column a distinct name."
        )
    frame.columns = columns
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    frame = frame.loc[~frame.isna().all(axis=1)]
    if frame.empty:
        raise ctx.error(
            "the table has no data rows (only a header, or every row is empty). "
            "Check that you passed the right file and sheet."
        )
    return frame, ctx


def _read_file(ctx: Context, path: Path, sheet_name: int | str) -> pd.DataFrame:
    """Read one file by its extension, turning reader exceptions into DataError."""
    kind = file_kind(path)
    if kind is None:
        known = ", ".join(sorted(_READERS))
        raise ctx.error(
            f"unsupported file extension {path.suffix or '(none)'!r}; cellkin reads {known} "
            "(CSV may be compressed, e.g. .csv.gz). For SAS XPT, read it with "
            "pandas.read_sas() and pass the DataFrame."
        )
    if not path.is_file():
        where = "is a folder, not a file" if path.is_dir() else "not found"
        raise ctx.error(f"file {where} (looked for {path.resolve()}); check the path.")
    try:
        if kind == "excel":
            return _read_excel(ctx, path, sheet_name)
        if kind == "parquet":
            return pd.read_parquet(path)
        return _read_text(ctx, path, "\t" if kind == "tsv" else ",")
    except DataError:
        raise
    except ImportError as exc:
        raise ctx.error(f"reading this file needs an optional package: {exc}") from exc
    except pd.errors.EmptyDataError as exc:
        raise ctx.error("the file is empty (no header and no rows).") from exc
    except Exception as exc:  # any failure of the parser means the file is unreadable
        raise ctx.error(
            f"cannot read the file as {kind} ({type(exc).__name__}: {exc}). Check that it is a "
            f"valid {kind} file (not truncated or renamed) by opening it in its usual program."
        ) from exc


def _read_text(ctx: Context, path: Path, sep: str) -> pd.DataFrame:
    """Read CSV/TSV: identifiers as text, '.' as missing (NONMEM), UTF-8 or Windows-1252."""
    with open(path, "rb") as handle:
        head = handle.read(65536)
    if b"\x00" in head:
        raise ctx.error(
            "the file contains binary data (NUL bytes), so it is not a text CSV. If it is an "
            "Excel or parquet file, give it the matching extension."
        )
    for encoding in _ENCODINGS:
        try:
            header = pd.read_csv(path, sep=sep, nrows=0, encoding=encoding).columns
            text = {col: str for col in header if str(col).strip().casefold() in TEXT_COLUMNS}
            return pd.read_csv(path, sep=sep, encoding=encoding, dtype=text, na_values=["."])
        except UnicodeDecodeError:
            continue
    raise ctx.error("the file is neither UTF-8 nor Windows-1252 text; save it as UTF-8 CSV.")


def _read_excel(ctx: Context, path: Path, sheet_name: int | str) -> pd.DataFrame:
    """Read one sheet, naming the sheets there are when the requested one is absent."""
    with pd.ExcelFile(path) as book:
        names = book.sheet_names
        ok = (
            sheet_name in names
            if isinstance(sheet_name, str)
            else isinstance(sheet_name, int) and 0 <= sheet_name < len(names)
        )
        if not ok:
            raise ctx.error(
                f"no sheet {sheet_name!r}; the workbook has sheets "
                f"{', '.join(repr(n) for n in names)}. Pass `sheet_name=` with one of them "
                "(a name or a 0-based position)."
            )
        return book.parse(sheet_name, na_values=["."])


def read_header(path: str | os.PathLike[str]) -> list[str]:
    """The column names of a table file, without reading its rows.

    Raises
    ------
    DataError
        If the file does not exist or its header cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    kind = file_kind(path)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
        elif kind == "excel":
            names = pd.read_excel(path, nrows=0).columns
        else:
            names = _read_csv_header(path, "\t" if kind == "tsv" else ",")
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the header ({exc})") from None
    return [str(name) for name in names]


def _read_csv_header(path: Path, sep: str) -> pd.Index:
    """The header of a CSV/TSV file in UTF-8 or, failing that, Windows-1252."""
    try:
        return pd.read_csv(path, nrows=0, sep=sep, encoding=_ENCODINGS[0]).columns
    except UnicodeDecodeError:
        return pd.read_csv(path, nrows=0, sep=sep, encoding=_ENCODINGS[1]).columns


def sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes (the checksum a report records for each input file).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "empty.csv"
    ...     _ = path.write_bytes(b"")
    ...     sha256(path)
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
