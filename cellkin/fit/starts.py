"""Data-driven starting values and the seeded multi-start design (private).

Stein-type models start from the subject's own profile — peak and time of peak (Cmax,
Tmax), the rise before the peak (fold expansion), the first decline after it (α) and the
terminal log-linear slope (β, FB) — as an NCA would read them. Other models start from their
published defaults. Further starts are drawn around the first on the estimation scale with a
seeded generator, so a fit is deterministic for given inputs and seed.

Starts are run in turn, and the multi-start stops once three of them have reached the best
−2 ln L found so far (:func:`agree`): the optimum has then been confirmed twice, and a
well-started subject needs three starts, not ``n_starts``. For Stein-family models the best
point is then re-screened with Tmax moved into the neighbouring inter-sample intervals
(:func:`tmax_neighbours`). Measured on 400 simulated rich-sampling subjects against eight
full starts: stopping once two starts agree missed the best optimum in 9 subjects (6 with the
Tmax probes), three agreeing starts with the probes in 1 (by 0.04 in −2 ln L). The design
does not depend on how many starts run, and the rule only on the values reached, so the fit
stays deterministic for given inputs and seed.
"""

from __future__ import annotations

import math

import numpy as np

from cellkin.fit.problem import SubjectProblem
from cellkin.models.base import Model
from cellkin.models.stein import _SteinFamily

__all__ = ["AGREEING", "AGREEMENT", "agree", "kinetic_start", "multistart", "tmax_neighbours"]

#: Relative tolerance (floor 1 in −2 ln L units) within which starts reach the same optimum.
AGREEMENT = 1e-6
#: Starts that must reach the best −2 ln L before the multi-start stops early.
AGREEING = 3


def _clip(value: float, spec_lower: float, spec_upper: float) -> float:
    span = spec_upper - spec_lower
    return float(min(max(value, spec_lower + 1e-6 * span), spec_upper - 1e-6 * span))


def _terminal_slope(t: np.ndarray, y: np.ndarray) -> float:
    if t.size < 2:
        return math.nan
    x, z = t[-3:], np.log(y[-3:])  # least-squares line through the last (up to) 3 points
    dx = x - x.mean()
    return float(-(dx @ (z - z.mean())) / (dx @ dx))


def _stein_start(model: Model, t: np.ndarray, y: np.ndarray) -> dict[str, float]:
    start = dict(model.defaults)
    peak = int(np.argmax(y))
    cmax, tmax = float(y[peak]), float(max(t[peak], 0.5))
    start["cmax"], start["tmax"] = cmax, tmax
    tlag = start.get("tlag", 0.0)
    if "tlag" in start:
        tlag = start["tlag"] = min(start["tlag"], 0.5 * tmax)
    if peak > 0 and y[0] < cmax and t[0] < tmax:
        rho = math.log(cmax / y[0]) / (tmax - t[0])
        start["foldx"] = math.exp(rho * (tmax - tlag))
    after_t, after_y = t[peak + 1 :], y[peak + 1 :]
    if after_t.size:
        alpha = math.log(cmax / after_y[0]) / (after_t[0] - tmax)
        start["alpha"] = alpha if alpha > 0 else start["alpha"]
    beta = _terminal_slope(after_t, after_y)
    if math.isfinite(beta) and beta > 0:
        start["beta"] = min(beta, 0.5 * start["alpha"])
        intercept = math.log(after_y[-1]) + start["beta"] * (after_t[-1] - tmax)
        start["fb"] = math.exp(intercept) / cmax
    for spec in model.params:
        start[spec.name] = _clip(start[spec.name], spec.lower, spec.upper)
    return start


def kinetic_start(model: Model, t: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Starting kinetic parameters from quantified post-infusion samples (time-sorted)."""
    if isinstance(model, _SteinFamily) and t.size >= 2:
        return _stein_start(model, t, y)
    return dict(model.defaults)


def multistart(
    first: np.ndarray,
    free: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    n_starts: int,
    seed: int | np.random.Generator,
    spread: float = 0.7,
) -> list[np.ndarray]:
    """``n_starts`` starting points on the estimation scale: ``first`` and seeded jitters.

    ``lower``/``upper`` are estimation-scale bounds; jittered points are kept strictly inside.
    """
    rng = np.random.default_rng(seed)
    points = [first.copy()]
    finite_lo = np.where(np.isfinite(lower), lower, first - 50)
    finite_hi = np.where(np.isfinite(upper), upper, first + 50)
    margin = 1e-6 * (finite_hi - finite_lo)
    for _ in range(max(n_starts, 1) - 1):
        point = first.copy()
        jitter = rng.normal(0.0, spread, size=first.size)
        point[free] = np.clip(first[free] + jitter[free], finite_lo[free] + margin[free],
                              finite_hi[free] - margin[free])  # fmt: skip
        points.append(point)
    return points


def agree(values: list[float], tolerance: float = AGREEMENT, count: int = AGREEING) -> bool:
    """Whether the ``count`` lowest of ``values`` (−2 ln L of the starts run so far) agree
    within ``tolerance × max(1, |lowest|)``: the best optimum has been reached ``count``
    times."""
    if len(values) < count:
        return False
    lowest = sorted(values)[:count]
    return lowest[-1] - lowest[0] <= tolerance * max(1.0, abs(lowest[0]))


def tmax_neighbours(
    problem: SubjectProblem, search: np.ndarray, free: np.ndarray
) -> list[np.ndarray]:
    """``search`` with Tmax moved to the middle of the inter-sample interval on either side of
    the one it lies in (Stein family, Tmax free; else no point).

    −2 ln L is smooth in Tmax between sample times and kinked at them, and its local optima
    lie in different inter-sample intervals — the multimodality that random jitters of the
    starts miss most often. Re-screening from these two points after the starts probes the
    neighbouring intervals deterministically.
    """
    names = problem.layout.names
    if "tmax" not in names or not isinstance(problem.model, _SteinFamily):
        return []
    j = names.index("tmax")
    if not free[j]:
        return []
    times = np.unique(problem.obs.time[problem.obs.time > 0])
    tmax = float(problem.transform.to_model(search)[j])
    k = int(np.searchsorted(times, tmax, side="right"))  # tmax in [times[k-1], times[k])
    middles = []
    if k >= 2:
        middles.append(0.5 * (times[k - 2] + times[k - 1]))
    if k + 1 < times.size:
        middles.append(0.5 * (times[k] + times[k + 1]))
    lower, upper = problem.layout.lower[j], problem.layout.upper[j]
    points = []
    for middle in middles:
        if lower < middle < upper:
            theta = problem.transform.to_model(search)
            theta[j] = middle
            points.append(problem.transform.to_search(theta))
    return points
