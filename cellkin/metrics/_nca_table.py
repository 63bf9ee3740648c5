"""Turn the NCA kernel's arrays into the documented tables (private)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from cellkin.metrics import _nca_kernel as kernel

# metric -> (unit kind, CDISC PP test code). Unit kinds: level, time, auc, rate, 1, %.
METRICS: dict[str, tuple[str, str]] = {
    "cmax": ("level", "CMAX"),
    "tmax": ("time", "TMAX"),
    "clast": ("level", "CLST"),
    "tlast": ("time", "TLST"),
    "auc_last": ("auc", "AUCLST"),
    "lambda_z": ("rate", "LAMZ"),
    "half_life": ("time", "LAMZHL"),
    "r2": ("1", "R2"),
    "r2_adj": ("1", "R2ADJ"),
    "n_points_lambda_z": ("1", "LAMZNPT"),
    "lambda_z_time_first": ("time", "LAMZLL"),
    "lambda_z_time_last": ("time", "LAMZUL"),
    "span_ratio": ("1", "LAMZSPN"),
    "clast_pred": ("level", "CLSTP"),
    "auc_inf": ("auc", "AUCIFO"),
    "auc_pct_extrap": ("%", "AUCPEO"),
    "time_back_to_baseline": ("time", "TBB"),
    "time_back_to_baseline_observed": ("time", "TBBOBS"),
    "time_back_to_baseline_interpolated": ("time", "TBBINT"),
    "tbb_threshold": ("level", "TBBTHR"),
    "baseline": ("level", "BASE"),
}
_LAMBDA_METRICS = (
    "lambda_z", "half_life", "r2", "r2_adj", "n_points_lambda_z", "lambda_z_time_first",
    "lambda_z_time_last", "span_ratio", "clast_pred", "auc_inf", "auc_pct_extrap",
)  # fmt: skip
_TBB_METRICS = (
    "time_back_to_baseline", "time_back_to_baseline_observed",
    "time_back_to_baseline_interpolated", "tbb_threshold",
)  # fmt: skip
_PEAK_METRICS = ("cmax", "tmax", "clast", "tlast", "auc_last")
FLAG_LIMITS = {"r2_adj": 0.9, "span_ratio": 2.0, "auc_pct_extrap": 20.0}


def _unit(kind: str, level_unit: str) -> str:
    return {"level": level_unit, "time": "day", "auc": f"{level_unit}*day",
            "rate": "1/day"}.get(kind, kind)  # fmt: skip


def _reason_text(code: int, last_sample: float) -> str:
    text = kernel.REASONS[code]
    if code == kernel.INTERVAL_AFTER_LAST and math.isfinite(last_sample):
        text += f" (day {last_sample:g}); pass extrapolate=True to extend it with lambda_z"
    return text


def _flags(frame: pd.DataFrame) -> pd.Series:
    parts = pd.DataFrame(
        {
            "r2_adj": np.where(frame["r2_adj"] < FLAG_LIMITS["r2_adj"], "r2_adj<0.9", ""),
            "span": np.where(frame["span_ratio"] < FLAG_LIMITS["span_ratio"], "span_ratio<2", ""),
            "extrap": np.where(
                frame["auc_pct_extrap"] > FLAG_LIMITS["auc_pct_extrap"], "auc_pct_extrap>20", ""
            ),
        }
    )
    return parts.apply(lambda row: ";".join(item for item in row if item), axis=1)


def _reasons(
    keys: pd.DataFrame,
    floats: np.ndarray,
    aucs: np.ndarray,
    reasons: np.ndarray,
    names: list[str],
) -> tuple[pd.Series, dict[str, list[str]]]:
    """The row-level ``exclude_reason`` and a per-metric reason map (for the long form)."""
    per_metric: dict[str, list[str]] = {}
    rows = []
    for g in range(len(keys)):
        last = floats[g, kernel.F_LAST_TIME]
        found: list[tuple[tuple[str, ...], str]] = []
        if reasons[g, kernel.R_CMAX]:
            found.append((_PEAK_METRICS, _reason_text(reasons[g, kernel.R_CMAX], last)))
        for k, name in enumerate(names):
            if aucs[g, k] < 0:
                found.append(((name,), _reason_text(int(-aucs[g, k]), last)))
        if reasons[g, kernel.R_LAMBDA] and not reasons[g, kernel.R_CMAX]:
            found.append((_LAMBDA_METRICS, _reason_text(reasons[g, kernel.R_LAMBDA], last)))
        if reasons[g, kernel.R_TBB] and not reasons[g, kernel.R_CMAX]:
            found.append((_TBB_METRICS, _reason_text(reasons[g, kernel.R_TBB], last)))
        for metrics, text in found:
            for metric in metrics:
                per_metric.setdefault(metric, [""] * len(keys))[g] = text
        rows.append("; ".join(f"{metrics[0]}: {text}" for metrics, text in found))
    return pd.Series(rows, dtype=object), per_metric


def assemble(
    keys: pd.DataFrame,
    floats: np.ndarray,
    aucs: np.ndarray,
    reasons: np.ndarray,
    names: list[str],
    baselines: np.ndarray,
    settings: dict[str, Any],
) -> pd.DataFrame:
    """Build the wide NCA table."""
    f = kernel
    frame = keys.loc[:, ["subject", "assay", "unit"]].copy()
    for column, index in (("cmax", f.F_CMAX), ("tmax", f.F_TMAX), ("clast", f.F_CLAST),
                          ("tlast", f.F_TLAST)):  # fmt: skip
        frame[column] = floats[:, index]
    for k, name in enumerate(names):
        frame[name] = np.where(aucs[:, k] >= 0, aucs[:, k], np.nan)
    frame["auc_last"] = floats[:, f.F_AUC_LAST]
    frame["lambda_z"] = floats[:, f.F_LAMBDA_Z]
    frame["half_life"] = np.log(2.0) / frame["lambda_z"]
    frame["r2"] = floats[:, f.F_R2]
    frame["r2_adj"] = floats[:, f.F_R2_ADJ]
    frame["n_points_lambda_z"] = pd.array(floats[:, f.F_N_LAMBDA], dtype="Float64").astype("Int64")
    frame["lambda_z_time_first"] = floats[:, f.F_LZ_FIRST]
    frame["lambda_z_time_last"] = floats[:, f.F_LZ_LAST]
    frame["span_ratio"] = (frame["lambda_z_time_last"] - frame["lambda_z_time_first"]) / frame[
        "half_life"
    ]
    frame["clast_pred"] = floats[:, f.F_CLAST_PRED]
    frame["auc_inf"] = floats[:, f.F_AUC_INF]
    frame["auc_pct_extrap"] = 100.0 * (frame["auc_inf"] - frame["auc_last"]) / frame["auc_inf"]
    observed, interpolated = floats[:, f.F_TBB_OBS], floats[:, f.F_TBB_INTERP]
    chosen = observed if settings["tbb_method"] == "observed" else interpolated
    frame["time_back_to_baseline"] = chosen
    frame["time_back_to_baseline_method"] = settings["tbb_method"]
    censored = floats[:, f.F_TBB_CENSORED]
    frame["time_back_to_baseline_censored"] = pd.array(
        np.where(np.isnan(censored), None, censored > 0), dtype="boolean"
    )
    frame["time_back_to_baseline_observed"] = observed
    frame["time_back_to_baseline_interpolated"] = interpolated
    frame["tbb_threshold"] = floats[:, f.F_TBB_THRESHOLD]
    frame["baseline"] = baselines
    frame["flags"] = _flags(frame)
    frame["exclude_reason"], per_metric = _reasons(keys, floats, aucs, reasons, names)
    frame["time_unit"] = "day"
    frame["auc_unit"] = frame["unit"] + "*day"
    frame["lambda_z_unit"] = "1/day"
    frame["auc_method"] = settings["auc_method"]
    frame["blq_rule"] = settings["blq_rule"]
    frame["baseline_method"] = (
        settings["baseline"] if isinstance(settings["baseline"], str) else "fixed"
    )
    frame.attrs["cellkin"] = dict(settings, interval_columns=names)
    frame.attrs["_reasons"] = per_metric
    return frame


def to_long(wide: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """One row per subject × assay × metric, with unit, CDISC code, method and reason."""
    per_metric = wide.attrs.get("_reasons", {})
    metrics = {**{name: ("auc", "AUCINT") for name in names}, **METRICS}
    pieces = []
    for metric, (kind, code) in metrics.items():
        if metric not in wide:
            continue
        pieces.append(
            pd.DataFrame(
                {
                    "subject": wide["subject"],
                    "assay": wide["assay"],
                    "metric": metric,
                    "pptestcd": code,
                    "value": pd.to_numeric(wide[metric], errors="coerce").astype(float),
                    "unit": [_unit(kind, unit) for unit in wide["unit"]],
                    "exclude_reason": per_metric.get(metric, [""] * len(wide)),
                }
            )
        )
    long = pd.concat(pieces, ignore_index=True)
    long["auc_method"] = wide["auc_method"].iloc[0] if len(wide) else None
    long["blq_rule"] = wide["blq_rule"].iloc[0] if len(wide) else None
    order = {name: i for i, name in enumerate(metrics)}
    long = long.sort_values(
        ["subject", "assay", "metric"],
        key=lambda s: s.map(order) if s.name == "metric" else s,
        kind="stable",
    ).reset_index(drop=True)
    long.attrs["cellkin"] = wide.attrs.get("cellkin", {})
    return long
