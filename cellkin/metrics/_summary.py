"""Study-level summaries of exposure metrics, as a clinical pharmacology report shows them.

Non-expanders (profiles with no quantifiable sample) are results, not missing values: their
Cmax, Clast and AUCs are 0 (:func:`cellkin.metrics.nca`), they count in ``n`` and in the
arithmetic statistics, and a zero makes the geometric mean 0 with the geometric CV undefined,
as PKNCA's ``geomean``/``geocv`` (``n_zero`` says how many).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from cellkin.errors import DataError
from cellkin.metrics._time_to_event import tbb_summary

__all__ = ["summarize"]

#: Metrics summarised by median and range only (times), not by geometric statistics.
TIME_METRICS = ("tmax", "tlast", "time_back_to_baseline", "lambda_z_time_first",
                "lambda_z_time_last", "time_above_lloq")  # fmt: skip
_DEFAULT_METRICS = ("cmax", "tmax", "clast", "tlast", "auc_last", "half_life", "auc_inf",
                    "time_above_lloq", "time_back_to_baseline")  # fmt: skip


def _describe(values: pd.Series, geometric: bool) -> dict[str, float]:
    finite = values.dropna().to_numpy(dtype=float)
    row: dict[str, float] = {
        "n": float(finite.size),
        "mean": np.mean(finite) if finite.size else np.nan,
        "sd": np.std(finite, ddof=1) if finite.size > 1 else np.nan,
        "median": np.median(finite) if finite.size else np.nan,
        "min": np.min(finite) if finite.size else np.nan,
        "max": np.max(finite) if finite.size else np.nan,
        "geo_mean": np.nan,
        "geo_cv_pct": np.nan,
        "n_zero": float(np.count_nonzero(finite == 0)),
    }
    if not geometric or not finite.size or (finite < 0).any():
        return row
    if row["n_zero"]:
        row["geo_mean"] = 0.0  # PKNCA geomean: any zero gives 0; geocv is undefined
        return row
    row["geo_mean"] = float(stats.gmean(finite))
    if finite.size > 1:
        row["geo_cv_pct"] = 100.0 * float(np.sqrt(np.expm1(np.var(np.log(finite), ddof=1))))
    return row


def summarize(
    metrics_table: pd.DataFrame,
    by: str | Sequence[str] | None = "dose_level",
    *,
    subjects: pd.DataFrame | None = None,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    r"""Summarise exposure metrics by group (and assay).

    For each group × assay × metric: ``n`` (subjects with a value, non-expanders' zeros
    included), ``geo_mean`` and ``geo_cv_pct`` (:math:`100\sqrt{e^{s^2}-1}`, :math:`s` the
    SD of the logs; never for times; with a zero value the geometric mean is 0 and the CV
    undefined, as PKNCA), ``mean``, ``sd``, ``median``, ``min``, ``max``, ``n_zero`` and
    ``n_missing`` (subjects whose value could not be computed). Times (Tmax, Tlast, time
    above the LLOQ) are summarised by median and range, following PKNCA's summary
    conventions. The time back to baseline, when the table says which values are censored
    (``time_back_to_baseline_censored``), is summarised by Kaplan–Meier (see
    :func:`cellkin.metrics.time_to_event_summary`): ``median`` with ``median_ci_lower`` and
    ``median_ci_upper``, ``n_events``, ``n_censored`` and ``p_back_1m``, ``p_back_3m``,
    ``p_back_6m`` (probability of being back to baseline by 1, 3 and 6 months, with CIs);
    ``mean`` and ``sd`` are then NaN and ``min``/``max`` the range of the observed returns.

    Parameters
    ----------
    metrics_table : DataFrame
        One row per subject × assay, e.g. the output of :func:`cellkin.metrics.nca`.
    by : str or sequence of str or None
        Grouping column(s), taken from ``metrics_table`` or, when absent there, from
        ``subjects`` (joined on ``subject``). ``None`` summarises the whole study.
    subjects : DataFrame, optional
        Subject table carrying the grouping column (e.g. ``dose_level``).
    metrics : sequence of str, optional
        Metric columns to summarise; by default Cmax, Tmax, Clast, Tlast, AUClast, the
        interval AUCs, half-life, AUCinf and the time back to baseline that are present.

    Returns
    -------
    DataFrame
        Long table with the group column(s), ``assay``, ``metric``, ``unit`` and the
        statistics above.
    """
    table = metrics_table.copy()
    groups = [] if by is None else [by] if isinstance(by, str) else list(by)
    missing = [g for g in groups if g not in table.columns]
    if missing:
        if subjects is None or any(g not in subjects.columns for g in missing):
            raise DataError(
                f"cannot group by {missing}: not a column of the metrics table; pass "
                f"`subjects=` with those columns (joined on `subject`)"
            )
        table = table.merge(subjects.loc[:, ["subject", *missing]], on="subject", how="left")
    if metrics is None:
        interval_columns = [c for c in table.columns if re.fullmatch(r"auc_[0-9p]+_[0-9p]+", c)]
        metrics = [m for m in (*_DEFAULT_METRICS[:5], *interval_columns, *_DEFAULT_METRICS[5:])
                   if m in table.columns]  # fmt: skip
    unknown = [m for m in metrics if m not in table.columns]
    if unknown:
        raise DataError(f"metrics {unknown} are not columns of the metrics table")
    keys = [*groups, "assay"] if "assay" in table.columns else groups
    rows = []
    grouped = table.groupby(keys, sort=True, dropna=False) if keys else [((), table)]
    for key, part in grouped:
        key = key if isinstance(key, tuple) else (key,)
        for metric in metrics:
            row = dict(zip(keys, key, strict=True))
            row["metric"] = metric
            row["unit"] = _metric_unit(part, metric)
            censored = tbb_summary(part) if metric == "time_back_to_baseline" else None
            row.update(censored or _describe(part[metric], geometric=metric not in TIME_METRICS))
            row["n_missing"] = int(part[metric].isna().sum())
            row["n_zero"] = int(row.get("n_zero", 0))
            rows.append(row)
    if not rows:  # an empty metrics table summarises to an empty table with the same columns
        columns = [*keys, "metric", "unit", *_describe(pd.Series(dtype=float), True), "n_missing"]
        return pd.DataFrame(columns=columns)
    result = pd.DataFrame(rows)
    result["n"] = result["n"].astype(int)
    return result


def _metric_unit(part: pd.DataFrame, metric: str) -> str:
    if metric.startswith("auc_") and "auc_unit" in part and metric != "auc_pct_extrap":
        return str(part["auc_unit"].iloc[0])
    if metric in ("cmax", "clast", "clast_pred", "tbb_threshold") and "unit" in part:
        return str(part["unit"].iloc[0])
    if metric == "lambda_z":
        return "1/day"
    if metric in TIME_METRICS or metric == "half_life":
        return "day"
    return ""
