r"""Explicit Runge–Kutta 5(4) pairs for the non-stiff models: Tsitouras 5(4) and Dormand–Prince.

Both pairs have seven stages, the last evaluated at the new solution (*first same as last*, so
an accepted step costs six evaluations of the right-hand side), a fourth-order embedded
solution for error control (local extrapolation: the step is advanced with the fifth-order
solution) and a continuous extension of order 4. One step loop serves both; it is compiled
once per pair (:func:`tsit5`, :func:`dopri5`) with the tableau as compile-time constants.

**Tableaux.** A step from :math:`(t, y)` with size :math:`h` computes
:math:`k_s = f(t + c_s h,\ y + h \sum_{m<s} a_{sm} k_m)` for :math:`s = 1..7`, the new
solution :math:`y_1 = y + h \sum_m a_{7m} k_m` (the seventh stage is :math:`f(t + h, y_1)`),
the error estimate :math:`\mathrm{err}_i = h \sum_m e_m k_{m,i}` with :math:`e = b - \hat b`,
and the dense output :math:`y(t + \theta h) = y + h \sum_m b_m(\theta) k_m` with
:math:`b_m(\theta) = \sum_{q=1}^{4} B_{mq} \theta^q`.

* *Tsitouras 5(4)* [1]_ (``tsit5``, the default): the pair of Table 1 of the paper, which
  satisfies only the first-column simplifying assumption and has smaller fifth-order error
  coefficients than Dormand–Prince; about 10% fewer steps at equal accuracy on the models
  here. The coefficients are the paper's decimals (16-17 significant digits); the tests
  check that they satisfy all 17 fifth-order and, for the embedded weights, all 8
  fourth-order conditions to rounding. Its continuous extension is our own
  derivation: the polynomials :math:`b_m(\theta)` of degree 4 that satisfy the eight
  order-4 conditions for every :math:`\theta`, :math:`b_m(1) = b_m`, and match the
  derivative at both ends (:math:`b_m'(0) = \delta_{m1}`, :math:`b_m'(1) = \delta_{m7}`, so the
  interpolant is C¹) leave one free parameter, chosen to minimise
  :math:`\int_0^1 \sum_t (\sum_m b_m(\theta) \Phi_m(t) - \theta^5/\gamma(t))^2 d\theta` over the
  nine fifth-order trees :math:`t` (Hairer's extension of Dormand–Prince, which meets the
  same conditions, is within 1% of the optimum of this criterion). The tests check the
  extension's order conditions and its optimality.
* *Dormand–Prince 5(4)* [2]_ (``dopri5``): the classical pair, with the continuous extension
  of Hairer's DOPRI5 [3]_ written out as polynomials in :math:`\theta` (exact fractions).

**Error control and step size** (Hairer et al. [3]_, §II.4): the error is the weighted RMS
norm :math:`\|\mathrm{err}\| = \sqrt{\frac1n \sum_i (\mathrm{err}_i / (a_i + r \max(|y_i|,
|y_{1,i}|)))^2}`, as in SciPy's ``solve_ivp``; a step is accepted when it is at most 1. The
next step is :math:`h_{new} = h \cdot \min(10, \max(0.2,\ 0.9\,
\|\mathrm{err}_n\|^{-(1/5 - 0.75\beta)}\, \|\mathrm{err}_{n-1}\|^{\beta}))` — the PI controller
with Lund stabilisation :math:`\beta = 0.04` of DOPRI5 (Gustafsson's PI control in Hairer's
form), which damps the oscillating step sequences of a plain controller; after a rejection
:math:`h \cdot \max(0.2, 0.9 \|\mathrm{err}\|^{-(1/5 - 0.75\beta)})`, and no growth on the
step right after one. A right-hand side that fails or returns a non-finite value quarters the
step.

The kernels are compiled with fused multiply-add and reassociation of sums (``fastmath``
without the finite-math assumptions, so the error test still sees NaN and infinity): the
stage sums are short dependency chains, and fusing them saves ~15% of the run time.

References
----------
.. [1] Tsitouras Ch. Runge–Kutta pairs of order 5(4) satisfying only the first column
       simplifying assumption. Comput Math Appl 2011;62(2):770-775.
       doi:10.1016/j.camwa.2011.06.002
.. [2] Dormand JR, Prince PJ. A family of embedded Runge-Kutta formulae. J Comput Appl Math
       1980;6(1):19-26. doi:10.1016/0771-050X(80)90013-3
.. [3] Hairer E, Nørsett SP, Wanner G. Solving Ordinary Differential Equations I, 2nd ed.
       Springer 1993, §II.4-II.6. doi:10.1007/978-3-540-78862-1
"""

from __future__ import annotations

import math
from fractions import Fraction as _Q

import numba
import numpy as np

# After editing this module or _native.py, touch solvers.py (numba's cache, see its docstring).
from cellkin.models._native import (
    STATUS_MAX_STEPS,
    STATUS_NONFINITE,
    STATUS_STEP_TOO_SMALL,
    STATUS_STIFF,
    STATUS_SUCCESS,
    all_finite,
    call_rhs,
    initial_step,
    too_small,
)

STAGES = 7
"""Stages of both pairs (the seventh is the first of the next step)."""

# ---------------------------------------------------------------------------- Tsitouras 5(4)
# Table 1 of [1]: nodes c, matrix a (its last row is the fifth-order weights b) and the
# differences e = b - b̂ of the weights.
TSIT5_C = np.array([0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0])
TSIT5_A = np.zeros((STAGES, STAGES))
TSIT5_A[1, :1] = [0.161]
TSIT5_A[2, :2] = [-0.008480655492356989, 0.335480655492357]
TSIT5_A[3, :3] = [2.8971530571054935, -6.359448489975075, 4.3622954328695815]
TSIT5_A[4, :4] = [5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525]
TSIT5_A[5, :5] = [5.86145544294642, -12.92096931784711, 8.159367898576159, -0.071584973281401,
                  -0.028269050394068383]  # fmt: skip
TSIT5_A[6, :6] = [0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742,
                  -3.290069515436081, 2.324710524099774]  # fmt: skip
TSIT5_E = np.array([-0.00178001105222577714, -0.0008164344596567469, 0.007880878010261995,
                    -0.1447110071732629, 0.5823571654525552, -0.45808210592918697,
                    0.015151515151515152])  # fmt: skip
# Continuous extension (our derivation, module docstring): row m holds B_m1..B_m4.
TSIT5_B = np.array([
    [1.0, -2.7697190760997742, 2.9252812194718093, -1.0591013765539699],
    [0.0, 0.12894208371183251, -0.21788416742366530, 0.098942083711832717],
    [0.0, 3.9569178494122120, -5.9942770971664260, 2.5172488981687135],
    [0.0, -12.899911070336683, 31.315856437088334, -17.036936792647909],
    [0.0, 39.476516409038755, -92.113310879821833, 49.346724955346998],
    [0.0, -29.443928026595055, 68.186698149589206, -36.418059598894377],
    [0.0, 1.5511818308687129, -4.1023636617374248, 2.5511818308687122],
])  # fmt: skip


# ---------------------------------------------------------------------------- Dormand–Prince
def _fractions(rows):
    return np.array([[float(_Q(x)) for x in row] for row in rows])


DOPRI5_C = _fractions([[0, "1/5", "3/10", "4/5", "8/9", 1, 1]])[0]
DOPRI5_A = _fractions([
    [0, 0, 0, 0, 0, 0, 0],
    ["1/5", 0, 0, 0, 0, 0, 0],
    ["3/40", "9/40", 0, 0, 0, 0, 0],
    ["44/45", "-56/15", "32/9", 0, 0, 0, 0],
    ["19372/6561", "-25360/2187", "64448/6561", "-212/729", 0, 0, 0],
    ["9017/3168", "-355/33", "46732/5247", "49/176", "-5103/18656", 0, 0],
    ["35/384", 0, "500/1113", "125/192", "-2187/6784", "11/84", 0],
])  # fmt: skip
DOPRI5_E = _fractions([["71/57600", 0, "-71/16695", "71/1920", "-17253/339200", "22/525",
                        "-1/40"]])[0]  # fmt: skip
# Hairer's CONTD5 dense output [3] expanded in powers of θ.
DOPRI5_B = _fractions([
    [1, "-8048581381/2820520608", "8663915743/2820520608", "-12715105075/11282082432"],
    [0, 0, 0, 0],
    [0, "131558114200/32700410799", "-68118460800/10900136933", "87487479700/32700410799"],
    [0, "-1754552775/470086768", "14199869525/1410260304", "-10690763975/1880347072"],
    [0, "127303824393/49829197408", "-318862633887/49829197408", "701980252875/199316789632"],
    [0, "-282668133/205662961", "2019193451/616988883", "-1453857185/822651844"],
    [0, "40617522/29380423", "-110615467/29380423", "69997945/29380423"],
])  # fmt: skip

# Floating-point licences of the compiled integrator: fused multiply-add, reassociation of sums,
# reciprocals, and no distinction of signed zeros; never the assumption that values are finite
# (the error test must see NaN and infinity).
_FASTMATH = {"contract", "reassoc", "arcp", "nsz"}

# Step-size control (module docstring).
BETA = 0.04
_EXPO = 0.2 - 0.75 * BETA
_SAFE, _FAC_MIN, _FAC_MAX = 0.9, 0.2, 10.0
_LOG_ERR_FLOOR = math.log(1e-4)

# Stiffness detection (Hairer et al. [3]_, §IV.2; DOPRI5's test): after an accepted step the
# two last stages, both evaluated at t + h, give h·|λ| ≈ h ‖f(Y_b) − f(Y_a)‖ / ‖Y_b − Y_a‖, an
# estimate of the dominant eigenvalue along the direction the step actually took. A value
# beyond the pair's stability boundary on the negative real axis on STIFF_COUNT accepted steps
# (NONSTIFF_RESET steps below it reset the count) means the step is limited by stability, not
# accuracy: the integrator then returns STATUS_STIFF so that the caller switches to Rodas4.
STIFF_COUNT, NONSTIFF_RESET = 15, 6
TSIT5_STABILITY = 3.5
"""|R(z)| = 1 on the negative real axis at z ≈ −3.5 for Tsitouras 5(4) (tests compute it)."""


# ---------------------------------------------------------------------------- the integrator
# Everything below is inlined by numba itself (``inline="always"``) into one compiled function
# per pair (:func:`tsit5`, :func:`dopri5`): the tableau is then a compile-time constant, the
# stage sums are unrolled with constant coefficients, and nothing in the step loop is an
# out-of-line call (LLVM cannot inline a callee that numba loaded from its on-disk cache).
@numba.njit(inline="always", error_model="numpy", fastmath=_FASTMATH)
def _stage(s, a, k, y, h, out):  # pragma: no cover - compiled
    """Stage input ``out = y + h Σ_{m<s} a[s, m] k[m]``, written out for each ``s``."""
    for i in range(y.shape[0]):
        if s == 1:
            acc = a[1, 0] * k[0, i]
        elif s == 2:
            acc = a[2, 0] * k[0, i] + a[2, 1] * k[1, i]
        elif s == 3:
            acc = a[3, 0] * k[0, i] + a[3, 1] * k[1, i] + a[3, 2] * k[2, i]
        elif s == 4:
            acc = a[4, 0] * k[0, i] + a[4, 1] * k[1, i] + a[4, 2] * k[2, i] + a[4, 3] * k[3, i]
        elif s == 5:
            acc = (a[5, 0] * k[0, i] + a[5, 1] * k[1, i] + a[5, 2] * k[2, i]
                   + a[5, 3] * k[3, i] + a[5, 4] * k[4, i])  # fmt: skip
        else:
            acc = (a[6, 0] * k[0, i] + a[6, 1] * k[1, i] + a[6, 2] * k[2, i]
                   + a[6, 3] * k[3, i] + a[6, 4] * k[4, i] + a[6, 5] * k[5, i])  # fmt: skip
        out[i] = y[i] + h * acc


@numba.njit(inline="always", error_model="numpy", fastmath=_FASTMATH)
def _error_norm(e, k, y, yn, h, rtol, atol):  # pragma: no cover - compiled
    """Weighted RMS norm of the error estimate ``h Σ_m e[m] k[m]``."""
    n = y.shape[0]
    err = 0.0
    for i in range(n):
        d = (e[0] * k[0, i] + e[1] * k[1, i] + e[2] * k[2, i] + e[3] * k[3, i]
             + e[4] * k[4, i] + e[5] * k[5, i] + e[6] * k[6, i])  # fmt: skip
        err += (h * d / (atol[i] + rtol * max(abs(y[i]), abs(yn[i])))) ** 2
    return math.sqrt(err / n)


@numba.njit(inline="always", error_model="numpy", fastmath=_FASTMATH)
def stiffness_count(h, fa, fb, ya, yb, limit, n_stiff, n_calm, rtol, atol):  # pragma: no cover
    """Update the counts of stiff and calm steps from h·‖fb − fa‖/‖yb − ya‖ against ``limit``.

    The norms weight each state by ``1/(atol_i + rtol |yb_i|)`` (for a linear problem the
    ratio then estimates an eigenvalue of D J D⁻¹, which has J's eigenvalues): unweighted, a
    state of 1e15 cells would hide the stiff direction of a state of a few cells. Returns
    ``(n_stiff, n_calm)``; the caller switches when ``n_stiff`` reaches :data:`STIFF_COUNT`.
    """
    num, den = 0.0, 0.0
    for i in range(fa.shape[0]):
        weight = 1.0 / (atol[i] + rtol * abs(yb[i]))
        num += (weight * (fb[i] - fa[i])) ** 2
        den += (weight * (yb[i] - ya[i])) ** 2
    if den > 0.0 and h * math.sqrt(num / den) > limit:
        return n_stiff + 1, 0
    n_calm += 1
    if n_calm >= NONSTIFF_RESET:
        n_stiff = 0
    return n_stiff, n_calm


@numba.njit(inline="always", error_model="numpy", fastmath=_FASTMATH)
def _dense(bd, t, t_new, h, y, yn, k, bt, t_out, j, states):  # pragma: no cover - compiled
    """Continuous extension at every output time in (t, t_new]; returns the next index."""
    n = y.shape[0]
    while j < t_out.shape[0] and t_out[j] <= t_new:
        if t_out[j] == t_new:
            for i in range(n):
                states[j, i] = yn[i]
        else:
            th = (t_out[j] - t) / h
            for m in range(STAGES):
                bt[m] = th * (bd[m, 0] + th * (bd[m, 1] + th * (bd[m, 2] + th * bd[m, 3])))
            for i in range(n):
                acc = 0.0
                for m in range(STAGES):
                    acc += bt[m] * k[m, i]
                states[j, i] = y[i] + h * acc
        j += 1
    return j


# fmt: off
@numba.njit(inline="always", error_model="numpy", fastmath=_FASTMATH)
def _erk(c, a, e, bd, rhs, t, t_end, y, p, phase, t_out, j, states, rtol, atol, h, steps,
         max_steps, w, bt, stiff_limit):  # pragma: no cover - compiled
    """The step loop of :func:`tsit5` and :func:`dopri5` for the pair ``(c, a, e, bd)``."""
    n = y.shape[0]
    # Views created once per segment (each view in the step loop would cost a reference-count
    # update); ``w`` is private to the calling thread.
    k1, k2, k3, k4, k5, k6, k7, yt, yn = w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8]
    if not (call_rhs(rhs, t, y, p, phase, k1) and all_finite(k1)):
        return STATUS_NONFINITE, t, j, h, steps
    if h <= 0.0:
        h = initial_step(rhs, t, t_end, y, p, phase, k1, rtol, atol, 5, yt, k2)
    log_old, rejected, nonfinite = _LOG_ERR_FLOOR, False, False
    n_stiff, n_calm = 0, 0
    while True:
        if steps >= max_steps:
            return STATUS_MAX_STEPS, t, j, h, steps
        if too_small(h, t, t_end):
            return (STATUS_NONFINITE if nonfinite else STATUS_STEP_TOO_SMALL), t, j, h, steps
        last = t + 1.01 * h >= t_end
        if last:
            h = t_end - t
        steps += 1
        _stage(1, a, w, y, h, yt)
        ok = call_rhs(rhs, t + c[1] * h, yt, p, phase, k2)
        _stage(2, a, w, y, h, yt)
        ok &= call_rhs(rhs, t + c[2] * h, yt, p, phase, k3)
        _stage(3, a, w, y, h, yt)
        ok &= call_rhs(rhs, t + c[3] * h, yt, p, phase, k4)
        _stage(4, a, w, y, h, yt)
        ok &= call_rhs(rhs, t + c[4] * h, yt, p, phase, k5)
        _stage(5, a, w, y, h, yt)
        ok &= call_rhs(rhs, t + c[5] * h, yt, p, phase, k6)
        _stage(6, a, w, y, h, yn)
        ok &= call_rhs(rhs, t + h, yn, p, phase, k7)
        err = _error_norm(e, w, y, yn, h, rtol, atol)
        if not (ok and math.isfinite(err)):
            nonfinite, rejected, h = True, True, 0.25 * h
            continue
        log_err = math.log(err) if err > 0.0 else -700.0
        if err > 1.0:
            rejected = True
            h *= max(_FAC_MIN, _SAFE * math.exp(-_EXPO * log_err))
            continue
        t_new = t_end if last else t + h
        if j < t_out.shape[0] and t_out[j] <= t_new:
            j = _dense(bd, t, t_new, h, y, yn, w, bt, t_out, j, states)
        if stiff_limit > 0.0:  # stages 6 and 7 both sit at t + h (c_6 = c_7 = 1)
            n_stiff, n_calm = stiffness_count(h, k6, k7, yt, yn, stiff_limit, n_stiff, n_calm,
                                              rtol, atol)
        for i in range(n):
            y[i] = yn[i]
            k1[i] = k7[i]  # first same as last
        t = t_new
        fac = min(_FAC_MAX, max(_FAC_MIN, _SAFE * math.exp(BETA * log_old - _EXPO * log_err)))
        h = h * min(fac, 1.0) if rejected else h * fac
        log_old, rejected, nonfinite = max(log_err, _LOG_ERR_FLOOR), False, False
        if last:
            return STATUS_SUCCESS, t, j, h, steps
        if n_stiff >= STIFF_COUNT:
            return STATUS_STIFF, t, j, h, steps
# fmt: on


_SIGNATURE_DOC = """Integrate (t, t_end] with the {name} pair; returns (status, t, j, h, steps).

    ``rhs`` is the model's native address; ``w`` is a work array of at least 9 rows (stages,
    stage input, new solution), ``bt`` one of ``STAGES`` entries; ``y`` is advanced in place.
    Rows ``j..`` of ``states`` at output times up to ``t_end`` are filled. ``h <= 0`` selects
    the starting step; ``steps`` counts accepted and rejected steps against ``max_steps``.
    With ``stiff_limit > 0`` the integrator stops early with ``STATUS_STIFF`` at the reached
    time ``t`` once the stiffness test (module docstring) exceeds ``stiff_limit`` on
    ``STIFF_COUNT`` accepted steps.
    """


# fmt: off
@numba.njit(cache=True, error_model="numpy", fastmath=_FASTMATH)
def tsit5(rhs, t, t_end, y, p, phase, t_out, j, states, rtol, atol, h, steps, max_steps, w,
          bt, stiff_limit):  # pragma: no cover - compiled
    return _erk(TSIT5_C, TSIT5_A, TSIT5_E, TSIT5_B, rhs, t, t_end, y, p, phase, t_out, j,
                states, rtol, atol, h, steps, max_steps, w, bt, stiff_limit)


@numba.njit(cache=True, error_model="numpy", fastmath=_FASTMATH)
def dopri5(rhs, t, t_end, y, p, phase, t_out, j, states, rtol, atol, h, steps, max_steps, w,
           bt, stiff_limit):  # pragma: no cover - compiled
    return _erk(DOPRI5_C, DOPRI5_A, DOPRI5_E, DOPRI5_B, rhs, t, t_end, y, p, phase, t_out, j,
                states, rtol, atol, h, steps, max_steps, w, bt, stiff_limit)
# fmt: on


tsit5.__doc__ = _SIGNATURE_DOC.format(name="Tsitouras 5(4)")
dopri5.__doc__ = _SIGNATURE_DOC.format(name="Dormand–Prince 5(4)")
