"""Writing the commands' tables: the output format follows the file extension."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cellkin.errors import OptionError

__all__ = ["write_table"]

_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write `frame` as CSV or parquet, chosen by the extension of `path` (no index).

    Raises
    ------
    OptionError
        If the extension is neither ``.csv`` nor ``.parquet``/``.pq``.
    """
    suffix = path.suffix.lower()
    kind = _FORMATS.get(suffix)
    if kind is None:
        raise OptionError(f"{path}: unsupported output extension {suffix!r}; use .csv or .parquet")
    if kind == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
