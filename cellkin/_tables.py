"""Checks of the tables users pass to the outcome and exposure analyses (private core).

Each check raises :class:`~cellkin.errors.DataError` naming the table, the column, the first
offending subject and the fix. :mod:`cellkin.outcomes` and :mod:`cellkin.metrics` share them.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from cellkin._validation import show
from cellkin.errors import DataError

__all__ = ["first_subject", "require"]


def require(frame: pd.DataFrame, columns: Iterable[str], table: str, fix: str = "") -> None:
    """Raise :class:`DataError` if `frame` lacks one of `columns` (the table named `table`)."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"`{table}` must be a pandas DataFrame, not {type(frame).__name__}")
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        listed = ", ".join(f"`{name}`" for name in missing)
        found = ", ".join(f"`{col}`" for col in frame.columns) or "none"
        noun = "column" if len(missing) == 1 else "columns"
        raise DataError(
            f"`{table}` is missing the {noun} {listed} (columns found: {found}). "
            f"{fix or 'Read the table with cellkin.io, or rename the columns.'}"
        )


def first_subject(frame: pd.DataFrame, bad: pd.Series | np.ndarray) -> str:
    """Describe the first offending row of `frame` as "subject '101'" (or "row 3").

    The subject is read from ``subject``, else ``USUBJID`` or ``SUBJID`` (CDISC).
    """
    mask = np.asarray(bad, dtype=bool)
    position = int(np.flatnonzero(mask)[0])
    count = int(mask.sum())
    more = f" ({count} rows affected)" if count > 1 else ""
    for column in ("subject", "USUBJID", "SUBJID"):
        if column in frame.columns:
            return f"subject {show(frame[column].iloc[position])}{more}"
    return f"row {position + 1}{more}"
