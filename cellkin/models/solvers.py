"""Numba-compiled ODE integrators for cellkin's mechanistic models.

Why cellkin carries its own integrators
---------------------------------------
Population simulation and per-patient fitting call an ODE solver millions of times, so the
solver must be callable from numba-compiled code and must run a whole population in one
compiled, parallel call. The numba-callable solvers on PyPI do not serve: ``numbalsoda`` ships
only a source build that needs CMake and gfortran (it fails to install here), and
``numbakit-ode`` compiles for seconds per solver instance and is unmaintained. The methods below
are textbook and small enough to own and test: the explicit Runge–Kutta 5(4) pairs of
Tsitouras (``tsit5``, the default for non-stiff models) and Dormand–Prince (``dopri5``), in
:mod:`cellkin.models._erk`, and the Rosenbrock method Rodas4 (``rodas4``) for stiff models.

The kernel contract
-------------------
Every model function is a numba ``njit`` function with one of these fixed signatures
(``float64[::1]`` is a contiguous float64 vector; parameters travel as such a vector in the
model's declared order, followed by the model's derived constants if it has any):

* ``rhs(t, y, p, phase, dydt) -> None`` — write dy/dt into ``dydt``;
* ``jac(t, y, p, phase, jac) -> None`` — write ∂f/∂y into the ``(n, n)`` matrix ``jac``
  (optional; finite differences are used otherwise);
* ``initial_state(p, y0) -> int`` — write the state at t0 into ``y0``; return 0, or a
  model-specific status code (>= 10) when the parameters admit no valid initial state;
* ``observe(y, p) -> float`` — map one state vector to the observed level;
* ``breakpoints(p, out) -> int`` — write the times of discontinuities into ``out`` and return
  how many there are;
* ``derive(p) -> int`` — fill the entries of ``p`` after the declared parameters with
  constants derived from them (say ``1/K`` or ``ln(K_1/K_2)``), once per subject before any
  other model function sees ``p``, so that the right-hand side does not recompute them at
  every stage (optional; return 0, or a model-specific status code >= 10).

**Phases.** Integration is piecewise: the solver stops exactly at each breakpoint, restarts
there with a fresh step size, and passes the *phase index* to ``rhs`` and ``jac``: phase ``k``
is the interval between the k-th and (k+1)-th breakpoint (phase 0 before the first). The
right-hand side selects its regime by this index, never by comparing ``t`` with the breakpoint,
so no stage of a step near Tmax evaluates the wrong regime. States are continuous across
breakpoints. Breakpoints at or before ``t0`` advance the starting phase.

The functions reach the solvers as the native addresses of their compiled code
(:func:`kernel_addresses`; :mod:`cellkin.models._native`), so the solvers, the population
kernels and the single-trajectory kernel are compiled once for every model (and cached on
disk with ``cache=True``); a new model only compiles its own small functions. Compiled code
never raises: it returns a status code per trajectory (:data:`STATUS_MESSAGES`), and a failing
subject leaves its rows NaN without touching the others. Each thread of the parallel
population kernel allocates its work arrays once and claims blocks of subjects from a shared
counter until none is left (so a thread slowed down by other load takes fewer).

*Development note*: numba's on-disk cache checks only the source file of the function it
caches, and a cached kernel embeds the compiled code of everything it calls. After editing
:mod:`cellkin.models._erk` or :mod:`cellkin.models._native`, touch this file (or delete the
``__pycache__`` folder) so that the kernels here are recompiled.

Orientation: trajectories are ``(n_times, n_states)``; populations ``(n_subjects, n_times)``.
The Python front end (:class:`~cellkin.models.ode.SolverOptions`,
:func:`~cellkin.models.ode.solve` and :class:`~cellkin.models.ode.ODEModel`) lives in
:mod:`cellkin.models.ode`.

References
----------
.. [1] Tsitouras Ch. Runge–Kutta pairs of order 5(4) satisfying only the first column
       simplifying assumption. Comput Math Appl 2011;62(2):770-775.
       doi:10.1016/j.camwa.2011.06.002
.. [2] Dormand JR, Prince PJ. A family of embedded Runge-Kutta formulae. J Comput Appl Math
       1980;6(1):19-26. doi:10.1016/0771-050X(80)90013-3
.. [3] Hairer E, Nørsett SP, Wanner G. Solving Ordinary Differential Equations I, 2nd ed.
       Springer 1993 (step-size control, dense output, initial step).
       doi:10.1007/978-3-540-78862-1
.. [4] Hairer E, Wanner G. Solving Ordinary Differential Equations II, 2nd ed. Springer 1996,
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

from cellkin.models import _erk
from cellkin.models._native import (
    BREAKPOINTS_SIG,
    DERIVE_SIG,
    INIT_SIG,
    JAC_SIG,
    OBSERVE_SIG,
    RHS_SIG,
    STATUS_BAD_BREAKPOINTS,
    STATUS_BAD_INITIAL,
    STATUS_MAX_STEPS,
    STATUS_MODEL_ERROR,
    STATUS_NONFINITE,
    STATUS_SINGULAR,
    STATUS_STEP_TOO_SMALL,
    STATUS_SUCCESS,
    all_finite,
    call_breakpoints,
    call_derive,
    call_init,
    call_jac,
    call_observe,
    call_rhs,
    fetch_add,
    initial_step,
    kernel_address,
    too_small,
)

__all__ = [
    "METHODS",
    "STATUS_MESSAGES",
    "kernel_addresses",
    "population_kernel",
]

STATUS_MESSAGES: dict[int, str] = {
    STATUS_SUCCESS: "success",
    STATUS_MAX_STEPS: "the solver took `max_steps` steps without reaching the last time",
    STATUS_STEP_TOO_SMALL: "the step size fell below the resolution of the time axis",
    STATUS_NONFINITE: "the right-hand side returned NaN or infinity (or raised)",
    STATUS_SINGULAR: "the Rosenbrock matrix I/(h·γ) − J stayed singular",
    STATUS_BAD_INITIAL: "the initial state is not finite",
    STATUS_BAD_BREAKPOINTS: "a breakpoint is not finite or more were given than declared",
    STATUS_MODEL_ERROR: "a model function raised an exception in compiled code",
}
"""Meaning of the status codes returned per trajectory (codes >= 10 are model-specific)."""

METHODS: dict[str, bool] = {"tsit5": False, "dopri5": False, "rodas4": True}
"""Available methods; the value says whether the method is meant for stiff problems."""

METHOD_CODES: dict[str, int] = {"dopri5": 0, "tsit5": 1, "rodas4": 2}
"""The integer passed to the compiled kernels for each method."""

_DOPRI5, _TSIT5, _RODAS4 = 0, 1, 2
_SQRT_EPS = math.sqrt(np.finfo(np.float64).eps)

# ---------------------------------------------------------------------------- Rodas4
# Work array rows (``w``, shape (_WORK_ROWS, n)): stages, stage input and new solution of the
# explicit pairs (rows 0-8) or the stages and vectors of Rodas4 (rows 0-11).
_WORK_ROWS = 12
_SAFE, _FAC_MIN = 0.9, 0.2

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


@numba.njit(cache=True, error_model="numpy")
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


@numba.njit(cache=True, error_model="numpy")
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


@numba.njit(cache=True, error_model="numpy")
def _jacobian(rhs, jac, has_jac, t, y, p, phase, f0, jmat, dfdt, yt, ft):  # pragma: no cover
    """∂f/∂y (analytic, or forward differences) into ``jmat``, ∂f/∂t into ``dfdt``.

    Returns False if a model function raised.
    """
    n = y.shape[0]
    ok = True
    if has_jac:
        ok = call_jac(jac, t, y, p, phase, jmat)
    else:
        for c in range(n):
            for i in range(n):
                yt[i] = y[i]
            yt[c] = y[c] + _SQRT_EPS * max(abs(y[c]), 1e-8)
            delta = yt[c] - y[c]
            ok &= call_rhs(rhs, t, yt, p, phase, ft)
            for r in range(n):
                jmat[r, c] = (ft[r] - f0[r]) / delta
    dt = _SQRT_EPS * max(abs(t), 1.0)
    ok &= call_rhs(rhs, t + dt, y, p, phase, ft)
    for r in range(n):
        dfdt[r] = (ft[r] - f0[r]) / dt
    return ok


@numba.njit(cache=True, error_model="numpy")
def _rodas4_dense(t, t_new, h, y, yn, k1, k2, k3, k4, k5, t_out, j, states):  # pragma: no cover
    """Rodas4 dense output (order 3) at every output time in (t, t_new]; return next j."""
    while j < t_out.shape[0] and t_out[j] <= t_new:
        if t_out[j] == t_new:
            for i in range(y.shape[0]):
                states[j, i] = yn[i]
        else:
            th = (t_out[j] - t) / h
            th1 = 1.0 - th
            for i in range(y.shape[0]):
                d2 = _RH21 * k1[i] + _RH22 * k2[i] + _RH23 * k3[i] + _RH24 * k4[i] + _RH25 * k5[i]
                d3 = _RH31 * k1[i] + _RH32 * k2[i] + _RH33 * k3[i] + _RH34 * k4[i] + _RH35 * k5[i]
                states[j, i] = th1 * y[i] + th * (yn[i] + th1 * (d2 + th * d3))
        j += 1
    return j


@numba.njit(cache=True, error_model="numpy")
def _rodas4_stages(rhs, t, h, y, p, phase, f0, dfdt, lu, piv, w):  # pragma: no cover
    """The six stages of a Rodas4 step into w[0..5]; y_new into w[7] (error estimate: k6).

    Returns False if the right-hand side raised.
    """
    n = y.shape[0]
    k1, k2, k3, k4, k5, k6, yn, yt, du = w[0], w[1], w[2], w[3], w[4], w[5], w[7], w[8], w[9]
    for i in range(n):
        k1[i] = f0[i] + h * _RD1 * dfdt[i]
    _lu_solve(lu, piv, k1)
    for i in range(n):
        yt[i] = y[i] + _RA21 * k1[i]
    ok = call_rhs(rhs, t + _RC2 * h, yt, p, phase, du)
    for i in range(n):
        k2[i] = du[i] + h * _RD2 * dfdt[i] + _RC21 * k1[i] / h
    _lu_solve(lu, piv, k2)
    for i in range(n):
        yt[i] = y[i] + _RA31 * k1[i] + _RA32 * k2[i]
    ok &= call_rhs(rhs, t + _RC3 * h, yt, p, phase, du)
    for i in range(n):
        k3[i] = du[i] + h * _RD3 * dfdt[i] + (_RC31 * k1[i] + _RC32 * k2[i]) / h
    _lu_solve(lu, piv, k3)
    for i in range(n):
        yt[i] = y[i] + _RA41 * k1[i] + _RA42 * k2[i] + _RA43 * k3[i]
    ok &= call_rhs(rhs, t + _RC4 * h, yt, p, phase, du)
    for i in range(n):
        k4[i] = du[i] + h * _RD4 * dfdt[i] + (_RC41 * k1[i] + _RC42 * k2[i] + _RC43 * k3[i]) / h
    _lu_solve(lu, piv, k4)
    for i in range(n):
        yt[i] = y[i] + _RA51 * k1[i] + _RA52 * k2[i] + _RA53 * k3[i] + _RA54 * k4[i]
    ok &= call_rhs(rhs, t + h, yt, p, phase, du)
    for i in range(n):
        k5[i] = du[i] + (_RC51 * k1[i] + _RC52 * k2[i] + _RC53 * k3[i] + _RC54 * k4[i]) / h
    _lu_solve(lu, piv, k5)
    for i in range(n):
        yt[i] += k5[i]
    ok &= call_rhs(rhs, t + h, yt, p, phase, du)
    for i in range(n):
        k6[i] = (
            du[i]
            + (_RC61 * k1[i] + _RC62 * k2[i] + _RC63 * k3[i] + _RC64 * k4[i] + _RC65 * k5[i]) / h
        )
    _lu_solve(lu, piv, k6)
    for i in range(n):
        yn[i] = yt[i] + k6[i]
    return ok


# fmt: off
@numba.njit(cache=True, error_model="numpy")
def _rodas4(rhs, jac, has_jac, t, t_end, y, p, phase, t_out, j, states, rtol, atol, h, steps,
            max_steps, w, jmat, lu, piv):  # pragma: no cover - compiled
    """Integrate (t, t_end] with Rodas4; returns (status, j, h, steps).

    Step-size control h·min(6, max(0.2, 0.9·err^(-1/4))); no growth right after a rejection;
    the Jacobian is evaluated once per accepted step and reused after rejections.
    """
    n = y.shape[0]
    k1, k2, k3, k4, k5, k6, yn = w[0], w[1], w[2], w[3], w[4], w[5], w[7]
    yt, ft, f0, dfdt = w[8], w[9], w[10], w[11]
    if not (call_rhs(rhs, t, y, p, phase, f0) and all_finite(f0)):
        return STATUS_NONFINITE, j, h, steps
    if h <= 0.0:
        h = initial_step(rhs, t, t_end, y, p, phase, f0, rtol, atol, 3, yt, ft)
    if not _jacobian(rhs, jac, has_jac, t, y, p, phase, f0, jmat, dfdt, yt, ft):
        return STATUS_NONFINITE, j, h, steps
    rejected, nonfinite, singular = False, False, False
    while True:
        if steps >= max_steps:
            return STATUS_MAX_STEPS, j, h, steps
        if too_small(h, t, t_end):
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
        ok = _rodas4_stages(rhs, t, h, y, p, phase, f0, dfdt, lu, piv, w)
        err = 0.0
        for i in range(n):
            err += (k6[i] / (atol[i] + rtol * max(abs(y[i]), abs(yn[i])))) ** 2
        err = math.sqrt(err / n)
        if not (ok and math.isfinite(err)):
            nonfinite, rejected, h = True, True, 0.25 * h
            continue
        fac = _RO_FAC_MAX if err == 0.0 else min(_RO_FAC_MAX, max(_FAC_MIN, _SAFE / err**0.25))
        if err > 1.0:
            rejected, h = True, h * fac
            continue
        t_new = t_end if last else t + h
        if j < t_out.shape[0] and t_out[j] <= t_new:
            j = _rodas4_dense(t, t_new, h, y, yn, k1, k2, k3, k4, k5, t_out, j, states)
        for i in range(n):
            y[i] = yn[i]
        t = t_new
        h = h * min(fac, 1.0) if rejected else h * fac
        rejected, nonfinite, singular = False, False, False
        if last:
            return STATUS_SUCCESS, j, h, steps
        if not (call_rhs(rhs, t, y, p, phase, f0)
                and _jacobian(rhs, jac, has_jac, t, y, p, phase, f0, jmat, dfdt, yt, ft)):
            return STATUS_NONFINITE, j, h, steps
# fmt: on


# ---------------------------------------------------------------------------- driver
# The compiled plumbing below passes long argument lists; they are kept bin-packed
# (``fmt: off``) because one argument per line would triple the length of this section.
# fmt: off
@numba.njit(cache=True, error_model="numpy")
def _workspace(n_states, max_bp):  # pragma: no cover - compiled
    """Work arrays of one thread: state, stages, Jacobian, LU, pivots, dense-output weights,
    breakpoints and one observation row."""
    return (np.empty(n_states), np.empty((_WORK_ROWS, n_states)), np.empty((n_states, n_states)),
            np.empty((n_states, n_states)), np.empty(n_states, dtype=np.int64),
            np.empty(_erk.STAGES), np.empty(max(max_bp, 1)), np.empty(n_states))


@numba.njit(cache=True, error_model="numpy")
def _integrate(method, rhs, jac, has_jac, t0, y, p, t_out, bp, n_bp, rtol, atol, first_step,
               max_steps, states, w, jmat, lu, piv, bt):  # pragma: no cover - compiled
    """Integrate one trajectory piecewise across breakpoints; fill ``states``; return status.

    ``y`` holds the state at ``t0`` and is advanced in place; ``bp[:n_bp]`` (the breakpoints)
    is sorted in place. ``t_out`` must be sorted ascending with ``t_out[0] >= t0``; rows not
    reached are NaN.
    """
    n, n_out = y.shape[0], t_out.shape[0]
    status = STATUS_SUCCESS if all_finite(y) else STATUS_BAD_INITIAL
    for k in range(n_bp):  # insertion sort (a handful of breakpoints at most)
        value, m = bp[k], k
        if not math.isfinite(value):
            status = STATUS_BAD_BREAKPOINTS
        while m > 0 and bp[m - 1] > value:
            bp[m] = bp[m - 1]
            m -= 1
        bp[m] = value
    j = 0
    while status == STATUS_SUCCESS and j < n_out and t_out[j] <= t0:
        for i in range(n):
            states[j, i] = y[i]
        j += 1
    t, phase, k, steps, h = t0, 0, 0, 0, first_step
    while status == STATUS_SUCCESS and j < n_out:
        while k < n_bp and bp[k] <= t:  # each breakpoint passed advances the phase
            phase, k = phase + 1, k + 1
        t_end = bp[k] if k < n_bp and bp[k] < t_out[n_out - 1] else t_out[n_out - 1]
        if method == _RODAS4:
            status, j, h, steps = _rodas4(rhs, jac, has_jac, t, t_end, y, p, phase, t_out, j,
                                          states, rtol, atol, h, steps, max_steps, w, jmat, lu,
                                          piv)
        elif method == _TSIT5:
            status, j, h, steps = _erk.tsit5(rhs, t, t_end, y, p, phase, t_out, j, states, rtol,
                                             atol, h, steps, max_steps, w, bt)
        else:
            status, j, h, steps = _erk.dopri5(rhs, t, t_end, y, p, phase, t_out, j, states,
                                              rtol, atol, h, steps, max_steps, w, bt)
        if k < n_bp and t_end == bp[k]:
            h = first_step  # restart at the discontinuity with a fresh starting step
        t = t_end
    for jj in range(j, n_out):
        for i in range(n):
            states[jj, i] = np.nan
    return status


@numba.njit(cache=True, error_model="numpy")
def _simulate_subject(method, rhs, jac, has_jac, derive, init, observe, breakpoints, max_bp, t0,
                      t_out, p, rtol, atol, first_step, max_steps, observed, buffer,
                      ws):  # pragma: no cover - compiled
    """One subject of a population: derived constants, initial state, breakpoints, integration,
    observation."""
    y, w, jmat, lu, piv, bt, bps, row = ws
    n = y.shape[0]
    for i in range(n):
        y[i] = 0.0
    ok, code = call_derive(derive, p)
    if ok and code == 0:
        ok, code = call_init(init, p, y)
    n_bp = 0
    if max_bp > 0 and ok and code == 0:
        ok, n_bp = call_breakpoints(breakpoints, p, bps)
        if n_bp < 0 or n_bp > max_bp:
            code = STATUS_BAD_BREAKPOINTS
    if not ok:
        code = STATUS_MODEL_ERROR
    if code == 0:
        code = _integrate(method, rhs, jac, has_jac, t0, y, p, t_out, bps, n_bp, rtol, atol,
                          first_step, max_steps, buffer, w, jmat, lu, piv, bt)
    for j in range(t_out.shape[0]):
        if code == 0:
            for i in range(n):
                row[i] = buffer[j, i]
            ok, level = call_observe(observe, row, p)
            observed[j] = level
            if not ok:
                code = STATUS_MODEL_ERROR
    if code != 0:
        for j in range(t_out.shape[0]):
            observed[j] = np.nan
            for i in range(n):
                buffer[j, i] = np.nan
    return code


@numba.njit(cache=True, error_model="numpy")
def _worker(counter, block, method, rhs, jac, has_jac, derive, n_derived, init, observe,
            breakpoints, n_states, max_bp, t0, t_out, param_matrix, rtol, atol, first_step,
            max_steps, observed, states, status):  # pragma: no cover - compiled
    """Claim blocks of ``block`` subjects from ``counter`` until none is left.

    One thread's share of a population, with one set of work arrays. Shared arrays are read and
    written element-wise only, and the vectors passed down on every call are thread-private
    copies: passing a shared array would bounce its reference count between cores. The
    subject's parameter vector has ``n_derived`` entries after the declared parameters, which
    ``derive`` fills.
    """
    n, n_params = param_matrix.shape
    times, tol = t_out.copy(), atol.copy()
    p = np.zeros(n_params + n_derived)
    level, buffer = np.empty(times.shape[0]), np.empty((times.shape[0], n_states))
    ws = _workspace(n_states, max_bp)
    keep = states.shape[0] == n
    while True:
        first = fetch_add(counter, block)
        if first >= n:
            return
        for s in range(first, min(first + block, n)):
            for q in range(n_params):
                p[q] = param_matrix[s, q]
            status[s] = _simulate_subject(method, rhs, jac, has_jac, derive, init, observe,
                                          breakpoints, max_bp, t0, times, p, rtol, tol,
                                          first_step, max_steps, level, buffer, ws)
            for j in range(times.shape[0]):
                observed[s, j] = level[j]
                if keep:
                    for i in range(n_states):
                        states[s, j, i] = buffer[j, i]


_BLOCK = 16  # subjects claimed at a time: one atomic operation per ~0.5 ms of work


def _population_parallel_py(method, rhs, jac, has_jac, derive, n_derived, init, observe,
                            breakpoints, n_states, max_bp, t0, t_out, param_matrix, rtol, atol,
                            first_step, max_steps, observed, states,
                            threads):  # pragma: no cover - compiled
    n = param_matrix.shape[0]
    status = np.zeros(n, dtype=np.int32)
    counter = np.zeros(1, dtype=np.int64)
    block = max(1, min(_BLOCK, n // max(threads, 1)))
    for _ in numba.prange(max(1, min(threads, n))):
        _worker(counter, block, method, rhs, jac, has_jac, derive, n_derived, init, observe,
                breakpoints, n_states, max_bp, t0, t_out, param_matrix, rtol, atol, first_step,
                max_steps, observed, states, status)
    return status


def _population_serial_py(method, rhs, jac, has_jac, derive, n_derived, init, observe,
                          breakpoints, n_states, max_bp, t0, t_out, param_matrix, rtol, atol,
                          first_step, max_steps, observed, states,
                          threads):  # pragma: no cover - compiled
    # The parallel kernel without threads: a separate function, because numba's on-disk
    # cache does not tell compilation flags apart.
    status = np.zeros(param_matrix.shape[0], dtype=np.int32)
    _worker(np.zeros(1, dtype=np.int64), _BLOCK, method, rhs, jac, has_jac, derive, n_derived,
            init, observe, breakpoints, n_states, max_bp, t0, t_out, param_matrix, rtol, atol,
            first_step, max_steps, observed, states, status)
    return status


def _solve_one_py(method, rhs, jac, has_jac, t0, y0, p, t_out, bps, n_bp, rtol, atol,
                  first_step, max_steps, states):  # pragma: no cover - compiled
    y, w, jmat, lu, piv, bt, _, _ = _workspace(y0.shape[0], 0)
    for i in range(y0.shape[0]):
        y[i] = y0[i]
    return _integrate(method, rhs, jac, has_jac, t0, y, p, t_out, bps[:n_bp].copy(), n_bp,
                      rtol, atol, first_step, max_steps, states, w, jmat, lu, piv, bt)


@numba.njit(cache=True)
def _no_jacobian(t, y, p, phase, jac):  # pragma: no cover - compiled
    """Placeholder Jacobian for models without one (never called: ``has_jac`` is False)."""
    jac[:, :] = np.nan


@numba.njit(cache=True)
def _no_breakpoints(p, out):  # pragma: no cover - compiled
    """Placeholder: a model without discontinuities."""
    return 0


@numba.njit(cache=True)
def _no_derive(p):  # pragma: no cover - compiled
    """Placeholder: a model without derived constants."""
    return 0


_F8, _I8, _IP, _B1 = types.float64, types.int64, types.intp, types.boolean
_VEC, _MAT = types.float64[::1], types.float64[:, ::1]
_SOLVE_ONE_SIG = _I8(_I8, _IP, _IP, _B1, _F8, _VEC, _VEC, _VEC, _VEC, _I8, _F8, _VEC, _F8, _I8,
                     _MAT)
_POPULATION_SIG = types.int32[::1](_I8, _IP, _IP, _B1, _IP, _I8, _IP, _IP, _IP, _I8, _I8, _F8,
                                   _VEC, _MAT, _F8, _VEC, _F8, _I8, _MAT,
                                   types.float64[:, :, ::1], _I8)
# fmt: on


@functools.cache
def _solve_one_kernel() -> Callable:
    """Compile (or load from the on-disk cache) the single-trajectory kernel, once.

    Signature::

        kernel(method, rhs, jac, has_jac, t0, y0, p, t_out, breakpoints, n_breakpoints, rtol,
               atol, first_step, max_steps, states) -> int
    """
    return numba.njit(_SOLVE_ONE_SIG, cache=True, error_model="numpy")(_solve_one_py)


@functools.cache
def population_kernel(parallel: bool = True) -> Callable:
    """Return the compiled population kernel (compiled once, then loaded from disk cache).

    Signature::

        kernel(method, rhs, jac, has_jac, derive, n_derived, initial_state, observe,
               breakpoints, n_states, max_breakpoints, t0, t_out, param_matrix, rtol, atol,
               first_step, max_steps, observed, states, threads) -> int32[n_subjects]

    ``method`` is a :data:`METHOD_CODES` value; the model functions are native addresses from
    :func:`kernel_addresses`; ``derive`` fills the ``n_derived`` entries that follow each
    subject's row of ``param_matrix`` in the vector the model functions receive. ``t_out`` is
    sorted with ``t_out[0] >= t0``; ``observed`` is ``(n_subjects, n_times)``; ``states`` is
    ``(n_subjects, n_times, n_states)`` to keep trajectories, or of shape ``(0, 0, 0)`` to
    discard them. With ``parallel=True``,
    ``threads`` workers (``numba.prange``; pass ``numba.get_num_threads()``), each with its own
    work arrays, claim blocks of subjects from a shared counter until all are done; the serial
    variant ignores ``threads`` and avoids the thread start-up cost for one or a few subjects
    (a fit calls it thousands of times).
    """
    if parallel:
        kernel = numba.njit(_POPULATION_SIG, cache=True, parallel=True, error_model="numpy")
        return kernel(_population_parallel_py)
    return numba.njit(_POPULATION_SIG, cache=True, error_model="numpy")(_population_serial_py)


@functools.cache
def _address(dispatcher: Any, signature: Any) -> int:
    return kernel_address(dispatcher, signature)


def kernel_addresses(
    rhs: Any,
    jac: Any = None,
    initial_state: Any = None,
    observe: Any = None,
    breakpoints: Any = None,
    derive: Any = None,
) -> tuple[int, int, int, int, int, int]:
    """Native addresses of a model's kernels, in the order of the kernel signatures.

    ``jac``, ``breakpoints`` and ``derive`` default to placeholders (no Jacobian, no
    breakpoints, no derived constants);
    ``initial_state`` and ``observe`` are only called by the population kernels and give
    address 0 when absent. Resolved once per function (the dispatchers stay referenced).
    """
    return (
        _address(rhs, RHS_SIG),
        _address(_no_jacobian if jac is None else jac, JAC_SIG),
        0 if initial_state is None else _address(initial_state, INIT_SIG),
        0 if observe is None else _address(observe, OBSERVE_SIG),
        _address(_no_breakpoints if breakpoints is None else breakpoints, BREAKPOINTS_SIG),
        _address(_no_derive if derive is None else derive, DERIVE_SIG),
    )
