"""Compiled per-profile NCA computations (private).

One call of :func:`nca_profiles` processes every subject × assay profile of a study in
parallel. Profiles are contiguous slices (``offsets``) of time-sorted post-infusion samples.
The kernel never raises: a metric that cannot be computed is NaN and its reason slot holds a
code from :data:`REASONS` (0 = computed), which the Python layer turns into words.

Conventions (documented in :class:`cellkin.metrics.NCAOptions`):

* BLQ rules — one action (0, drop, LLOQ/2) per position of a BLQ sample: leading, embedded,
  trailing (relative to the quantifiable samples), or before/after Tmax (PKNCA's
  ``conc.blq`` lists); ``positional`` is (0, drop, 0), PKNCA's default;
* start imputation — C(0) = 0 when missing, PKNCA's ``start_conc0``/``start_predose``, none;
* AUC segments — linear, lin-up/log-down, or log (log trapezoid whenever both ends are > 0
  and differ); levels between samples are interpolated with the segment's rule;
* past the data — not computable, or PKNCA's ``aucint.all/last/inf.obs/inf.pred``;
* λz — :mod:`cellkin.metrics._lambda_z`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from cellkin.metrics import _lambda_z as lz
from cellkin.metrics._nca_segments import (
    AUC_LOG,
    auc_between,
    interpolate,
    moment_between,
    time_above,
)

BLQ_ZERO, BLQ_DROP, BLQ_HALF_LLOQ = 0, 1, 2  # action on one BLQ sample
IMPUTE_ZERO_IF_MISSING, IMPUTE_CONC0, IMPUTE_PREDOSE, IMPUTE_NONE = 0, 1, 2, 3
EXT_OBSERVED, EXT_ALL, EXT_LAST, EXT_INF_OBS, EXT_INF_PRED = 0, 1, 2, 3, 4
(O_METHOD, O_IMPUTE, O_EXTEND, O_MIN_POINTS, O_TOLERANCE, O_ALLOW_TMAX, O_BLQ_FIRST,
 O_BLQ_MIDDLE, O_BLQ_LAST, O_BLQ_BY_TMAX) = range(10)  # fmt: skip
N_OPTIONS = 10

# Reason codes (index into REASONS); 7..12 are the λz codes 1..6 shifted by LZ_OFFSET.
OK, NO_SAMPLES, ALL_BLQ, ONE_POINT, BEFORE_FIRST, AFTER_LAST, NO_LAMBDA = range(7)
LZ_OFFSET = 6
NO_SAMPLE_AFTER_TMAX, TOO_FEW_FOR_TIME_ABOVE, NO_DATA = 13, 14, 15
REASONS = (
    "",
    "no sample after infusion",
    "no quantifiable sample after infusion (all BLQ)",
    "AUC cannot be calculated with only one level",
    "interval starts before the first sample",
    "interval ends after the last sample (interval_auc='all', 'last', 'inf_obs' or "
    "'inf_pred' extends it as PKNCA's aucint.*)",
    "lambda_z not available to extrapolate",
    "too few quantifiable samples after Tmax for lambda_z",
    "no terminal window with lambda_z > 0 within the adjusted-R2 tolerance of the best fit",
    "no variability in the levels for lambda_z (all equal)",
    "fewer than 2 manually selected lambda_z points",
    "lambda_z <= 0 with the manually selected points",
    "no lambda_z point selected (empty include list)",
    "no sample after Tmax",
    "too few levels to assess the time above a level",
    "no level enters the AUC (every sample dropped by the BLQ rule)",
)

# Column layout of the float output matrix.
(F_CMAX, F_TMAX, F_CLAST, F_TLAST, F_AUC_LAST, F_AUC_ALL, F_AUMC_LAST, F_LAMBDA_Z, F_R2,
 F_R2_ADJ, F_CORRXY, F_N_LAMBDA, F_LZ_FIRST, F_LZ_LAST, F_CLAST_PRED, F_TBB_OBS, F_TBB_INTERP,
 F_TBB_THRESHOLD, F_TBB_CENSORED, F_FIRST_TIME, F_LAST_TIME,
 F_TIME_ABOVE_LLOQ) = range(22)  # fmt: skip
N_FLOAT = 22
# Reason slots: Tmax/Tlast, whole-profile AUCs, λz, time back to baseline, time above LLOQ.
R_PEAK, R_AUC, R_LAMBDA, R_TBB, R_ABOVE = 0, 1, 2, 3, 4
N_REASON = 5


@numba.njit(cache=True)
def _blq_actions(v, blq, options):  # pragma: no cover - compiled
    """(first, last) index bounds: BLQ samples before ``first`` use the first action, after
    ``last`` the last one, between them the middle one."""
    n = blq.shape[0]
    first, last, peak = n, -1, -1
    for i in range(n):
        if not blq[i]:
            first = min(first, i)
            last = i
            if peak < 0 or v[i] > v[peak]:
                peak = i
    if options[O_BLQ_BY_TMAX] > 0:  # before / after Tmax: nothing is "middle"
        return (peak, peak) if peak >= 0 else (n, n)
    return first, last


@numba.njit(cache=True)
def apply_blq_rule(t, v, blq, lloq, options, keep_t, keep_c):  # pragma: no cover
    """Write the samples entering the analysis; returns how many were kept."""
    first, last = _blq_actions(v, blq, options)
    m = 0
    for i in range(t.shape[0]):
        value = v[i]
        if blq[i]:
            slot = O_BLQ_FIRST if i < first else (O_BLQ_LAST if i > last else O_BLQ_MIDDLE)
            action = int(options[slot])
            if action == BLQ_DROP:
                continue
            value = 0.5 * lloq[i] if action == BLQ_HALF_LLOQ else 0.0
        keep_t[m] = t[i]
        keep_c[m] = value
        m += 1
    return m


@numba.njit(cache=True)
def process(t, v, blq, lloq, options, impute, predose, keep_t, keep_c):  # pragma: no cover
    """BLQ rule then the day-0 imputation into ``keep_*`` (length n + 1); returns the
    (first, count) slice of the processed profile."""
    m = apply_blq_rule(t, v, blq, lloq, options, keep_t[1:], keep_c[1:])
    has_day0 = m > 0 and keep_t[1] == 0.0
    if impute == IMPUTE_CONC0 and has_day0:
        keep_c[1] = 0.0
        return 1, m
    insert = impute == IMPUTE_CONC0 or impute == IMPUTE_ZERO_IF_MISSING
    if impute == IMPUTE_PREDOSE:
        insert = predose == predose
    if has_day0 or not insert:
        return 1, m
    keep_t[0] = 0.0
    keep_c[0] = predose if impute == IMPUTE_PREDOSE else 0.0
    return 0, m + 1


@numba.njit(cache=True)
def _peak(t, v, blq, out):  # pragma: no cover - compiled
    """Cmax/Tmax/Clast/Tlast from quantified samples; all-BLQ → Cmax = Clast = 0 (PKNCA, BLQ
    being 0) with Tmax and Tlast undefined. Returns whether any level is positive."""
    cmax, tmax, clast, tlast = 0.0, math.nan, 0.0, math.nan
    for i in range(t.shape[0]):
        if not blq[i] and v[i] > 0.0:
            if v[i] > cmax:
                cmax, tmax = v[i], t[i]
            clast, tlast = v[i], t[i]
    out[F_CMAX], out[F_TMAX], out[F_CLAST], out[F_TLAST] = cmax, tmax, clast, tlast
    return tmax == tmax


@numba.njit(cache=True)
def _whole_aucs(pt, pc, tlast, method, out):  # pragma: no cover - compiled
    """AUClast, AUCall and AUMClast from day 0; returns the reason code."""
    m = pt.shape[0]
    if m == 0:
        return NO_DATA
    if pt[0] > 0.0:
        return BEFORE_FIRST
    if m < 2:
        return ONE_POINT
    end = tlast if tlast == tlast else pt[0]  # all BLQ: every level is 0
    out[F_AUC_LAST] = auc_between(pt, pc, pt[0], end, method)
    out[F_AUMC_LAST] = moment_between(pt, pc, pt[0], end, method)
    out[F_AUC_ALL] = auc_between(pt, pc, pt[0], pt[m - 1], method)
    return OK


@numba.njit(cache=True)
def _candidates(t, v, blq, lz_mode, manual, tmax, allow_tmax):  # pragma: no cover
    """λz candidates: the manually included points, or the automatic ones after Tmax."""
    cand_t, cand_c = np.empty(t.shape[0]), np.empty(t.shape[0])
    q = 0
    for i in range(t.shape[0]):
        if blq[i] or not v[i] > 0.0:
            continue
        if manual:
            take = lz_mode[i] == 1
        else:
            after = t[i] > tmax or (allow_tmax and t[i] >= tmax)
            take = after and lz_mode[i] != -1
        if take:
            cand_t[q], cand_c[q] = t[i], v[i]
            q += 1
    return cand_t[:q], cand_c[:q]


@numba.njit(cache=True)
def _lambda(t, v, blq, lz_mode, manual, options, out):  # pragma: no cover - compiled
    """Fill the λz columns; returns the reason code."""
    usable = np.empty(t.shape[0], dtype=np.bool_)
    for i in range(t.shape[0]):
        usable[i] = (not blq[i]) and v[i] > 0.0
    if not usable.any():
        return ALL_BLQ
    if lz.flat(v, usable):
        return lz.NO_VARIABILITY + LZ_OFFSET
    cand_t, cand_c = _candidates(t, v, blq, lz_mode, manual, out[F_TMAX],
                                 options[O_ALLOW_TMAX] > 0)  # fmt: skip
    if manual:
        fit = lz.manual(cand_t, cand_c)
    else:
        fit = lz.automatic(cand_t, cand_c, int(options[O_MIN_POINTS]), options[O_TOLERANCE])
    if fit[0] != lz.OK:
        return fit[0] + LZ_OFFSET
    out[F_LAMBDA_Z], out[F_R2], out[F_R2_ADJ], out[F_CORRXY] = fit[1], fit[2], fit[3], fit[4]
    out[F_N_LAMBDA], out[F_LZ_FIRST], out[F_LZ_LAST] = fit[5], fit[6], fit[7]
    out[F_CLAST_PRED] = math.exp(fit[8] - fit[1] * out[F_TLAST])
    return OK


@numba.njit(cache=True)
def _time_back_to_baseline(t, v, blq, thr, tmax, out):  # pragma: no cover - compiled
    """Observed and interpolated first crossing of the threshold after Tmax."""
    if tmax != tmax:
        return ALL_BLQ
    previous = -1
    for i in range(t.shape[0]):
        if t[i] <= tmax:
            previous = i
            continue
        if blq[i] or v[i] <= thr[i]:
            out[F_TBB_OBS] = t[i]
            out[F_TBB_THRESHOLD] = thr[i]
            out[F_TBB_CENSORED] = 0.0
            level = thr[i] if blq[i] else v[i]
            above = v[previous]
            if level <= 0.0 or above <= level:
                out[F_TBB_INTERP] = t[i]
            else:
                fraction = math.log(above / thr[i]) / math.log(above / level)
                out[F_TBB_INTERP] = t[previous] + fraction * (t[i] - t[previous])
            return OK
        previous = i
    last = t.shape[0] - 1
    if t[last] <= tmax:
        return NO_SAMPLE_AFTER_TMAX
    out[F_TBB_OBS] = t[last]
    out[F_TBB_INTERP] = t[last]
    out[F_TBB_THRESHOLD] = thr[last]
    out[F_TBB_CENSORED] = 1.0
    return OK


@numba.njit(cache=True)
def _data_end(pt, variant, tlast):  # pragma: no cover - compiled
    """Last time taken from the data; later times follow the extension rule."""
    if variant >= EXT_LAST and tlast == tlast:
        return tlast
    return pt[pt.shape[0] - 1]


@numba.njit(cache=True)
def _extension(variant, x0, x1, pc_end, last_raw, tlast, c_ext, rate):  # pragma: no cover
    """Area over [x0, x1] past the data (x0 == x1: the level at x1) and a reason code."""
    if variant == EXT_OBSERVED:
        if pc_end == 0.0 and x1 <= last_raw:
            return 0.0, OK
        return math.nan, AFTER_LAST
    if variant == EXT_ALL or variant == EXT_LAST or tlast != tlast:
        return 0.0, OK
    if not rate > 0.0 or c_ext != c_ext:
        return math.nan, NO_LAMBDA
    if x0 == x1:
        return c_ext * math.exp(-rate * (x1 - tlast)), OK
    decay = math.exp(-rate * (x0 - tlast)) - math.exp(-rate * (x1 - tlast))
    return c_ext * decay / rate, OK


@numba.njit(cache=True)
def interval_auc(pt, pc, a, b, method, variant, last_raw, tlast, c_ext, rate):  # pragma: no cover
    """AUC over [a, b] under the extension rule: (value, reason)."""
    m = pt.shape[0]
    if m == 0:
        return math.nan, NO_DATA
    if a < pt[0]:
        return math.nan, BEFORE_FIRST
    if m < 2:
        return math.nan, ONE_POINT
    end = _data_end(pt, variant, tlast)
    inside = min(b, end)
    area = auc_between(pt, pc, a, inside, method) if a < inside else 0.0
    if b <= end:
        return area, OK
    extra, code = _extension(variant, max(a, end), b, pc[m - 1], last_raw, tlast, c_ext, rate)
    return area + extra, code


@numba.njit(cache=True)
def level_at(pt, pc, x, method, variant, last_raw, tlast, c_ext, rate):  # pragma: no cover
    """Level at day x under the same rules: (value, reason)."""
    m = pt.shape[0]
    if m == 0:
        return math.nan, NO_DATA
    if x < pt[0]:
        return math.nan, BEFORE_FIRST
    if x <= _data_end(pt, variant, tlast):
        k = np.searchsorted(pt, x)
        if pt[k] == x:
            return pc[k], OK
        return interpolate(pt[k - 1], pc[k - 1], pt[k], pc[k], x, method), OK
    return _extension(variant, x, x, pc[m - 1], last_raw, tlast, c_ext, rate)


@numba.njit(cache=True)
def auc_last_within(pt, pc, a, b, method):  # pragma: no cover - compiled
    """PKNCA's ``auclast`` on [a, b]: from the sample at a to the last positive level in
    [a, b]: (value, reason)."""
    i0 = np.searchsorted(pt, a)
    i1 = np.searchsorted(pt, b, side="right") - 1
    if i0 > i1:
        return math.nan, NO_DATA
    if pt[i0] != a:
        return math.nan, BEFORE_FIRST
    if i1 == i0:
        return math.nan, ONE_POINT
    last = -1
    for k in range(i0, i1 + 1):
        if pc[k] > 0.0:
            last = k
    if last <= i0:
        return 0.0, OK
    return auc_between(pt, pc, a, pt[last], method), OK


@numba.njit(cache=True)
def _extras(pt, pc, options, last_raw, out, grids, extra, extra_reasons):  # pragma: no cover
    """Interval AUCs, AUClast per interval, levels at days, times above levels."""
    method, variant = int(options[O_METHOD]), int(options[O_EXTEND])
    tlast, rate = out[F_TLAST], out[F_LAMBDA_Z]
    c_ext = out[F_CLAST_PRED] if variant == EXT_INF_PRED else out[F_CLAST]
    intervals, levels, above = grids
    j = 0
    for k in range(intervals.shape[0]):
        a, b = intervals[k, 0], intervals[k, 1]
        extra[j], extra_reasons[j] = interval_auc(pt, pc, a, b, method, variant, last_raw,
                                                  tlast, c_ext, rate)  # fmt: skip
        extra[j + 1], extra_reasons[j + 1] = auc_last_within(pt, pc, a, b, method)
        j += 2
    for k in range(levels.shape[0]):
        extra[j], extra_reasons[j] = level_at(pt, pc, levels[k], method, variant, last_raw,
                                              tlast, c_ext, rate)  # fmt: skip
        j += 1
    for k in range(above.shape[0]):
        extra[j] = time_above(pt, pc, above[k], method)
        extra_reasons[j] = TOO_FEW_FOR_TIME_ABOVE if extra[j] != extra[j] else OK
        j += 1


@numba.njit(cache=True)
def profile(t, v, blq, lloq, thr, lz_mode, info, options, grids, out, reasons, extra,
            extra_reasons):  # fmt: skip  # pragma: no cover - compiled
    """Every metric of one profile. ``info`` = (manual λz flag, pre-dose level, LLOQ)."""
    n = t.shape[0]
    if n == 0:
        reasons[:] = NO_SAMPLES
        extra_reasons[:] = NO_SAMPLES
        return
    out[F_FIRST_TIME], out[F_LAST_TIME] = t[0], t[n - 1]
    if not _peak(t, v, blq, out):
        reasons[R_PEAK] = ALL_BLQ
    keep_t, keep_c = np.empty(n + 1), np.empty(n + 1)
    first, m = process(t, v, blq, lloq, options, int(options[O_IMPUTE]), info[1],
                       keep_t, keep_c)  # fmt: skip
    pt, pc = keep_t[first : first + m], keep_c[first : first + m]
    method = int(options[O_METHOD])
    reasons[R_AUC] = _whole_aucs(pt, pc, out[F_TLAST], method, out)
    reasons[R_LAMBDA] = _lambda(t, v, blq, lz_mode, info[0] > 0, options, out)
    reasons[R_TBB] = _time_back_to_baseline(t, v, blq, thr, out[F_TMAX], out)
    out[F_TIME_ABOVE_LLOQ] = time_above(pt, pc, info[2], method)
    reasons[R_ABOVE] = TOO_FEW_FOR_TIME_ABOVE if m < 2 else OK
    _extras(pt, pc, options, t[n - 1], out, grids, extra, extra_reasons)


@numba.njit(cache=True, parallel=True)
def nca_profiles(t, v, blq, lloq, thr, lz_mode, offsets, info, options, grids, n_extra):
    # pragma: no cover - compiled
    """Run :func:`profile` over every profile: (floats, reasons, extras, extra reasons).

    ``info[g]`` = (manual λz flag, pre-dose level, LLOQ) of profile g; ``grids`` =
    (intervals (k, 2), levels_at days, time-above levels); ``n_extra`` = 2k + len(levels_at)
    + len(time-above levels).
    """
    n_profiles = offsets.shape[0] - 1
    out = np.full((n_profiles, N_FLOAT), np.nan)
    reasons = np.zeros((n_profiles, N_REASON), dtype=np.int8)
    extra = np.full((n_profiles, n_extra), np.nan)
    extra_reasons = np.zeros((n_profiles, n_extra), dtype=np.int8)
    for g in numba.prange(n_profiles):
        a, b = offsets[g], offsets[g + 1]
        profile(t[a:b], v[a:b], blq[a:b], lloq[a:b], thr[a:b], lz_mode[a:b], info[g], options,
                grids, out[g], reasons[g], extra[g], extra_reasons[g])  # fmt: skip
    return out, reasons, extra, extra_reasons


__all__ = ["AUC_LOG", "REASONS", "nca_profiles"]
