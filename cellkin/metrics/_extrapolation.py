"""Which model-based metrics rest on the fitted curve beyond the data (private).

A model-based metric is *extrapolated* when it depends on the fitted curve beyond the
subject's quantified samples of that assay (after the last, or before the first). The rule of
each metric, applied to the point estimate:

* ``cmax``, ``tmax`` — the model's Tmax lies before the first or after the last quantified
  sample (the peak is not among the data);
* ``auc_<a>_<b>``, ``auc_inf`` — more than :data:`MAX_EXTRAPOLATED_SHARE` of the area lies
  outside the days of the quantified samples, the rule PKNCA applies to AUC∞
  (``max.aucinf.pext`` = 20%; Denney et al. 2015, doi:10.1007/s10928-015-9432-2);
* ``doubling_time`` — fewer than two quantified samples up to Tmax (a rate needs two levels
  of the expansion);
* ``half_life_fast`` — fewer than two quantified samples from Tmax on (nor of the decline);
* ``half_life_terminal`` — the terminal phase is not reached by the last quantified sample:
  the curve's local decline rate there, ``−d ln C/dt``, is more than
  :data:`TERMINAL_RATE_RATIO` times the terminal rate ``ln 2 / t½``;
* ``time_back_to_baseline`` — later than the assay's last sample (quantified or BLQ), or
  censored at the horizon.

A metric that is NaN is not flagged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from cellkin.models.capabilities import METRIC_NAMES

__all__ = ["MAX_EXTRAPOLATED_SHARE", "TERMINAL_RATE_RATIO", "extrapolated"]

#: Largest share of an AUC that may lie outside the quantified samples' days.
MAX_EXTRAPOLATED_SHARE = 0.20
#: Local decline rate / terminal rate above which the terminal phase is not reached.
TERMINAL_RATE_RATIO = 2.0
_SAME_DAY = 1e-3  # days: a Tmax this close to a sample time is at that sample


def _levels(model: Any, times: np.ndarray, kinetic: np.ndarray) -> np.ndarray:
    """The point estimate's levels at ``times`` from the model's thread-free kernel (no
    OpenMP threads in the caller's process: it may fork later); NaN where the model fails."""
    out = np.empty((1, times.size))
    with np.errstate(all="ignore"):
        status = model.serial_kernel(np.ascontiguousarray(times, dtype=float),
                                     np.ascontiguousarray(kinetic[np.newaxis]), out)  # fmt: skip
    return out[0] if status[0] == 0 else np.full(times.size, np.nan)


def _auc(task: Any, start: float, end: float) -> float:
    """AUC of the point estimate's curve over [start, end] (0 when empty), from the model's
    closed form where it has one, else by trapezoids on an 801-point grid."""
    if not end > start:
        return 0.0
    model = task.result.model
    kinetic = np.ascontiguousarray(task.point[: len(model.params)])
    if model.metrics_kernel is not None:
        out = np.empty(len(METRIC_NAMES))
        with np.errstate(all="ignore"):
            status = model.metrics_kernel(kinetic, np.array([[start, end]]), math.nan, out)
        return float(out[2]) if status == 0 else math.nan
    grid = np.linspace(start, min(end, task.horizon), 801)
    return float(np.trapezoid(_levels(model, grid, kinetic), grid))


def _share_outside(task: Any, start: float, end: float) -> float:
    """Share of the curve's area over [start, end] outside the quantified days."""
    first, last = task.first_quantified, task.last_quantified
    total = _auc(task, start, end)
    if not (math.isfinite(first) and total > 0):
        return 1.0
    inside = _auc(task, max(start, first), min(end, last))
    return 1.0 - inside / total


def _local_rate(task: Any, day: float) -> float:
    """``−d ln C/dt`` of the point estimate's curve at ``day`` (central differences)."""
    model = task.result.model
    step = 1e-3 * max(1.0, day)
    kinetic = np.ascontiguousarray(task.point[: len(model.params)])
    low, high = _levels(model, np.array([day - step, day + step]), kinetic)
    with np.errstate(all="ignore"):
        return float(-(np.log(high) - np.log(low)) / (2 * step))


def extrapolated(task: Any, values: Mapping[str, float]) -> dict[str, bool]:
    """``{metric: extrapolated}`` for every metric of ``values`` (point estimates), by the
    rules of the module docstring."""
    first, last = task.first_quantified, task.last_quantified
    tmax = values.get("tmax", math.nan)
    known = math.isfinite(first) and math.isfinite(tmax)
    peak_outside = not known or tmax < first - _SAME_DAY or tmax > last + _SAME_DAY
    flags = {}
    for name, value in values.items():
        if not math.isfinite(value) and name != "time_back_to_baseline":
            flags[name] = False
        elif name in ("cmax", "tmax"):
            flags[name] = peak_outside
        elif name == "auc_inf":
            flags[name] = _share_outside(task, 0.0, math.inf) > MAX_EXTRAPOLATED_SHARE
        elif name.startswith("auc_"):
            start, end = _interval(task, name)
            flags[name] = _share_outside(task, start, end) > MAX_EXTRAPOLATED_SHARE
        elif name == "doubling_time":
            flags[name] = not known or bool(
                np.count_nonzero(task.quantified <= tmax + _SAME_DAY) < 2
            )
        elif name == "half_life_fast":
            flags[name] = not known or bool(
                np.count_nonzero(task.quantified >= tmax - _SAME_DAY) < 2
            )
        elif name == "half_life_terminal":
            flags[name] = _terminal_extrapolated(task, tmax, value)
        elif name == "time_back_to_baseline":
            flags[name] = not value <= task.last_sample + _SAME_DAY if not math.isnan(value) \
                else False  # fmt: skip
    return flags


def _terminal_extrapolated(task: Any, tmax: float, half_life: float) -> bool:
    last = task.last_quantified
    if not (math.isfinite(last) and last > tmax):
        return True
    rate = _local_rate(task, last)
    return not rate <= TERMINAL_RATE_RATIO * math.log(2) / half_life


def _interval(task: Any, name: str) -> tuple[float, float]:
    """The (start, end) days of an ``auc_<a>_<b>`` column (``p`` for a decimal point)."""
    start, end = name[len("auc_") :].split("_")
    return float(start.replace("p", ".")), float(end.replace("p", "."))
