r"""The compiled quasi-Newton method that screens every start of a fit (private).

Used for models with a closed-form level function (:mod:`cellkin.fit._objective`).
lmfit stays the fitting engine of record: every such fit ends with one
``lmfit.minimize(method="lbfgsb")`` whose ``MinimizerResult`` (message, success,
evaluations) is what :class:`~cellkin.fit.FitResult` reports. What changed is how it is
started. Each multi-start point is first *screened*: minimised to a tight tolerance by the
compiled projected quasi-Newton method below (:func:`minimise`), on the same objective, the same
estimation scale and the same bounds. lmfit then polishes the best screened point: as that
point is already stationary, L-BFGS-B confirms it in one to a few evaluations through a thin
objective (the compiled −2 ln L and gradient, no pandas). Why the screening is compiled
rather than done by lmfit or SciPy from every start (their per-evaluation bookkeeping, not
the model, dominates a fit) is measured in ``benchmarks/README.md`` ("Design notes behind the
fast fit path").

The screening method is a projected BFGS with an active set (Bertsekas' two-metric
projection, as in Kelley, *Iterative Methods for Optimization*, SIAM 1999, §5.5): variables at
a bound whose gradient points outwards are held; the inverse-Hessian approximation acts on
the others; steps are projected onto the box and accepted by an Armijo backtracking line
search; curvature pairs with ``sᵀy ≤ 0`` are skipped. Once −2 ln L no longer resolves a
step (a change below 1e-13 relative), a step is accepted if it shrinks the projected gradient,
which stays accurate there, so that the gradient reaches the polish's tolerance. It stops
when the largest projected gradient component is below ``gtol`` (default 1e-9 on −2 ln L per
unit of the estimation scale), when no step decreases either, or after ``max_evaluations``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from cellkin.fit._objective import CompiledObjective, _evaluate
from cellkin.fit.likelihood import FAILED

__all__ = [
    "EVALUATION_LIMIT",
    "GRADIENT_CONVERGED",
    "NO_FURTHER_DECREASE",
    "START_FAILED",
    "minimise",
]

# Exit codes of :func:`minimise`.
GRADIENT_CONVERGED = 0
NO_FURTHER_DECREASE = 1
EVALUATION_LIMIT = 2
START_FAILED = 3


@numba.njit(cache=True, error_model="numpy")
def _largest(g, x, lower, upper, free):  # pragma: no cover - compiled
    """Largest projected-gradient component (variables held at a bound left out)."""
    largest = 0.0
    for j in range(x.shape[0]):
        held = (x[j] <= lower[j] and g[j] > 0.0) or (x[j] >= upper[j] and g[j] < 0.0)
        if free[j] and not held:
            largest = max(largest, abs(g[j]))
    return largest


@numba.njit(cache=True, error_model="numpy")
def _project(x, lower, upper, free, origin, out):  # pragma: no cover - compiled
    for j in range(x.shape[0]):
        out[j] = min(max(x[j], lower[j]), upper[j]) if free[j] else origin[j]


@numba.njit(cache=True, error_model="numpy")
def _active_set(x, g, lower, upper, free, inactive):  # pragma: no cover - compiled
    """Mark the variables free to move (not held at a bound by an outward gradient); return
    the largest projected-gradient component among them."""
    largest = 0.0
    for j in range(x.shape[0]):
        at_lower = x[j] <= lower[j] and g[j] > 0.0
        at_upper = x[j] >= upper[j] and g[j] < 0.0
        inactive[j] = free[j] and not (at_lower or at_upper)
        if inactive[j]:
            largest = max(largest, abs(g[j]))
    return largest


@numba.njit(cache=True, error_model="numpy")
def _direction(h, g, inactive, scaled, direction):  # pragma: no cover - compiled
    """The quasi-Newton direction ``−Hg`` on the free variables, at most 1 (5 once ``H`` is
    scaled) per component; steepest descent, ``H`` reset, when that does not descend.
    Returns ``(slope, scaled)``."""
    p = g.shape[0]
    slope = 0.0
    for i in range(p):
        direction[i] = 0.0
        if inactive[i]:
            for j in range(p):
                if inactive[j]:
                    direction[i] -= h[i, j] * g[j]
            slope += direction[i] * g[i]
    if not slope < 0.0:  # not a descent direction: restart from steepest descent
        h[:, :] = np.eye(p)
        scaled = False
        slope = 0.0
        for i in range(p):
            direction[i] = -g[i] if inactive[i] else 0.0
            slope -= direction[i] * direction[i]
    longest = 0.0
    for i in range(p):
        longest = max(longest, abs(direction[i]))
    limit = 1.0 if not scaled else 5.0  # at most e^5 per step on a log scale
    if longest > limit:
        for i in range(p):
            direction[i] *= limit / longest
        slope *= limit / longest
    return slope, scaled


@numba.njit(cache=True, error_model="numpy")
def _line_search(  # pragma: no cover - compiled
    x, g, direction, slope, value, largest, lower, upper, free, trial, g_trial, evaluations,
    max_evaluations, codes, address, analytic, t, target, censored, assay, n_kinetic,
    error_kind, error_start, prior_index, prior_mean, prior_precision,
):  # fmt: skip
    """Armijo backtracking along ``direction`` (projected onto the bounds), with quadratic
    interpolation of the step. Returns ``(accepted, value at trial, evaluations)``; ``trial``
    and ``g_trial`` hold the last point tried and its gradient."""
    p = x.shape[0]
    empty = np.empty(0)
    step = 1.0
    accepted = False
    value_trial = value
    for _ in range(30):
        for i in range(p):
            trial[i] = x[i] + step * direction[i]
        _project(trial, lower, upper, free, x, trial)
        decrease = 0.0
        for i in range(p):
            decrease += g[i] * (trial[i] - x[i])
        value_trial = _evaluate(trial, codes, address, analytic, t, target, censored, assay,
                                n_kinetic, error_kind, error_start, prior_index, prior_mean,
                                prior_precision, g_trial, empty)  # fmt: skip
        evaluations += 1
        if value_trial < FAILED and value_trial <= value + 1e-4 * decrease:
            accepted = decrease < 0.0 or value_trial < value
            break
        if value_trial < FAILED and abs(value_trial - value) <= 1e-13 * max(1.0, abs(value)):
            # −2 ln L no longer resolves the step, its gradient still does: accept the step
            # if it shrinks the projected gradient (the end game near the optimum)
            accepted = _largest(g_trial, trial, lower, upper, free) < largest
            break
        if value_trial < FAILED:  # quadratic interpolation, kept within [0.1, 0.5]·step
            curvature = value_trial - value - slope * step
            shrink = 0.5 if curvature <= 0.0 else -slope * step / (2.0 * curvature)
            step *= min(max(shrink, 0.1), 0.5)
        else:
            step *= 0.1
        if evaluations >= max_evaluations:
            break
    return accepted, value_trial, evaluations


@numba.njit(cache=True, error_model="numpy")
def _bfgs_update(h, x, g, trial, g_trial, scaled):  # pragma: no cover - compiled
    """Move to ``trial`` and update the inverse Hessian approximation (pairs with
    ``sᵀy ≤ 0`` skipped; ``H₀ = (sᵀy/yᵀy) I`` before the first update, Nocedal & Wright
    (6.20)). Returns ``scaled``."""
    p = x.shape[0]
    s, y, hy = np.empty(p), np.empty(p), np.empty(p)
    sy = yy = ss = 0.0
    for i in range(p):
        s[i] = trial[i] - x[i]
        y[i] = g_trial[i] - g[i]
        sy += s[i] * y[i]
        yy += y[i] * y[i]
        ss += s[i] * s[i]
        x[i], g[i] = trial[i], g_trial[i]
    if sy > 1e-10 * math.sqrt(ss * yy):
        if not scaled:
            h[:, :] = np.eye(p) * (sy / yy)
            scaled = True
        yhy = 0.0
        for i in range(p):
            hy[i] = 0.0
            for j in range(p):
                hy[i] += h[i, j] * y[j]
            yhy += y[i] * hy[i]
        for i in range(p):  # inverse BFGS update
            for j in range(p):
                h[i, j] += ((sy + yhy) * s[i] * s[j] / sy - hy[i] * s[j] - s[i] * hy[j]) / sy
    return scaled


@numba.njit(cache=True, error_model="numpy")
def _minimise(  # pragma: no cover - compiled
    x0, free, lower, upper, codes, address, analytic, t, target, censored, assay, n_kinetic,
    error_kind, error_start, prior_index, prior_mean, prior_precision, max_evaluations, gtol,
):  # fmt: skip
    """Projected BFGS with an active set and Armijo backtracking (see the module docstring).

    Returns ``(x, value, evaluations, exit code)``.
    """
    p = x0.shape[0]
    x = np.empty(p)
    _project(x0, lower, upper, free, x0, x)
    g = np.empty(p)
    value = _evaluate(x, codes, address, analytic, t, target, censored, assay, n_kinetic,
                      error_kind, error_start, prior_index, prior_mean, prior_precision, g,
                      np.empty(0))  # fmt: skip
    evaluations = 1
    if value >= FAILED:
        return x, value, evaluations, START_FAILED
    h = np.eye(p)
    scaled = False
    trial, g_trial, direction = np.empty(p), np.empty(p), np.empty(p)
    inactive = np.empty(p, dtype=np.bool_)
    while True:
        largest = _active_set(x, g, lower, upper, free, inactive)
        if largest <= gtol:
            return x, value, evaluations, GRADIENT_CONVERGED
        if evaluations >= max_evaluations:
            return x, value, evaluations, EVALUATION_LIMIT
        slope, scaled = _direction(h, g, inactive, scaled, direction)
        accepted, value_trial, evaluations = _line_search(
            x, g, direction, slope, value, largest, lower, upper, free, trial, g_trial,
            evaluations, max_evaluations, codes, address, analytic, t, target, censored, assay,
            n_kinetic, error_kind, error_start, prior_index, prior_mean, prior_precision,
        )  # fmt: skip
        if not accepted:
            return x, value, evaluations, NO_FURTHER_DECREASE
        scaled = _bfgs_update(h, x, g, trial, g_trial, scaled)
        value = value_trial


def minimise(
    objective: CompiledObjective,
    start: np.ndarray,
    free: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    max_evaluations: int = 2000,
    gtol: float = 1e-9,
) -> tuple[np.ndarray, float, int, int]:
    """Minimise −2 ln L from ``start`` within ``[lower, upper]`` (estimation scale).

    Parameters
    ----------
    objective : CompiledObjective
        The subject's compiled objective.
    start, lower, upper : ndarray
        Starting point and bounds on the estimation scale (bounds may be infinite).
    free : ndarray of bool
        Parameters that vary; the others stay at ``start``.
    max_evaluations : int
        Budget of objective evaluations.
    gtol : float
        Convergence threshold on the largest projected gradient component.

    Returns
    -------
    tuple
        ``(search, value, evaluations, code)``; ``code`` is :data:`GRADIENT_CONVERGED`,
        :data:`NO_FURTHER_DECREASE` (stationary to machine precision), :data:`EVALUATION_LIMIT`
        or :data:`START_FAILED`.
    """
    x, value, evaluations, code = _minimise(
        np.ascontiguousarray(start, dtype=np.float64),
        np.ascontiguousarray(free, dtype=np.bool_),
        np.ascontiguousarray(lower, dtype=np.float64),
        np.ascontiguousarray(upper, dtype=np.float64),
        *objective.args(),
        int(max_evaluations),
        float(gtol),
    )
    return x, float(value), int(evaluations), int(code)
