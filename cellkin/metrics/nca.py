"""Observed (non-compartmental) CAR-T kinetic metrics with PKNCA conventions.

:func:`nca` computes, per subject × assay, the exposure metrics a clinical pharmacology
report shows — Cmax, Tmax, Clast, Tlast, partial AUCs (AUC0–28d, AUC0–84d, any interval),
AUClast, the terminal slope λz with its half-life and diagnostics, AUCinf and the percentage
extrapolated — and the study's own endpoint, the **time back to baseline**.

The per-profile arithmetic runs in one compiled, parallel call (``_nca_kernel``); this module
prepares the profiles, names the options and turns the kernel's reason codes into words, so
that a metric that cannot be computed is NaN *with* an ``exclude_reason``, never silently.

References
----------
Denney W, Duvvuri S, Buckeridge C. Simple, automatic noncompartmental analysis: the PKNCA R
package. J Pharmacokinet Pharmacodyn 2015;42(1):11-107. doi:10.1007/s10928-015-9432-2
(λz selection rule, BLQ positional rule, AUC integration methods).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from cellkin._version import __version__
from cellkin.errors import DataError
from cellkin.io import read_kinetics
from cellkin.metrics import _nca_kernel as kernel
from cellkin.metrics._nca_table import assemble, to_long

__all__ = ["AUC_METHODS", "BASELINE_METHODS", "BLQ_RULES", "TBB_METHODS", "nca", "nca_long"]

AUC_METHODS = {"linear": kernel.AUC_LINEAR, "linup-logdown": kernel.AUC_LINUP_LOGDOWN,
               "log": kernel.AUC_LOG}  # fmt: skip
BLQ_RULES = {"positional": kernel.BLQ_POSITIONAL, "zero": kernel.BLQ_ZERO,
             "lloq/2": kernel.BLQ_HALF_LLOQ, "drop": kernel.BLQ_DROP}  # fmt: skip
#: How the pre-infusion baseline that sets the time-back-to-baseline threshold is taken.
BASELINE_METHODS = ("lloq", "lloq_only", "max_pre_infusion")
TBB_METHODS = ("observed", "interpolated")

LevelKey = str | tuple[str, str]
_GROUP = ["subject", "assay"]


def _interval_name(start: float, end: float) -> str:
    def text(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else str(x).replace(".", "p")

    return f"auc_{text(start)}_{text(end)}"


def _check_choice(value: str, options: Iterable[str], argument: str) -> None:
    options = list(options)
    if value not in options:
        raise DataError(f"`{argument}` must be one of {options}, got {value!r}")


def _check_intervals(intervals: Sequence[Sequence[float]]) -> np.ndarray:
    try:
        array = np.asarray(intervals, dtype=float).reshape(-1, 2)
    except ValueError:
        raise DataError(
            f"`intervals` must be pairs of days (start, end), e.g. ((0, 28), (0, 84)); "
            f"got {intervals!r}"
        ) from None
    bad = ~(np.isfinite(array).all(axis=1) & (array[:, 0] < array[:, 1]) & (array[:, 0] >= 0))
    if bad.any():
        raise DataError(
            f"`intervals`: {tuple(array[bad][0])} is not a valid interval; each needs "
            f"0 <= start < end, finite, in days since infusion"
        )
    return array


def _baselines(pre: pd.DataFrame, keys: pd.DataFrame, baseline: str | float) -> np.ndarray:
    """Pre-infusion baseline per profile (NaN when none: the threshold is then the LLOQ)."""
    if not isinstance(baseline, str):
        return np.full(len(keys), float(baseline))
    if baseline == "lloq_only" or pre.empty:
        return np.full(len(keys), np.nan)
    quantified = pre[~pre["blq"]]
    if baseline == "max_pre_infusion":
        per_group = quantified.groupby(_GROUP)["value"].max()
    else:  # "lloq": the last pre-infusion sample, BLQ counting as below the LLOQ
        last = pre.sort_values("time").groupby(_GROUP).tail(1).set_index(_GROUP)
        per_group = last["value"].where(~last["blq"])
    index = pd.MultiIndex.from_frame(keys)
    return per_group.reindex(index).to_numpy(dtype=float)


def _lambda_z_modes(
    post: pd.DataFrame,
    include: Mapping[LevelKey, Sequence[float]] | None,
    exclude: Mapping[LevelKey, Sequence[float]] | None,
) -> np.ndarray:
    """Per-sample λz mode: 1 forced in, -1 excluded, 0 automatic."""
    modes = np.zeros(len(post), dtype=np.int8)
    for table, flag in ((include, 1), (exclude, -1)):
        for key, times in (table or {}).items():
            subject, assay = (key, None) if isinstance(key, str) else key
            rows = post["subject"].eq(subject).to_numpy()
            if assay is not None:
                rows &= post["assay"].eq(assay).to_numpy()
            if not rows.any():
                raise DataError(
                    f"lambda_z points given for {key!r}, which has no post-infusion samples"
                )
            wanted = np.isin(post["time"].to_numpy(), np.asarray(times, dtype=float))
            missing = {float(x) for x in times} - {float(x) for x in post["time"][rows & wanted]}
            if missing:
                raise DataError(
                    f"lambda_z points for {key!r}: no sample at day(s) {sorted(missing)}; "
                    f"give times exactly as in the kinetics table"
                )
            modes[rows & wanted] = flag
    return modes


def _profiles(kinetics: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split into pre- and post-infusion samples and list the subject × assay profiles."""
    table = kinetics.sort_values(["subject", "assay", "time"], kind="stable")
    keys = table.loc[:, [*_GROUP, "unit"]].drop_duplicates(_GROUP).reset_index(drop=True)
    pre = table[table["time"] < 0]
    post = table[table["time"] >= 0].reset_index(drop=True)
    return keys, pre, post


def _offsets(post: pd.DataFrame, keys: pd.DataFrame) -> np.ndarray:
    index = pd.MultiIndex.from_frame(keys[_GROUP])
    codes = index.get_indexer(pd.MultiIndex.from_frame(post[_GROUP]))
    counts = np.bincount(codes, minlength=len(keys))
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


_SUBJECT_COLUMNS = ("dose", "dose_unit", "dose_level")


def _with_subject_columns(wide: pd.DataFrame, kinetics: pd.DataFrame) -> pd.DataFrame:
    """Carry the subject-level columns of the kinetics table (dose, dose level) along, so
    that summaries can group by them without a subject table."""
    present = [c for c in _SUBJECT_COLUMNS if c in kinetics.columns]
    if not present:
        return wide
    per_subject = kinetics.groupby("subject", sort=False)[present].first().reset_index()
    merged = wide.merge(per_subject, on="subject", how="left", validate="many_to_one")
    order = ["subject", "assay", "unit", *present]
    merged = merged.loc[:, order + [c for c in merged.columns if c not in order]]
    merged.attrs = wide.attrs
    return merged


def nca(
    kinetics: pd.DataFrame,
    *,
    intervals: Sequence[Sequence[float]] = ((0, 28), (0, 84)),
    auc_method: Literal["linear", "linup-logdown", "log"] = "linear",
    blq_rule: Literal["positional", "zero", "lloq/2", "drop"] = "positional",
    baseline: str | float = "lloq",
    tbb_method: Literal["observed", "interpolated"] = "observed",
    impute_start: bool = True,
    extrapolate: bool = False,
    lambda_z_include: Mapping[LevelKey, Sequence[float]] | None = None,
    lambda_z_exclude: Mapping[LevelKey, Sequence[float]] | None = None,
    long: bool = False,
) -> pd.DataFrame:
    r"""Observed (non-compartmental) metrics per subject × assay.

    Parameters
    ----------
    kinetics : DataFrame
        A kinetics table (validated by :func:`cellkin.read_kinetics` first, so any convention
        it reads is accepted). Samples at ``time < 0`` are pre-infusion: they set the baseline
        and never enter AUCs or Cmax.
    intervals : sequence of (start, end)
        Partial-AUC intervals in days; each gives a column ``auc_<start>_<end>``. An interval
        end between samples is interpolated consistently with ``auc_method``. An interval
        that ends after the last sample is not computable (NaN with a reason) unless
        ``extrapolate=True``; if the profile already ended at zero under the BLQ rule and BLQ
        samples reach the interval end, the remaining area is zero.
    auc_method : {"linear", "linup-logdown", "log"}
        Trapezoid rule. ``linear`` (default) matches published CAR-T NCA (Stein 2019 Fig. S1);
        ``linup-logdown`` is PKNCA's default; ``log`` uses the log trapezoid on every segment
        whose two ends are positive and differ (exact on mono-exponential expansion and
        decline), and the linear one elsewhere.
    blq_rule : {"positional", "zero", "lloq/2", "drop"}
        Below-LLOQ samples after infusion: ``positional`` (PKNCA default: leading BLQ → 0,
        embedded BLQ dropped, first trailing BLQ → 0 and later ones dropped), all → 0, all →
        LLOQ/2, or all dropped. BLQ samples never set Cmax, Clast or λz.
    baseline : {"lloq", "lloq_only", "max_pre_infusion"} or float
        Threshold for the time back to baseline, ``max(baseline, LLOQ)`` per sample:
        ``lloq`` takes the last pre-infusion sample as baseline (BLQ or absent → the LLOQ
        alone); ``max_pre_infusion`` the largest quantified pre-infusion level; ``lloq_only``
        ignores pre-infusion samples; a number is a fixed baseline in the assay's unit.
    tbb_method : {"observed", "interpolated"}
        Which definition fills ``time_back_to_baseline``: ``observed`` — the first sample
        after Tmax at or below the threshold (right-censored at the last sample if none);
        ``interpolated`` — log-linear interpolation between that sample and the one before,
        a BLQ sample counting as exactly at the threshold. Both are always reported
        (``time_back_to_baseline_observed`` / ``_interpolated``).
    impute_start : bool
        When no sample is taken at day 0, add C(0) = 0 (no CAR-T cells before infusion) so
        that AUCs start at the infusion. With ``False`` AUCs start at the first sample and
        intervals starting earlier are not computable.
    extrapolate : bool
        Extend AUC intervals beyond the last sample with ``Clast·exp(−λz(t − Tlast))``.
    lambda_z_include, lambda_z_exclude : mapping, optional
        Manual λz points: ``{subject: [days]}`` or ``{(subject, assay): [days]}``. Included
        points replace the automatic selection for that profile; excluded points are removed
        from the candidates.
    long : bool
        Return the long form (one row per subject × assay × metric with ``value``, ``unit``,
        ``method`` and ``exclude_reason``) instead of one row per subject × assay.

    Returns
    -------
    DataFrame
        Wide form, one row per subject × assay: ``subject, assay, unit`` (then ``dose,
        dose_unit, dose_level`` when the kinetics table has them), ``cmax, tmax, clast,
        tlast, auc_<a>_<b>…, auc_last, lambda_z, half_life, r2, r2_adj,
        n_points_lambda_z, lambda_z_time_first, lambda_z_time_last, span_ratio, clast_pred,
        auc_inf, auc_pct_extrap, time_back_to_baseline, time_back_to_baseline_method,
        time_back_to_baseline_censored, time_back_to_baseline_observed,
        time_back_to_baseline_interpolated, tbb_threshold, baseline, flags,
        exclude_reason`` plus the unit columns ``time_unit`` (day), ``auc_unit``
        (``<unit>*day``) and ``lambda_z_unit`` (1/day), and the method columns
        ``auc_method, blq_rule, baseline_method``. ``flags`` lists λz diagnostics outside the
        usual acceptance limits (adjusted R² < 0.9, span ratio < 2, AUC extrapolated > 20 %),
        which are reported, not dropped. ``DataFrame.attrs["cellkin"]`` records the cellkin
        version and every option.

    Notes
    -----
    ``span_ratio = (t_last,λz − t_first,λz) / t½``; ``auc_inf = AUClast + Clast/λz``
    (observed Clast); ``auc_pct_extrap = 100·(Clast/λz)/AUCinf``.
    """
    _check_choice(auc_method, AUC_METHODS, "auc_method")
    _check_choice(blq_rule, BLQ_RULES, "blq_rule")
    _check_choice(tbb_method, TBB_METHODS, "tbb_method")
    if isinstance(baseline, str):
        _check_choice(baseline, BASELINE_METHODS, "baseline")
    elif not (math.isfinite(baseline) and baseline >= 0):
        raise DataError(f"`baseline` must be one of {BASELINE_METHODS} or a level >= 0")
    interval_array = _check_intervals(intervals)
    kinetics = read_kinetics(kinetics)
    keys, pre, post = _profiles(kinetics)
    options = np.array(
        [AUC_METHODS[auc_method], BLQ_RULES[blq_rule], float(impute_start), float(extrapolate)]
    )
    baselines = _baselines(pre, keys[_GROUP], baseline)
    floats, aucs, reasons = kernel.nca_profiles(
        post["time"].to_numpy(dtype=np.float64),
        post["value"].to_numpy(dtype=np.float64),
        post["blq"].to_numpy(dtype=np.bool_),
        post["lloq"].to_numpy(dtype=np.float64),
        _lambda_z_modes(post, lambda_z_include, lambda_z_exclude),
        _offsets(post, keys),
        baselines,
        options,
        np.ascontiguousarray(interval_array),
    )
    settings = {
        "cellkin_version": __version__,
        "intervals": [tuple(map(float, row)) for row in interval_array],
        "auc_method": auc_method,
        "blq_rule": blq_rule,
        "baseline": baseline,
        "tbb_method": tbb_method,
        "impute_start": impute_start,
        "extrapolate": extrapolate,
    }
    names = [_interval_name(*row) for row in interval_array]
    wide = assemble(keys, floats, aucs, reasons, names, baselines, settings)
    wide = _with_subject_columns(wide, kinetics)
    return nca_long(wide) if long else wide


def nca_long(table: pd.DataFrame) -> pd.DataFrame:
    """The long form of a wide :func:`nca` table: one row per subject × assay × metric with
    ``value``, ``unit``, CDISC-like ``pptestcd``, ``exclude_reason`` and the method columns."""
    return to_long(table, table.attrs["cellkin"]["interval_columns"])
