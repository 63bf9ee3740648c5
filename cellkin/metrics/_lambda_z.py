"""Terminal slope λz of one profile, compiled (private).

PKNCA's rule (``pk.calc.half.life``, Denney et al. 2015, doi:10.1007/s10928-015-9432-2), for
the candidate points (quantified, positive, after Tmax — or from Tmax on when allowed — and
not excluded):

1. every window of the last ``k >= min_points`` candidates is fitted by least squares of
   ``ln C`` on ``t``; adjusted ``R² = 1 − (1 − R²)(k − 1)/(k − 2)`` (undefined for ``k = 2``);
2. the best adjusted R² is taken over **all** windows, declining or not;
3. the chosen window has ``λz > 0`` and an adjusted R² greater than that best minus the
   tolerance; among those, the one with most points. None → no λz (PKNCA returns NA then,
   e.g. when the best fit rises);
4. with ``min_points = 2`` and exactly two candidates, that pair is used (PKNCA #114).

Manually included points are fitted as given (no window search); a fit that does not
decline gives no λz. A profile whose positive levels are all equal has no λz (PKNCA #503).
A fitted change in ``ln C`` over the window within round-off (``≤ 64·ε·(1 + max|ln C|)``)
counts as no decline, so equal values never give λz ≈ 1e-33 and a half-life of 1e33 days.

Written here (not taken from a library) because it must run inside the compiled per-profile
NCA kernel; SciPy's ``linregress`` gives the same numbers for one window (tested).
"""

from __future__ import annotations

import math

import numba
import numpy as np

OK = 0
TOO_FEW = 1
NO_DECLINE = 2
NO_VARIABILITY = 3
MANUAL_TOO_FEW = 4
MANUAL_NOT_DECLINING = 5
MANUAL_EMPTY = 6

_ROUNDOFF = 64.0 * np.finfo(np.float64).eps


@numba.njit(cache=True)
def fit_log_linear(t, c, start, stop):  # pragma: no cover - compiled
    """Least squares of ``ln c`` on ``t`` over ``[start, stop)``:
    ``(slope, intercept, r2, corrxy)``; a slope within round-off of 0 is 0."""
    n = stop - start
    mean_t, mean_y, scale = 0.0, 0.0, 0.0
    for k in range(start, stop):
        y = math.log(c[k])
        mean_t += t[k]
        mean_y += y
        scale = max(scale, abs(y))
    mean_t /= n
    mean_y /= n
    sxx, sxy, syy = 0.0, 0.0, 0.0
    for k in range(start, stop):
        dt, dy = t[k] - mean_t, math.log(c[k]) - mean_y
        sxx += dt * dt
        sxy += dt * dy
        syy += dy * dy
    if sxx <= 0.0:
        return math.nan, math.nan, math.nan, math.nan
    slope = sxy / sxx
    if abs(slope) * (t[stop - 1] - t[start]) <= _ROUNDOFF * (1.0 + scale):
        return 0.0, mean_y, 0.0, 0.0
    r2 = sxy * sxy / (sxx * syy)
    return slope, mean_y - slope * mean_t, r2, sxy / math.sqrt(sxx * syy)


@numba.njit(cache=True)
def adjusted_r2(r2, n):  # pragma: no cover - compiled
    """Adjusted R² of an n-point fit (NaN for n <= 2)."""
    if n <= 2:
        return math.nan
    return 1.0 - (1.0 - r2) * (n - 1) / (n - 2)


@numba.njit(cache=True)
def _result(t, c, start, code):  # pragma: no cover - compiled
    """(code, λz, r2, adjusted r2, corrxy, n, first time, last time, intercept)."""
    n = t.shape[0]
    slope, intercept, r2, corr = fit_log_linear(t, c, start, n)
    adj = adjusted_r2(r2, n - start)
    return code, -slope, r2, adj, corr, n - start, t[start], t[n - 1], intercept


@numba.njit(cache=True)
def _failed(code):  # pragma: no cover - compiled
    nan = math.nan
    return code, nan, nan, nan, nan, nan, nan, nan, nan


@numba.njit(cache=True)
def automatic(t, c, min_points, tolerance):  # pragma: no cover - compiled
    """PKNCA's automatic selection on the candidates (t, c), sorted by time."""
    n = t.shape[0]
    if n < min_points:
        return _failed(TOO_FEW)
    if n == 2:  # only possible with min_points == 2: the pair, if it declines
        slope = fit_log_linear(t, c, 0, 2)[0]
        return _result(t, c, 0, OK) if slope < 0.0 else _failed(NO_DECLINE)
    slopes = np.full(n, math.nan)
    adj = np.full(n, math.nan)
    best = -math.inf
    for start in range(n - min_points, -1, -1):
        slope, _, r2, _ = fit_log_linear(t, c, start, n)
        slopes[start] = slope
        adj[start] = adjusted_r2(r2, n - start)
        if adj[start] > best:
            best = adj[start]
    for start in range(n - min_points + 1):  # most points first
        if slopes[start] < 0.0 and adj[start] > best - tolerance:
            return _result(t, c, start, OK)
    return _failed(NO_DECLINE)


@numba.njit(cache=True)
def manual(t, c):  # pragma: no cover - compiled
    """The fit of exactly the given points."""
    n = t.shape[0]
    if n == 0:
        return _failed(MANUAL_EMPTY)
    if n < 2:
        return _failed(MANUAL_TOO_FEW)
    result = _result(t, c, 0, OK)
    if not result[1] > 0.0:
        return _failed(MANUAL_NOT_DECLINING)
    return result


@numba.njit(cache=True)
def flat(values, usable):  # pragma: no cover - compiled
    """True when at least two usable levels exist and all are equal (no variability)."""
    first, count = math.nan, 0
    for i in range(values.shape[0]):
        if usable[i]:
            if count == 0:
                first = values[i]
            elif values[i] != first:
                return False
            count += 1
    return count >= 2
