"""The study's kinetic endpoints: CAR+ peak time and time back to baseline by group
(private; public as :func:`cellkin.report.kinetic_endpoints`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cellkin.metrics import time_to_event_summary
from cellkin.outcomes import MONTH_DAYS

__all__ = ["TBB_HORIZON_DAYS", "kinetic_endpoints"]

#: Horizon of the time-back-to-baseline endpoint (6 months).
TBB_HORIZON_DAYS = float(MONTH_DAYS[6])


def kinetic_endpoints(
    metrics: pd.DataFrame,
    subjects: pd.DataFrame | None = None,
    *,
    basis: str,
    by: str | None = "dose_level",
    horizon_days: float = TBB_HORIZON_DAYS,
) -> pd.DataFrame:
    """Peak time and time back to baseline by group and assay (the study's kinetic endpoints).

    The time back to baseline is a time-to-event endpoint, summarised by Kaplan–Meier with
    the same function as :func:`cellkin.metrics.summarize` (so both give the same numbers
    for the same group): times censored at the last sample (NCA) or at the horizon of a
    model-based metric count as censored, never as returns.

    Parameters
    ----------
    metrics : pandas.DataFrame
        One row per subject × assay with ``tmax``, ``time_back_to_baseline`` and
        ``time_back_to_baseline_censored`` (NCA, or model-based metrics from a batch fit).
    subjects : pandas.DataFrame, optional
        Subject table carrying `by`.
    basis : str
        Label of the metrics, e.g. ``"observed (NCA)"`` or ``"model (stein2019)"``.
    by : str or None
        Grouping column; the pooled group ``"all"`` is always added.
    horizon_days : float, default 183 (6 months)
        Day at which the probability of being back to baseline is reported.

    Returns
    -------
    pandas.DataFrame
        ``group, assay, basis, n, tmax_median, tmax_min, tmax_max, n_tbb (subjects with a
        time back to baseline, returned or censored), n_back_to_baseline (returns observed
        by the horizon), n_tbb_censored, p_back_to_baseline, p_back_ci_lower, p_back_ci_upper
        (Kaplan–Meier probability of being back to baseline by the horizon, 95% CI; NaN
        when no subject is followed that long), tbb_median, tbb_ci_lower, tbb_ci_upper
        (Kaplan–Meier median, days; NaN when not reached)``.
    """
    table = metrics.copy()
    if by is not None and by not in table:
        if subjects is None or by not in subjects:
            by = None
        else:
            table = table.merge(subjects[["subject", by]], on="subject", how="left")
    groups: list[tuple[Any, pd.DataFrame]] = []
    if by is not None:
        groups += [(key, part) for key, part in table.groupby(by, sort=True)]
    groups.append(("all", table))
    rows = []
    for key, part in groups:
        for assay, rows_of_assay in part.groupby("assay", sort=False):
            rows.append({"group": key, "assay": assay, "basis": basis,
                         **_endpoint_row(rows_of_assay, horizon_days)})  # fmt: skip
    return pd.DataFrame(rows)


def _endpoint_row(rows: pd.DataFrame, horizon_days: float) -> dict[str, Any]:
    """Tmax and the Kaplan–Meier time back to baseline of one group × assay."""
    tmax = rows["tmax"].astype(float).dropna()
    censored = rows["time_back_to_baseline_censored"]
    known = censored.notna().to_numpy()
    time = np.where(known, rows["time_back_to_baseline"].to_numpy(dtype=float), np.nan)
    event = ~censored.astype("boolean").fillna(True).to_numpy(dtype=bool)
    km = time_to_event_summary(time, event, landmarks={"p": horizon_days})
    returned = np.isfinite(time) & event & (time <= horizon_days)
    return {
        "n": int(rows["subject"].nunique()),
        "tmax_median": tmax.median() if tmax.size else np.nan,
        "tmax_min": tmax.min() if tmax.size else np.nan,
        "tmax_max": tmax.max() if tmax.size else np.nan,
        "n_tbb": int(km["n"]),
        "n_back_to_baseline": int(returned.sum()),
        "n_tbb_censored": int(km["n_censored"]),
        "p_back_to_baseline": km["p"],
        "p_back_ci_lower": km["p_ci_lower"],
        "p_back_ci_upper": km["p_ci_upper"],
        "tbb_median": km["median"],
        "tbb_ci_lower": km["median_ci_lower"],
        "tbb_ci_upper": km["median_ci_upper"],
    }
