r"""Compiled −2 ln L, gradient and start screening for Stein-family fits (private).

The Stein models (:mod:`cellkin.models.stein`) have closed forms for the level and for
:math:`\partial \ln C/\partial\theta`, so one subject's whole objective — model, residual error
model, M3 censoring, the chain rule to the estimation scale — compiles into one numba
function working on plain float arrays: a few microseconds per value and gradient for 15
samples, against ~0.5 ms for the Python objective called through ``lmfit.Parameters``.

Optimiser design
----------------
lmfit stays the fitting engine of record: every Stein fit ends with one
``lmfit.minimize(method="lbfgsb")`` whose ``MinimizerResult`` (message, success,
evaluations) is what :class:`~cellkin.fit.FitResult` reports. What changed is how it is
started. Each multi-start point is first *screened*: minimised to a tight tolerance by the
compiled projected quasi-Newton method below (:func:`minimise`), on the same objective, the same
estimation scale and the same bounds. lmfit then polishes the best screened point: as that
point is already stationary, L-BFGS-B confirms it in one to a few evaluations through a thin
objective (the compiled −2 ln L and gradient, no pandas). The polish is ~0.9 ms of a
~5 ms fit, almost all of it lmfit's and SciPy's set-up.

Why not lmfit with a thin objective from every start: lmfit's per-evaluation cost (writing
the ``Parameters`` values, bounds transform, SciPy's L-BFGS-B bookkeeping: ~0.1–0.5 ms) is
100–300 times that of the compiled objective, and a start needs ~50–150 evaluations, so a
fit would cost tens of milliseconds however cheap the objective. Why not SciPy's L-BFGS-B on
arrays for the screening: its ``setulb`` step alone costs ~0.1 ms per call on this hardware
(more when OpenBLAS threads compete for the cores), again ~10 ms per start. A dense BFGS
on ≤ 12 parameters, compiled, costs less than the objective itself.

The screening method is a projected BFGS with an active set (Bertsekas' two-metric
projection, as in Kelley, *Iterative Methods for Optimization*, SIAM 1999, §5.5): variables at
a bound whose gradient points outwards are held; the inverse-Hessian approximation acts on
the others; steps are projected onto the box and accepted by an Armijo backtracking line
search; curvature pairs with ``sᵀy ≤ 0`` are skipped. Once −2 ln L no longer resolves a
step (a change below 1e-13 relative), a step is accepted if it shrinks the projected gradient,
which stays accurate there, so that the gradient reaches the polish's tolerance. It stops
when the largest projected gradient component is below ``gtol`` (default 1e-9 on −2 ln L per
unit of the estimation scale), when no step decreases either, or after ``max_evaluations``.

Objective
---------
With ``f_i`` the predicted level of sample ``i`` (scale × Stein level) and per-assay error
parameters, the terms are those of :func:`cellkin.fit.likelihood.minus2ll_terms`:

* log-additive: ``z = (ln y − ln f)/σ``; quantified ``z² + 2 ln σ + ln 2π + 2 ln y``;
  censored ``−2 ln Φ(z)`` with ``y`` replaced by the LLOQ;
* combined: ``s = √(a² + (b f)²)``, ``z = (y − f)/s``; quantified ``z² + 2 ln s + ln 2π``;
  censored ``−2 ln Φ(z)``.

The gradient uses ``w_i = ∂(−2 ln L)/∂ ln f_i`` (for the log-additive model ``−2z/σ``, and
``2λ(z)/σ`` on censored samples with ``λ = φ/Φ`` the inverse Mills ratio), summed against
``∂ ln f_i/∂θ`` of :meth:`~cellkin.models.stein._SteinFamily.log_level_gradient` (one-sided at
the kink: the decline branch at ``t = Tmax``), then multiplied by ``dθ/dφ`` of each
parameter's estimation scale. ``ln Φ`` is evaluated as ``ln(erfc(−z/√2)/2)`` for ``z ≤ 0``,
``log1p(−erfc(z/√2)/2)`` for ``z > 0`` and, below ``z = −37`` where ``erfc`` underflows, by
its asymptotic series.

The covariance Jacobian (:func:`_jacobian`) and the stationarity check are compiled central
differences with the steps of :func:`cellkin.fit.problem.central_differences`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from cellkin.fit.likelihood import Observations

__all__ = ["FAILED", "SteinObjective", "minimise"]

FAILED = 1e300  # −2 ln L reported where the model fails (tlag ≥ tmax, non-finite terms)
_LINEAR, _LOG, _LOGIT = 0, 1, 2
_LOG_ADDITIVE, _COMBINED = 0, 1
_SCALE_CODES = {"linear": _LINEAR, "log": _LOG, "logit": _LOGIT}
_LOG_2PI = math.log(2.0 * math.pi)
_TINY = 1e-300

# Exit codes of :func:`minimise`.
GRADIENT_CONVERGED = 0
NO_FURTHER_DECREASE = 1
EVALUATION_LIMIT = 2
START_FAILED = 3


@numba.njit(cache=True, error_model="numpy")
def _log_ndtr(z: float) -> float:  # pragma: no cover - compiled
    """ln Φ(z), accurate in both tails."""
    if z > 0.0:
        return math.log1p(-0.5 * math.erfc(z / math.sqrt(2.0)))
    if z > -37.0:
        return math.log(0.5 * math.erfc(-z / math.sqrt(2.0)))
    # Asymptotic series: Φ(z) = φ(z)/(−z) · (1 − 1/z² + 3/z⁴ − 15/z⁶ + 105/z⁸ − …)
    q = 1.0 / (z * z)
    series = 1.0 + q * (-1.0 + q * (3.0 + q * (-15.0 + q * (105.0 - 945.0 * q))))
    return -0.5 * z * z - math.log(-z) - 0.5 * math.log(2.0 * math.pi) + math.log(series)


@numba.njit(cache=True, error_model="numpy")
def _to_model(x, codes, out):  # pragma: no cover - compiled
    """Estimation → natural scale, and dθ/dφ into ``out[1]``."""
    for j in range(x.shape[0]):
        if codes[j] == 1:
            value = math.exp(x[j])
            out[0, j], out[1, j] = value, value
        elif codes[j] == 2:
            if x[j] >= 0.0:
                value = 1.0 / (1.0 + math.exp(-x[j]))
            else:
                e = math.exp(x[j])
                value = e / (1.0 + e)
            out[0, j], out[1, j] = value, value * (1.0 - value)
        else:
            out[0, j], out[1, j] = x[j], 1.0


@numba.njit(cache=True, error_model="numpy")
def _level(  # pragma: no cover - compiled
    t, cmax, tmax, foldx, alpha, fb, beta, tlag, n_kinetic, want_gradient, out
):
    """Stein level at ``t ≥ 0`` (the arithmetic of ``cellkin.models.stein._stein_level``)
    and, when ``want_gradient``, ∂ ln C(t)/∂θ in kinetic order into ``out`` (as
    ``_SteinFamily.log_level_gradient``: the decline branch at ``t = Tmax``), sharing the
    exponentials."""
    if want_gradient:
        for j in range(n_kinetic):
            out[j] = 0.0
        out[0] = 1.0 / cmax
    c0 = cmax / foldx
    if t < tlag:
        if want_gradient:
            out[2] = -1.0 / foldx
        return c0
    if t < tmax:
        span = tmax - tlag
        rho = math.log(foldx) / span
        if want_gradient:
            fraction = (t - tlag) / span
            out[2] = (fraction - 1.0) / foldx
            out[1] = -rho * fraction
            if n_kinetic > 6:
                out[6] = rho * (fraction - 1.0)
        return c0 * math.exp(rho * (t - tlag))
    elapsed = t - tmax
    fast, slow = math.exp(-alpha * elapsed), math.exp(-beta * elapsed)
    decline = (1.0 - fb) * fast + fb * slow
    if want_gradient and decline > 0.0:
        out[1] = ((1.0 - fb) * alpha * fast + fb * beta * slow) / decline
        out[3] = -(1.0 - fb) * elapsed * fast / decline
        out[4] = (slow - fast) / decline
        out[5] = -fb * elapsed * slow / decline
        for j in range(n_kinetic):
            if not math.isfinite(out[j]):
                out[j] = 0.0
    return cmax * decline


@numba.njit(cache=True, error_model="numpy")
def _evaluate(  # pragma: no cover - compiled
    x, codes, t, target, censored, assay, n_kinetic, n_assays, error, grad, z_out
):
    """−2 ln L at search point ``x``; fills ``grad`` (search scale) when it has ``x``'s size
    and ``z_out`` (standardised residuals) when it has one entry per sample."""
    p = x.shape[0]
    want_grad = grad.shape[0] == p
    want_z = z_out.shape[0] == t.shape[0]
    natural = np.empty((2, p))
    _to_model(x, codes, natural)
    theta = natural[0]
    cmax, tmax, foldx = theta[0], theta[1], theta[2]
    alpha, fb, beta = theta[3], theta[4], theta[5]
    tlag = theta[6] if n_kinetic > 6 else 0.0
    if want_grad:
        for j in range(p):
            grad[j] = 0.0
    if tlag >= tmax:
        return FAILED
    gtheta = np.zeros(p)
    dlog = np.empty(n_kinetic)
    first_error = n_kinetic + n_assays - 1
    total = 0.0
    for i in range(t.shape[0]):
        a = assay[i]
        scale = 1.0 if a == 0 else theta[n_kinetic + a - 1]
        level = _level(t[i], cmax, tmax, foldx, alpha, fb, beta, tlag, n_kinetic, want_grad,
                       dlog)  # fmt: skip
        f = max(scale * level, _TINY)
        if error == 0:
            sigma = theta[first_error + a]
            z = (math.log(target[i]) - math.log(f)) / sigma
            if censored[i]:
                log_cdf = _log_ndtr(z)
                total += -2.0 * log_cdf
                mills = math.exp(-0.5 * z * z - 0.5 * _LOG_2PI - log_cdf)
                weight = 2.0 * mills / sigma
                d_error0 = 2.0 * mills * z / sigma
            else:
                total += z * z + 2.0 * math.log(sigma) + _LOG_2PI + 2.0 * math.log(target[i])
                weight = -2.0 * z / sigma
                d_error0 = (2.0 - 2.0 * z * z) / sigma
            d_error1 = 0.0
        else:
            additive = theta[first_error + 2 * a]
            proportional = theta[first_error + 2 * a + 1]
            s = math.sqrt(additive * additive + (proportional * f) ** 2)
            z = (target[i] - f) / s
            ds_df = proportional * proportional * f / s
            ds_da = additive / s
            ds_db = proportional * f * f / s
            dz_df = -(1.0 + z * ds_df) / s
            dz_da = -z * ds_da / s
            dz_db = -z * ds_db / s
            if censored[i]:
                log_cdf = _log_ndtr(z)
                total += -2.0 * log_cdf
                mills = math.exp(-0.5 * z * z - 0.5 * _LOG_2PI - log_cdf)
                weight = -2.0 * mills * dz_df * f
                d_error0 = -2.0 * mills * dz_da
                d_error1 = -2.0 * mills * dz_db
            else:
                total += z * z + 2.0 * math.log(s) + _LOG_2PI
                weight = (2.0 * z * dz_df + 2.0 * ds_df / s) * f
                d_error0 = 2.0 * z * dz_da + 2.0 * ds_da / s
                d_error1 = 2.0 * z * dz_db + 2.0 * ds_db / s
        if want_z:
            z_out[i] = z
        if not math.isfinite(z):
            return FAILED
        if want_grad:
            for j in range(n_kinetic):
                gtheta[j] += weight * dlog[j]
            if a > 0:
                gtheta[n_kinetic + a - 1] += weight / scale
            if error == 0:
                gtheta[first_error + a] += d_error0
            else:
                gtheta[first_error + 2 * a] += d_error0
                gtheta[first_error + 2 * a + 1] += d_error1
    if not math.isfinite(total):
        return FAILED
    if want_grad:
        for j in range(p):
            grad[j] = gtheta[j] * natural[1, j]
            if not math.isfinite(grad[j]):
                return FAILED
    return total


@numba.njit(cache=True, error_model="numpy")
def _information_residuals(  # pragma: no cover - compiled
    x, codes, t, target, censored, assay, n_kinetic, n_assays, error, out
):
    """``z`` (quantified) or ``√(−2 ln Φ(z))`` (censored) into ``out``; False on failure."""
    empty = np.empty(0)
    value = _evaluate(x, codes, t, target, censored, assay, n_kinetic, n_assays, error, empty, out)
    if value >= FAILED:
        return False
    for i in range(t.shape[0]):
        if censored[i]:
            out[i] = math.sqrt(max(-2.0 * _log_ndtr(out[i]), 0.0))
    return True


@numba.njit(cache=True, error_model="numpy")
def _jacobian(  # pragma: no cover - compiled
    x, columns, codes, t, target, censored, assay, n_kinetic, n_assays, error
):
    """Central-difference Jacobian of the information residuals (step 1e-5·max(1, |x_j|)),
    as :func:`cellkin.fit.problem.central_differences`; NaN where the model fails."""
    n = t.shape[0]
    out = np.empty((n, columns.shape[0]))
    up, down = np.empty(n), np.empty(n)
    point = x.copy()
    for c in range(columns.shape[0]):
        j = columns[c]
        step = 1e-5 * max(1.0, abs(x[j]))
        point[j] = x[j] + step
        ok_up = _information_residuals(point, codes, t, target, censored, assay, n_kinetic,
                                       n_assays, error, up)  # fmt: skip
        point[j] = x[j] - step
        ok_down = _information_residuals(point, codes, t, target, censored, assay, n_kinetic,
                                         n_assays, error, down)  # fmt: skip
        point[j] = x[j]
        for i in range(n):
            out[i, c] = (up[i] - down[i]) / (2.0 * step) if ok_up and ok_down else np.nan
    return out


@numba.njit(cache=True, error_model="numpy")
def _stationarity_gradient(  # pragma: no cover - compiled
    x, columns, codes, t, target, censored, assay, n_kinetic, n_assays, error
):
    """Central differences of −2 ln L w.r.t. ``x[columns]`` (same steps as :func:`_jacobian`),
    with 0 for a coordinate along which ``x`` is a local minimum (neither neighbour lower):
    the one-sided derivatives then bracket 0, as at the Stein kink when Tmax sits on a sample
    time, where the central difference is not 0 although no step along it descends."""
    out = np.empty(columns.shape[0])
    empty = np.empty(0)
    centre = _evaluate(x, codes, t, target, censored, assay, n_kinetic, n_assays, error, empty,
                       empty)  # fmt: skip
    point = x.copy()
    for c in range(columns.shape[0]):
        j = columns[c]
        step = 1e-5 * max(1.0, abs(x[j]))
        point[j] = x[j] + step
        up = _evaluate(point, codes, t, target, censored, assay, n_kinetic, n_assays, error,
                       empty, empty)  # fmt: skip
        point[j] = x[j] - step
        down = _evaluate(point, codes, t, target, censored, assay, n_kinetic, n_assays, error,
                         empty, empty)  # fmt: skip
        point[j] = x[j]
        out[c] = 0.0 if up >= centre and down >= centre else (up - down) / (2.0 * step)
    return out


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
def _minimise(  # pragma: no cover - compiled
    x0, free, lower, upper, codes, t, target, censored, assay, n_kinetic, n_assays, error,
    max_evaluations, gtol,
):  # fmt: skip
    """Projected BFGS with an active set and Armijo backtracking (see the module docstring).

    Returns ``(x, value, evaluations, exit code)``.
    """
    p = x0.shape[0]
    empty = np.empty(0)
    x = np.empty(p)
    _project(x0, lower, upper, free, x0, x)
    g = np.empty(p)
    value = _evaluate(x, codes, t, target, censored, assay, n_kinetic, n_assays, error, g, empty)
    evaluations = 1
    if value >= FAILED:
        return x, value, evaluations, START_FAILED
    h = np.eye(p)
    scaled = False
    trial, g_trial = np.empty(p), np.empty(p)
    direction, s, y, hy = np.empty(p), np.empty(p), np.empty(p), np.empty(p)
    inactive = np.empty(p, dtype=np.bool_)
    while True:
        largest = 0.0
        for j in range(p):
            at_lower = x[j] <= lower[j] and g[j] > 0.0
            at_upper = x[j] >= upper[j] and g[j] < 0.0
            inactive[j] = free[j] and not (at_lower or at_upper)
            if inactive[j]:
                largest = max(largest, abs(g[j]))
        if largest <= gtol:
            return x, value, evaluations, GRADIENT_CONVERGED
        if evaluations >= max_evaluations:
            return x, value, evaluations, EVALUATION_LIMIT
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
            value_trial = _evaluate(trial, codes, t, target, censored, assay, n_kinetic,
                                    n_assays, error, g_trial, empty)  # fmt: skip
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
        if not accepted:
            return x, value, evaluations, NO_FURTHER_DECREASE
        sy = yy = ss = 0.0
        for i in range(p):
            s[i] = trial[i] - x[i]
            y[i] = g_trial[i] - g[i]
            sy += s[i] * y[i]
            yy += y[i] * y[i]
            ss += s[i] * s[i]
            x[i], g[i] = trial[i], g_trial[i]
        value = value_trial
        if sy > 1e-10 * math.sqrt(ss * yy):
            if not scaled:  # Nocedal & Wright (6.20): H0 = (sᵀy / yᵀy) I before the first update
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


@dataclass(frozen=True)
class SteinObjective:
    """One subject's Stein-family objective as compiled-kernel arguments.

    Built by :meth:`from_problem`; every method takes a point on the estimation scale
    (``search``) laid out as :class:`~cellkin.fit.problem.ParameterLayout`.
    """

    codes: np.ndarray
    time: np.ndarray
    target: np.ndarray
    censored: np.ndarray
    assay: np.ndarray
    n_kinetic: int
    n_assays: int
    error: int

    @classmethod
    def from_arrays(
        cls, obs: Observations, scales: tuple[str, ...], n_kinetic: int, error: str
    ) -> SteinObjective:
        """From the observations, the estimation scales and the error model name."""
        target = np.where(obs.censored, obs.lloq, obs.value).astype(np.float64)
        return cls(
            codes=np.array([_SCALE_CODES[s] for s in scales], dtype=np.int64),
            time=np.ascontiguousarray(obs.time, dtype=np.float64),
            target=np.ascontiguousarray(target),
            censored=np.ascontiguousarray(obs.censored, dtype=np.bool_),
            assay=np.ascontiguousarray(obs.assay, dtype=np.int64),
            n_kinetic=int(n_kinetic),
            n_assays=len(obs.assays),
            error=_LOG_ADDITIVE if error == "log-additive" else _COMBINED,
        )

    @classmethod
    def from_problem(cls, problem) -> SteinObjective:
        """From a :class:`~cellkin.fit.problem.SubjectProblem` of a Stein-family model."""
        return cls.from_arrays(problem.obs, problem.layout.scales, problem.n_kinetic,
                               problem.error)  # fmt: skip

    def _args(self) -> tuple:
        return (self.codes, self.time, self.target, self.censored, self.assay, self.n_kinetic,
                self.n_assays, self.error)  # fmt: skip

    def minus2ll(self, search: np.ndarray) -> float:
        """−2 ln L with all constants (:data:`FAILED` where the model fails)."""
        empty = np.empty(0)
        x = np.ascontiguousarray(search, dtype=np.float64)
        return float(_evaluate(x, *self._args(), empty, empty))

    def value_and_gradient(self, search: np.ndarray) -> tuple[float, np.ndarray]:
        """−2 ln L and its gradient with respect to ``search`` (estimation scale)."""
        x = np.ascontiguousarray(search, dtype=np.float64)
        grad = np.empty(x.size)
        value = float(_evaluate(x, *self._args(), grad, np.empty(0)))
        if value >= FAILED:
            grad[:] = np.nan
        return value, grad

    def information_jacobian(self, search: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """Central-difference Jacobian of the information residuals w.r.t. ``search[columns]``."""
        x = np.ascontiguousarray(search, dtype=np.float64)
        return _jacobian(x, np.asarray(columns, dtype=np.int64), *self._args())

    def stationarity_gradient(self, search: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """Central differences of −2 ln L w.r.t. ``search[columns]``, 0 along coordinates of
        which ``search`` is a local minimum (:func:`_stationarity_gradient`)."""
        x = np.ascontiguousarray(search, dtype=np.float64)
        return _stationarity_gradient(x, np.asarray(columns, dtype=np.int64), *self._args())

    def standardized(self, search: np.ndarray) -> np.ndarray:
        """Standardised residual (or M3 argument) of every sample."""
        x = np.ascontiguousarray(search, dtype=np.float64)
        z = np.full(self.time.size, np.nan)
        _evaluate(x, *self._args(), np.empty(0), z)
        return z


def minimise(
    objective: SteinObjective,
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
    objective : SteinObjective
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
        *objective._args(),
        int(max_evaluations),
        float(gtol),
    )
    return x, float(value), int(evaluations), int(code)
