"""The Rosenbrock method Rodas4 for stiff models (and stiff stretches of ``auto``), compiled.

Rodas4 [1]_ is a stiffly accurate, L-stable Rosenbrock–Wanner method of order 4 with an
embedded order-3 solution and a dense output of order 3. It needs the Jacobian ∂f/∂y (analytic
from the model's ``jac`` kernel, or finite differences) once per accepted step and one LU
factorisation of ``I/(hγ) − J`` per attempted step (:mod:`cellkin.models._linalg`).

**Equilibration.** The system is factored as ``D⁻¹ (I/(hγ) − J) D`` with D the error weights
``atol_i + rtol·|y_i|`` at the start of the step, and each stage solved for ``D⁻¹ k``. Without
it, partial pivoting on a matrix whose rows mix a tumour of 1e11 cells with CAR-T cells
collapsed to the absolute tolerance (CARTmath, León-Triana when the tumour escapes) lost the
small states to round-off: every step failed the error test and the solve ran out of steps
(1.2 million evaluations against ~35,000 equilibrated on a CARTmath patient at rtol 1e-9;
``tests/models/test_conformance.py``, escaping tumours).

**Switching back** (``method="auto"``): the explicit pair hands a stiff stretch to Rodas4
(:data:`cellkin.models._native.STATUS_STIFF`); Rodas4 hands it back when an explicit step of
the size Rodas4 takes would be stable again: ``h·‖D J D⁻¹‖_∞ <`` the explicit pair's
stability boundary (``‖D J D⁻¹‖_∞``, D the error weights, bounds the spectral radius from
above) on :data:`CALM_COUNT` accepted steps in a row, as DifferentialEquations.jl's
``AutoSwitch`` does with the (unscaled) norm.

References
----------
.. [1] Hairer E, Wanner G. Solving Ordinary Differential Equations II, 2nd ed. Springer 1996,
       §IV.7 (RODAS: Rodas4 coefficients and dense output). doi:10.1007/978-3-642-05221-7
"""

from __future__ import annotations

import math

import numba

# After editing this module, _linalg.py or _native.py, touch solvers.py (numba's cache).
from cellkin.models._linalg import jacobian, lu_factor, lu_solve
from cellkin.models._native import (
    STATUS_CALM,
    STATUS_MAX_STEPS,
    STATUS_NONFINITE,
    STATUS_SINGULAR,
    STATUS_STEP_TOO_SMALL,
    STATUS_SUCCESS,
    all_finite,
    call_rhs,
    initial_step,
    too_small,
)

CALM_COUNT = 6
"""Accepted steps in a row within the explicit pair's stability region before handing back."""

ROWS = 12
"""Rows of the work array: six stages, the new solution and four work vectors."""
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
def _norm_inf(a, y, rtol, atol):  # pragma: no cover - compiled
    """‖D A D⁻¹‖_∞ with D = diag(1/(atol_i + rtol |y_i|)): bounds A's spectral radius.

    Scaling by the error weights makes the bound tight for states of very different size
    (cells next to fractions): ``J[1, 0]`` of 1e5 between a state of 1e15 and one of 1 says
    nothing about stiffness.
    """
    best = 0.0
    for r in range(a.shape[0]):
        row = 0.0
        for c in range(a.shape[1]):
            row += abs(a[r, c]) * (atol[c] + rtol * abs(y[c]))
        best = max(best, row / (atol[r] + rtol * abs(y[r])))
    return best


@numba.njit(cache=True, error_model="numpy")
def _start(rhs, jac, has_jac, t, t_end, y, p, phase, rtol, atol, h, w, jmat):  # pragma: no cover
    """f, the starting step (when ``h <= 0``) and the Jacobians at the start of a segment.

    Returns (ok, h); ``ok`` is False when a model function failed or f is not finite.
    """
    yt, ft, f0, dfdt = w[8], w[9], w[10], w[11]
    if not (call_rhs(rhs, t, y, p, phase, f0) and all_finite(f0)):
        return False, h
    if h <= 0.0:
        h = initial_step(rhs, t, t_end, y, p, phase, f0, rtol, atol, 3, yt, ft)
    return jacobian(rhs, jac, has_jac, t, y, p, phase, f0, jmat, dfdt, yt, ft), h


@numba.njit(cache=True, error_model="numpy")
def _refresh(rhs, jac, has_jac, t, y, p, phase, f0, jmat, dfdt, yt, ft):  # pragma: no cover
    """f, ∂f/∂y and ∂f/∂t at a new accepted point; False if a model function failed."""
    if not call_rhs(rhs, t, y, p, phase, f0):
        return False
    return jacobian(rhs, jac, has_jac, t, y, p, phase, f0, jmat, dfdt, yt, ft)


@numba.njit(cache=True, error_model="numpy")
def _factor(jmat, h, lu, piv, scale):  # pragma: no cover - compiled
    """LU of ``D⁻¹ (I/(hγ) − J) D`` into ``lu``/``piv``, ``D = diag(scale)``; False when
    singular (module docstring: equilibration by the error weights)."""
    n = jmat.shape[0]
    for r in range(n):
        for c in range(n):
            lu[r, c] = -jmat[r, c] * (scale[c] / scale[r])
        lu[r, r] += 1.0 / (h * _RG)
    return lu_factor(lu, piv)


@numba.njit(cache=True, error_model="numpy")
def _solve(lu, piv, b, scale):  # pragma: no cover - compiled
    """Solve ``(I/(hγ) − J) x = b`` in place from the equilibrated LU of :func:`_factor`."""
    for i in range(b.shape[0]):
        b[i] /= scale[i]
    lu_solve(lu, piv, b)
    for i in range(b.shape[0]):
        b[i] *= scale[i]


@numba.njit(cache=True, error_model="numpy")
def _weights(y, rtol, atol, scale):  # pragma: no cover - compiled
    """The error weights ``atol_i + rtol·|y_i|`` (the scale of each state) into ``scale``."""
    for i in range(y.shape[0]):
        scale[i] = atol[i] + rtol * abs(y[i])


@numba.njit(cache=True, error_model="numpy")
def _error_norm(err, y, yn, rtol, atol):  # pragma: no cover - compiled
    """Weighted RMS norm of the error estimate ``err`` (the last stage, k6)."""
    n = y.shape[0]
    total = 0.0
    for i in range(n):
        total += (err[i] / (atol[i] + rtol * max(abs(y[i]), abs(yn[i])))) ** 2
    return math.sqrt(total / n)


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
    scale = w[6]
    for i in range(n):
        k1[i] = f0[i] + h * _RD1 * dfdt[i]
    _solve(lu, piv, k1, scale)
    for i in range(n):
        yt[i] = y[i] + _RA21 * k1[i]
    ok = call_rhs(rhs, t + _RC2 * h, yt, p, phase, du)
    for i in range(n):
        k2[i] = du[i] + h * _RD2 * dfdt[i] + _RC21 * k1[i] / h
    _solve(lu, piv, k2, scale)
    for i in range(n):
        yt[i] = y[i] + _RA31 * k1[i] + _RA32 * k2[i]
    ok &= call_rhs(rhs, t + _RC3 * h, yt, p, phase, du)
    for i in range(n):
        k3[i] = du[i] + h * _RD3 * dfdt[i] + (_RC31 * k1[i] + _RC32 * k2[i]) / h
    _solve(lu, piv, k3, scale)
    for i in range(n):
        yt[i] = y[i] + _RA41 * k1[i] + _RA42 * k2[i] + _RA43 * k3[i]
    ok &= call_rhs(rhs, t + _RC4 * h, yt, p, phase, du)
    for i in range(n):
        k4[i] = du[i] + h * _RD4 * dfdt[i] + (_RC41 * k1[i] + _RC42 * k2[i] + _RC43 * k3[i]) / h
    _solve(lu, piv, k4, scale)
    for i in range(n):
        yt[i] = y[i] + _RA51 * k1[i] + _RA52 * k2[i] + _RA53 * k3[i] + _RA54 * k4[i]
    ok &= call_rhs(rhs, t + h, yt, p, phase, du)
    for i in range(n):
        k5[i] = du[i] + (_RC51 * k1[i] + _RC52 * k2[i] + _RC53 * k3[i] + _RC54 * k4[i]) / h
    _solve(lu, piv, k5, scale)
    for i in range(n):
        yt[i] += k5[i]
    ok &= call_rhs(rhs, t + h, yt, p, phase, du)
    for i in range(n):
        k6[i] = (
            du[i]
            + (_RC61 * k1[i] + _RC62 * k2[i] + _RC63 * k3[i] + _RC64 * k4[i] + _RC65 * k5[i]) / h
        )
    _solve(lu, piv, k6, scale)
    for i in range(n):
        yn[i] = yt[i] + k6[i]
    return ok


# fmt: off
@numba.njit(cache=True, error_model="numpy")
def rodas4(rhs, jac, has_jac, t, t_end, y, p, phase, t_out, j, states, rtol, atol, h, steps,
           max_steps, w, jmat, lu, piv, calm_limit):  # pragma: no cover - compiled
    """Integrate (t, t_end] with Rodas4; returns (status, t, j, h, steps).

    Step-size control h·min(6, max(0.2, 0.9·err^(-1/4))); no growth right after a rejection;
    the Jacobian is evaluated once per accepted step and reused after rejections. With
    ``calm_limit > 0`` it returns ``STATUS_CALM`` at the reached ``t`` once ``h·‖DJD⁻¹‖_∞ <
    calm_limit`` held on :data:`CALM_COUNT` accepted steps in a row (module docstring).
    """
    n = y.shape[0]
    k1, k2, k3, k4, k5, k6, yn = w[0], w[1], w[2], w[3], w[4], w[5], w[7]
    yt, ft, f0, dfdt = w[8], w[9], w[10], w[11]
    ok, h = _start(rhs, jac, has_jac, t, t_end, y, p, phase, rtol, atol, h, w, jmat)
    if not ok:
        return STATUS_NONFINITE, t, j, h, steps
    rejected, nonfinite, singular, n_calm = False, False, False, 0
    while True:
        if steps >= max_steps:
            return STATUS_MAX_STEPS, t, j, h, steps
        if too_small(h, t, t_end):
            code = STATUS_SINGULAR if singular else STATUS_STEP_TOO_SMALL
            return (STATUS_NONFINITE if nonfinite else code), t, j, h, steps
        last = t + 1.01 * h >= t_end
        if last:
            h = t_end - t
        steps += 1
        _weights(y, rtol, atol, w[6])
        if not _factor(jmat, h, lu, piv, w[6]):
            singular, h = True, 0.5 * h
            continue
        ok = _rodas4_stages(rhs, t, h, y, p, phase, f0, dfdt, lu, piv, w)
        err = _error_norm(k6, y, yn, rtol, atol)
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
            return STATUS_SUCCESS, t, j, h, steps
        if not _refresh(rhs, jac, has_jac, t, y, p, phase, f0, jmat, dfdt, yt, ft):
            return STATUS_NONFINITE, t, j, h, steps
        n_calm = n_calm + 1 if h * _norm_inf(jmat, y, rtol, atol) < calm_limit else 0
        if n_calm >= CALM_COUNT:  # never with calm_limit = 0
            return STATUS_CALM, t, j, h, steps
# fmt: on
