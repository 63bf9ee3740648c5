"""Model-based exposure metrics from fitted parameters, with confidence intervals.

:func:`model_metrics` evaluates, per fit and fitted assay, Cmax, Tmax, AUC over the requested
intervals and to infinity, the doubling time and phase half-lives, and the **time back to
baseline** — the root of the fitted curve at ``max(baseline, LLOQ)`` after Tmax, the only
definition that extrapolates beyond the last sample. Confidence intervals come from sampling
the estimation-scale parameter covariance (percentiles of the metric over the draws).

Every metric says how far it rests on the model rather than on data. ``<metric>_extrapolated``
is True where the number depends on the fitted curve beyond the subject's quantified samples
(:func:`model_metrics` lists the rule of each metric), and a time back to baseline or a phase
half-life beyond the **horizon** (default twice the subject's last sample day) is reported as
censored at the horizon (``<metric>_censored``), not as a number of centuries. Each row also
carries the fit's reliability verdict (``reliable``, ``issues``: :attr:`cellkin.fit.FitResult.
issues`) and an ``exclude_reason``.

It takes one fit, a batch of fits or any collection of them: the metrics of a whole batch are
computed here, in one place, not inside the fitting workers. It also takes a population fit
(:class:`cellkin.population.PopulationFit`): then each subject's metrics summarise its
conditional draws (median and percentiles; :mod:`cellkin.metrics._model_population`).

Models that declare closed-form metrics (capability 8 of :class:`~cellkin.models.base.Model`;
the Stein models) have the estimate and every draw of a chunk of fits evaluated in one
parallel compiled call through the model's ``metrics`` function; other models (mechanistic
ODEs) are integrated on a dense grid with :meth:`~cellkin.models.Model.simulate_many`, one fit
at a time. Column names match
:func:`cellkin.metrics.nca` so observed and model-based metrics sit side by side.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numba
import numpy as np
import pandas as pd

from cellkin.errors import OptionError
from cellkin.metrics._extrapolation import extrapolated
from cellkin.metrics._model_population import (
    Member,
    is_population_fit,
    population_tasks,
)
from cellkin.metrics._model_tasks import SOURCE_PER_SUBJECT, SOURCE_POPULATION, assay_tasks
from cellkin.metrics._model_tasks import Options as _Options
from cellkin.metrics._model_tasks import Task as _Task
from cellkin.metrics._nca_parameters import interval_name
from cellkin.models.capabilities import METRIC_NAMES, call_metrics, metrics_address

if TYPE_CHECKING:
    from cellkin.fit import BatchFit, FitResult
    from cellkin.population import PopulationFit

__all__ = ["model_metrics"]

_GRID_POINTS = 4001
_CHUNK = 128  # fits whose draws go to the compiled metric kernel in one call
#: Rows from which the metric kernel runs on threads. One fit's draws (10^3 rows) run on one
#: thread: that keeps ``FitResult.metrics()`` free of OpenMP, which would make a later
#: ``fork()`` of the process unsafe (numba's GNU OpenMP layer), as it was before threads.
_PARALLEL_ROWS = 20_000


@numba.njit(cache=True, error_model="numpy")
def _closed_form_row(address, theta, level, scale, intervals, out, i):  # pragma: no cover
    """Row ``i``: the model's closed-form metrics of ``theta[i]`` at ``level[i]``, with Cmax
    and the AUCs scaled by ``scale[i]``; NaN where the model refuses the row."""
    n_params, n_out = theta.shape[1], out.shape[1]
    p = np.empty(n_params)
    for j in range(n_params):
        p[j] = theta[i, j]
    row = np.empty(n_out)
    ok, status = call_metrics(address, p, intervals, level[i], row)
    if not ok or status != 0:
        for j in range(n_out):
            row[j] = np.nan
    row[0] *= scale[i]
    for q in range(intervals.shape[0] + 1):  # the AUCs and AUC∞
        row[2 + q] *= scale[i]
    for j in range(n_out):
        out[i, j] = row[j]


@numba.njit(cache=True, parallel=True, error_model="numpy")
def _closed_form_parallel(address, theta, level, scale, intervals, out):  # pragma: no cover
    """Every row of ``theta`` (:func:`_closed_form_row`), on numba's threads."""
    for i in numba.prange(theta.shape[0]):
        _closed_form_row(address, theta, level, scale, intervals, out, i)


@numba.njit(cache=True, error_model="numpy")
def _closed_form_serial(address, theta, level, scale, intervals, out):  # pragma: no cover
    """Every row of ``theta`` (:func:`_closed_form_row`), on the calling thread."""
    for i in range(theta.shape[0]):
        _closed_form_row(address, theta, level, scale, intervals, out, i)


def _metric_names(intervals: np.ndarray) -> list[str]:
    """Column names of the metric kernel's output (``METRIC_NAMES`` with one AUC per interval;
    the time to the level is the time back to baseline)."""
    names: list[str] = []
    for name in METRIC_NAMES:
        if name == "auc":
            names += [interval_name(a, b) for a, b in intervals]
        else:
            names.append("time_back_to_baseline" if name == "time_to_level" else name)
    return names


def _percentiles(values: np.ndarray, percents: Sequence[float]) -> np.ndarray:
    """Percentiles ``percents`` over axis 1 of ``values`` (``(n_fits, n_draws, n_metrics)``),
    ignoring NaN draws, by linear interpolation between order statistics as numpy's default
    method (same arithmetic, with ∞ where the interpolation reaches an infinite draw, e.g. a
    time back to baseline never reached); NaN for a metric whose draws are all NaN. Returns
    ``(len(percents), n_fits, n_metrics)``."""
    ordered = np.sort(values, axis=1)  # NaN last
    count = np.count_nonzero(~np.isnan(values), axis=1)
    usable = count > 0
    last = np.maximum(count - 1, 0)
    limits = np.full((len(percents), values.shape[0], values.shape[2]), np.nan)
    for k, percent in enumerate(percents):
        position = percent / 100.0 * last
        below = np.floor(position).astype(np.int64)
        above = np.minimum(below + 1, last)
        low = np.take_along_axis(ordered, below[:, np.newaxis, :], axis=1)[:, 0, :]
        high = np.take_along_axis(ordered, above[:, np.newaxis, :], axis=1)[:, 0, :]
        weight = position - below
        with np.errstate(invalid="ignore"):  # ∞ − ∞ where a draw is infinite: fixed below
            value = np.where(weight >= 0.5, high - (high - low) * (1 - weight),
                             low + (high - low) * weight)  # fmt: skip
        # Between equal draws (e.g. two ∞: never back to baseline), that value; between a
        # finite draw and ∞, ∞ (the finite one at its own position).
        value = np.where(low == high, low, value)
        value = np.where(np.isinf(high) & np.isfinite(low), np.where(weight > 0, high, low),
                         value)  # fmt: skip
        limits[k] = np.where(usable, value, np.nan)
    return limits


def _summaries(values: np.ndarray, tail: float, median: bool) -> np.ndarray:
    """``(3, n_fits, n_metrics)``: the CI limits ``(tail, 100 − tail)`` over the draws of
    ``values`` (``(n_fits, n_draws, n_metrics)``) and, with ``median``, their median (else
    NaN: the estimate is the fit's own point)."""
    percents = (tail, 100.0 - tail, 50.0) if median else (tail, 100.0 - tail)
    found = _percentiles(values, percents)
    if not median:
        found = np.concatenate([found, np.full((1, *found.shape[1:]), np.nan)])
    return found


def _tasks(result: FitResult, options: _Options) -> list[_Task]:
    estimate = result.params["estimate"].to_numpy(dtype=float)
    draws = None
    if np.isfinite(result.covariance_search).all() and options.n_draws > 0:
        draws = result.sample_parameters(options.n_draws, options.seed)
    columns = [None] + [result.layout.index(f"scale_{a}") for a in result.assays[1:]]
    return assay_tasks(result, result.data, result.assays, estimate, draws, columns, options)


def _closed_form(tasks: Sequence[_Task], options: _Options) -> list[dict[str, np.ndarray]]:
    """Point values and CI limits of every task of one model, the rows of a chunk of tasks
    evaluated in one compiled call."""
    model = tasks[0].result.model
    k = len(model.params)
    address = metrics_address(model.metrics_kernel)
    names = _metric_names(options.intervals)
    out = []
    for start in range(0, len(tasks), _CHUNK):
        chunk = tasks[start : start + _CHUNK]
        blocks = [np.vstack([t.point, t.draws]) if t.draws is not None else t.point[np.newaxis]
                  for t in chunk]  # fmt: skip
        scale = np.concatenate([t.scale_of(b) for t, b in zip(chunk, blocks, strict=True)])
        level = np.concatenate([np.full(len(b), t.threshold) for t, b in
                                zip(chunk, blocks, strict=True)]) / scale  # fmt: skip
        theta = np.ascontiguousarray(np.vstack(blocks)[:, :k])
        intervals = np.ascontiguousarray(options.intervals)
        values = np.empty((theta.shape[0], len(names)))
        kernel = _closed_form_parallel if len(theta) >= _PARALLEL_ROWS else _closed_form_serial
        with np.errstate(all="ignore"):  # draws at the bounds give huge but legitimate values
            kernel(address, theta, level, scale, intervals, values)
        medians = [t.median for t in chunk]
        out += _split(values, [len(b) for b in blocks], medians, names, options)
    return out


def _split(
    values: np.ndarray,
    sizes: list[int],
    medians: list[bool],
    names: list[str],
    options: _Options,
) -> list[dict[str, np.ndarray]]:
    """Per task: ``{name: [value, lower, upper]}`` from its rows (the point, then draws);
    the value is the point's, or the median over the draws where ``medians`` says so."""
    tail = 50.0 * (1.0 - options.confidence)
    offsets = np.cumsum([0, *sizes])
    limits = {}
    for n in sorted({size - 1 for size in sizes if size > 1}):  # tasks with n draws together
        for median in (False, True):
            drawn = [i for i, size in enumerate(sizes) if size == n + 1 and medians[i] == median]
            if drawn:
                block = np.stack([values[offsets[i] + 1 : offsets[i + 1]] for i in drawn])
                found = _summaries(block, tail, median)
                limits.update({i: found[:, m, :] for m, i in enumerate(drawn)})
    out = []
    for i in range(len(sizes)):
        found = limits.get(i, np.full((3, len(names)), np.nan))
        point = found[2] if medians[i] else values[offsets[i]]
        out.append({name: np.array([point[j], found[0, j], found[1, j]])
                    for j, name in enumerate(names)})  # fmt: skip
    return out


def _numeric(task: _Task, options: _Options) -> dict[str, np.ndarray]:
    """Metrics of a model without closed forms: its curve on a dense grid (estimate and
    draws), trapezoidal AUCs, the first grid day after the peak at or below the threshold."""
    result = task.result
    horizon = task.horizon if math.isfinite(task.horizon) else 365.0
    horizon = max(horizon, float(options.intervals[:, 1].max(initial=0.0)))
    rows = task.point[np.newaxis] if task.draws is None else np.vstack([task.point, task.draws])
    k = len(result.model.params)
    grid = np.linspace(0.0, horizon, _GRID_POINTS)
    with np.errstate(all="ignore"):
        levels = result.model.simulate_many(grid, rows[:, :k]) * task.scale_of(rows)[:, None]
    peak = np.nanargmax(np.where(np.isfinite(levels), levels, -np.inf), axis=1)
    index = np.arange(levels.shape[0])
    metric = {"cmax": levels[index, peak], "tmax": grid[peak]}
    for start, end in options.intervals:
        inside = (grid >= start) & (grid <= end)
        metric[interval_name(start, end)] = np.trapezoid(levels[:, inside], grid[inside], axis=1)
    for name in ("auc_inf", "doubling_time", "half_life_fast", "half_life_terminal"):
        metric[name] = np.full(levels.shape[0], np.nan)
    after = (grid[np.newaxis, :] > grid[peak][:, np.newaxis]) & (levels <= task.threshold)
    failed = ~np.isfinite(levels).all(axis=1)
    metric["time_back_to_baseline"] = np.where(  # not reached on the grid: beyond its end
        after.any(axis=1), grid[np.argmax(after, axis=1)], np.where(failed, np.nan, np.inf)
    )
    values = np.column_stack(list(metric.values()))[:, np.newaxis, :]
    tail = 50.0 * (1.0 - options.confidence)
    if rows.shape[0] > 1:
        found = _summaries(np.moveaxis(values[1:], 0, 1), tail, task.median)[:, 0, :]
    else:
        found = np.full((3, len(metric)), np.nan)
    point = found[2] if task.median else values[0, 0]
    return {name: np.array([point[j], found[0, j], found[1, j]])
            for j, name in enumerate(metric)}  # fmt: skip


#: Metrics reported as censored at the horizon when they lie beyond it.
_CENSORED_AT_HORIZON = ("time_back_to_baseline", "half_life_fast", "half_life_terminal")


def _row(task: _Task, values: Mapping[str, np.ndarray]) -> dict[str, object]:
    result = task.result
    unit = result.units[task.assay]
    row: dict[str, object] = {"subject": result.subject, "assay": task.assay, "unit": unit,
                              "auc_unit": f"{unit}*day"}  # fmt: skip
    censored = {}
    for name, (value, lower, upper) in values.items():
        if name in _CENSORED_AT_HORIZON:
            (value, lower, upper), censored[name] = _at_horizon((value, lower, upper), task)
        row[name] = float(value)
        row[f"{name}_ci_lower"], row[f"{name}_ci_upper"] = float(lower), float(upper)
    flags = extrapolated(task, {name: float(v[0]) for name, v in values.items()})
    row.update({f"{name}_extrapolated": flag for name, flag in flags.items()})
    row.update({f"{name}_censored": censored[name] for name in _CENSORED_AT_HORIZON[1:]})
    missing = [name for name in ("cmax", "tmax") if not math.isfinite(row[name])]  # type: ignore[arg-type]
    row.update({"time_back_to_baseline_method": "model",
                "time_back_to_baseline_censored": censored["time_back_to_baseline"],
                "tbb_threshold": task.threshold, "baseline": task.baseline,
                "horizon": task.horizon, "success": bool(result.success),
                "reliable": bool(result.reliable), "issues": ", ".join(result.issue_codes),
                "exclude_reason": _reason(result, missing, censored, flags,
                                          task.horizon)})  # fmt: skip
    return row


def _at_horizon(values: tuple[float, float, float], task: _Task):
    """``(value, lower, upper)`` with every number beyond the horizon set to it, and whether
    the value itself was (censored at the horizon)."""
    horizon = task.horizon
    beyond = bool(values[0] > horizon)  # NaN (not computable) is not censored
    return tuple(min(v, horizon) if math.isfinite(horizon) and v > horizon else v
                 for v in values), beyond  # fmt: skip


def _reason(
    result: FitResult,
    missing: list[str],
    censored: Mapping[str, bool],
    flags: Mapping[str, bool],
    horizon: float,
) -> str:
    """Why the metrics of a fit should not be used as they are ("" when nothing to say)."""
    if isinstance(result, Member):  # a subject of a population fit: the fit's own reasons
        reasons = list(result.reasons)
        missing = [] if result.failed else missing
    else:
        reasons = _fit_reasons(result)
    if missing:
        reasons.append(f"the model failed at the estimate ({', '.join(missing)} not computable)")
    beyond = [name for name, hit in censored.items() if hit]
    if beyond:
        reasons.append(f"censored at the horizon ({horizon:g} d): {', '.join(beyond)}")
    outside = [name for name, flag in flags.items() if flag]
    if outside:
        reasons.append(f"extrapolated beyond the quantified samples: {', '.join(outside)}")
    return "; ".join(reasons)


def _fit_reasons(result: FitResult) -> list[str]:
    """What is known against a per-subject fit: not converged, its issues, no covariance."""
    reasons = []
    if not result.success:
        reasons.append(f"fit did not converge ({result.message})")
    codes = [code for code in result.issue_codes if code != "not_converged"]
    if codes:
        reasons.append(f"unreliable fit: {', '.join(codes)}")
    if not np.isfinite(result.covariance_search).all():
        reasons.append("no covariance: no CIs")
    return reasons


def _results(fits: Any) -> list[FitResult]:
    from cellkin.fit import BatchFit, FitResult  # the layer below, asked lazily

    if isinstance(fits, FitResult):
        return [fits]
    if isinstance(fits, BatchFit):
        return [fits.results[s] for s in fits.subjects if s in fits.results]
    items = fits.values() if isinstance(fits, Mapping) else fits
    if isinstance(items, Iterable):
        results = list(items)
        if all(isinstance(r, FitResult) for r in results):
            return results
    raise OptionError(
        f"`fits` must be a FitResult, a BatchFit, a collection of FitResults or a "
        f"PopulationFit, got "
        f"{type(fits).__name__}"
    )


def _check(intervals: Any, confidence: float, n_draws: int) -> np.ndarray:
    if not 0 < confidence < 1:
        raise OptionError(f"`confidence` must be in (0, 1), got {confidence}")
    if isinstance(n_draws, bool) or not isinstance(n_draws, int | np.integer) or n_draws < 0:
        raise OptionError(f"`n_draws` must be a non-negative integer, got {n_draws!r}")
    try:
        array = np.asarray(intervals, dtype=float).reshape(-1, 2)
    except ValueError:
        raise OptionError(
            f"`intervals` must be pairs of days (start, end), e.g. ((0, 28), (0, 84)); got "
            f"{intervals!r}"
        ) from None
    if not (np.isfinite(array).all() and (array[:, 0] < array[:, 1]).all()):
        raise OptionError(f"`intervals` must be finite (start, end) pairs with start < end, "
                          f"got {intervals!r}")  # fmt: skip
    return array


def model_metrics(
    fits: FitResult | BatchFit | Mapping[str, FitResult] | Sequence[FitResult] | PopulationFit,
    *,
    intervals: Sequence[Sequence[float]] = ((0, 28), (0, 84)),
    confidence: float = 0.95,
    n_draws: int = 1000,
    seed: int = 0,
    baseline: str | float = "lloq",
    horizon: float | None = None,
) -> pd.DataFrame:
    """Model-based metrics of one or many fits, with confidence intervals.

    Parameters
    ----------
    fits : FitResult, BatchFit, a mapping or sequence of FitResult, or PopulationFit
        Fits from :func:`cellkin.fit` or :func:`cellkin.fit_all`, or a population fit from
        :func:`cellkin.fit_population`: then every subject's metrics come from its
        **conditional distribution** given the population (its conditional draws,
        :meth:`~cellkin.population.PopulationFit.individual_parameters` with ``draws=True``):
        the estimate is the **median** of the metric over the draws and the CI its
        percentiles (quantiles of one distribution: the estimate lies in its CI), the
        extrapolation flags are judged on the curve of the subject's EBE; ``success`` and
        ``reliable`` say whether SAEM converged; the subjects that could not enter the fit
        (``PopulationFit.failures``) get rows of NaN metrics with ``success`` False and
        their reason in ``exclude_reason``; ``attrs["cellkin"]["source"]`` is
        ``"population (conditional)"`` (``"per-subject fit"`` otherwise).
    intervals : sequence of (start, end)
        AUC intervals in days (columns ``auc_<start>_<end>``).
    confidence : float
        Confidence level of the intervals (recorded in ``attrs["cellkin"]["confidence"]``).
    n_draws : int
        Parameter draws from the estimation-scale normal approximation of each estimate
        (:meth:`cellkin.FitResult.sample_parameters`; 0: no CIs). For a population fit: at
        most this many of each subject's stored conditional draws (the first ones; at least 1).
    seed : int
        Seed of the draws (the same for every fit, so a fit's CIs do not depend on the
        batch it is in; unused for a population fit, whose draws are stored).
    baseline : {"lloq", "lloq_only", "max_pre_infusion"} or float
        Baseline for the time-back-to-baseline threshold ``max(baseline, LLOQ)``, defined as
        in :func:`cellkin.metrics.nca` from the subject's pre-infusion samples.
    horizon : float, optional
        Day beyond which a time back to baseline or a phase half-life is not extrapolated
        but reported as **censored at the horizon**: the value (and any CI limit beyond it)
        is the horizon and ``<metric>_censored`` is True. Default: twice the subject's last
        post-infusion sample day. It is also the end of the grid of models without closed
        forms (mechanistic ODEs; at least the last interval end), on which a curve that does
        not fall to the threshold is censored likewise; draws whose integration fails on
        the grid (e.g. an escaping tumour overflowing) give NaN and are left out of the
        percentiles.

    Returns
    -------
    DataFrame
        One row per fit × fitted assay: ``subject, assay, unit, auc_unit``, the metrics ``cmax,
        tmax, auc_<a>_<b>…, auc_inf, doubling_time, half_life_fast, half_life_terminal,
        time_back_to_baseline`` each with ``<metric>_ci_lower`` and ``<metric>_ci_upper`` (at
        the ``confidence`` level; NaN when the fit has no covariance); ``<metric>_extrapolated``
        for each (True where it depends on the fitted curve beyond the quantified samples;
        the rule of each metric is in :mod:`cellkin.metrics._extrapolation`: the peak
        outside the samples for Cmax/Tmax, over 20% of the area outside them for an AUC, no
        sample before/after Tmax for the doubling time/fast half-life, the terminal phase not
        reached for the terminal half-life, a return after the last sample for the time back
        to baseline); ``half_life_fast_censored``, ``half_life_terminal_censored``;
        ``time_back_to_baseline_method`` ("model"), ``time_back_to_baseline_censored`` (beyond
        the horizon), ``tbb_threshold``, ``baseline``, ``horizon`` (days), ``success`` (the
        fit converged), ``reliable`` and ``issues`` (the fit's verdict, issue codes
        comma-separated: :attr:`cellkin.fit.FitResult.issues`) and ``exclude_reason`` (why
        the numbers should not be used as they are — unreliable fit, no covariance,
        censoring at the horizon, extrapolated metrics; empty when nothing is known against
        them).
    """
    array = _check(intervals, confidence, n_draws)
    options = _Options(array, float(confidence), int(n_draws), int(seed), baseline, horizon)
    population = is_population_fit(fits)
    if population:
        tasks = population_tasks(fits, options)
    else:
        tasks = [task for result in _results(fits) for task in _tasks(result, options)]
    values: list[dict[str, np.ndarray] | None] = [None] * len(tasks)
    by_model: dict[int, list[int]] = {}
    for i, task in enumerate(tasks):
        if isinstance(task.result, Member) and task.result.failed:
            values[i] = dict.fromkeys(_metric_names(array), np.full(3, np.nan))
        elif task.result.model.metrics_kernel is not None:
            by_model.setdefault(id(type(task.result.model)), []).append(i)
        else:
            values[i] = _numeric(task, options)
    for indices in by_model.values():
        for i, found in zip(indices, _closed_form([tasks[i] for i in indices], options),
                            strict=True):  # fmt: skip
            values[i] = found
    table = _frame([_row(task, found or {}) for task, found in zip(tasks, values, strict=True)])
    table.attrs["cellkin"] = {"confidence": float(confidence), "n_draws": int(n_draws),
                              "seed": int(seed), "baseline": baseline,
                              "time_back_to_baseline_method": "model",
                              "source": SOURCE_PER_SUBJECT}  # fmt: skip
    if population:
        table.attrs["cellkin"].update(_population_attrs(fits, tasks))
    return table


def _population_attrs(fit: Any, tasks: Sequence[_Task]) -> dict[str, object]:
    """What a population fit's metrics rest on (``attrs["cellkin"]``)."""
    used = max((t.draws.shape[0] for t in tasks if t.draws is not None), default=0)
    return {"source": SOURCE_POPULATION, "n_draws": int(used), "seed": None,
            "estimate": "median of the metric over the subject's conditional draws",
            "interval": "percentiles of the metric over the subject's conditional draws",
            "population": {"model": fit.model.name, "n_subjects": int(fit.n_subjects),
                           "converged": bool(fit.converged),
                           "n_failures": len(fit.failures)}}  # fmt: skip


def _frame(rows: Sequence[dict[str, object]]) -> pd.DataFrame:
    """The table of metric rows, one typed column per key (keys in order of first
    appearance; NaN where a row lacks one)."""
    if not rows:
        return pd.DataFrame(columns=["subject", "assay", "unit", "auc_unit", "success",
                                     "reliable", "issues", "exclude_reason"])  # fmt: skip
    keys = dict.fromkeys(key for row in rows for key in row)
    return pd.DataFrame({key: _array([row.get(key, np.nan) for row in rows]) for key in keys})


def _array(values: list) -> np.ndarray:
    """A column as a typed array (a DataFrame is built several times faster from arrays)."""
    if all(isinstance(v, bool) for v in values):
        return np.array(values, dtype=bool)
    if all(isinstance(v, float | int) for v in values):
        return np.array(values, dtype=float)
    return np.array(values, dtype=object)
