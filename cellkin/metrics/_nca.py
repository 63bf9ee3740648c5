"""Observed (non-compartmental) CAR-T kinetic metrics with PKNCA conventions.

:func:`nca` computes, per subject × assay, the exposure metrics a clinical pharmacology
report shows — Cmax, Tmax, Clast, Tlast (the last time quantifiable), AUClast, AUCall, partial
AUCs (AUC0–28d, AUC0–84d, any interval) and AUClast within each interval, AUMC and MRT, the
terminal slope λz with its half-life and diagnostics, AUCinf and the percentage extrapolated
(observed and predicted Clast), dose-normalised Cmax and AUCs, the time above the LLOQ (and
above chosen levels), levels at chosen days — and the study's own endpoint, the **time back to
baseline**. Column names map to PKNCA's parameter names (:func:`nca_parameters`).

The per-profile arithmetic runs in one compiled, parallel call (``_nca_kernel``); this module
prepares the profiles and turns the kernel's reason codes into words, so that a metric that
cannot be computed is NaN *with* an ``exclude_reason``, never silently.

References
----------
Denney W, Duvvuri S, Buckeridge C. Simple, automatic noncompartmental analysis: the PKNCA R
package. J Pharmacokinet Pharmacodyn 2015;42(1):11-107. doi:10.1007/s10928-015-9432-2
(λz selection rule, BLQ positional rule, AUC integration methods, parameter names).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cellkin._version import __version__
from cellkin.errors import OptionError
from cellkin.io import read_kinetics_with_exclusions
from cellkin.metrics import _baseline
from cellkin.metrics import _nca_kernel as kernel
from cellkin.metrics._nca_options import (
    AUC_METHODS,
    IMPUTE_START,
    INTERVAL_AUC,
    LevelKey,
    NCAOptions,
    blq_actions,
)
from cellkin.metrics._nca_parameters import PARAMETERS, interval_parameters
from cellkin.metrics._nca_table import add_dose_normalised, assemble, to_long

__all__ = ["nca", "nca_long", "nca_parameters"]

_GROUP = ["subject", "assay"]
_SUBJECT_COLUMNS = ("dose", "dose_unit", "dose_level")


def _resolve(options: NCAOptions | None, keywords: dict[str, Any]) -> NCAOptions:
    if options is None:
        options = NCAOptions()
    elif not isinstance(options, NCAOptions):
        raise OptionError(f"`options` must be an NCAOptions, got {type(options).__name__}")
    given = {key: value for key, value in keywords.items() if value is not None}
    return dataclasses.replace(options, **given) if given else options


def _excluded_rows(kin: pd.DataFrame, column: str) -> np.ndarray:
    """Reason text per row from the exclusion column ('' = kept)."""
    if column not in kin.columns:
        return np.full(len(kin), "", dtype=object)
    raw = kin[column]
    text = raw.astype(object).where(raw.notna(), "").astype(str).str.strip()
    text = text.mask(raw.astype(object).isin([False]), "")
    text = text.mask(raw.astype(object).isin([True]), f"excluded (column `{column}`)")
    return text.mask(text.isin(["False", "nan", "None"]), "").to_numpy(dtype=object)


def _profiles(kin: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Sorted samples, the subject × assay profiles and each sample's profile index."""
    table = kin.sort_values([*_GROUP, "time"], kind="stable").reset_index(drop=True)
    codes = table.groupby(_GROUP, sort=True).ngroup().to_numpy(dtype=np.int64)
    first = np.r_[True, codes[1:] != codes[:-1]]
    keys = table.loc[first, [*_GROUP, "unit"]].reset_index(drop=True)
    return table, keys, codes


def _lambda_z_points(
    post: pd.DataFrame, post_codes: np.ndarray, keys: pd.DataFrame, options: NCAOptions
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample λz mode (1 included, -1 excluded, 0 automatic) and the per-profile
    manual-selection flag."""
    modes = np.zeros(len(post), dtype=np.int8)
    manual = np.zeros(len(keys))
    tables: tuple[tuple[Mapping[LevelKey, Sequence[float]] | None, int, str], ...] = (
        (options.lambda_z_include, 1, "lambda_z_include"),
        (options.lambda_z_exclude, -1, "lambda_z_exclude"),
    )
    times = post["time"].to_numpy()
    for table, flag, name in tables:
        for key, days in (table or {}).items():
            subject, assay = (key, None) if isinstance(key, str) else key
            wanted = keys["subject"].eq(subject).to_numpy()
            if assay is not None:
                wanted &= keys["assay"].eq(assay).to_numpy()
            if not wanted.any():
                raise OptionError(f"`{name}`: {key!r} has no post-infusion samples")
            rows = wanted[post_codes]
            hit = rows & np.isin(times, np.asarray(days, dtype=float))
            absent = sorted(set(days) - set(times[hit].tolist()))
            if absent:
                raise OptionError(
                    f"`{name}` for {key!r}: no sample at day(s) {absent}; give times exactly "
                    f"as in the kinetics table"
                )
            modes[hit] = flag
            if flag == 1:
                manual[wanted] = 1.0
    return modes, manual


def _per_profile(post: pd.DataFrame, codes: np.ndarray, n: int) -> np.ndarray:
    """Median post-infusion LLOQ per profile (the level of ``time_above_lloq``)."""
    medians = post.groupby(codes)["lloq"].median()
    return medians.reindex(range(n)).to_numpy(dtype=float)


def _kernel_inputs(table: pd.DataFrame, keys: pd.DataFrame, codes: np.ndarray,
                   options: NCAOptions) -> dict[str, Any]:  # fmt: skip
    n = len(keys)
    times = table["time"].to_numpy(dtype=float)
    values = table["value"].to_numpy(dtype=float)
    blq = table["blq"].to_numpy(dtype=bool)
    levels = _baseline.baseline_levels(codes, times, values, blq, options.baseline, n)
    zeroed = np.where(blq, 0.0, values)  # the pre-dose level for start_predose: BLQ → 0
    predose = _baseline.baseline_levels(codes, times, zeroed, np.zeros_like(blq), "lloq", n)
    when = _baseline.baseline_levels(codes, times, times, np.zeros_like(blq), "lloq", n)
    predose[when < -options.predose_max_days] = np.nan
    post_mask = times >= 0
    post, post_codes = table.loc[post_mask], codes[post_mask]
    modes, manual = _lambda_z_points(post, post_codes, keys, options)
    lloq = post["lloq"].to_numpy(dtype=float)
    return {
        "t": times[post_mask], "v": values[post_mask], "blq": blq[post_mask], "lloq": lloq,
        "thr": _baseline.threshold(levels[post_codes], lloq), "lz_mode": modes,
        "offsets": np.r_[0, np.cumsum(np.bincount(post_codes, minlength=n))].astype(np.int64),
        "info": np.column_stack([manual, predose, _per_profile(post, post_codes, n)]),
        "baselines": levels,
    }  # fmt: skip


def _option_vector(options: NCAOptions) -> np.ndarray:
    """The kernel's option vector, in ``_nca_kernel.O_*`` order."""
    return np.array([
        AUC_METHODS.index(options.auc_method), IMPUTE_START.index(options.impute_start),
        INTERVAL_AUC.index(options.interval_auc), options.min_points_lambda_z,
        options.adj_r2_tolerance, float(options.allow_tmax_in_lambda_z),
        *blq_actions(options.blq),
    ], dtype=np.float64)  # fmt: skip


def _with_subject_columns(wide: pd.DataFrame, kin: pd.DataFrame) -> pd.DataFrame:
    """Carry dose, dose unit and dose level along (summaries group by them)."""
    present = [c for c in _SUBJECT_COLUMNS if c in kin.columns]
    if not present:
        return wide
    per_subject = kin.groupby("subject", sort=False)[present].first().reset_index()
    merged = wide.merge(per_subject, on="subject", how="left", validate="many_to_one")
    order = ["subject", "assay", "unit", *present]
    merged = merged.loc[:, order + [c for c in merged.columns if c not in order]]
    merged.attrs = wide.attrs
    return merged


def _excluded_text(table: pd.DataFrame, reasons: np.ndarray, codes: np.ndarray,
                   n: int) -> np.ndarray:  # fmt: skip
    out = np.full(n, "", dtype=object)
    rows = np.flatnonzero(reasons != "")
    for g in np.unique(codes[rows]):
        mine = rows[codes[rows] == g]
        times = table["time"].to_numpy()[mine]
        out[g] = "; ".join(f"day {t:g}: {r}" for t, r in zip(times, reasons[mine], strict=True))
    return out


def nca(
    kinetics: pd.DataFrame,
    options: NCAOptions | None = None,
    *,
    intervals: Sequence[Sequence[float]] | None = None,
    auc_method: str | None = None,
    blq: str | None = None,
    baseline: str | float | None = None,
    tbb_method: str | None = None,
) -> pd.DataFrame:
    r"""Observed (non-compartmental) metrics per subject × assay.

    Parameters
    ----------
    kinetics : DataFrame
        A kinetics table (read by :func:`cellkin.read_kinetics` first, so any convention it
        reads is accepted; a missing value without a BLQ flag is dropped there, with a note,
        as not sampled). Samples at ``time < 0`` are pre-infusion: they set the baseline and
        (with ``impute_start="start_predose"``) the day-0 level, and never enter Cmax. Rows
        whose exclusion column (``options.exclude_column``, default ``exclude``) holds text
        are left out, the text being the reason (PKNCA's ``exclude``).
    options : NCAOptions, optional
        All options (:class:`~cellkin.metrics.NCAOptions`; defaults when omitted;
        ``NCAOptions.pknca()`` gives PKNCA's ``pk.nca`` defaults).
    intervals, auc_method, blq, baseline, tbb_method : optional
        The five options most often changed, as keywords; each replaces the same field of
        `options` (so ``nca(k, auc_method="linup-logdown")`` works without building
        options). Bad values raise :class:`~cellkin.errors.OptionError`.

    Returns
    -------
    DataFrame
        One row per subject × assay: ``subject, assay, unit`` (then ``dose, dose_unit,
        dose_level`` when the kinetics table has them), the metrics of :func:`nca_parameters`
        (``cmax, tmax, clast, tlast``, per interval ``auc_<a>_<b>`` and
        ``auc_last_<a>_<b>``, ``c_<day>`` per `levels_at`, ``auc_last, auc_all, aumc_last``,
        the λz family, ``auc_inf, auc_inf_pred, auc_pct_extrap(_pred), aumc_inf(_pred),
        mrt_last, mrt_inf(_pred), time_above_lloq, time_above_<level>``, the time back to
        baseline with ``_method``, ``_censored``, ``_observed``, ``_interpolated``,
        ``tbb_threshold, baseline``, and with a dose ``cmax_dn, auc_*_dn``), ``flags`` (λz
        diagnostics outside the usual limits: adjusted R² < 0.9, span ratio < 2, AUC
        extrapolated > 20 %), ``excluded_samples`` (rows left out by the exclusion column,
        ``day <t>: <reason>``), ``exclude_reason`` (why each NaN metric is NaN), unit columns
        and the method columns ``auc_method, blq, baseline_method``.
        ``DataFrame.attrs["cellkin"]`` records the cellkin version, every option and the rows
        dropped before the analysis (``exclusions``).

    Notes
    -----
    A profile with no quantifiable sample (a non-expander) has Cmax = Clast = 0 and AUCs of
    0 (PKNCA), Tmax, Tlast and λz undefined. ``span_ratio = (t_last,λz − t_first,λz)/t½``;
    ``auc_inf = AUClast + Clast/λz``; ``aumc_inf = AUMClast + Clast·Tlast/λz + Clast/λz²``;
    ``mrt_* = AUMC/AUC`` (extravascular: the infusion is short against days).
    """
    options = _resolve(options, {"intervals": intervals, "auc_method": auc_method, "blq": blq,
                                 "baseline": baseline, "tbb_method": tbb_method})  # fmt: skip
    kin, exclusions = read_kinetics_with_exclusions(kinetics)
    excluded = _excluded_rows(kin, options.exclude_column)
    table, keys, codes = _profiles(kin.assign(_excluded=excluded))
    reasons = table.pop("_excluded").to_numpy(dtype=object)
    kept = reasons == ""
    inputs = _kernel_inputs(table.loc[kept], keys, codes[kept], options)
    extra_names = interval_parameters(options.intervals, options.levels_at, options.time_above,
                                      options.interval_auc)  # fmt: skip
    grids = (np.array(options.intervals, dtype=np.float64).reshape(-1, 2),
             np.array(options.levels_at, dtype=np.float64),
             np.array(options.time_above, dtype=np.float64))  # fmt: skip
    arrays = kernel.nca_profiles(inputs["t"], inputs["v"], inputs["blq"], inputs["lloq"],
                                 inputs["thr"], inputs["lz_mode"], inputs["offsets"],
                                 inputs["info"], _option_vector(options), grids,
                                 len(extra_names))  # fmt: skip
    dropped = table.loc[~kept, ["subject", "assay", "time"]].assign(reason=reasons[~kept])
    records = [*exclusions.to_dict("records"), *dropped.to_dict("records")]
    settings = {"cellkin_version": __version__, **options.to_dict(), "exclusions": records}
    wide = assemble(keys, arrays, extra_names, inputs["baselines"], settings)
    wide.insert(wide.columns.get_loc("exclude_reason"), "excluded_samples",
                _excluded_text(table, reasons, codes, len(keys)))  # fmt: skip
    return add_dose_normalised(_with_subject_columns(wide, kin))


def nca_long(
    table: pd.DataFrame, options: NCAOptions | None = None, **keywords: Any
) -> pd.DataFrame:
    """The long form: one row per subject × assay × metric.

    Parameters
    ----------
    table : DataFrame
        A kinetics table (NCA is run with `options` and `keywords` as in :func:`nca`), or a
        wide table returned by :func:`nca` (converted as it is).

    Returns
    -------
    DataFrame
        ``subject, assay, metric, pptestcd`` (CDISC PP code), ``pknca`` (PKNCA's parameter
        name), ``value, unit, exclude_reason, auc_method, blq``.
    """
    if not table.attrs.get("cellkin", {}).get("nca"):
        table = nca(table, options, **keywords)
    elif options is not None or keywords:
        raise OptionError("options apply to a kinetics table, not to an NCA result table")
    return to_long(table)


def nca_parameters() -> pd.DataFrame:
    """The documented mapping of :func:`nca`'s columns to PKNCA parameter names and CDISC
    ``PPTESTCD`` codes, with unit kinds and descriptions (interval columns are named
    ``auc_<a>_<b>`` → PKNCA ``aucint.*``, ``auc_last_<a>_<b>`` → ``auclast`` on the
    interval, ``c_<day>``, ``time_above_<level>`` → ``time_above``; ``<name>_dn`` → PKNCA
    ``<name>.dn``)."""
    return pd.DataFrame(
        [{"column": name, **spec._asdict()} for name, spec in PARAMETERS.items()]
    ).rename(columns={"unit": "unit_kind"})
