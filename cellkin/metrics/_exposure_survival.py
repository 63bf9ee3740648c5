"""Kaplan–Meier PFS or OS by exposure group, with the log-rank test (DESIGN §5.4).

:func:`exposure_survival` forms exposure groups (above/below the median by default) from the
subjects with a usable exposure metric and estimates PFS or OS in each by
:func:`cellkin.outcomes.kaplan_meier` (lifelines), with the log-rank test. Subjects without a
usable exposure or without survival data are excluded with a reason, never silently.
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
from cellkin.errors import DataError, OptionError
from cellkin.metrics._exposure_inputs import (
    ResultFaces,
    check_subjects,
    exposure_records,
    select_metrics,
)
from cellkin.metrics._exposure_stats import GroupSpec, _exposure_groups
from cellkin.outcomes import KaplanMeierResult, kaplan_meier

__all__ = ["ExposureSurvivalResult", "exposure_survival"]


@dataclass(frozen=True, eq=False)
class ExposureSurvivalResult(ResultFaces):
    """Kaplan–Meier PFS/OS by exposure group, with the log-rank test (frozen).

    Attributes
    ----------
    exposure, endpoint : str
        The exposure metric and the endpoint (``"pfs"``, ``"os"``).
    assay : str or None
        The assay analysed.
    group : str, float or sequence of float
        How the exposure groups were formed (as the `group` argument of
        :func:`exposure_survival`).
    confidence : float
        Level of every interval.
    km : cellkin.outcomes.KaplanMeierResult
        The Kaplan–Meier estimate, grouped by a column named after the exposure.
    groups : pandas.DataFrame
        ``group, exposure_min, exposure_max, n, events, median, median_ci_lower,
        median_ci_upper`` (days; NaN when not reached).
    logrank : pandas.DataFrame
        One row: ``test_statistic, df, p_value`` (NaN with a single group).
    data : pandas.DataFrame
        ``subject, value, group, included, exclude_reason`` per subject.
    """

    exposure: str
    endpoint: str
    assay: str | None
    group: GroupSpec
    confidence: float
    km: KaplanMeierResult
    groups: pd.DataFrame
    logrank: pd.DataFrame
    data: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """The groups table with the log-rank p-value (``logrank_p``) on every row."""
        return self.groups.assign(logrank_p=float(self.logrank["p_value"].iloc[0]))

    def summary(self) -> Summary:
        """Groups with medians, the log-rank test and the exclusions."""
        tables = [("Groups", self.groups), ("Log-rank test", self.logrank)]
        if not self.exclusions.empty:
            tables.append(self._excluded_table([]))
        title = f"{self.endpoint.upper()} by {self.exposure} group"
        note = f"{100 * self.confidence:g}% CIs of the medians (log-log, Greenwood)."
        return Summary(title, tuple(tables), (note,))

    def plot(
        self,
        *,
        ax: Any = None,
        band: bool = True,
        at_risk: bool = True,
        at_risk_days: Sequence[float] | None = None,
    ) -> Any:
        """Kaplan–Meier curves by exposure group, drawn by :func:`cellkin.plot.kaplan_meier`."""
        from cellkin import plot

        return plot.kaplan_meier(self.km, ax=ax, band=band, at_risk=at_risk,
                                 at_risk_days=at_risk_days)  # fmt: skip


def exposure_survival(
    metrics: pd.DataFrame,
    subjects: pd.DataFrame,
    exposure: str = "auc_0_28",
    endpoint: str = "pfs",
    group: GroupSpec = "median",
    *,
    assay: str | None = "qpcr",
    confidence: float = 0.95,
) -> ExposureSurvivalResult:
    """Kaplan–Meier PFS or OS by exposure group (above/below the median by default).

    Parameters
    ----------
    metrics, subjects : pandas.DataFrame
        As for :func:`cellkin.metrics.exposure_response`; `subjects` needs ``{endpoint}_days`` and
        ``{endpoint}_event`` (1/True = event).
    exposure : str, default "auc_0_28"
        The exposure metric that forms the groups.
    endpoint : str, default "pfs"
        ``"pfs"`` or ``"os"``.
    group : {"median", "tertile", "quartile"}, float or sequence of float, default "median"
        Quantile groups of the included subjects (right-closed) or cut points in the
        exposure's unit, as for :func:`cellkin.metrics.exposure_response`.
    assay : str or None, default "qpcr"
        Assay whose metrics are used.
    confidence : float, default 0.95
        Level of the intervals.

    Returns
    -------
    ExposureSurvivalResult
        ``.km`` (:class:`~cellkin.outcomes.KaplanMeierResult`), ``.groups``, ``.logrank``,
        ``.data``, ``.exclusions``, ``.summary()``, ``.plot(ax=None)``.
    """
    level = check_confidence(confidence)
    if not isinstance(exposure, str):
        raise OptionError(f"`exposure` must be one metric name, got {exposure!r}")
    _exposure_groups(np.ones(1), group)
    check_subjects(subjects)
    days, flag = f"{endpoint}_days", f"{endpoint}_event"
    require(subjects, [days, flag], "subjects", f"Give `{days}` and `{flag}` (1 = event).")
    rec = exposure_records(select_metrics(metrics, assay, [exposure]), subjects, exposure, assay)
    indexed = subjects.set_index("subject")
    lacking = rec["subject"].map(indexed[days]).isna() | rec["subject"].map(indexed[flag]).isna()
    rec.loc[(rec["exclude_reason"] == "") & lacking, "exclude_reason"] = f"`{days}` missing"
    rec = rec.assign(group=None, included=rec["exclude_reason"] == "")
    use = rec["included"].to_numpy()
    if not use.any():
        raise DataError(f"no subject has both a usable `{exposure}` and {endpoint.upper()} data.")
    index, labels = _exposure_groups(rec["value"].to_numpy(float)[use], group)
    rec.loc[use, "group"] = np.asarray(labels, dtype=object)[index]
    frame = subjects.set_index("subject").loc[rec.loc[use, "subject"]].reset_index()
    km = kaplan_meier(frame.assign(**{exposure: rec.loc[use, "group"].to_numpy()}), endpoint,
                      by=exposure, confidence=level)  # fmt: skip
    logrank = (km.logrank() if len(km.groups) > 1 else
               pd.DataFrame([{"test_statistic": np.nan, "df": 0, "p_value": np.nan}]))  # fmt: skip
    ranges = rec[use].groupby("group")["value"].agg(exposure_min="min", exposure_max="max")
    medians = km.median.rename(columns={"ci_lower": "median_ci_lower",
                                        "ci_upper": "median_ci_upper"})  # fmt: skip
    groups = medians.join(ranges, on="group")[["group", "exposure_min", "exposure_max", "n",
        "events", "median", "median_ci_lower", "median_ci_upper"]]  # fmt: skip
    return ExposureSurvivalResult(exposure=exposure, endpoint=endpoint, assay=assay, group=group,
                                  confidence=level, km=km, groups=groups, logrank=logrank,
                                  data=rec)  # fmt: skip
