"""Time back to baseline as a time-to-event endpoint: Kaplan–Meier summaries by group.

A subject's time back to baseline is either observed (the level fell to the threshold) or
right-censored: at the last sample when it never did (NCA, ``time_back_to_baseline_censored``
True, the time column holding the last sample day), or at the horizon of a model-based
metric. A median over such values, censored and observed alike, is biased towards early
returns and says nothing about subjects still above baseline; this module summarises them by
Kaplan–Meier instead: the median time back to baseline with its confidence interval (R's
``quantile.survfit`` rule, Brookmeyer–Crowley interval from the log-log pointwise band) and
the probability of being back to baseline by 1, 3 and 6 months, ``1 − S(t)`` with the
log-log (exponential Greenwood) interval, both from :func:`cellkin.outcomes.kaplan_meier`
(lifelines' product-limit estimate; the same estimator as the report's PFS and OS).

A probability at a day beyond the group's last observed time is NaN (not estimable: nobody
is followed that long), as R's ``summary.survfit`` reports nothing there, unless every
subject had returned by then. lifelines' ``survival_function_at_times`` would carry the last
value forward instead; elsewhere the numbers are lifelines' (tested).

:func:`time_to_event_summary` summarises one group; :func:`cellkin.metrics.summarize` and the
report's kinetic endpoints call it, so that every table gives the same numbers for the same
group.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from cellkin.outcomes import MONTH_DAYS, kaplan_meier

__all__ = ["LANDMARKS", "TBB_MONTHS", "tbb_summary", "time_to_event_columns",
           "time_to_event_summary"]  # fmt: skip

#: Months at which the probability of being back to baseline is reported.
TBB_MONTHS = (1, 3, 6)


#: The default landmarks: ``p_back_<m>m`` at :data:`cellkin.outcomes.MONTH_DAYS` of each month.
LANDMARKS = {f"p_back_{month}m": float(MONTH_DAYS[month]) for month in TBB_MONTHS}


def time_to_event_columns(landmarks: Mapping[str, float] = LANDMARKS) -> list[str]:
    """The keys :func:`time_to_event_summary` returns, in order."""
    columns = ["n", "n_events", "n_censored", "median", "median_ci_lower", "median_ci_upper"]
    for stem in landmarks:
        columns += [stem, f"{stem}_ci_lower", f"{stem}_ci_upper"]
    return columns


def time_to_event_summary(
    durations: np.ndarray | pd.Series,
    events: np.ndarray | pd.Series,
    *,
    confidence: float = 0.95,
    landmarks: Mapping[str, float] = LANDMARKS,
) -> dict[str, float]:
    """Kaplan–Meier summary of one group's times back to baseline.

    Parameters
    ----------
    durations : array_like
        Days from infusion to the return to baseline, or to censoring. Entries that are NaN
        (no time known) are left out.
    events : array_like of bool
        True where the return was observed, False where the time is censored.
    confidence : float
        Level of the confidence intervals.
    landmarks : mapping of str to float
        Name → day of each probability reported (default :data:`LANDMARKS`: ``p_back_1m``,
        ``p_back_3m``, ``p_back_6m`` at 30, 91 and 183 days).

    Returns
    -------
    dict
        ``n`` (subjects with a time), ``n_events`` (returns observed), ``n_censored``,
        ``median``, ``median_ci_lower``, ``median_ci_upper`` (days; NaN when not reached),
        and for each landmark its probability of being back to baseline by that day,
        ``1 − S(day)``, with ``_ci_lower``/``_ci_upper``.
    """
    time = np.asarray(durations, dtype=float)
    event = np.asarray(events, dtype=bool)
    known = np.isfinite(time)
    time, event = time[known], event[known]
    out = dict.fromkeys(time_to_event_columns(landmarks), np.nan)
    out.update(n=float(time.size), n_events=float(event.sum()), n_censored=float((~event).sum()))
    if time.size == 0:
        return out
    table = pd.DataFrame({"tbb_days": time, "tbb_event": event.astype(int)})
    result = kaplan_meier(table, endpoint="tbb", confidence=confidence)
    median = result.median.iloc[0]
    out.update(median=float(median["median"]), median_ci_lower=float(median["ci_lower"]),
               median_ci_upper=float(median["ci_upper"]))  # fmt: skip
    rows = result.landmarks(list(landmarks.values())).itertuples()
    for stem, row in zip(landmarks, rows, strict=True):
        out[stem] = 1.0 - row.survival
        out[f"{stem}_ci_lower"], out[f"{stem}_ci_upper"] = 1.0 - row.ci_upper, 1.0 - row.ci_lower
    return out


def tbb_summary(part: pd.DataFrame, confidence: float = 0.95) -> dict[str, float] | None:
    """The Kaplan–Meier summary of a metrics table's ``time_back_to_baseline`` (with
    ``time_back_to_baseline_censored``), in :func:`cellkin.metrics.summarize`'s row layout:
    ``mean``/``sd`` and the geometric statistics NaN, ``min``/``max`` the range of the
    observed returns. None when the table has no censoring column."""
    if "time_back_to_baseline_censored" not in part:
        return None
    censored = part["time_back_to_baseline_censored"]
    known = censored.notna().to_numpy()
    time = np.where(known, part["time_back_to_baseline"].to_numpy(dtype=float), np.nan)
    event = ~censored.astype("boolean").fillna(True).to_numpy(dtype=bool)
    row = time_to_event_summary(time, event, confidence=confidence)
    returned = time[np.isfinite(time) & event]
    row.update(mean=np.nan, sd=np.nan, geo_mean=np.nan, geo_cv_pct=np.nan,
               min=returned.min() if returned.size else np.nan,
               max=returned.max() if returned.size else np.nan)  # fmt: skip
    return row
