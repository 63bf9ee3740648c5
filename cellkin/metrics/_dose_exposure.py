"""Dose–exposure: the power model ln(exposure) = a + b·ln(dose) (DESIGN §5.4).

:func:`dose_exposure` fits the power model [1]_ by ordinary least squares (statsmodels) to the
subjects with a usable exposure metric and a positive dose; b = 1 is dose proportionality,
b = 0 no dose effect, and the confidence interval of b is the usual criterion. Subjects with a
missing or non-positive exposure or dose are excluded with a reason, never silently.

References
----------
.. [1] Smith, B. P. et al. (2000). Confidence interval criteria for assessment of dose
   proportionality. Pharm Res 17(10), 1278–1283. doi:10.1023/A:1026451721686
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cellkin._display import Summary
from cellkin._stats import check_confidence
from cellkin._tables import require
from cellkin.metrics._exposure_inputs import (
    ResultFaces,
    check_subjects,
    exposure_records,
    names,
    select_metrics,
    summarise_exclusions,
)
from cellkin.metrics._exposure_stats import _power_model

__all__ = ["DoseExposureResult", "dose_exposure"]


@dataclass(frozen=True, eq=False)
class DoseExposureResult(ResultFaces):
    """Power-model dose–exposure fits, ln(exposure) = a + b·ln(dose) (frozen).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per exposure metric: ``exposure, assay, n, n_doses, n_excluded,
        exclude_reason, intercept`` (a: ln exposure at dose 1), ``slope`` (b), ``slope_se,
        slope_ci_lower, slope_ci_upper`` (t interval), ``slope_p`` (H0: b = 0),
        ``proportionality_p`` (H0: b = 1, dose proportional), ``r_squared``, ``status``
        (``ok`` or ``not estimable``) and ``message``.
    data : pandas.DataFrame
        ``exposure, subject, value, dose, included, exclude_reason``.
    assay : str or None
        The assay analysed.
    dose : str
        The dose column of the subject table.
    confidence : float
        Level of the slope interval.
    dose_unit : str or None
        From the subject table's ``<dose>_unit`` column, when it has one.
    """

    table: pd.DataFrame
    data: pd.DataFrame
    assay: str | None
    dose: str
    confidence: float
    dose_unit: str | None = None

    def to_frame(self) -> pd.DataFrame:
        """The fit table (one row per exposure metric), a copy."""
        return self.table.copy()

    def summary(self) -> Summary:
        """Slopes with CIs and R², and the exclusions."""
        shown = self.table[["exposure", "n", "n_doses", "n_excluded", "slope", "slope_ci_lower",
                            "slope_ci_upper", "slope_p", "proportionality_p", "r_squared",
                            "status"]]  # fmt: skip
        tables = [("Power model ln(exposure) = a + b ln(dose)", shown)]
        if not self.exclusions.empty:
            tables.append(self._excluded_table(["exposure"]))
        note = f"{100 * self.confidence:g}% t intervals; b = 1 is dose proportional."
        return Summary(f"Dose-exposure ({self.assay})", tuple(tables), (note,))

    def plot(self, *, ax: Any = None, exposure: str | None = None) -> Any:
        """Exposure against dose on log axes with the fitted power model.

        Drawn by :func:`cellkin.plot.dose_exposure`; returns the matplotlib ``Axes``.
        """
        from cellkin import plot

        return plot.dose_exposure(self, ax=ax, exposure=exposure)


# ----------------------------------------------------------------------------- entry point


def dose_exposure(
    metrics: pd.DataFrame,
    subjects: pd.DataFrame,
    exposure: str | Sequence[str] = ("cmax", "auc_0_28"),
    *,
    assay: str | None = "qpcr",
    dose: str = "dose",
    confidence: float = 0.95,
) -> DoseExposureResult:
    """Dose–exposure power model ln(exposure) = a + b·ln(dose), by ordinary least squares.

    Parameters
    ----------
    metrics, subjects : pandas.DataFrame
        As for :func:`cellkin.metrics.exposure_response`; `subjects` needs the `dose` column.
    exposure : str or sequence of str, default ("cmax", "auc_0_28")
        Metric columns.
    assay : str or None, default "qpcr"
        Assay whose metrics are used.
    dose : str, default "dose"
        Dose column of `subjects` (any unit; it changes only the intercept).
    confidence : float, default 0.95
        Level of the slope interval.

    Returns
    -------
    DoseExposureResult
        ``.table`` (one row per metric: slope b with its CI, n, R², ...), ``.data``,
        ``.exclusions``, ``.summary()``, ``.plot(ax=None)``.

    Notes
    -----
    b = 1 is dose proportionality, b = 0 no dose effect; the CI of b is the usual criterion
    [1]_. Subjects with a missing or non-positive exposure or dose are excluded and counted.
    """
    level = check_confidence(confidence)
    exposures = names(exposure, "exposure")
    check_subjects(subjects)
    require(subjects, [dose], "subjects", "Name the dose column with `dose=`.")
    rows = select_metrics(metrics, assay, exposures)
    doses = pd.to_numeric(subjects[dose], errors="coerce").set_axis(subjects["subject"])
    table, data = [], []
    for name in exposures:
        rec = exposure_records(rows, subjects, name, assay)
        rec = rec.assign(dose=rec["subject"].map(doses).astype(float))
        bad = (rec["exclude_reason"] == "") & ~(rec["dose"] > 0)
        rec.loc[bad, "exclude_reason"] = f"dose `{dose}` missing or not positive"
        rec = rec.assign(included=rec["exclude_reason"] == "", exposure=name)
        use = rec[rec["included"]]
        fit = _power_model(np.log(use["dose"].to_numpy(float)),
                           np.log(use["value"].to_numpy(float)), level)  # fmt: skip
        excluded = rec[~rec["included"]]
        counts = {"n": fit.pop("n"), "n_doses": fit.pop("n_doses"), "n_excluded": len(excluded)}
        reasons = summarise_exclusions(excluded)
        table.append({"exposure": name, "assay": assay, **counts, "exclude_reason": reasons, **fit})
        data.append(rec)
    columns = ["exposure", "subject", "value", "dose", "included", "exclude_reason"]
    units = subjects.get(f"{dose}_unit", pd.Series(dtype=object)).dropna()
    return DoseExposureResult(table=pd.DataFrame(table),
                              data=pd.concat(data, ignore_index=True)[columns], assay=assay,
                              dose=dose, confidence=level,
                              dose_unit=str(units.iloc[0]) if len(units) else None)  # fmt: skip
