"""Grouping and event-flag helpers shared by the outcome modules (private).

* :func:`group_labels` / :func:`ordered_groups` — the groups of a ``by=`` column, checked for
  gaps, in a natural order, with :data:`OVERALL` as the label of the pooled row;
* :func:`to_event_flag` — a 0/1 or boolean event column as integers, raising
  :class:`~cellkin.errors.DataError` on anything else.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellkin._tables import first_subject, require
from cellkin._validation import show
from cellkin.errors import DataError

__all__ = ["OVERALL", "group_labels", "ordered_groups", "to_event_flag"]

#: Label of the row that pools every group.
OVERALL = "all"


def to_event_flag(values: pd.Series, frame: pd.DataFrame, column: str, table: str) -> np.ndarray:
    """Convert a 0/1 or boolean event column to int (1 = event), raising on anything else."""
    numeric = pd.to_numeric(values.astype(object), errors="coerce")
    bad = values.isna().to_numpy() | ~np.isin(numeric.to_numpy(dtype=float), (0.0, 1.0))
    if bad.any():
        where = first_subject(frame, bad)
        first = values.to_numpy()[np.flatnonzero(bad)[0]]
        raise DataError(
            f"`{table}` column `{column}` must be 0/1 (1 = event, 0 = censored); {where} has "
            f"{show(first)}. Recode the column (True/False and 1/0 both work) and give every "
            "subject a value."
        )
    return numeric.to_numpy(dtype=float).astype(int)


def group_labels(frame: pd.DataFrame, by: str | None, table: str) -> pd.Series:
    """Return the grouping values of `frame` (``"all"`` when `by` is None), checking for gaps."""
    if by is None:
        return pd.Series(OVERALL, index=frame.index, dtype=object)
    require(frame, [by], table, f"Pass `by=` with a column of `{table}`, or by=None.")
    labels = frame[by]
    if labels.isna().any():
        where = first_subject(frame, labels.isna())
        raise DataError(
            f"`{table}` column `{by}` is empty for {where}. Fill in the group of every subject "
            "or drop those subjects before grouping."
        )
    return labels.astype(object)


def ordered_groups(labels: pd.Series) -> list:
    """The distinct group labels in a natural order (sorted when sortable, else as they come)."""
    unique = list(pd.unique(labels))
    try:
        return sorted(unique)
    except TypeError:
        return unique
