"""The time-back-to-baseline threshold rule, defined once (private).

DESIGN §5.2: the threshold is ``max(baseline, LLOQ)``, where the baseline is taken from the
profile's pre-infusion samples (``time < 0``) by one of the named definitions
(:data:`BASELINE_METHODS`) or given as a level:

* ``"lloq"`` — the last pre-infusion sample; a BLQ one (or none) gives no baseline, so the
  threshold is the LLOQ alone;
* ``"max_pre_infusion"`` — the largest quantified pre-infusion level;
* ``"lloq_only"`` — pre-infusion samples are ignored (threshold = LLOQ);
* a number ``>= 0`` — a fixed baseline in the assay's unit.

:func:`baseline_levels` applies the rule to many profiles at once (NCA);
:func:`profile_baseline` to one profile's arrays (model-based metrics); both go through the
same code. :func:`threshold` combines a baseline with LLOQs (NaN baseline → the LLOQ).
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from cellkin.errors import OptionError

__all__ = ["BASELINE_METHODS", "baseline_levels", "check_baseline", "profile_baseline",
           "threshold"]  # fmt: skip

#: Named baseline definitions (see the module docstring).
BASELINE_METHODS = ("lloq", "lloq_only", "max_pre_infusion")


def check_baseline(baseline: str | float) -> None:
    """Raise :class:`~cellkin.errors.OptionError` unless `baseline` is a known name or a
    finite level ``>= 0``."""
    if isinstance(baseline, str):
        if baseline not in BASELINE_METHODS:
            raise OptionError(
                f"`baseline` must be one of {list(BASELINE_METHODS)} or a level >= 0, "
                f"got {baseline!r}"
            )
        return
    if (
        isinstance(baseline, bool)
        or not isinstance(baseline, Real)
        or not (math.isfinite(baseline) and baseline >= 0)
    ):
        raise OptionError(
            f"`baseline` must be one of {list(BASELINE_METHODS)} or a finite level >= 0, "
            f"got {baseline!r}"
        )


def baseline_levels(
    codes: np.ndarray,
    times: np.ndarray,
    values: np.ndarray,
    blq: np.ndarray,
    baseline: str | float,
    n_profiles: int,
) -> np.ndarray:
    """Baseline level of each profile (NaN when it has none).

    Parameters
    ----------
    codes : ndarray of int, shape (n,)
        Profile index ``0..n_profiles-1`` of each sample (any order; all samples, the
        post-infusion ones are ignored).
    times, values, blq : ndarray, shape (n,)
        Sample times (days since infusion), levels (NaN on BLQ samples) and BLQ flags.
    baseline : str or float
        A name from :data:`BASELINE_METHODS` or a fixed level.
    n_profiles : int
        Number of profiles.
    """
    check_baseline(baseline)
    if not isinstance(baseline, str):
        return np.full(n_profiles, float(baseline))
    out = np.full(n_profiles, np.nan)
    pre = np.flatnonzero(np.asarray(times) < 0)
    if baseline == "lloq_only" or pre.size == 0:
        return out
    codes, times = np.asarray(codes)[pre], np.asarray(times, dtype=float)[pre]
    values = np.where(np.asarray(blq, dtype=bool)[pre], np.nan, np.asarray(values)[pre])
    if baseline == "max_pre_infusion":
        quantified = ~np.isnan(values)
        np.fmax.at(out, codes[quantified], values[quantified])
        return out
    order = np.lexsort((times, codes))  # "lloq": the last pre-infusion sample of each profile
    last = order[np.r_[codes[order][1:] != codes[order][:-1], True]]
    out[codes[last]] = values[last]
    return out


def profile_baseline(
    times: np.ndarray, values: np.ndarray, blq: np.ndarray, baseline: str | float
) -> float:
    """Baseline level of one profile from its samples (NaN when it has none)."""
    codes = np.zeros(np.shape(times), dtype=np.int64)
    return float(baseline_levels(codes, times, values, blq, baseline, 1)[0])


def threshold(baseline_level: float | np.ndarray, lloq: float | np.ndarray) -> np.ndarray:
    """The time-back-to-baseline threshold ``max(baseline, LLOQ)`` (the LLOQ alone where the
    baseline is NaN), elementwise."""
    return np.fmax(baseline_level, lloq)
