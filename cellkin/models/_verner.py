r"""Verner's "most efficient" 7(6) Runge–Kutta pair with its order-7 continuous extension.

The higher-order explicit pair of cellkin, for tight tolerances (rtol below about 1e-6), where
a fifth-order pair needs many more steps: at rtol 1e-8 Tsitouras 5(4) takes about twice the
evaluations of the right-hand side on León-Triana 2021 (issue #19).

**The pair** [1]_ (``RKV76.IIa``, coefficients from Verner's published table, 16-17
significant digits): ten stages :math:`k_s = f(t + c_s h,\ y + h \sum_{m<s} a_{sm} k_m)`,
the seventh-order solution :math:`y_1 = y + h \sum_{m \le 9} b_m k_m` (local extrapolation)
and the sixth-order solution :math:`\hat y_1` with weights :math:`\hat b` (stages 1, 4-7, 10)
for the error estimate :math:`h \sum_m (b_m - \hat b_m) k_m`. The pair is not FSAL: the first
stage of the next step, :math:`f(t + h, y_1)`, is evaluated after acceptance, so an accepted
step costs ten evaluations.

**Continuous extension** (order 7, Verner's interpolant): stage 11 *is*
:math:`f(t + h, y_1)` (:math:`a_{11,m} = b_m`), and stages 12-16 are evaluated only for a step
that contains an output time; then
:math:`y(t + \theta h) = y + h \sum_{m=1}^{16} k_m \sum_{q=1}^{7} D_{mq} \theta^q`.

**Error control** as in :mod:`cellkin.models._erk` (weighted RMS norm, PI controller with
:math:`\beta = 0.04`) with the exponent :math:`1/7 - 0.75\beta` of a sixth-order estimate.

**Stiffness detection**: stages 9 and 10 both sit at :math:`t + h`, so
:math:`h \|k_{10} - k_9\| / \|Y_{10} - Y_9\|` estimates :math:`h|\lambda|`, compared with the
pair's real stability boundary :data:`VERN7_STABILITY` (:func:`cellkin.models._erk.
stiffness_count`).

References
----------
.. [1] Verner JH. Numerically optimal Runge–Kutta pairs with interpolants. Numer Algorithms
       2010;53(2-3):383-396. doi:10.1007/s11075-009-9290-3 (coefficients: J. H. Verner,
       "RKV76.IIa Efficient" table, Simon Fraser University).
.. [2] Hairer E, Nørsett SP, Wanner G. Solving Ordinary Differential Equations I, 2nd ed.
       Springer 1993, §II.4-II.6. doi:10.1007/978-3-540-78862-1
"""

from __future__ import annotations

import math

import numba
import numpy as np

# After editing this module, _erk.py or _native.py, touch solvers.py (numba's cache).
from cellkin.models._erk import STIFF_COUNT, stiffness_count
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

STAGES = 10
"""Stages of a step (the continuous extension adds six, the first of which is reused)."""
_EXTENDED = 16
ROWS = _EXTENDED + 3
"""Rows of the work array: 16 stages, the inputs of stages 9 and 10, the new solution."""

# fmt: off
VERN7_C = np.array([0.0, 0.005, 0.10888888888888888, 0.16333333333333333, 0.4555,
    0.6095094489978381, 0.884, 0.925, 1.0, 1.0, 1.0, 0.29, 0.125, 0.25, 0.53, 0.79])
VERN7_A = np.zeros((_EXTENDED, _EXTENDED))
VERN7_A[1, [0]] = [0.005]
VERN7_A[2, [0, 1]] = [-1.07679012345679, 1.185679012345679]
VERN7_A[3, [0, 2]] = [0.04083333333333333, 0.1225]
VERN7_A[4, [0, 2, 3]] = [0.6389139236255726, -2.455672638223657, 2.272258714598084]
VERN7_A[5, [0, 2, 3, 4]] = [-2.6615773750187572, 10.804513886456137, -8.3539146573962,
    0.820487594956657]
VERN7_A[6, [0, 2, 3, 4, 5]] = [6.067741434696771, -24.711273635911084, 20.427517930788895,
    -1.9061579788166472, 1.006172249242068]
VERN7_A[7, [0, 2, 3, 4, 5, 6]] = [12.054670076253203, -49.75478495046899, 41.142888638604674,
    -4.461760149974004, 2.042334822239175, -0.09834843665406108]
VERN7_A[8, [0, 2, 3, 4, 5, 6, 7]] = [10.138146522881808, -42.6411360317175, 35.76384003992257,
    -4.3480228403929075, 2.0098622683770357, 0.3487490460338272, -0.27143900510483127]
VERN7_A[9, [0, 2, 3, 4, 5, 6]] = [-45.030072034298676, 187.3272437654589, -154.02882369350186,
    18.56465306347536, -7.141809679295079, 1.3088085781613785]
VERN7_A[10, [0, 3, 4, 5, 6, 7, 8]] = [0.04715561848627222, 0.25750564298434153, 0.2621665397741262,
    0.15216092656738558, 0.49399691700324844, -0.29430311714032503, 0.0813174723249511]
VERN7_A[11, [0, 3, 4, 5, 6, 7, 8, 10]] = [0.0523222769159969, 0.22495861826705715,
    0.017443709248776376, -0.007669379876829393, 0.03435896044073285, -0.0410209723009395,
    0.025651133005205617, -0.0160443457]
VERN7_A[12, [0, 3, 4, 5, 6, 7, 8, 10, 11]] = [0.053053341257859085, 0.12195301011401886,
    0.017746840737602496, -0.0005928372667681495, 0.008381833970853752, -0.01293369259698612,
    0.009412056815253861, -0.005353253107275676, -0.06666729992455811]
VERN7_A[13, [0, 3, 4, 5, 6, 7, 8, 10, 11, 12]] = [0.03887903257436304, -0.0024403203308301317,
    -0.0013928917214672623, -0.00047446291558680135, 0.00039207932413159514,
    -0.00040554733285128004, 0.00019897093147716726, -0.00010278198793179169, 0.03385661513870267,
    0.1814893063199928]
VERN7_A[14, [0, 3, 4, 5, 6, 7, 8, 10, 11, 12]] = [0.05723681204690013, 0.22265948066761182,
    0.12344864200186899, 0.04006332526666491, -0.05269894848581452, 0.04765971214244523,
    -0.02138895885042213, 0.015193891064036402, 0.12060546716289655, -0.022779423016187374]
VERN7_A[15, [0, 3, 4, 5, 6, 7, 8, 10, 11, 12]] = [0.051372038802756814, 0.5414214473439406,
    0.350399806692184, 0.14193112269692182, 0.10527377478429423, -0.031081847805874016,
    -0.007401883149519145, -0.006377932504865363, -0.17325495908361865, -0.18228156777622026]
VERN7_B = np.array([0.04715561848627222, 0.0, 0.0, 0.25750564298434153, 0.2621665397741262,
    0.15216092656738558, 0.49399691700324844, -0.29430311714032503, 0.0813174723249511, 0.0])
VERN7_BH = np.array([0.044608606606341174, 0.0, 0.0, 0.26716403785713727, 0.2201018300177293,
    0.2188431703143157, 0.22898717054112028, 0.0, 0.0, 0.020295184663356284])
VERN7_D = np.zeros((_EXTENDED, 7))
VERN7_D[0] = [1.0, -8.413387198332767, 33.675508884490895, -70.80159089484886, 80.64695108301298,
    -47.19413969837522, 11.133813442539243]
VERN7_D[3] = [0.0, 8.754921980674396, -88.4596828699771, 346.9017638429916, -629.2580030059837,
    529.6773755604193, -167.35886986514018]
VERN7_D[4] = [0.0, 8.913387586637922, -90.06081846893218, 353.1807459217058, -640.6476819744374,
    539.2646279047156, -170.38809442991547]
VERN7_D[5] = [0.0, 5.1733120298478, -52.271115900055385, 204.9853867374073, -371.8306118563603,
    312.9880934374529, -98.89290352172495]
VERN7_D[6] = [0.0, 16.79537744079696, -169.70040000059728, 665.4937727009246, -1207.1638892336007,
    1016.1291515818546, -321.06001557237494]
VERN7_D[7] = [0.0, -10.005997536098665, 101.1005433052275, -396.47391512378437, 719.1787707014183,
    -605.3681033918824, 191.27439892797935]
VERN7_D[8] = [0.0, 2.764708833638599, -27.934602637390462, 109.54779186137893, -198.7128113064482,
    167.26633571640318, -52.85010499525706]
VERN7_D[10] = [0.0, -2.1696320280163506, 22.016696037569876, -86.90152427798948,
    159.22388973861476, -135.9618306534588, 43.792401183280006]
VERN7_D[11] = [0.0, -4.890070188793804, 22.75407737425176, -30.78034218537731, -2.797194317207249,
    31.369456637508403, -15.655927320381801]
VERN7_D[12] = [0.0, 10.862170929551967, -50.542971417827104, 68.37148040407511, 6.213326521632409,
    -69.68006323194157, 34.776056794509195]
VERN7_D[13] = [0.0, -11.37286691922923, 130.79058078246717, -488.65113677785604, 832.2148793276441,
    -664.7743368554426, 201.79288044241662]
VERN7_D[14] = [0.0, -5.919778732715007, 63.27679965889219, -265.432682088738, 520.1009254140611,
    -467.412109533902, 155.3868452824017]
VERN7_D[15] = [0.0, -10.492146197961823, 105.35538525188011, -409.43975011988937, 732.831448907654,
    -606.3044574733512, 188.0495196316683]
# fmt: on
VERN7_E = VERN7_B - VERN7_BH
VERN7_STABILITY = 4.6
"""|R(z)| = 1 on the negative real axis at z ≈ −4.6 for the 7(6) pair (the tests compute it)."""

_FASTMATH = {"contract", "reassoc", "arcp", "nsz"}
_BETA = 0.04
_EXPO = 1.0 / 7.0 - 0.75 * _BETA
_SAFE, _FAC_MIN, _FAC_MAX = 0.9, 0.2, 10.0
_LOG_ERR_FLOOR = math.log(1e-4)
_YT, _Y9, _YN = _EXTENDED, _EXTENDED + 1, _EXTENDED + 2


@numba.njit(inline="always", error_model="numpy", fastmath=_FASTMATH)
def _stage(s, w, y, h, out):  # pragma: no cover - compiled
    """Stage input ``out = y + h Σ_{m<s} a[s, m] k[m]`` (``s`` is a constant once inlined)."""
    for i in range(y.shape[0]):
        acc = 0.0
        for m in range(s):
            acc += VERN7_A[s, m] * w[m, i]
        out[i] = y[i] + h * acc


@numba.njit(inline="always", error_model="numpy", fastmath=_FASTMATH)
def _error_norm(w, y, yn, h, rtol, atol):  # pragma: no cover - compiled
    """Weighted RMS norm of ``h Σ_m e[m] k[m]``."""
    n = y.shape[0]
    err = 0.0
    for i in range(n):
        d = 0.0
        for m in range(STAGES):
            d += VERN7_E[m] * w[m, i]
        err += (h * d / (atol[i] + rtol * max(abs(y[i]), abs(yn[i])))) ** 2
    return math.sqrt(err / n)


@numba.njit(inline="always", error_model="numpy", fastmath=_FASTMATH)
def _dense(rhs, p, phase, t, t_new, h, y, w, bt, t_out, j, states):  # pragma: no cover
    """Stages 12-16 and the order-7 extension at every output time in (t, t_new].

    Returns the next index and False if a right-hand side failed (nothing written then).
    """
    n = y.shape[0]
    yt, yn = w[_YT], w[_YN]
    ok = True
    if t_out[j] < t_new:  # an output strictly inside the step needs the extra stages
        for s in range(11, _EXTENDED):
            _stage(s, w, y, h, yt)
            ok &= call_rhs(rhs, t + VERN7_C[s] * h, yt, p, phase, w[s])
        if not (ok and all_finite(w[_EXTENDED - 1])):
            return j, False
    while j < t_out.shape[0] and t_out[j] <= t_new:
        if t_out[j] == t_new:
            for i in range(n):
                states[j, i] = yn[i]
        else:
            th = (t_out[j] - t) / h
            for m in range(_EXTENDED):
                acc = 0.0
                for q in range(6, -1, -1):
                    acc = th * (VERN7_D[m, q] + acc)
                bt[m] = acc
            for i in range(n):
                acc = 0.0
                for m in range(_EXTENDED):
                    acc += bt[m] * w[m, i]
                states[j, i] = y[i] + h * acc
        j += 1
    return j, True


@numba.njit(inline="always", error_model="numpy", fastmath=_FASTMATH)
def _attempt(rhs, t, h, y, p, phase, w, rtol, atol):  # pragma: no cover - compiled
    """Stages 2-10 and the new solution of one step; returns (ok, error norm)."""
    yt, y9, yn = w[_YT], w[_Y9], w[_YN]
    ok = True
    for s in range(1, 8):
        _stage(s, w, y, h, yt)
        ok &= call_rhs(rhs, t + VERN7_C[s] * h, yt, p, phase, w[s])
    _stage(8, w, y, h, y9)
    ok &= call_rhs(rhs, t + h, y9, p, phase, w[8])
    _stage(9, w, y, h, yt)
    ok &= call_rhs(rhs, t + h, yt, p, phase, w[9])
    _stage(10, w, y, h, yn)  # a[10, :] = b: the new solution
    return ok, _error_norm(w, y, yn, h, rtol, atol)


# fmt: off
@numba.njit(cache=True, error_model="numpy", fastmath=_FASTMATH)
def vern7(rhs, t, t_end, y, p, phase, t_out, j, states, rtol, atol, h, steps, max_steps, w,
          bt, stiff_limit):  # pragma: no cover - compiled
    """Integrate (t, t_end] with the Verner 7(6) pair; returns (status, t, j, h, steps).

    Arguments as :func:`cellkin.models._erk.tsit5`; ``w`` needs :data:`ROWS` rows and ``bt``
    16 entries.
    """
    n = y.shape[0]
    k1, k9, k10, k11 = w[0], w[8], w[9], w[10]
    yt, y9, yn = w[_YT], w[_Y9], w[_YN]
    if not (call_rhs(rhs, t, y, p, phase, k1) and all_finite(k1)):
        return STATUS_NONFINITE, t, j, h, steps
    if h <= 0.0:
        h = initial_step(rhs, t, t_end, y, p, phase, k1, rtol, atol, 7, yt, k11)
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
        ok, err = _attempt(rhs, t, h, y, p, phase, w, rtol, atol)
        if not (ok and math.isfinite(err)):
            nonfinite, rejected, h = True, True, 0.25 * h
            continue
        log_err = math.log(err) if err > 0.0 else -700.0
        if err > 1.0:
            rejected = True
            h *= max(_FAC_MIN, _SAFE * math.exp(-_EXPO * log_err))
            continue
        t_new = t_end if last else t + h
        if stiff_limit > 0.0:
            n_stiff, n_calm = stiffness_count(h, k9, k10, y9, yt, stiff_limit, n_stiff, n_calm,
                                              rtol, atol)
        ok = call_rhs(rhs, t_new, yn, p, phase, k11)  # stage 11 = next step's first stage
        if j < t_out.shape[0] and t_out[j] <= t_new:
            j, dense_ok = _dense(rhs, p, phase, t, t_new, h, y, w, bt, t_out, j, states)
            ok &= dense_ok
        for i in range(n):
            y[i] = yn[i]
            k1[i] = k11[i]
        t = t_new
        if not (ok and all_finite(k1)):
            return STATUS_NONFINITE, t, j, h, steps
        fac = min(_FAC_MAX, max(_FAC_MIN, _SAFE * math.exp(_BETA * log_old - _EXPO * log_err)))
        h = h * min(fac, 1.0) if rejected else h * fac
        log_old, rejected, nonfinite = max(log_err, _LOG_ERR_FLOOR), False, False
        if last:
            return STATUS_SUCCESS, t, j, h, steps
        if n_stiff >= STIFF_COUNT:
            return STATUS_STIFF, t, j, h, steps
# fmt: on
