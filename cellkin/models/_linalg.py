"""Small dense linear algebra and Jacobians for the Rosenbrock integrator (compiled).

The states of cellkin's models number a handful, so an unblocked LU factorisation with
partial pivoting is all the Rosenbrock method needs; the Jacobian comes from the model's
``jac`` kernel or from forward differences with the step ``√ε·max(|y_c|, 1e-8)`` (Hairer &
Wanner II, §IV.7), and ∂f/∂t from a forward difference of ``√ε·max(|t|, 1)``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

# After editing this module, touch _rodas4.py and solvers.py (numba's cache, see solvers.py).
from cellkin.models._native import call_jac, call_rhs

_SQRT_EPS = math.sqrt(np.finfo(np.float64).eps)


@numba.njit(cache=True, error_model="numpy")
def lu_factor(a, piv):  # pragma: no cover - compiled
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
def lu_solve(a, piv, b):  # pragma: no cover - compiled
    """Solve ``A x = b`` in place, ``a``/``piv`` from :func:`lu_factor`."""
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
def jacobian(rhs, jac, has_jac, t, y, p, phase, f0, jmat, dfdt, yt, ft):  # pragma: no cover
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
