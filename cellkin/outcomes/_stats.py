"""Private helpers shared by the outcome modules.

* :func:`clopper_pearson` — the exact binomial confidence interval (Clopper & Pearson 1934),
  computed by SciPy (:meth:`scipy.stats.BinomTestResult.proportion_ci`, ``method="exact"``);
* input checks that raise :class:`~cellkin.errors.DataError` naming the table, the column, the
  first offending subject and the fix;
* :class:`Summary`, the people-facing face of an outcome result (text and HTML).

References
----------
.. [1] Clopper, C. J. & Pearson, E. S. (1934). The use of confidence or fiducial limits
   illustrated in the case of the binomial. Biometrika 26(4), 404–413.
   doi:10.1093/biomet/26.4.404
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats

from cellkin._display import Summary
from cellkin._validation import show
from cellkin.errors import DataError

__all__ = [
    "OVERALL",
    "Summary",
    "check_confidence",
    "clopper_pearson",
    "first_subject",
    "group_labels",
    "ordered_groups",
    "require",
    "to_event_flag",
]

#: Label of the row that pools every group.
OVERALL = "all"


def check_confidence(confidence: float) -> float:
    """Return `confidence` as a float, raising ``ValueError`` unless 0 < confidence < 1."""
    value = float(confidence)
    if not 0.0 < value < 1.0:
        raise ValueError(f"`confidence` must lie strictly between 0 and 1, got {confidence!r}")
    return value


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper–Pearson) confidence interval of a binomial proportion ``k / n``.

    Parameters
    ----------
    k : int
        Number of successes, ``0 <= k <= n``.
    n : int
        Number of trials. With ``n == 0`` the interval is ``(nan, nan)``.
    confidence : float, default 0.95
        Two-sided confidence level.

    Returns
    -------
    (float, float)
        Lower and upper limits (proportions). The lower limit is 0 when ``k == 0`` and the
        upper is 1 when ``k == n``; otherwise they are the beta quantiles
        ``B(α/2; k, n−k+1)`` and ``B(1−α/2; k+1, n−k)`` [1]_.
    """
    level = check_confidence(confidence)
    k, n = int(k), int(n)
    if n == 0:
        return (np.nan, np.nan)
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
    return (float(ci.low), float(ci.high))


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
