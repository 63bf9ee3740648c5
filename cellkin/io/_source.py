"""Reading a source table: a file (CSV/TSV, Excel, parquet) or a DataFrame, and its checksum.

:func:`read_source` is the first step of every reader of :mod:`cellkin.io`: it reads a path by
its extension (CSV may be compressed) or copies a DataFrame, indexes the rows by their 1-based
data-row number (the number every error message cites) and refuses empty tables. Reader
failures (a missing file, a truncated workbook, binary data in a ``.csv``) become
:class:`~cellkin.errors.DataError` naming the file and the fix. Compressed CSVs (``.gz``,
``.bz2``, ``.xz``, a ``.zip`` holding one file) are decompressed by their extension; the layout
of text files (separator, decimal comma, title lines) is detected by
:mod:`cellkin.io._layout` and Excel sheets are read by :mod:`cellkin.io._excel`.
:func:`read_header` reads only the column names (for table recognition) and :func:`sha256`
checksums a file (provenance).
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cellkin._validation import Context
from cellkin.errors import DataError
from cellkin.io._excel import read_excel
from cellkin.io._layout import sniff_text
from cellkin.io._notes import Notes

__all__ = ["TEXT_COLUMNS", "Source", "file_kind", "read_header", "read_source", "sha256"]

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


@dataclass(frozen=True, eq=False)
class Source:
    """A table as read from its source, before any column is interpreted.

    Attributes
    ----------
    frame : pandas.DataFrame
        The rows, indexed 1..n by data row (empty rows dropped), column names stripped.
    ctx : Context
        How to name the table and its rows in messages.
    decimal : str
        The decimal mark of numbers written as text (``"."`` or ``","``).
    thousands : str or None
        The thousands separator of numbers written as text.
    notes : Notes
        What was detected while reading (layout, skipped title rows).
    """

    frame: pd.DataFrame
    ctx: Context
    decimal: str = "."
    thousands: str | None = None
    notes: Notes = field(default_factory=Notes)


def read_source(
    source: Any, sheet_name: int | str = 0, options: Mapping[str, Any] | None = None
) -> Source:
    """Read a path or copy a DataFrame; index the rows 1..n and check the table is not empty.

    Column names are stripped of surrounding blanks; rows with every cell empty are dropped
    (they hold no data). The caller's DataFrame is never modified. `options` may give the
    layout of a file: ``sep``, ``decimal``, ``thousands``, ``skiprows`` (rows above the
    header) and ``sheet`` (overrides `sheet_name`); what is not given is detected.
    """
    options = dict(options or {})
    notes = Notes()
    layout: dict[str, Any] = {"decimal": ".", "thousands": None}
    if isinstance(source, pd.DataFrame):
        frame = source.copy(deep=True)
        labels = tuple(source.index)
        default = isinstance(source.index, pd.RangeIndex) and source.index.equals(
            pd.RangeIndex(len(source))
        )
        ctx = Context("DataFrame input", None if default else labels)
    elif isinstance(source, (str, os.PathLike)):
        ctx = Context(os.fspath(source))
        sheet = options.get("sheet", sheet_name)
        frame, layout = _read_file(ctx, Path(source), sheet, options, notes)
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
    return Source(frame, ctx, layout["decimal"], layout["thousands"], notes)


def _read_file(
    ctx: Context, path: Path, sheet_name: int | str, options: dict[str, Any], notes: Notes
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read one file by its extension, turning reader exceptions into DataError."""
    kind = file_kind(path)
    if kind is None:
        known = ", ".join(sorted(_READERS))
        raise ctx.error(
            f"unsupported file extension {path.suffix or '(none)'!r}; cellkin reads {known} "
            "(CSV may be compressed: .gz, .bz2, .xz, .zip). For SAS XPT, read it with "
            "pandas.read_sas() and pass the DataFrame."
        )
    if not path.is_file():
        where = "is a folder, not a file" if path.is_dir() else "not found"
        raise ctx.error(f"file {where} (looked for {path.resolve()}); check the path.")
    plain: dict[str, Any] = {"decimal": ".", "thousands": None}
    try:
        if kind == "excel":
            return read_excel(ctx, path, sheet_name, options, notes), plain
        if kind == "parquet":
            return pd.read_parquet(path), plain
        return _read_text(ctx, path, "\t" if kind == "tsv" else None, options, notes)
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


def _read_bytes(ctx: Context, path: Path) -> bytes:
    """The file's bytes, decompressed by the extension (.gz, .bz2, .xz, a one-file .zip)."""
    suffix = path.suffix.lower()
    if suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            members = [n for n in archive.namelist() if not n.endswith("/")]
            if len(members) != 1:
                raise ctx.error(
                    f"the zip archive holds {len(members)} files; cellkin reads a zip with "
                    "exactly one table in it."
                )
            return archive.read(members[0])
    if suffix == ".zst":
        raise ctx.error("Zstandard (.zst) files are not read; decompress the file first.")
    openers: dict[str, Callable[..., Any]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
    opener = openers.get(suffix, open)
    with opener(path, "rb") as handle:
        return handle.read()


def _read_text(
    ctx: Context, path: Path, sep: str | None, options: dict[str, Any], notes: Notes
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read CSV/TSV (compressed or not): layout detected, identifiers as text, '.' missing."""
    data = _read_bytes(ctx, path)
    if b"\x00" in data[:65536]:
        raise ctx.error(
            "the file contains binary data (NUL bytes), so it is not a text CSV. If it is an "
            "Excel or parquet file, give it the matching extension."
        )
    for encoding in _ENCODINGS:
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ctx.error("the file is neither UTF-8 nor Windows-1252 text; save it as UTF-8 CSV.")
    if not text.strip():
        raise ctx.error("the file is empty (no header and no rows).")
    given: dict[str, Any] = {
        k: options[k] for k in ("sep", "decimal", "thousands", "skiprows") if k in options
    }
    if sep is not None:
        given.setdefault("sep", sep)
    layout = sniff_text(ctx, text, given)
    if (layout.sep, layout.decimal, layout.thousands, layout.skiprows) != (",", ".", None, 0):
        notes.add("layout", "", 0, f"file read as {layout.describe()}")
    kwargs = {"sep": layout.sep, "decimal": layout.decimal, "thousands": layout.thousands,
              "skiprows": layout.skiprows, "na_values": ["."]}  # fmt: skip
    header = pd.read_csv(io.StringIO(text), nrows=0, **kwargs).columns
    ids = {col: str for col in header if str(col).strip().casefold() in TEXT_COLUMNS}
    frame = pd.read_csv(io.StringIO(text), dtype=ids, **kwargs)
    return frame, {"decimal": layout.decimal, "thousands": layout.thousands}


def read_header(path: str | os.PathLike[str]) -> list[str]:
    """The column names of a table file, as the readers see them (layout detected).

    Raises
    ------
    DataError
        If the file does not exist or its header cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if file_kind(path) == "parquet":
        import pyarrow.parquet as pq

        try:
            return [str(name) for name in pq.read_schema(path).names]
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot read the header ({exc})") from None
    return [str(name) for name in read_source(path).frame.columns]


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
