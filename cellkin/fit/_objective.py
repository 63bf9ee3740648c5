r"""One subject's −2 ln L, its gradient and its information Jacobian, compiled, for any model with
a closed-form level function (private).

A model that declares a ``level_kernel`` (capability 7 of
:class:`~cellkin.models.base.Model`) has its level, and often ``∂ ln C/∂θ``, in closed form,
so one subject's whole objective — the model through its level function's native address
(:mod:`cellkin.models.capabilities`), the likelihood of :mod:`cellkin.fit.likelihood`, the
chain rule to the estimation scale — runs compiled on plain float arrays, without
``lmfit.Parameters`` (timings in ``benchmarks/README.md``). These functions are compiled once
for every such model.

Where the model gives no analytic ``∂ ln C/∂θ`` (``level_gradient = False``), it is taken by
central differences of ``ln C`` (relative step 10⁻⁶, one-sided where a neighbour is refused
by the model) inside the compiled code, so the screening optimiser and the lmfit polish still
get a gradient.

The gradient of −2 ln L is ``Σ_i w_i ∂ln f_i/∂θ`` with ``w_i = ∂(−2 ln L)/∂ ln f_i``
(:func:`~cellkin.fit.likelihood.subject_minus2ll`), multiplied by ``dθ/dφ`` of each
parameter's estimation scale. The covariance Jacobian (:func:`_jacobian`) and the stationarity
check are compiled central differences with the steps of
:func:`cellkin.fit._problem.central_differences`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numba
import numpy as np

from cellkin.fit.likelihood import FAILED, information_residuals, subject_minus2ll
from cellkin.models.capabilities import call_levels, level_address

if TYPE_CHECKING:
    from cellkin.fit._problem import SubjectProblem
    from cellkin.models.base import Model

__all__ = ["SCALE_CODES", "CompiledObjective"]

SCALE_CODES = {"linear": 0, "log": 1, "logit": 2}
_RELATIVE_STEP = 1e-6


@numba.njit(cache=True, error_model="numpy")
def _to_model(x, codes, out):  # pragma: no cover - compiled
    """Estimation → natural scale into ``out[0]``, and dθ/dφ into ``out[1]``."""
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
def _numeric_dlog(address, t, kinetic, level, dlog):  # pragma: no cover - compiled
    """``∂ ln C/∂θ`` by central differences of ``ln C`` (one-sided where the model refuses a
    neighbour, 0 where it refuses both or the level is 0)."""
    n, k = t.shape[0], kinetic.shape[0]
    up, down = np.empty(n), np.empty(n)
    empty = np.empty((0, k))
    point = kinetic.copy()
    for j in range(k):
        step = _RELATIVE_STEP * max(abs(kinetic[j]), 1e-8)
        point[j] = kinetic[j] + step
        ok_up, status = call_levels(address, t, point, up, empty)
        ok_up = ok_up and status == 0
        point[j] = kinetic[j] - step
        ok_down, status = call_levels(address, t, point, down, empty)
        ok_down = ok_down and status == 0
        point[j] = kinetic[j]
        for i in range(n):
            value = 0.0
            if level[i] > 0.0:
                if ok_up and ok_down and up[i] > 0.0 and down[i] > 0.0:
                    value = (math.log(up[i]) - math.log(down[i])) / (2.0 * step)
                elif ok_up and up[i] > 0.0:
                    value = (math.log(up[i]) - math.log(level[i])) / step
                elif ok_down and down[i] > 0.0:
                    value = (math.log(level[i]) - math.log(down[i])) / step
            dlog[i, j] = value if math.isfinite(value) else 0.0


@numba.njit(cache=True, error_model="numpy")
def _evaluate(  # pragma: no cover - compiled
    x, codes, address, analytic, t, target, censored, assay, n_kinetic, error_kind, error_start,
    prior_index, prior_mean, prior_precision, grad, z_out,
):  # fmt: skip
    """−2 ln L at search point ``x`` (plus the prior's ``(x_I − m)ᵀP(x_I − m)`` when one is
    given); fills ``grad`` (search scale) when it has ``x``'s size and ``z_out``
    (standardised residuals, without the prior) when it has one entry per sample."""
    p, n = x.shape[0], t.shape[0]
    want_grad = grad.shape[0] == p
    natural = np.empty((2, p))
    _to_model(x, codes, natural)
    theta = natural[0]
    kinetic = np.empty(n_kinetic)
    for j in range(n_kinetic):
        kinetic[j] = theta[j]
    level = np.empty(n)
    dlog = np.empty((n if want_grad else 0, n_kinetic))
    no_gradient = np.empty((0, n_kinetic))
    ok, status = call_levels(address, t, kinetic, level, dlog if analytic else no_gradient)
    if not ok or status != 0:
        return FAILED
    if want_grad and not analytic:
        _numeric_dlog(address, t, kinetic, level, dlog)
    gtheta = np.empty(p if want_grad else 0)
    total = subject_minus2ll(theta, level, dlog, target, censored, assay, n_kinetic, error_kind,
                             error_start, gtheta, z_out)  # fmt: skip
    if total >= FAILED:
        return FAILED
    if want_grad:
        for j in range(p):
            grad[j] = gtheta[j] * natural[1, j]
            if not math.isfinite(grad[j]):
                return FAILED
    return total + _prior_penalty(x, prior_index, prior_mean, prior_precision, grad, want_grad)


@numba.njit(cache=True, error_model="numpy")
def _prior_penalty(x, index, mean, precision, grad, want_grad):  # pragma: no cover - compiled
    """``dᵀPd`` with ``d = x[index] − mean`` (−2 ln of a normal prior on the estimation scale,
    up to a constant), adding ``2Pd`` to ``grad[index]`` when ``want_grad``."""
    m = index.shape[0]
    total = 0.0
    for a in range(m):
        pd_a = 0.0
        for b in range(m):
            pd_a += precision[a, b] * (x[index[b]] - mean[b])
        total += (x[index[a]] - mean[a]) * pd_a
        if want_grad:
            grad[index[a]] += 2.0 * pd_a
    return total


@numba.njit(cache=True, error_model="numpy")
def _information_at(  # pragma: no cover - compiled
    x, codes, address, analytic, t, target, censored, assay, n_kinetic, error_kind, error_start,
    prior_index, prior_mean, prior_precision, out,
):  # fmt: skip
    """Information residuals (:func:`~cellkin.fit.likelihood.information_residuals`) at ``x``
    into ``out``; False where the model fails."""
    z = np.empty(t.shape[0])
    value = _evaluate(x, codes, address, analytic, t, target, censored, assay, n_kinetic,
                      error_kind, error_start, prior_index, prior_mean, prior_precision,
                      np.empty(0), z)  # fmt: skip
    if value >= FAILED:
        return False
    information_residuals(z, censored, out)
    return True


@numba.njit(cache=True, error_model="numpy")
def _jacobian(  # pragma: no cover - compiled
    x, columns, codes, address, analytic, t, target, censored, assay, n_kinetic, error_kind,
    error_start, prior_index, prior_mean, prior_precision,
):  # fmt: skip
    """Central-difference Jacobian of the information residuals (step 1e-5·max(1, |x_j|)),
    as :func:`cellkin.fit._problem.central_differences`; NaN where the model fails."""
    n = t.shape[0]
    out = np.empty((n, columns.shape[0]))
    up, down = np.empty(n), np.empty(n)
    point = x.copy()
    for c in range(columns.shape[0]):
        j = columns[c]
        step = 1e-5 * max(1.0, abs(x[j]))
        point[j] = x[j] + step
        ok_up = _information_at(point, codes, address, analytic, t, target, censored, assay,
                                n_kinetic, error_kind, error_start, prior_index, prior_mean,
                                prior_precision, up)  # fmt: skip
        point[j] = x[j] - step
        ok_down = _information_at(point, codes, address, analytic, t, target, censored, assay,
                                  n_kinetic, error_kind, error_start, prior_index, prior_mean,
                                  prior_precision, down)  # fmt: skip
        point[j] = x[j]
        for i in range(n):
            out[i, c] = (up[i] - down[i]) / (2.0 * step) if ok_up and ok_down else np.nan
    return out


@numba.njit(cache=True, error_model="numpy")
def _stationarity_gradient(  # pragma: no cover - compiled
    x, columns, codes, address, analytic, t, target, censored, assay, n_kinetic, error_kind,
    error_start, prior_index, prior_mean, prior_precision,
):  # fmt: skip
    """Central differences of −2 ln L w.r.t. ``x[columns]`` (same steps as :func:`_jacobian`),
    with 0 for a coordinate along which ``x`` is a local minimum (neither neighbour lower):
    the one-sided derivatives then bracket 0, as at a kink of the curve (Stein's Tmax on a
    sample time), where the central difference is not 0 although no step along it descends."""
    out = np.empty(columns.shape[0])
    empty = np.empty(0)
    centre = _evaluate(x, codes, address, analytic, t, target, censored, assay, n_kinetic,
                       error_kind, error_start, prior_index, prior_mean, prior_precision,
                       empty, empty)  # fmt: skip
    point = x.copy()
    for c in range(columns.shape[0]):
        j = columns[c]
        step = 1e-5 * max(1.0, abs(x[j]))
        point[j] = x[j] + step
        up = _evaluate(point, codes, address, analytic, t, target, censored, assay, n_kinetic,
                       error_kind, error_start, prior_index, prior_mean, prior_precision,
                       empty, empty)  # fmt: skip
        point[j] = x[j] - step
        down = _evaluate(point, codes, address, analytic, t, target, censored, assay, n_kinetic,
                         error_kind, error_start, prior_index, prior_mean, prior_precision,
                         empty, empty)  # fmt: skip
        point[j] = x[j]
        out[c] = 0.0 if up >= centre and down >= centre else (up - down) / (2.0 * step)
    return out


@dataclass(frozen=True)
class CompiledObjective:
    """One subject's objective as compiled-kernel arguments (models with a level function).

    Built by :meth:`from_problem`; every method takes a point on the estimation scale
    (``search``) laid out as :class:`~cellkin.fit._problem.ParameterLayout`.
    """

    codes: np.ndarray
    address: int
    analytic: bool
    time: np.ndarray
    target: np.ndarray
    censored: np.ndarray
    assay: np.ndarray
    n_kinetic: int
    error_kind: np.ndarray
    error_start: np.ndarray
    prior_index: np.ndarray
    prior_mean: np.ndarray
    prior_precision: np.ndarray

    @staticmethod
    def available(model: Model) -> bool:
        """Whether ``model`` has the closed-form level function this objective needs."""
        return model.level_kernel is not None

    @classmethod
    def from_problem(cls, problem: SubjectProblem) -> CompiledObjective:
        """From a :class:`~cellkin.fit._problem.SubjectProblem` of a model with a level
        function."""
        model, obs = problem.model, problem.obs
        return cls(
            codes=np.array([SCALE_CODES[s] for s in problem.layout.scales], dtype=np.int64),
            address=level_address(model.level_kernel),
            analytic=bool(model.level_gradient),
            time=np.ascontiguousarray(obs.time, dtype=np.float64),
            target=obs.target,
            censored=np.ascontiguousarray(obs.censored, dtype=np.bool_),
            assay=np.ascontiguousarray(obs.assay, dtype=np.int64),
            n_kinetic=len(model.params),
            error_kind=problem.error_kind,
            error_start=problem.error_start,
            prior_index=problem.prior_index,
            prior_mean=problem.prior_mean,
            prior_precision=problem.prior_precision,
        )

    def args(self) -> tuple:
        """The compiled functions' arguments after the search point."""
        return (self.codes, self.address, self.analytic, self.time, self.target, self.censored,
                self.assay, self.n_kinetic, self.error_kind, self.error_start, self.prior_index,
                self.prior_mean, self.prior_precision)  # fmt: skip

    def minus2ll(self, search: np.ndarray) -> float:
        """−2 ln L with all constants (:data:`~cellkin.fit.likelihood.FAILED` where the
        model fails)."""
        empty = np.empty(0)
        x = np.ascontiguousarray(search, dtype=np.float64)
        return float(_evaluate(x, *self.args(), empty, empty))

    def value_and_gradient(self, search: np.ndarray) -> tuple[float, np.ndarray]:
        """−2 ln L and its gradient with respect to ``search`` (estimation scale)."""
        x = np.ascontiguousarray(search, dtype=np.float64)
        grad = np.zeros(x.size)
        value = float(_evaluate(x, *self.args(), grad, np.empty(0)))
        if value >= FAILED:
            grad[:] = np.nan
        return value, grad

    def information_jacobian(self, search: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """Central-difference Jacobian of the information residuals w.r.t. ``search[columns]``."""
        x = np.ascontiguousarray(search, dtype=np.float64)
        return _jacobian(x, np.asarray(columns, dtype=np.int64), *self.args())

    def stationarity_gradient(self, search: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """Central differences of −2 ln L w.r.t. ``search[columns]``, 0 along coordinates of
        which ``search`` is a local minimum (:func:`_stationarity_gradient`)."""
        x = np.ascontiguousarray(search, dtype=np.float64)
        return _stationarity_gradient(x, np.asarray(columns, dtype=np.int64), *self.args())

    def standardized(self, search: np.ndarray) -> np.ndarray:
        """Standardised residual (or M3 argument) of every sample."""
        x = np.ascontiguousarray(search, dtype=np.float64)
        z = np.full(self.time.size, np.nan)
        _evaluate(x, *self.args(), np.empty(0), z)
        return z
