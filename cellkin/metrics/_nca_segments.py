"""Segment rules of NCA integration and interpolation, compiled (private).

Between two samples ``(t1, c1)`` and ``(t2, c2)`` the level is linear, or log-linear
(``c1·(c2/c1)^f``) when the method says so and both ends are positive and differ:
``linear`` never, ``linup-logdown`` on falling segments, ``log`` on every such segment.

* AUC: ``Δt(c1 + c2)/2`` or ``Δt(c1 − c2)/ln(c1/c2)``;
* AUMC (first moment): PKNCA's trapezoid of ``t·c``, ``Δt(t1c1 + t2c2)/2``, or the exact
  integral of ``t·c(t)`` on a log segment, ``Δt(t1c1 − t2c2)/L + Δt²(c1 − c2)/L²`` with
  ``L = ln(c1/c2)``;
* time above a level: the part of each segment where the interpolated level is ``>=`` it
  (PKNCA ``pk.calc.time_above``).
"""

from __future__ import annotations

import math

import numba

AUC_LINEAR, AUC_LINUP_LOGDOWN, AUC_LOG = 0, 1, 2


@numba.njit(cache=True)
def segment_is_log(c1, c2, method):  # pragma: no cover - compiled
    if c1 <= 0.0 or c2 <= 0.0 or c1 == c2:
        return False
    if method == AUC_LOG:
        return True
    return method == AUC_LINUP_LOGDOWN and c2 < c1


@numba.njit(cache=True)
def interpolate(t1, c1, t2, c2, x, method):  # pragma: no cover - compiled
    if t2 == t1:
        return c2
    fraction = (x - t1) / (t2 - t1)
    if segment_is_log(c1, c2, method):
        return c1 * math.exp(fraction * math.log(c2 / c1))
    return c1 + fraction * (c2 - c1)


@numba.njit(cache=True)
def segment_area(t1, c1, t2, c2, method):  # pragma: no cover - compiled
    dt = t2 - t1
    if segment_is_log(c1, c2, method):
        return dt * (c1 - c2) / math.log(c1 / c2)
    return 0.5 * dt * (c1 + c2)


@numba.njit(cache=True)
def segment_moment(t1, c1, t2, c2, method):  # pragma: no cover - compiled
    dt = t2 - t1
    if segment_is_log(c1, c2, method):
        ratio = math.log(c1 / c2)
        return dt * (t1 * c1 - t2 * c2) / ratio + dt * dt * (c1 - c2) / (ratio * ratio)
    return 0.5 * dt * (t1 * c1 + t2 * c2)


@numba.njit(cache=True)
def _integral(t, c, start, end, method, moment):  # pragma: no cover - compiled
    total = 0.0
    for k in range(t.shape[0] - 1):
        t1, t2 = t[k], t[k + 1]
        if t2 <= start or t1 >= end or t2 == t1:
            continue
        a, b = max(t1, start), min(t2, end)
        ca = c[k] if a == t1 else interpolate(t1, c[k], t2, c[k + 1], a, method)
        cb = c[k + 1] if b == t2 else interpolate(t1, c[k], t2, c[k + 1], b, method)
        if moment:
            total += segment_moment(a, ca, b, cb, method)
        else:
            total += segment_area(a, ca, b, cb, method)
    return total


@numba.njit(cache=True)
def auc_between(t, c, start, end, method):  # pragma: no cover - compiled
    """AUC of the profile (t, c) from ``start`` to ``end``, both within [t[0], t[-1]]."""
    return _integral(t, c, start, end, method, False)


@numba.njit(cache=True)
def moment_between(t, c, start, end, method):  # pragma: no cover - compiled
    """AUMC (area under t·C) of the profile from ``start`` to ``end``."""
    return _integral(t, c, start, end, method, True)


@numba.njit(cache=True)
def _crossing_fraction(c1, c2, level, method):  # pragma: no cover - compiled
    if segment_is_log(c1, c2, method):
        return math.log(level / c1) / math.log(c2 / c1)
    return (level - c1) / (c2 - c1)


@numba.njit(cache=True)
def time_above(t, c, level, method):  # pragma: no cover - compiled
    """Time during which the interpolated profile is at or above ``level`` (NaN with fewer
    than two points)."""
    if t.shape[0] < 2:
        return math.nan
    total = 0.0
    for k in range(t.shape[0] - 1):
        c1, c2, dt = c[k], c[k + 1], t[k + 1] - t[k]
        if c1 >= level and c2 >= level:
            total += dt
        elif c1 >= level or c2 >= level:
            fraction = _crossing_fraction(c1, c2, level, method)
            total += dt * (fraction if c1 >= level else 1.0 - fraction)
    return total
