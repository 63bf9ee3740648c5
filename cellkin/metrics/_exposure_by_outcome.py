"""Exposure by outcome category: descriptive statistics of a metric per category (DESIGN §5.4).

:func:`exposure_by_outcome` gives, for each category of an outcome (best overall response,
CRS grade, responder yes/no, dose level, ...), the number of subjects and the geometric mean,
geometric CV, median and range of an exposure metric — the table behind the usual box plot of
exposure by outcome (:func:`cellkin.plot.exposure_by_outcome`). The geometric CV is
``100·√(exp(s²) − 1)`` % with ``s`` the SD (n − 1) of the log exposures. Subjects without a
usable (positive) exposure or without the outcome are excluded with a reason, never silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cellkin._display import Summary
from cellkin.metrics._exposure_inputs import (
    ResultFaces,
    check_subjects,
    exposure_records,
    outcome_events,
    select_metrics,
)

__all__ = ["ExposureByOutcomeResult", "exposure_by_outcome"]

#: RECIST 1.1 categories in their clinical order (best first).
_RECIST_ORDER = ("CR", "PR", "SD", "NON-CR/NON-PD", "PD", "NE")
_TABLE_COLUMNS = ["category", "n", "geo_mean", "geo_cv_pct", "median", "min", "max"]


@dataclass(frozen=True, eq=False)
class ExposureByOutcomeResult(ResultFaces):
    """An exposure metric summarised per outcome category (frozen).

    Attributes
    ----------
    exposure : str
        The metric column.
    by : str
        The outcome whose categories group the subjects.
    assay : str or None
        The assay analysed.
    categories : tuple
        The categories in display order (RECIST order for responses, sorted otherwise;
        ``"no"``, ``"yes"`` for a binary outcome given as a threshold such as ``"crs>=2"``).
    table : pandas.DataFrame
        One row per category: ``category, n, geo_mean, geo_cv_pct, median, min, max``
        (exposure unit; NaN for an empty category, ``geo_cv_pct`` NaN when n < 2).
    data : pandas.DataFrame
        ``subject, value, category, included, exclude_reason`` per subject.
    unit : str or None
        Unit of the exposure metric, when the metrics table gives it.
    """

    exposure: str
    by: str
    assay: str | None
    categories: tuple[Any, ...]
    table: pd.DataFrame
    data: pd.DataFrame
    unit: str | None = None

    def to_frame(self) -> pd.DataFrame:
        """The per-category table (a copy)."""
        return self.table.copy()

    def summary(self) -> Summary:
        """The per-category table and the exclusions."""
        tables = [(f"{self.exposure} by {self.by}", self.table)]
        if not self.exclusions.empty:
            tables.append(self._excluded_table([]))
        unit = f" ({self.unit})" if self.unit else ""
        note = f"Exposure{unit}: geometric mean, geometric CV %, median and range per category."
        assay = f" ({self.assay})" if self.assay else ""
        return Summary(f"Exposure by outcome{assay}", tuple(tables), (note,))

    def plot(self, *, ax: Any = None, seed: int = 0) -> Any:
        """Box and strip plot per category, drawn by :func:`cellkin.plot.exposure_by_outcome`."""
        from cellkin import plot

        return plot.exposure_by_outcome(self, ax=ax, seed=seed)


def _categories(subjects: pd.DataFrame, by: str) -> tuple[pd.Series, list[Any]]:
    """Category per subject (NaN = missing) and the category order."""
    if by in subjects.columns and not pd.api.types.is_bool_dtype(subjects[by]):
        values = subjects[by].astype(object).where(subjects[by].notna())
        present = list(pd.unique(values.dropna()))
        if present and all(str(v).upper() in _RECIST_ORDER for v in present):
            order = sorted(present, key=lambda v: _RECIST_ORDER.index(str(v).upper()))
        else:
            order = sorted(present, key=lambda v: (str(type(v)), v))
        return pd.Series(values.to_numpy(), index=subjects["subject"]), order
    events, _ = outcome_events(subjects, by)
    return events.map({0.0: "no", 1.0: "yes"}), ["no", "yes"]


def _describe(values: np.ndarray) -> dict[str, float]:
    if not values.size:
        return {"n": 0, **dict.fromkeys(_TABLE_COLUMNS[2:], np.nan)}
    logs = np.log(values)
    cv = 100.0 * np.sqrt(np.expm1(logs.var(ddof=1))) if values.size > 1 else np.nan
    return {"n": int(values.size), "geo_mean": float(np.exp(logs.mean())),
            "geo_cv_pct": float(cv), "median": float(np.median(values)),
            "min": float(values.min()), "max": float(values.max())}  # fmt: skip


def _unit(rows: pd.DataFrame, exposure: str) -> str | None:
    column = "auc_unit" if exposure.startswith("auc") else "unit"
    if column in rows.columns and exposure.startswith(("auc", "cmax", "clast")):
        units = rows[column].dropna()
        return str(units.iloc[0]) if len(units) else None
    return None


def exposure_by_outcome(
    metrics: pd.DataFrame,
    subjects: pd.DataFrame,
    exposure: str = "auc_0_28",
    by: str = "responder",
    *,
    assay: str | None = "qpcr",
) -> ExposureByOutcomeResult:
    """An exposure metric per outcome category: n, geometric mean and CV, median, range.

    Parameters
    ----------
    metrics, subjects : pandas.DataFrame
        As for :func:`cellkin.metrics.exposure_response`.
    exposure : str, default "auc_0_28"
        Metric column of `metrics` (summarised on the log scale: it must be positive).
    by : str, default "responder"
        A column of `subjects` whose values are the categories (``"crs_grade"``, ``"bor"``,
        ``"dose_level"``, a 0/1 ``"responder"``), or a binary outcome as accepted by
        :func:`cellkin.metrics.exposure_response` (``"crs>=2"``; a boolean column), shown
        as ``"no"``/``"yes"``.
    assay : str or None, default "qpcr"
        Assay whose metrics are used (None: the only one in `metrics`).

    Returns
    -------
    ExposureByOutcomeResult
        ``.table`` (one row per category), ``.data``, ``.exclusions``, ``.summary()``,
        ``.plot(ax=None)``.

    Examples
    --------
    >>> import pandas as pd
    >>> metrics = pd.DataFrame({"subject": list("ABCDE"), "cmax": [10.0, 40.0, 20.0, 80.0, -1]})
    >>> subjects = pd.DataFrame({"subject": list("ABCDE"), "bor": ["PD", "PR", "SD", "CR", "PR"]})
    >>> result = exposure_by_outcome(metrics, subjects, "cmax", "bor", assay=None)
    >>> result.table[["category", "n", "geo_mean", "median"]]
      category  n  geo_mean  median
    0       CR  1      80.0    80.0
    1       PR  1      40.0    40.0
    2       SD  1      20.0    20.0
    3       PD  1      10.0    10.0
    >>> result.exclusions["subject"].tolist()
    ['E']
    """
    check_subjects(subjects)
    rows = select_metrics(metrics, assay, [exposure])
    records = exposure_records(rows, subjects, exposure, assay)
    labels, order = _categories(subjects, by)
    records["category"] = records["subject"].map(labels)
    lacking = (records["exclude_reason"] == "") & records["category"].isna()
    records.loc[lacking, "exclude_reason"] = f"`{by}` missing"
    records["included"] = records["exclude_reason"] == ""
    use = records[records["included"]]
    table = [{"category": category,
              **_describe(use.loc[use["category"] == category, "value"].to_numpy(float))}
             for category in order]  # fmt: skip
    columns = ["subject", "value", "category", "included", "exclude_reason"]
    return ExposureByOutcomeResult(exposure=exposure, by=by, assay=assay,
                                   categories=tuple(order),
                                   table=pd.DataFrame(table, columns=_TABLE_COLUMNS),
                                   data=records[columns], unit=_unit(rows, exposure))  # fmt: skip
