"""Compiled per-profile NCA computations (private).

One call of :func:`nca_profiles` processes every subject × assay profile of a study in
parallel. Profiles are contiguous slices (``offsets``) of time-sorted post-infusion samples.
The kernel never raises: a metric that cannot be computed is NaN and its slot in ``reasons``
holds a code from :data:`REASONS` (0 = computed), which the Python layer turns into words.

Conventions (documented in :func:`cellkin.metrics.nca.nca`):

* BLQ rules — positional (PKNCA default: leading BLQ → 0, embedded BLQ dropped, first
  trailing BLQ → 0 and later ones dropped), zero, LLOQ/2, drop.
* AUC segments — linear, lin-up/log-down, or log (log trapezoid whenever both ends are > 0
  and differ); interval ends that fall between samples are interpolated consistently with the
  segment's method.
* λz — PKNCA's rule: windows of the last n ≥ 3 quantifiable points ending at Tlast and
  starting after Tmax, λz > 0; among fits whose adjusted R² is within 1e-4 of the best, the
  one with the most points.
"""

from __future__ import annotations

import math

import numba
import numpy as np

AUC_LINEAR, AUC_LINUP_LOGDOWN, AUC_LOG = 0, 1, 2
BLQ_POSITIONAL, BLQ_ZERO, BLQ_HALF_LLOQ, BLQ_DROP = 0, 1, 2, 3
ADJ_R2_TOLERANCE = 1e-4

# Reason codes (index into REASONS).
OK = 0
NO_QUANTIFIABLE = 1
INTERVAL_BEFORE_FIRST = 2
INTERVAL_AFTER_LAST = 3
TOO_FEW_LAMBDA_POINTS = 4
NO_NEGATIVE_SLOPE = 5
NO_LAMBDA_Z = 6
NO_SAMPLES = 7
NO_SAMPLE_AFTER_TMAX = 8
REASONS = (
    "",
    "no quantifiable sample after infusion",
    "interval starts before the first sample",
    "interval ends after the last sample",
    "fewer than 3 quantifiable samples after Tmax for lambda_z",
    "no terminal window with a decreasing log-linear fit (lambda_z <= 0)",
    "lambda_z not estimable",
    "no sample after infusion",
    "no sample after Tmax",
)

# Column layout of the float output matrix.
F_CMAX, F_TMAX, F_CLAST, F_TLAST, F_AUC_LAST = 0, 1, 2, 3, 4
F_LAMBDA_Z, F_R2, F_R2_ADJ, F_N_LAMBDA, F_LZ_FIRST, F_LZ_LAST = 5, 6, 7, 8, 9, 10
F_CLAST_PRED, F_AUC_INF, F_TBB_OBS, F_TBB_INTERP, F_TBB_THRESHOLD, F_LAST_TIME = (
    11,
    12,
    13,
    14,
    15,
    16,
)
F_TBB_CENSORED, F_FIRST_TIME = 17, 18
N_FLOAT = 19
# Reason slots.
R_CMAX, R_LAMBDA, R_TBB = 0, 1, 2
N_REASON = 3


@numba.njit(cache=True)
def _segment_is_log(c1: float, c2: float, method: int) -> bool:  # pragma: no cover
    if c1 <= 0.0 or c2 <= 0.0 or c1 == c2:
        return False
    if method == AUC_LOG:
        return True
    return method == AUC_LINUP_LOGDOWN and c2 < c1


@numba.njit(cache=True)
def _interpolate(t1, c1, t2, c2, x, method):  # pragma: no cover - compiled
    if t2 == t1:
        return c2
    fraction = (x - t1) / (t2 - t1)
    if _segment_is_log(c1, c2, method):
        return c1 * math.exp(fraction * math.log(c2 / c1))
    return c1 + fraction * (c2 - c1)


@numba.njit(cache=True)
def _segment_area(t1, c1, t2, c2, method):  # pragma: no cover - compiled
    dt = t2 - t1
    if _segment_is_log(c1, c2, method):
        return dt * (c1 - c2) / math.log(c1 / c2)
    return 0.5 * dt * (c1 + c2)


@numba.njit(cache=True)
def auc_between(t, c, start, end, method):  # pragma: no cover - compiled
    """AUC of the profile (t, c) from ``start`` to ``end``, both within [t[0], t[-1]]."""
    total = 0.0
    for k in range(t.shape[0] - 1):
        t1, t2 = t[k], t[k + 1]
        if t2 <= start or t1 >= end or t2 == t1:
            continue
        a, b = max(t1, start), min(t2, end)
        ca = c[k] if a == t1 else _interpolate(t1, c[k], t2, c[k + 1], a, method)
        cb = c[k + 1] if b == t2 else _interpolate(t1, c[k], t2, c[k + 1], b, method)
        total += _segment_area(a, ca, b, cb, method)
    return total


@numba.njit(cache=True)
def apply_blq_rule(t, v, blq, lloq, rule, keep_t, keep_c):  # pragma: no cover
    """Write the samples entering the analysis; returns how many were kept."""
    n = t.shape[0]
    first, last = -1, -1
    for i in range(n):
        if not blq[i]:
            if first < 0:
                first = i
            last = i
    m = 0
    trailing_seen = False
    for i in range(n):
        if not blq[i]:
            value = v[i]
        elif rule == BLQ_DROP:
            continue
        elif rule == BLQ_ZERO:
            value = 0.0
        elif rule == BLQ_HALF_LLOQ:
            value = 0.5 * lloq[i]
        elif first < 0 or i < first:  # positional, leading (or all) BLQ
            value = 0.0
        elif i < last:  # positional, embedded
            continue
        elif not trailing_seen:  # positional, first trailing
            trailing_seen = True
            value = 0.0
        else:
            continue
        keep_t[m] = t[i]
        keep_c[m] = value
        m += 1
    return m


@numba.njit(cache=True)
def _fit_log_linear(t, c, start, stop):  # pragma: no cover - compiled
    """Least squares of ln c on t over [start, stop): (slope, intercept, r2)."""
    n = stop - start
    mean_t, mean_y = 0.0, 0.0
    for k in range(start, stop):
        mean_t += t[k]
        mean_y += math.log(c[k])
    mean_t /= n
    mean_y /= n
    sxx, sxy, syy = 0.0, 0.0, 0.0
    for k in range(start, stop):
        dt, dy = t[k] - mean_t, math.log(c[k]) - mean_y
        sxx += dt * dt
        sxy += dt * dy
        syy += dy * dy
    if sxx <= 0.0:
        return math.nan, math.nan, math.nan
    slope = sxy / sxx
    r2 = 1.0 if syy == 0.0 else sxy * sxy / (sxx * syy)
    return slope, mean_y - slope * mean_t, r2


@numba.njit(cache=True)
def lambda_z(t, c, out):  # pragma: no cover - compiled
    """Best terminal fit on candidate points (t, c); fills out[F_LAMBDA_Z..F_CLAST_PRED]."""
    n = t.shape[0]
    if n < 3:
        return TOO_FEW_LAMBDA_POINTS
    best_adj, best_start = -math.inf, -1
    adj = np.full(n, -math.inf)
    for start in range(n - 3, -1, -1):
        slope, _, r2 = _fit_log_linear(t, c, start, n)
        points = n - start
        if slope < 0.0:
            adj[start] = 1.0 - (1.0 - r2) * (points - 1) / (points - 2)
            best_adj = max(best_adj, adj[start])
    if best_adj == -math.inf:
        return NO_NEGATIVE_SLOPE
    for start in range(n - 2):  # most points among those within tolerance of the best
        if adj[start] >= best_adj - ADJ_R2_TOLERANCE:
            best_start = start
            break
    slope, intercept, r2 = _fit_log_linear(t, c, best_start, n)
    out[F_LAMBDA_Z] = -slope
    out[F_R2] = r2
    out[F_R2_ADJ] = adj[best_start]
    out[F_N_LAMBDA] = n - best_start
    out[F_LZ_FIRST] = t[best_start]
    out[F_LZ_LAST] = t[n - 1]
    out[F_CLAST_PRED] = math.exp(intercept + slope * t[n - 1])
    return OK


@numba.njit(cache=True)
def _time_back_to_baseline(t, v, blq, lloq, tmax, baseline, out):  # pragma: no cover
    """Observed and interpolated first crossing of max(baseline, LLOQ) after Tmax."""
    previous = -1
    for i in range(t.shape[0]):
        if t[i] <= tmax:
            previous = i
            continue
        threshold = max(baseline, lloq[i]) if baseline == baseline else lloq[i]
        if blq[i] or v[i] <= threshold:
            out[F_TBB_OBS] = t[i]
            out[F_TBB_THRESHOLD] = threshold
            out[F_TBB_CENSORED] = 0.0
            level = threshold if blq[i] else v[i]
            above = v[previous] if previous >= 0 else 0.0
            if previous < 0 or level <= 0.0 or above <= level:
                out[F_TBB_INTERP] = t[i]
            else:
                fraction = math.log(above / threshold) / math.log(above / level)
                out[F_TBB_INTERP] = t[previous] + fraction * (t[i] - t[previous])
            return OK
        previous = i
    if previous < 0 or t[t.shape[0] - 1] <= tmax:
        return NO_SAMPLE_AFTER_TMAX
    last = t.shape[0] - 1
    out[F_TBB_OBS] = t[last]
    out[F_TBB_INTERP] = t[last]
    threshold = max(baseline, lloq[last]) if baseline == baseline else lloq[last]
    out[F_TBB_THRESHOLD] = threshold
    out[F_TBB_CENSORED] = 1.0
    return OK


@numba.njit(cache=True)
def _interval_auc(pt, pc, start, end, method, last_sample, extrapolate, out):  # pragma: no cover
    """AUC over one interval of the BLQ-processed profile, or -reason when not computable."""
    m = pt.shape[0]
    if m == 0 or start < pt[0]:
        return -float(INTERVAL_BEFORE_FIRST)
    if end <= pt[m - 1]:
        return auc_between(pt, pc, start, end, method)
    if end <= last_sample and pc[m - 1] == 0.0:
        # The profile ended at zero under the BLQ rule and later samples up to `end` are BLQ.
        return auc_between(pt, pc, start, pt[m - 1], method) if start < pt[m - 1] else 0.0
    if not extrapolate or not out[F_LAMBDA_Z] > 0.0:
        return -float(INTERVAL_AFTER_LAST)
    tlast, clast, rate = out[F_TLAST], out[F_CLAST], out[F_LAMBDA_Z]
    area = auc_between(pt, pc, start, tlast, method) if start < tlast else 0.0
    a = max(start, tlast)
    return area + clast * (math.exp(-rate * (a - tlast)) - math.exp(-rate * (end - tlast))) / rate


@numba.njit(cache=True)
def _lambda_candidates(t, v, blq, lz_mode, tmax):  # pragma: no cover - compiled
    """Quantifiable samples after Tmax, or exactly the manually included ones when any."""
    forced = False
    for i in range(t.shape[0]):
        if lz_mode[i] == 1:
            forced = True
    cand_t, cand_c = np.empty(t.shape[0]), np.empty(t.shape[0])
    q = 0
    for i in range(t.shape[0]):
        usable = (not blq[i]) and v[i] > 0.0
        take = usable and lz_mode[i] == 1 if forced else usable and t[i] > tmax and lz_mode[i] == 0
        if take:
            cand_t[q], cand_c[q] = t[i], v[i]
            q += 1
    return cand_t[:q], cand_c[:q]


@numba.njit(cache=True)
def _profile(t, v, blq, lloq, lz_mode, baseline, options, intervals, out, auc_out, reasons):
    # pragma: no cover - compiled
    method, rule = int(options[0]), int(options[1])
    impute_start, extrapolate = options[2] > 0, options[3] > 0
    n = t.shape[0]
    if n == 0:
        reasons[:] = NO_SAMPLES
        auc_out[:] = -float(NO_SAMPLES)
        return
    out[F_FIRST_TIME], out[F_LAST_TIME] = t[0], t[n - 1]
    cmax, tmax, clast, tlast = -1.0, math.nan, math.nan, math.nan
    for i in range(n):
        if not blq[i]:
            if v[i] > cmax:
                cmax, tmax = v[i], t[i]
            if v[i] > 0.0:
                clast, tlast = v[i], t[i]
    if cmax < 0.0:
        reasons[:] = NO_QUANTIFIABLE
        auc_out[:] = -float(NO_QUANTIFIABLE)
        return
    out[F_CMAX], out[F_TMAX], out[F_CLAST], out[F_TLAST] = cmax, tmax, clast, tlast
    keep_t, keep_c = np.empty(n + 1), np.empty(n + 1)
    offset = 1 if impute_start and t[0] > 0.0 else 0
    m = offset + apply_blq_rule(t, v, blq, lloq, rule, keep_t[offset:], keep_c[offset:])
    keep_t[0] = 0.0 if offset == 1 else keep_t[0]
    keep_c[0] = 0.0 if offset == 1 else keep_c[0]
    pt, pc = keep_t[:m], keep_c[:m]
    out[F_AUC_LAST] = auc_between(pt, pc, pt[0], tlast, method)
    cand_t, cand_c = _lambda_candidates(t, v, blq, lz_mode, tmax)
    reasons[R_LAMBDA] = lambda_z(cand_t, cand_c, out)
    if reasons[R_LAMBDA] == OK:
        out[F_AUC_INF] = out[F_AUC_LAST] + clast / out[F_LAMBDA_Z]
    for k in range(intervals.shape[0]):
        auc_out[k] = _interval_auc(
            pt, pc, intervals[k, 0], intervals[k, 1], method, t[n - 1], extrapolate, out
        )
    reasons[R_TBB] = _time_back_to_baseline(t, v, blq, lloq, tmax, baseline, out)


@numba.njit(cache=True, parallel=True)
def nca_profiles(t, v, blq, lloq, lz_mode, offsets, baselines, options, intervals):
    # pragma: no cover - compiled
    """Run :func:`_profile` over every profile; returns (floats, aucs, reasons).

    ``aucs`` holds the interval AUCs, or ``-code`` (a negative reason code) where an interval
    could not be computed; ``options`` = (auc method, BLQ rule, impute start, extrapolate).
    """
    n_profiles = offsets.shape[0] - 1
    out = np.full((n_profiles, N_FLOAT), np.nan)
    aucs = np.full((n_profiles, intervals.shape[0]), np.nan)
    reasons = np.zeros((n_profiles, N_REASON), dtype=np.int8)
    for g in numba.prange(n_profiles):
        a, b = offsets[g], offsets[g + 1]
        _profile(
            t[a:b],
            v[a:b],
            blq[a:b],
            lloq[a:b],
            lz_mode[a:b],
            baselines[g],
            options,
            intervals,
            out[g],
            aucs[g],
            reasons[g],
        )
    return out, aucs, reasons
