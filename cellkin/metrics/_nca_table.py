"""Turn the NCA kernel's arrays into the documented tables (private)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cellkin.metrics import _nca_kernel as kernel
from cellkin.metrics._nca_parameters import PARAMETERS, Parameter

_K = kernel
_REASON_TEXT = np.array(kernel.REASONS, dtype=object)
FLAG_LIMITS = {"r2_adj": 0.9, "span_ratio": 2.0, "auc_pct_extrap": 20.0}

_LAMBDA = ("lambda_z", "half_life", "r2", "r2_adj", "lambda_z_corrxy", "n_points_lambda_z",
           "lambda_z_time_first", "lambda_z_time_last", "span_ratio", "clast_pred")  # fmt: skip
_INF = ("auc_inf", "auc_inf_pred", "auc_pct_extrap", "auc_pct_extrap_pred", "aumc_inf",
        "aumc_inf_pred", "mrt_inf", "mrt_inf_pred", "auc_inf_dn")  # fmt: skip
_TBB = ("time_back_to_baseline", "time_back_to_baseline_observed",
        "time_back_to_baseline_interpolated", "tbb_threshold")  # fmt: skip
#: Reason slot → metrics it explains (the λz slot also explains the AUCinf family).
_SLOTS = {
    _K.R_PEAK: ("tmax", "tlast"),
    _K.R_AUC: ("auc_last", "auc_all", "aumc_last", "mrt_last", "auc_last_dn"),
    _K.R_LAMBDA: _LAMBDA + _INF,
    _K.R_TBB: _TBB,
    _K.R_ABOVE: ("time_above_lloq",),
}


def _unit(kind: str, level_unit: str, dose_unit: str) -> str:
    units = {"level": level_unit, "time": "day", "auc": f"{level_unit}*day",
             "aumc": f"{level_unit}*day^2", "rate": "1/day",
             "level/dose": f"{level_unit}/{dose_unit}",
             "auc/dose": f"{level_unit}*day/{dose_unit}"}  # fmt: skip
    return units.get(kind, kind)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def _derived(f: np.ndarray) -> dict[str, np.ndarray]:
    """Half-life, span ratio and the AUCinf / AUMCinf / MRT family (NaN propagates)."""
    rate, clast, tlast = f[:, _K.F_LAMBDA_Z], f[:, _K.F_CLAST], f[:, _K.F_TLAST]
    pred, auc, aumc = f[:, _K.F_CLAST_PRED], f[:, _K.F_AUC_LAST], f[:, _K.F_AUMC_LAST]
    out: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        out["half_life"] = np.log(2.0) / rate
        out["span_ratio"] = (f[:, _K.F_LZ_LAST] - f[:, _K.F_LZ_FIRST]) / out["half_life"]
        out["auc_inf"] = auc + clast / rate
        out["auc_inf_pred"] = auc + pred / rate
        out["auc_pct_extrap"] = 100.0 * _ratio(out["auc_inf"] - auc, out["auc_inf"])
        out["auc_pct_extrap_pred"] = 100.0 * _ratio(out["auc_inf_pred"] - auc, out["auc_inf_pred"])
        out["aumc_inf"] = aumc + clast * tlast / rate + clast / rate**2
        out["aumc_inf_pred"] = aumc + pred * tlast / rate + pred / rate**2
    out["mrt_last"] = _ratio(aumc, auc)
    out["mrt_inf"] = _ratio(out["aumc_inf"], out["auc_inf"])
    out["mrt_inf_pred"] = _ratio(out["aumc_inf_pred"], out["auc_inf_pred"])
    return out


def _flags(frame: pd.DataFrame) -> np.ndarray:
    tests = (
        (frame["r2_adj"].to_numpy() < FLAG_LIMITS["r2_adj"], "r2_adj<0.9"),
        (frame["span_ratio"].to_numpy() < FLAG_LIMITS["span_ratio"], "span_ratio<2"),
        (frame["auc_pct_extrap"].to_numpy() > FLAG_LIMITS["auc_pct_extrap"], "auc_pct_extrap>20"),
    )
    columns = [np.where(mask, text, "") for mask, text in tests]
    return np.array([";".join(x for x in row if x) for row in zip(*columns, strict=True)],
                    dtype=object)  # fmt: skip


def reasons(
    reason_codes: np.ndarray, extra_reasons: np.ndarray, extra_names: list[str],
    min_points: int,
) -> tuple[np.ndarray, dict[str, Any]]:  # fmt: skip
    """Row-level ``exclude_reason`` text, and the per-metric reasons as codes (compact: they
    travel in ``DataFrame.attrs``, which pandas deep-copies on every operation)."""
    text = _REASON_TEXT.copy()
    text[kernel.LZ_OFFSET + 1] = (
        f"fewer than {min_points} quantifiable samples after Tmax for lambda_z"
    )
    codes = np.hstack([reason_codes, extra_reasons])
    columns: dict[str, int] = {}
    labels = []
    for slot, metrics in _SLOTS.items():
        labels.append(metrics[0])
        columns.update(dict.fromkeys(metrics, slot))
    for j, name in enumerate(extra_names):
        labels.append(name)
        columns[name] = reason_codes.shape[1] + j
    words = text[codes]
    rows = [
        "; ".join(f"{label}: {w}" for label, w in zip(labels, row, strict=True) if w)
        for row in words
    ]
    record = {"codes": codes, "columns": columns, "text": tuple(text)}
    return np.array(rows, dtype=object), record


def _metric_reasons(record: dict[str, Any], metric: str, n: int) -> np.ndarray:
    column = record.get("columns", {}).get(metric)
    if column is None:
        return np.full(n, "", dtype=object)
    return np.array(record["text"], dtype=object)[record["codes"][:, column]]


def assemble(
    keys: pd.DataFrame,
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    extra_names: dict[str, Parameter],
    baselines: np.ndarray,
    settings: dict[str, Any],
) -> pd.DataFrame:
    """Build the wide NCA table (one row per profile)."""
    f, codes, extra, extra_codes = arrays
    columns: dict[str, Any] = {c: keys[c].to_numpy() for c in keys.columns}
    simple = {"cmax": _K.F_CMAX, "tmax": _K.F_TMAX, "clast": _K.F_CLAST, "tlast": _K.F_TLAST}
    columns.update({name: f[:, j] for name, j in simple.items()})
    columns.update({name: extra[:, j] for j, name in enumerate(extra_names)})
    derived = _derived(f)
    columns.update(
        auc_last=f[:, _K.F_AUC_LAST], auc_all=f[:, _K.F_AUC_ALL], aumc_last=f[:, _K.F_AUMC_LAST],
        lambda_z=f[:, _K.F_LAMBDA_Z], half_life=derived["half_life"], r2=f[:, _K.F_R2],
        r2_adj=f[:, _K.F_R2_ADJ], lambda_z_corrxy=f[:, _K.F_CORRXY],
        n_points_lambda_z=pd.array(f[:, _K.F_N_LAMBDA], dtype="Float64").astype("Int64"),
        lambda_z_time_first=f[:, _K.F_LZ_FIRST], lambda_z_time_last=f[:, _K.F_LZ_LAST],
        span_ratio=derived["span_ratio"], clast_pred=f[:, _K.F_CLAST_PRED],
    )  # fmt: skip
    for name in ("auc_inf", "auc_inf_pred", "auc_pct_extrap", "auc_pct_extrap_pred",
                 "aumc_inf", "aumc_inf_pred", "mrt_last", "mrt_inf", "mrt_inf_pred"):  # fmt: skip
        columns[name] = derived[name]
    columns["time_above_lloq"] = f[:, _K.F_TIME_ABOVE_LLOQ]
    observed, interpolated = f[:, _K.F_TBB_OBS], f[:, _K.F_TBB_INTERP]
    columns["time_back_to_baseline"] = (
        observed if settings["tbb_method"] == "observed" else interpolated
    )
    columns["time_back_to_baseline_method"] = settings["tbb_method"]
    censored = f[:, _K.F_TBB_CENSORED]
    columns["time_back_to_baseline_censored"] = pd.array(
        np.where(np.isnan(censored), pd.NA, censored > 0), dtype="boolean"
    )
    columns["time_back_to_baseline_observed"] = observed
    columns["time_back_to_baseline_interpolated"] = interpolated
    columns["tbb_threshold"] = f[:, _K.F_TBB_THRESHOLD]
    columns["baseline"] = baselines
    frame = pd.DataFrame(columns)
    frame["flags"] = _flags(frame)
    text, record = reasons(codes, extra_codes, list(extra_names),
                               settings["min_points_lambda_z"])  # fmt: skip
    frame["exclude_reason"] = text
    frame["time_unit"] = "day"
    frame["auc_unit"] = frame["unit"] + "*day"
    frame["lambda_z_unit"] = "1/day"
    frame["auc_method"] = settings["auc_method"]
    blq = settings["blq"]
    frame["blq"] = blq if isinstance(blq, str) else ";".join(f"{k}={v}" for k, v in blq.items())
    frame["baseline_method"] = (
        settings["baseline"] if isinstance(settings["baseline"], str) else "fixed"
    )
    frame.attrs["cellkin"] = dict(settings, nca=True, interval_columns=list(extra_names))
    frame.attrs["_reasons"] = record
    frame.attrs["_parameters"] = {**PARAMETERS, **extra_names}
    return frame


def add_dose_normalised(frame: pd.DataFrame) -> pd.DataFrame:
    """``cmax_dn``, ``auc_last_dn``, ``auc_inf_dn`` and ``<interval>_dn`` when the table has a
    positive ``dose`` (PKNCA's ``*.dn`` parameters); unit ``<unit>/<dose_unit>``."""
    if "dose" not in frame:
        return frame
    dose = pd.to_numeric(frame["dose"], errors="coerce").to_numpy(dtype=float)
    dose = np.where(dose > 0, dose, np.nan)
    names = ["cmax", "auc_last", "auc_inf"] + [
        c for c in frame.attrs["cellkin"]["interval_columns"] if c.startswith("auc_")
        and not c.startswith("auc_last_")
    ]  # fmt: skip
    for name in names:
        frame[f"{name}_dn"] = frame[name].to_numpy(dtype=float) / dose
    return frame


def _long_columns(wide: pd.DataFrame, metric: str, parameters: dict[str, Parameter],
                  record: dict[str, Any], dose_units: np.ndarray) -> dict[str, Any]:  # fmt: skip
    """Value, unit, codes and reason of one metric for every profile."""
    spec = parameters.get(metric) or parameters[metric[:-3]]
    plain = metric in parameters
    kind = spec.unit if plain else spec.unit + "/dose"
    units = {pair: _unit(kind, *pair) for pair in set(zip(wide["unit"], dose_units, strict=True))}
    base = metric if metric in record.get("columns", {}) else metric[:-3]
    return {
        "pptestcd": spec.pptestcd if plain else spec.pptestcd + "D",
        "pknca": spec.pknca if plain or not spec.pknca else spec.pknca + ".dn",
        "value": pd.to_numeric(wide[metric], errors="coerce").to_numpy(dtype=float),
        "unit": np.array(
            [units[pair] for pair in zip(wide["unit"], dose_units, strict=True)], dtype=object
        ),
        "exclude_reason": _metric_reasons(record, base, len(wide)),
    }


def to_long(wide: pd.DataFrame) -> pd.DataFrame:
    """One row per subject × assay × metric (profiles in the wide table's order, metrics in
    column order): value, unit, CDISC code, PKNCA name, reason."""
    record = wide.attrs.get("_reasons", {})
    parameters: dict[str, Parameter] = wide.attrs.get("_parameters", PARAMETERS)
    dose_units = (wide["dose_unit"].astype(str).to_numpy() if "dose_unit" in wide
                  else np.full(len(wide), "dose"))  # fmt: skip
    metrics = [c for c in wide.columns if c in parameters or c.endswith("_dn")]
    columns = [_long_columns(wide, m, parameters, record, dose_units) for m in metrics]
    n, k = len(wide), len(metrics)
    stacked: dict[str, Any] = {key: np.column_stack([c[key] for c in columns]).ravel() if n else []
               for key in ("value", "unit", "exclude_reason")}  # fmt: skip
    long = pd.DataFrame({
        "subject": np.repeat(wide["subject"].to_numpy(), k),
        "assay": np.repeat(wide["assay"].to_numpy(), k),
        "metric": np.tile(np.array(metrics, dtype=object), n),
        "pptestcd": np.tile(np.array([c["pptestcd"] for c in columns], dtype=object), n),
        "pknca": np.tile(np.array([c["pknca"] for c in columns], dtype=object), n),
        **stacked,
        "auc_method": wide["auc_method"].iloc[0] if n else None,
        "blq": wide["blq"].iloc[0] if n else None,
    })  # fmt: skip
    long["value"] = long["value"].astype(float)
    long.attrs["cellkin"] = wide.attrs.get("cellkin", {})
    return long
