"""Model-based exposure metrics from fitted parameters, with confidence intervals.

:func:`model_metrics` evaluates, per fitted assay, Cmax, Tmax, AUC over the requested
intervals and to infinity, the doubling time and phase half-lives, and the **time back to
baseline** — the root of the fitted curve at ``max(baseline, LLOQ)`` after Tmax, the only
definition that extrapolates beyond the last sample. Confidence intervals come from sampling
the estimation-scale parameter covariance (percentiles of the metric over the draws).

Stein-type models use exact closed forms (vectorised over draws); other models are
integrated on a dense grid with :meth:`~cellkin.models.Model.simulate_many`. Column names
match :func:`cellkin.metrics.nca` so observed and model-based metrics sit side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cellkin.errors import FitError
from cellkin.metrics.nca import _interval_name
from cellkin.models.stein import _SteinFamily

if TYPE_CHECKING:
    from cellkin.fit.result import FitResult

__all__ = ["model_metrics"]

_GRID_POINTS = 4001
_BISECTIONS = 80


def _stein_columns(theta: np.ndarray, tlag: np.ndarray) -> dict[str, np.ndarray]:
    cmax, tmax, foldx, alpha, fb, beta = (theta[:, j] for j in range(6))
    return {"cmax": cmax, "tmax": tmax, "foldx": foldx, "alpha": alpha, "fb": fb,
            "beta": beta, "tlag": tlag, "rho": np.log(foldx) / (tmax - tlag)}  # fmt: skip


def _stein_auc(p: dict[str, np.ndarray], start: float, end: float) -> np.ndarray:
    c0 = p["cmax"] / p["foldx"]
    total = np.zeros_like(c0)
    a, b = np.maximum(start, 0.0), np.minimum(end, p["tlag"])
    total += np.where(b > a, c0 * (b - a), 0.0)
    a, b = np.maximum(start, p["tlag"]), np.minimum(end, p["tmax"])
    grow = c0 * (np.exp(p["rho"] * (b - p["tlag"])) - np.exp(p["rho"] * (a - p["tlag"])))
    total += np.where(b > a, grow / p["rho"], 0.0)
    a = np.maximum(start, p["tmax"]) - p["tmax"]
    b = end - p["tmax"]
    for weight, rate in ((1 - p["fb"], p["alpha"]), (p["fb"], p["beta"])):
        with np.errstate(over="ignore"):
            piece = p["cmax"] * weight * (np.exp(-rate * a) - np.exp(-rate * b)) / rate
        total += np.where(b > a, piece, 0.0)
    return total


def _stein_level_after_tmax(p: dict[str, np.ndarray], elapsed: np.ndarray) -> np.ndarray:
    return p["cmax"] * ((1 - p["fb"]) * np.exp(-p["alpha"] * elapsed)
                        + p["fb"] * np.exp(-p["beta"] * elapsed))  # fmt: skip


def _stein_time_to(p: dict[str, np.ndarray], level: float) -> np.ndarray:
    """Vectorised bisection for the first time after Tmax at which C = level."""
    lo = np.zeros_like(p["cmax"])
    hi = np.log(np.maximum(p["cmax"] / level, 1.0)) / np.minimum(p["alpha"], p["beta"]) + 1e-9
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        above = _stein_level_after_tmax(p, mid) > level
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return np.where(p["cmax"] <= level, p["tmax"], p["tmax"] + 0.5 * (lo + hi))


def _stein_metrics(theta: np.ndarray, scale: np.ndarray, threshold: float,
                   intervals: np.ndarray, has_lag: bool) -> dict[str, np.ndarray]:  # fmt: skip
    tlag = theta[:, 6] if has_lag else np.zeros(theta.shape[0])
    p = _stein_columns(theta, tlag)
    out = {"cmax": scale * p["cmax"], "tmax": p["tmax"]}
    for start, end in intervals:
        out[_interval_name(start, end)] = scale * _stein_auc(p, start, end)
    out["auc_inf"] = scale * _stein_auc(p, 0.0, np.inf)
    out["doubling_time"] = np.log(2) / p["rho"]
    out["half_life_fast"] = np.log(2) / p["alpha"]
    out["half_life_terminal"] = np.log(2) / p["beta"]
    out["time_back_to_baseline"] = _stein_time_to(p, threshold / scale)
    return out


def _numeric_metrics(result: FitResult, theta: np.ndarray, scale: np.ndarray, threshold: float,
                     intervals: np.ndarray, horizon: float) -> dict[str, np.ndarray]:  # fmt: skip
    grid = np.linspace(0.0, horizon, _GRID_POINTS)
    levels = result.model.simulate_many(grid, theta) * scale[:, np.newaxis]
    peak = np.nanargmax(np.where(np.isfinite(levels), levels, -np.inf), axis=1)
    rows = np.arange(levels.shape[0])
    out = {"cmax": levels[rows, peak], "tmax": grid[peak]}
    for start, end in intervals:
        inside = (grid >= start) & (grid <= end)
        out[_interval_name(start, end)] = np.trapezoid(levels[:, inside], grid[inside], axis=1)
    out["auc_inf"] = np.full(levels.shape[0], np.nan)
    for name in ("doubling_time", "half_life_fast", "half_life_terminal"):
        out[name] = np.full(levels.shape[0], np.nan)
    after = (grid[np.newaxis, :] > grid[peak][:, np.newaxis]) & (levels <= threshold)
    crossed = after.any(axis=1)
    first = np.argmax(after, axis=1)
    out["time_back_to_baseline"] = np.where(crossed, grid[first], np.nan)
    return out


def _threshold(result: FitResult, assay: str, baseline: str | float) -> tuple[float, float]:
    """(baseline, threshold) for one assay, as in :func:`cellkin.metrics.nca`."""
    rows = result.data[result.data["assay"] == assay]
    lloq = float(rows.loc[rows["time"] >= 0, "lloq"].median())
    if not isinstance(baseline, str):
        return float(baseline), max(float(baseline), lloq)
    pre = rows[rows["time"] < 0].sort_values("time")
    level = np.nan
    if baseline == "lloq" and len(pre) and not pre["blq"].iloc[-1]:
        level = float(pre["value"].iloc[-1])
    elif baseline == "max_pre_infusion" and (~pre["blq"]).any():
        level = float(pre.loc[~pre["blq"], "value"].max())
    return level, lloq if np.isnan(level) else max(level, lloq)


def _evaluate(result: FitResult, theta: np.ndarray, assay: str, threshold: float,
              intervals: np.ndarray, horizon: float) -> dict[str, np.ndarray]:  # fmt: skip
    k = len(result.model.params)
    if assay == result.assays[0]:
        scale = np.ones(theta.shape[0])
    else:
        scale = theta[:, result.layout.index(f"scale_{assay}")]
    # Draws at the parameter bounds (e.g. β → 1e-5/day) give huge but legitimate values.
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        if isinstance(result.model, _SteinFamily):
            return _stein_metrics(theta[:, :k], scale, threshold, intervals, k > 6)
        return _numeric_metrics(result, theta[:, :k], scale, threshold, intervals, horizon)


def model_metrics(
    result: FitResult,
    *,
    intervals: Sequence[Sequence[float]] = ((0, 28), (0, 84)),
    level: float = 0.95,
    n_samples: int = 1000,
    seed: int = 0,
    baseline: str | float = "lloq",
    horizon: float | None = None,
) -> pd.DataFrame:
    """Model-based metrics of one fit with confidence intervals.

    Parameters
    ----------
    result : FitResult
        A fit from :func:`cellkin.fit`.
    intervals : sequence of (start, end)
        AUC intervals in days (columns ``auc_<start>_<end>``).
    level : float
        Confidence level of the intervals.
    n_samples : int
        Parameter draws from the estimation-scale normal approximation of the estimate.
    seed : int
        Seed of the draws.
    baseline : {"lloq", "lloq_only", "max_pre_infusion"} or float
        Baseline for the time-back-to-baseline threshold ``max(baseline, LLOQ)``, defined as
        in :func:`cellkin.metrics.nca` from the subject's pre-infusion samples.
    horizon : float, optional
        Last day of the grid for models without closed forms (mechanistic ODEs); default
        ``max(365, 2 × last sample day, last interval end)``. Draws whose integration fails
        on the grid (e.g. an escaping tumour overflowing) give NaN and are left out of the
        percentiles.

    Returns
    -------
    DataFrame
        One row per fitted assay: ``subject, assay, unit, auc_unit``, the metrics ``cmax,
        tmax, auc_<a>_<b>…, auc_inf, doubling_time, half_life_fast, half_life_terminal,
        time_back_to_baseline`` each with ``<metric>_ci_lower`` and ``<metric>_ci_upper``
        (NaN when the fit has no covariance), and ``time_back_to_baseline_method`` ("model"),
        ``time_back_to_baseline_censored`` (False: the fitted curve extrapolates),
        ``tbb_threshold``, ``baseline``.
    """
    if not 0 < level < 1:
        raise FitError(f"`level` must be in (0, 1), got {level}")
    interval_array = np.asarray(intervals, dtype=float).reshape(-1, 2)
    if horizon is None:
        last = float(result.data["time"].max())
        horizon = max(365.0, 2 * last, float(interval_array[:, 1].max(initial=0.0)))
    estimate = result.params["estimate"].to_numpy(dtype=float)
    draws = None
    if np.isfinite(result.covariance_search).all() and n_samples > 0:
        draws = result.sample_parameters(n_samples, seed)
    rows = []
    for assay in result.assays:
        base, threshold = _threshold(result, assay, baseline)
        point = _evaluate(result, estimate[np.newaxis, :], assay, threshold, interval_array,
                          horizon)  # fmt: skip
        row: dict[str, object] = {"subject": result.subject, "assay": assay,
                                  "unit": result.units[assay],
                                  "auc_unit": f"{result.units[assay]}*day"}  # fmt: skip
        sampled = None if draws is None else _evaluate(result, draws, assay, threshold,
                                                      interval_array, horizon)  # fmt: skip
        tail = 50 * (1 - level)
        for name, value in point.items():
            row[name] = float(value[0])
            low = high = np.nan
            if sampled is not None and np.isfinite(sampled[name]).any():
                low, high = np.nanpercentile(sampled[name], [tail, 100 - tail])
            row[f"{name}_ci_lower"], row[f"{name}_ci_upper"] = low, high
        row.update({"time_back_to_baseline_method": "model",
                    "time_back_to_baseline_censored": False, "tbb_threshold": threshold,
                    "baseline": base})  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)
