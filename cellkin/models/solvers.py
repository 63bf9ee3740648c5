"""Numba-compiled ODE integrators for cellkin's mechanistic models.

Why cellkin carries its own integrators
---------------------------------------
Population simulation and per-patient fitting call an ODE solver millions of times, so the
solver must be callable from numba-compiled code and must run a whole population in one
compiled, parallel call. The numba-callable solvers on PyPI do not serve: ``numbalsoda`` ships
only a source build that needs CMake and gfortran (it fails to install here), and
``numbakit-ode`` compiles for seconds per solver instance and is unmaintained. The methods below
are textbook and small enough to own and test: Dormand–Prince 5(4) for non-stiff models and the
Rosenbrock method Rodas4 for stiff ones.

The kernel contract
-------------------
Every model function is a numba ``njit`` function with one of these fixed signatures
(``float64[::1]`` is a contiguous float64 vector; parameters travel as such a vector in the
model's declared order):

* ``rhs(t, y, p, phase, dydt) -> None`` — write dy/dt into ``dydt``;
* ``jac(t, y, p, phase, jac) -> None`` — write ∂f/∂y into the ``(n, n)`` matrix ``jac``
  (optional; finite differences are used otherwise);
* ``initial_state(p, y0) -> int`` — write the state at t0 into ``y0``; return 0, or a
  model-specific status code (>= 10) when the parameters admit no valid initial state;
* ``observe(y, p) -> float`` — map one state vector to the observed level;
* ``breakpoints(p, out) -> int`` — write the times of discontinuities into ``out`` and return
  how many there are.

**Phases.** Integration is piecewise: the solver stops exactly at each breakpoint, restarts
there with a fresh step size, and passes the *phase index* to ``rhs`` and ``jac``: phase ``k``
is the interval between the k-th and (k+1)-th breakpoint (phase 0 before the first). The
right-hand side selects its regime by this index, never by comparing ``t`` with the breakpoint,
so no stage of a step near Tmax evaluates the wrong regime. States are continuous across
breakpoints. Breakpoints at or before ``t0`` advance the starting phase.

The functions are passed to the solver core as *first-class function values* (numba
``FunctionType``), so the solver, the batch kernel and the single-trajectory kernel are compiled
once for every model (and cached on disk with ``cache=True``); a new model only compiles its own
small functions. Compiled code never raises: it returns a status code per trajectory
(:data:`STATUS_MESSAGES`), and a failing subject leaves its rows NaN without touching the others.

Orientation: trajectories are ``(n_times, n_states)``; populations ``(n_subjects, n_times)``.
The Python front end (:class:`~cellkin.models.ode.SolverOptions`,
:func:`~cellkin.models.ode.solve` and :class:`~cellkin.models.ode.ODEModel`) lives in
:mod:`cellkin.models.ode`.

References
----------
.. [1] Dormand JR, Prince PJ. A family of embedded Runge-Kutta formulae. J Comput Appl Math
       1980;6(1):19-26. doi:10.1016/0771-050X(80)90013-3
.. [2] Hairer E, Nørsett SP, Wanner G. Solving Ordinary Differential Equations I, 2nd ed.
       Springer 1993 (DOPRI5: step-size control with Lund stabilisation, dense output, initial
       step). doi:10.1007/978-3-540-78862-1
.. [3] Hairer E, Wanner G. Solving Ordinary Differential Equations II, 2nd ed. Springer 1996,
       §IV.7 (RODAS: Rodas4 coefficients and dense output). doi:10.1007/978-3-642-05221-7
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from numba import types

try:  # resolves a dispatcher's compiled address once (see _FunctionHandle)
    from numba.experimental.function_type import _get_wrapper_address
except ImportError:  # pragma: no cover - other numba versions
    _get_wrapper_address = None

__all__ = [
    "METHODS",
    "STATUS_MESSAGES",
    "function_handle",
    "population_kernel",
]

# ---------------------------------------------------------------------------- status codes
STATUS_SUCCESS = 0
STATUS_MAX_STEPS = 1
STATUS_STEP_TOO_SMALL = 2
STATUS_NONFINITE = 3
STATUS_SINGULAR = 4
STATUS_BAD_INITIAL = 5
STATUS_BAD_BREAKPOINTS = 6

STATUS_MESSAGES: dict[int, str] = {
    STATUS_SUCCESS: "success",
    STATUS_MAX_STEPS: "the solver took `max_steps` steps without reaching the last time",
    STATUS_STEP_TOO_SMALL: "the step size fell below the resolution of the time axis",
    STATUS_NONFINITE: "the right-hand side returned NaN or infinity",
    STATUS_SINGULAR: "the Rosenbrock matrix I/(h·γ) − J stayed singular",
    STATUS_BAD_INITIAL: "the initial state is not finite",
    STATUS_BAD_BREAKPOINTS: "a breakpoint is not finite or more were given than declared",
}
"""Meaning of the status codes returned per trajectory (codes >= 10 are model-specific)."""

METHODS: dict[str, bool] = {"dopri5": False, "rodas4": True}
"""Available methods; the value says whether the method is meant for stiff problems."""

_EPS = np.finfo(np.float64).eps
_SQRT_EPS = math.sqrt(_EPS)

# ---------------------------------------------------------------------------- tableaus
# Work array rows (``w``, shape (_WORK_ROWS, n)), turned into 1-D views once per segment (array
# views in the step loop would cost an atomic reference-count pair each).
_WORK_ROWS = 13

# Dormand & Prince 5(4) [1].
_C2, _C3, _C4, _C5 = 1 / 5, 3 / 10, 4 / 5, 8 / 9
_A21 = 1 / 5
_A31, _A32 = 3 / 40, 9 / 40
_A41, _A42, _A43 = 44 / 45, -56 / 15, 32 / 9
_A51, _A52, _A53, _A54 = 19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729
_A61, _A62, _A63, _A64, _A65 = 9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656
_A71, _A73, _A74, _A75, _A76 = 35 / 384, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84
_E1, _E3, _E4, _E5, _E6, _E7 = 71 / 57600, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -0.025
# Continuous extension of order 4 (Hairer's dopri5.f, CONTD5) [2].
_D1, _D3, _D4 = -12715105075 / 11282082432, 87487479700 / 32700410799, -10690763975 / 1880347072
_D5, _D6, _D7 = 701980252875 / 199316789632, -1453857185 / 822651844, 69997945 / 29380423
_DP_BETA = 0.04  # Lund stabilisation (PI control), Hairer's default for DOPRI5
_DP_EXPO1 = 0.2 - _DP_BETA * 0.75
_SAFE, _FAC_MIN, _FAC_MAX = 0.9, 0.2, 10.0

# Rodas4 [3] in the W-transformed form (the k_i include the step h): stage s solves
# (I/(hγ) − J) k_s = f(t + c_s h, y + Σ a_sm k_m) + Σ (C_sm / h) k_m + h d_s ∂f/∂t,
# y_new = y + a51 k1 + a52 k2 + a53 k3 + a54 k4 + k5 + k6 (stiffly accurate); error ≈ k6.
_RG = 0.25
_RC2, _RC3, _RC4 = 0.386, 0.21, 0.63
_RD1, _RD2, _RD3, _RD4 = 0.25, -0.1043, 0.1035, -0.0362
_RA21 = 1.544
_RA31, _RA32 = 0.9466785280815826, 0.2557011698983284
_RA41, _RA42, _RA43 = 3.314825187068521, 2.896124015972201, 0.9986419139977817
_RA51, _RA52, _RA53, _RA54 = (
    1.221224509226641,
    6.019134481288629,
    12.53708332932087,
    -0.687886036105895,
)
_RC21 = -5.6688
_RC31, _RC32 = -2.430093356833875, -0.2063599157091915
_RC41, _RC42, _RC43 = -0.1073529058151375, -9.594562251023355, -20.47028614809616
_RC51, _RC52, _RC53, _RC54 = (
    7.496443313967647,
    -10.24680431464352,
    -33.99990352819905,
    11.7089089320616,
)
_RC61, _RC62, _RC63 = 8.083246795921522, -7.981132988064893, -31.52159432874371
_RC64, _RC65 = 16.31930543123136, -6.058818238834054
# Dense output of order 3: y(θ) = (1−θ) y0 + θ (y1 + (1−θ)(Σ h2m k_m + θ Σ h3m k_m)).
_RH21, _RH22, _RH23 = 10.12623508344586, -7.487995877610167, -34.80091861555747
_RH24, _RH25 = -7.992771707568823, 1.025137723295662
_RH31, _RH32, _RH33 = -0.6762803392801253, 6.087714651680015, 16.43084320892478
_RH34, _RH35 = 24.76722511418386, -6.594389125716872
_RO_FAC_MAX = 6.0


# ---------------------------------------------------------------------------- helpers
@numba.njit(cache=True)
def _all_finite(x):  # pragma: no cover - compiled
    for i in range(x.shape[0]):
        if not math.isfinite(x[i]):
            return False
    return True


@numba.njit(cache=True)
def _initial_step(rhs, t, t_end, y, p, phase, f0, rtol, atol, order, y1, f1):  # pragma: no cover
    """Starting step size (Hairer et al. I, §II.4; as scipy's ``select_initial_step``)."""
    n = y.shape[0]
    d0, d1 = 0.0, 0.0
    for i in range(n):
        scale = atol[i] + rtol * abs(y[i])
        d0 += (y[i] / scale) ** 2
        d1 += (f0[i] / scale) ** 2
    d0, d1 = math.sqrt(d0 / n), math.sqrt(d1 / n)
    h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
    h0 = min(h0, t_end - t)
    for i in range(n):
        y1[i] = y[i] + h0 * f0[i]
    rhs(t + h0, y1, p, phase, f1)
    d2 = 0.0
    for i in range(n):
        d2 += ((f1[i] - f0[i]) / (atol[i] + rtol * abs(y[i]))) ** 2
    d2 = math.sqrt(d2 / n) / h0
    if not math.isfinite(d2):
        return h0 * 1e-3
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1.0 / (order + 1))
    return min(100.0 * h0, h1, t_end - t)


@numba.njit(cache=True)
def _lu_factor(a, piv):  # pragma: no cover - compiled
    """In-place LU with partial pivoting; returns False when a pivot is zero or not finite."""
    n = a.shape[0]
    for k in range(n):
        best, row = abs(a[k, k]), k
        for i in range(k + 1, n):
            if abs(a[i, k]) > best:
                best, row = abs(a[i, k]), i
        if not (best > 0.0 and math.isfinite(best)):
            return False
        piv[k] = row
        if row != k:
            for j in range(n):
                a[k, j], a[row, j] = a[row, j], a[k, j]
        for i in range(k + 1, n):
            a[i, k] /= a[k, k]
            for j in range(k + 1, n):
                a[i, j] -= a[i, k] * a[k, j]
    return True


@numba.njit(cache=True)
def _lu_solve(a, piv, b):  # pragma: no cover - compiled
    """Solve ``A x = b`` in place, ``a``/``piv`` from :func:`_lu_factor`."""
    n = a.shape[0]
    for k in range(n):
        row = piv[k]
        if row != k:
            b[k], b[row] = b[row], b[k]
    for i in range(n):
        for j in range(i):
            b[i] -= a[i, j] * b[j]
    for i in range(n - 1, -1, -1):
        for j in range(i + 1, n):
            b[i] -= a[i, j] * b[j]
        b[i] /= a[i, i]


@numba.njit(cache=True)
def _too_small(h, t, t_end):  # pragma: no cover - compiled
    """Whether the step ``h`` is below the resolution of the time axis."""
    return h < 10.0 * _EPS * max(abs(t), abs(t_end), 1.0)


# ---------------------------------------------------------------------------- DOPRI5
@numba.njit(cache=True)
def _dopri5_dense(t, t_new, h, y, yn, k1, k3, k4, k5, k6, k7, t_out, j, states):  # pragma: no cover
    """Write the continuous extension at every output time in (t, t_new]; return next j."""
    while j < t_out.shape[0] and t_out[j] <= t_new:
        if t_out[j] == t_new:
            states[j, :] = yn
        else:
            th = (t_out[j] - t) / h
            th1 = 1.0 - th
            for i in range(y.shape[0]):
                ydiff = yn[i] - y[i]
                bspl = h * k1[i] - ydiff
                r4 = ydiff - h * k7[i] - bspl
                r5 = h * (
                    _D1 * k1[i]
                    + _D3 * k3[i]
                    + _D4 * k4[i]
                    + _D5 * k5[i]
                    + _D6 * k6[i]
                    + _D7 * k7[i]
                )
                states[j, i] = y[i] + th * (ydiff + th1 * (bspl + th * (r4 + th1 * r5)))
        j += 1
    return j


@numba.njit(cache=True)
def _dopri5(
    rhs, t, t_end, y, p, phase, t_out, j, states, rtol, atol, h, steps, max_steps, w
):  # pragma: no cover - compiled
    """Integrate (t, t_end] with Dormand–Prince 5(4); returns (status, j, h, steps).

    Hairer's PI step-size control with Lund stabilisation; no growth right after a rejection;
    a non-finite stage shrinks the step fourfold.
    """
    n = y.shape[0]
    k1, k2, k3, k4, k5, k6, k7, yt, yn = w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8]
    rhs(t, y, p, phase, k1)
    if not _all_finite(k1):
        return STATUS_NONFINITE, j, h, steps
    if h <= 0.0:
        h = _initial_step(rhs, t, t_end, y, p, phase, k1, rtol, atol, 5, yt, k2)
    facold, rejected, nonfinite = 1e-4, False, False
    while True:
        if steps >= max_steps:
            return STATUS_MAX_STEPS, j, h, steps
        if _too_small(h, t, t_end):
            return (STATUS_NONFINITE if nonfinite else STATUS_STEP_TOO_SMALL), j, h, steps
        last = t + 1.01 * h >= t_end
        if last:
            h = t_end - t
        steps += 1
        for i in range(n):
            yt[i] = y[i] + h * _A21 * k1[i]
        rhs(t + _C2 * h, yt, p, phase, k2)
        for i in range(n):
            yt[i] = y[i] + h * (_A31 * k1[i] + _A32 * k2[i])
        rhs(t + _C3 * h, yt, p, phase, k3)
        for i in range(n):
            yt[i] = y[i] + h * (_A41 * k1[i] + _A42 * k2[i] + _A43 * k3[i])
        rhs(t + _C4 * h, yt, p, phase, k4)
        for i in range(n):
            yt[i] = y[i] + h * (_A51 * k1[i] + _A52 * k2[i] + _A53 * k3[i] + _A54 * k4[i])
        rhs(t + _C5 * h, yt, p, phase, k5)
        for i in range(n):
            yt[i] = y[i] + h * (
                _A61 * k1[i] + _A62 * k2[i] + _A63 * k3[i] + _A64 * k4[i] + _A65 * k5[i]
            )
        rhs(t + h, yt, p, phase, k6)
        for i in range(n):
            yn[i] = y[i] + h * (
                _A71 * k1[i] + _A73 * k3[i] + _A74 * k4[i] + _A75 * k5[i] + _A76 * k6[i]
            )
        rhs(t + h, yn, p, phase, k7)
        err = 0.0
        for i in range(n):
            e = h * (
                _E1 * k1[i] + _E3 * k3[i] + _E4 * k4[i] + _E5 * k5[i] + _E6 * k6[i] + _E7 * k7[i]
            )
            err += (e / (atol[i] + rtol * max(abs(y[i]), abs(yn[i])))) ** 2
        err = math.sqrt(err / n)
        if not math.isfinite(err):
            nonfinite, rejected, h = True, True, 0.25 * h
            continue
        fac11 = err**_DP_EXPO1
        if err > 1.0:
            rejected = True
            h /= min(1.0 / _FAC_MIN, fac11 / _SAFE)
            continue
        t_new = t_end if last else t + h
        if j < t_out.shape[0] and t_out[j] <= t_new:
            j = _dopri5_dense(t, t_new, h, y, yn, k1, k3, k4, k5, k6, k7, t_out, j, states)
        for i in range(n):
            y[i] = yn[i]
            k1[i] = k7[i]  # first same as last
        t = t_new
        fac = max(1.0 / _FAC_MAX, min(1.0 / _FAC_MIN, fac11 / facold**_DP_BETA / _SAFE))
        h = min(h / fac, h) if rejected else h / fac
        facold, rejected, nonfinite = max(err, 1e-4), False, False
        if last:
            return STATUS_SUCCESS, j, h, steps


# ---------------------------------------------------------------------------- Rodas4
@numba.njit(cache=True)
def _jacobian(rhs, jac, has_jac, t, y, p, phase, f0, jmat, dfdt, yt, ft):  # pragma: no cover
    """∂f/∂y (analytic, or forward differences) into ``jmat``, ∂f/∂t into ``dfdt``."""
    n = y.shape[0]
    if has_jac:
        jac(t, y, p, phase, jmat)
    else:
        for c in range(n):
            yt[:] = y
            yt[c] = y[c] + _SQRT_EPS * max(abs(y[c]), 1e-8)
            delta = yt[c] - y[c]
            rhs(t, yt, p, phase, ft)
            for r in range(n):
                jmat[r, c] = (ft[r] - f0[r]) / delta
    dt = _SQRT_EPS * max(abs(t), 1.0)
    rhs(t + dt, y, p, phase, ft)
    for r in range(n):
        dfdt[r] = (ft[r] - f0[r]) / dt


@numba.njit(cache=True)
def _rodas4_dense(t, t_new, h, y, yn, k1, k2, k3, k4, k5, t_out, j, states):  # pragma: no cover
    """Rodas4 dense output (order 3) at every output time in (t, t_new]; return next j."""
    while j < t_out.shape[0] and t_out[j] <= t_new:
        if t_out[j] == t_new:
            states[j, :] = yn
        else:
            th = (t_out[j] - t) / h
            th1 = 1.0 - th
            for i in range(y.shape[0]):
                d2 = _RH21 * k1[i] + _RH22 * k2[i] + _RH23 * k3[i] + _RH24 * k4[i] + _RH25 * k5[i]
                d3 = _RH31 * k1[i] + _RH32 * k2[i] + _RH33 * k3[i] + _RH34 * k4[i] + _RH35 * k5[i]
                states[j, i] = th1 * y[i] + th * (yn[i] + th1 * (d2 + th * d3))
        j += 1
    return j


@numba.njit(cache=True)
def _rodas4_stages(rhs, t, h, y, p, phase, f0, dfdt, lu, piv, w):  # pragma: no cover
    """The six stages of a Rodas4 step into w[0..5]; y_new into w[7] (error estimate: k6)."""
    n = y.shape[0]
    k1, k2, k3, k4, k5, k6, yn, yt, du = w[0], w[1], w[2], w[3], w[4], w[5], w[7], w[8], w[9]
    for i in range(n):
        k1[i] = f0[i] + h * _RD1 * dfdt[i]
    _lu_solve(lu, piv, k1)
    for i in range(n):
        yt[i] = y[i] + _RA21 * k1[i]
    rhs(t + _RC2 * h, yt, p, phase, du)
    for i in range(n):
        k2[i] = du[i] + h * _RD2 * dfdt[i] + _RC21 * k1[i] / h
    _lu_solve(lu, piv, k2)
    for i in range(n):
        yt[i] = y[i] + _RA31 * k1[i] + _RA32 * k2[i]
    rhs(t + _RC3 * h, yt, p, phase, du)
    for i in range(n):
        k3[i] = du[i] + h * _RD3 * dfdt[i] + (_RC31 * k1[i] + _RC32 * k2[i]) / h
    _lu_solve(lu, piv, k3)
    for i in range(n):
        yt[i] = y[i] + _RA41 * k1[i] + _RA42 * k2[i] + _RA43 * k3[i]
    rhs(t + _RC4 * h, yt, p, phase, du)
    for i in range(n):
        k4[i] = du[i] + h * _RD4 * dfdt[i] + (_RC41 * k1[i] + _RC42 * k2[i] + _RC43 * k3[i]) / h
    _lu_solve(lu, piv, k4)
    for i in range(n):
        yt[i] = y[i] + _RA51 * k1[i] + _RA52 * k2[i] + _RA53 * k3[i] + _RA54 * k4[i]
    rhs(t + h, yt, p, phase, du)
    for i in range(n):
        k5[i] = du[i] + (_RC51 * k1[i] + _RC52 * k2[i] + _RC53 * k3[i] + _RC54 * k4[i]) / h
    _lu_solve(lu, piv, k5)
    for i in range(n):
        yt[i] += k5[i]
    rhs(t + h, yt, p, phase, du)
    for i in range(n):
        k6[i] = (
            du[i]
            + (_RC61 * k1[i] + _RC62 * k2[i] + _RC63 * k3[i] + _RC64 * k4[i] + _RC65 * k5[i]) / h
        )
    _lu_solve(lu, piv, k6)
    for i in range(n):
        yn[i] = yt[i] + k6[i]


# fmt: off
@numba.njit(cache=True)
def _rodas4(rhs, jac, has_jac, t, t_end, y, p, phase, t_out, j, states, rtol, atol, h, steps,
            max_steps, w, jmat, lu, piv):  # pragma: no cover - compiled
    """Integrate (t, t_end] with Rodas4; returns (status, j, h, steps).

    Step-size control h·min(6, max(0.2, 0.9·err^(-1/4))); no growth right after a rejection;
    the Jacobian is evaluated once per accepted step and reused after rejections.
    """
    n = y.shape[0]
    k1, k2, k3, k4, k5, k6, yn = w[0], w[1], w[2], w[3], w[4], w[5], w[7]
    yt, ft, f0, dfdt = w[8], w[9], w[10], w[11]
    rhs(t, y, p, phase, f0)
    if not _all_finite(f0):
        return STATUS_NONFINITE, j, h, steps
    if h <= 0.0:
        h = _initial_step(rhs, t, t_end, y, p, phase, f0, rtol, atol, 3, yt, ft)
    _jacobian(rhs, jac, has_jac, t, y, p, phase, f0, jmat, dfdt, yt, ft)
    rejected, nonfinite, singular = False, False, False
    while True:
        if steps >= max_steps:
            return STATUS_MAX_STEPS, j, h, steps
        if _too_small(h, t, t_end):
            code = STATUS_SINGULAR if singular else STATUS_STEP_TOO_SMALL
            return (STATUS_NONFINITE if nonfinite else code), j, h, steps
        last = t + 1.01 * h >= t_end
        if last:
            h = t_end - t
        steps += 1
        for r in range(n):
            for c in range(n):
                lu[r, c] = -jmat[r, c]
            lu[r, r] += 1.0 / (h * _RG)
        if not _lu_factor(lu, piv):
            singular, h = True, 0.5 * h
            continue
        _rodas4_stages(rhs, t, h, y, p, phase, f0, dfdt, lu, piv, w)
        err = 0.0
        for i in range(n):
            err += (k6[i] / (atol[i] + rtol * max(abs(y[i]), abs(yn[i])))) ** 2
        err = math.sqrt(err / n)
        if not math.isfinite(err):
            nonfinite, rejected, h = True, True, 0.25 * h
            continue
        fac = _RO_FAC_MAX if err == 0.0 else min(_RO_FAC_MAX, max(_FAC_MIN, _SAFE / err**0.25))
        if err > 1.0:
            rejected, h = True, h * fac
            continue
        t_new = t_end if last else t + h
        if j < t_out.shape[0] and t_out[j] <= t_new:
            j = _rodas4_dense(t, t_new, h, y, yn, k1, k2, k3, k4, k5, t_out, j, states)
        y[:] = yn
        t = t_new
        h = h * min(fac, 1.0) if rejected else h * fac
        rejected, nonfinite, singular = False, False, False
        if last:
            return STATUS_SUCCESS, j, h, steps
        rhs(t, y, p, phase, f0)
        _jacobian(rhs, jac, has_jac, t, y, p, phase, f0, jmat, dfdt, yt, ft)
# fmt: on


# ---------------------------------------------------------------------------- driver
# The compiled plumbing below passes long argument lists; they are kept bin-packed
# (``fmt: off``) because one argument per line would triple the length of this section.
# fmt: off
@numba.njit(cache=True)
def _integrate(rhs, jac, has_jac, stiff, t0, y0, p, t_out, bps, n_bp, rtol, atol, first_step,
               max_steps, states):  # pragma: no cover - compiled
    """Integrate one trajectory piecewise across breakpoints; fill ``states``; return status.

    ``t_out`` must be sorted ascending with ``t_out[0] >= t0``; rows not reached are NaN.
    """
    n, n_out = y0.shape[0], t_out.shape[0]
    y = y0.copy()
    w = np.empty((_WORK_ROWS, n))
    jmat, lu, piv = np.empty((n, n)), np.empty((n, n)), np.empty(n, dtype=np.int64)
    status = STATUS_SUCCESS if _all_finite(y) else STATUS_BAD_INITIAL
    if not _all_finite(bps[:n_bp]):
        status = STATUS_BAD_BREAKPOINTS
    bp = np.sort(bps[:n_bp])
    j = 0
    while status == STATUS_SUCCESS and j < n_out and t_out[j] <= t0:
        states[j, :] = y
        j += 1
    t, phase, k, steps, h = t0, 0, 0, 0, first_step
    while status == STATUS_SUCCESS and j < n_out:
        while k < n_bp and bp[k] <= t:  # each breakpoint passed advances the phase
            phase, k = phase + 1, k + 1
        t_end = bp[k] if k < n_bp and bp[k] < t_out[n_out - 1] else t_out[n_out - 1]
        if stiff:
            status, j, h, steps = _rodas4(rhs, jac, has_jac, t, t_end, y, p, phase, t_out, j,
                                          states, rtol, atol, h, steps, max_steps, w, jmat, lu,
                                          piv)
        else:
            status, j, h, steps = _dopri5(rhs, t, t_end, y, p, phase, t_out, j, states, rtol,
                                          atol, h, steps, max_steps, w)
        if k < n_bp and t_end == bp[k]:
            h = first_step  # restart at the discontinuity with a fresh starting step
        t = t_end
    for jj in range(j, n_out):
        states[jj, :] = np.nan
    return status


@numba.njit(cache=True)
def _no_jacobian(t, y, p, phase, jac):  # pragma: no cover - compiled
    """Placeholder Jacobian for models without one (never called: ``has_jac`` is False)."""
    jac[:, :] = np.nan


@numba.njit(cache=True)
def _no_breakpoints(p, out):  # pragma: no cover - compiled
    """Placeholder: a model without discontinuities."""
    return 0


def _solve_one_py(rhs, jac, has_jac, stiff, t0, y0, p, t_out, bps, n_bp, rtol, atol, first_step,
                  max_steps, states):  # pragma: no cover - compiled
    return _integrate(rhs, jac, has_jac, stiff, t0, y0, p, t_out, bps, n_bp, rtol, atol,
                      first_step, max_steps, states)


@numba.njit(cache=True)
def _simulate_subject(rhs, jac, has_jac, stiff, init, observe, breakpoints, n_states, max_bp, t0,
                      t_out, p, rtol, atol, first_step, max_steps, observed,
                      buffer):  # pragma: no cover - compiled
    """One subject of a population: initial state, breakpoints, integration, observation."""
    y0 = np.zeros(n_states)
    bps = np.empty(max(max_bp, 1))
    code = init(p, y0)
    n_bp = breakpoints(p, bps) if max_bp > 0 else 0
    if code == 0 and (n_bp < 0 or n_bp > max_bp):
        code = STATUS_BAD_BREAKPOINTS
    if code == 0:
        code = _integrate(rhs, jac, has_jac, stiff, t0, y0, p, t_out, bps, n_bp, rtol, atol,
                          first_step, max_steps, buffer)
    for j in range(t_out.shape[0]):
        observed[j] = observe(buffer[j], p) if code == 0 else np.nan
    if code != 0:
        buffer[:, :] = np.nan
    return code


def _population_parallel_py(rhs, jac, has_jac, stiff, init, observe, breakpoints, n_states,
                            max_bp, t0, t_out, param_matrix, rtol, atol, first_step, max_steps,
                            observed, states):  # pragma: no cover - compiled
    status = np.zeros(param_matrix.shape[0], dtype=np.int32)
    keep_states = states.shape[0] == param_matrix.shape[0]
    for i in numba.prange(param_matrix.shape[0]):
        # Thread-private copies: sharing one array between threads would make every call
        # that passes it bounce the array's reference count between cores.
        p, times, tol = param_matrix[i].copy(), t_out.copy(), atol.copy()
        level, buffer = np.empty(times.shape[0]), np.empty((times.shape[0], n_states))
        status[i] = _simulate_subject(rhs, jac, has_jac, stiff, init, observe, breakpoints,
                                      n_states, max_bp, t0, times, p, rtol, tol, first_step,
                                      max_steps, level, buffer)
        observed[i, :] = level
        if keep_states:
            states[i, :, :] = buffer
    return status


def _population_serial_py(rhs, jac, has_jac, stiff, init, observe, breakpoints, n_states,
                          max_bp, t0, t_out, param_matrix, rtol, atol, first_step, max_steps,
                          observed, states):  # pragma: no cover - compiled
    # Same as the parallel kernel with ``range``: a separate function, because numba's
    # on-disk cache does not tell compilation flags apart.
    status = np.zeros(param_matrix.shape[0], dtype=np.int32)
    keep_states = states.shape[0] == param_matrix.shape[0]
    for i in range(param_matrix.shape[0]):
        # Thread-private copies: sharing one array between threads would make every call
        # that passes it bounce the array's reference count between cores.
        p, times, tol = param_matrix[i].copy(), t_out.copy(), atol.copy()
        level, buffer = np.empty(times.shape[0]), np.empty((times.shape[0], n_states))
        status[i] = _simulate_subject(rhs, jac, has_jac, stiff, init, observe, breakpoints,
                                      n_states, max_bp, t0, times, p, rtol, tol, first_step,
                                      max_steps, level, buffer)
        observed[i, :] = level
        if keep_states:
            states[i, :, :] = buffer
    return status


_F8, _I8, _B1 = types.float64, types.int64, types.boolean
_VEC, _MAT = types.float64[::1], types.float64[:, ::1]
RHS_TYPE = types.FunctionType(types.void(_F8, _VEC, _VEC, _I8, _VEC))
JAC_TYPE = types.FunctionType(types.void(_F8, _VEC, _VEC, _I8, _MAT))
INIT_TYPE = types.FunctionType(_I8(_VEC, _VEC))
OBSERVE_TYPE = types.FunctionType(_F8(_VEC, _VEC))
BREAKPOINTS_TYPE = types.FunctionType(_I8(_VEC, _VEC))
_SOLVE_ONE_SIG = _I8(RHS_TYPE, JAC_TYPE, _B1, _B1, _F8, _VEC, _VEC, _VEC, _VEC, _I8, _F8, _VEC,
                     _F8, _I8, _MAT)
_POPULATION_SIG = types.int32[::1](RHS_TYPE, JAC_TYPE, _B1, _B1, INIT_TYPE, OBSERVE_TYPE,
                                   BREAKPOINTS_TYPE, _I8, _I8, _F8, _VEC, _MAT, _F8, _VEC, _F8,
                                   _I8, _MAT, types.float64[:, :, ::1])
# fmt: on


@functools.cache
def _solve_one_kernel() -> Callable:
    """Compile (or load from the on-disk cache) the single-trajectory kernel, once."""
    return numba.njit(_SOLVE_ONE_SIG, cache=True)(_solve_one_py)


@functools.cache
def population_kernel(parallel: bool = True) -> Callable:
    """Return the compiled population kernel (compiled once, then loaded from disk cache).

    Signature::

        kernel(rhs, jac, has_jac, stiff, initial_state, observe, breakpoints, n_states,
               max_breakpoints, t0, t_out, param_matrix, rtol, atol, first_step, max_steps,
               observed, states) -> int32[n_subjects]

    The model functions are numba dispatchers or, cheaper to pass, :func:`function_handle`
    objects. ``t_out`` is sorted with ``t_out[0] >= t0``; ``observed`` is
    ``(n_subjects, n_times)``; ``states`` is ``(n_subjects, n_times, n_states)`` to keep
    trajectories, or of shape ``(0, 0, 0)`` to discard them. With ``parallel=True`` subjects
    run in parallel (``numba.prange``); the serial variant avoids the thread start-up cost for
    one or a few subjects (a fit calls it thousands of times).
    """
    if parallel:
        return numba.njit(_POPULATION_SIG, cache=True, parallel=True)(_population_parallel_py)
    return numba.njit(_POPULATION_SIG, cache=True)(_population_serial_py)


class _FunctionHandle:
    """A compiled model function as a first-class function value with its address resolved.

    Passing a numba dispatcher where a ``FunctionType`` is expected makes numba look up the
    compiled address on every call (~40 µs per function). The handle resolves it once and
    implements numba's wrapper-address protocol by duck typing (``__wrapper_address__``),
    with its type given by ``_numba_type_`` so that typing the argument costs nothing
    either (subclassing ``WrapperAddressProtocol`` would rebuild the type on every call).
    """

    def __init__(self, dispatcher: Any, fn_type: types.FunctionType) -> None:
        self._dispatcher = dispatcher  # keeps the compiled code alive
        self._numba_type_ = fn_type
        dispatcher.compile(fn_type.signature)
        self._address = _get_wrapper_address(dispatcher, fn_type.signature)

    def __wrapper_address__(self) -> int:
        return self._address

    def __repr__(self) -> str:
        return f"<compiled {self._dispatcher.py_func.__qualname__} at {self._address:#x}>"


@functools.cache
def function_handle(dispatcher: Any, fn_type: types.FunctionType) -> Any:
    """Return a cheap-to-pass handle of ``dispatcher`` compiled for ``fn_type``.

    Falls back to the dispatcher itself if numba's wrapper-address lookup is unavailable.
    """
    if _get_wrapper_address is None:  # pragma: no cover - other numba versions
        return dispatcher
    return _FunctionHandle(dispatcher, fn_type)
