"""Model-based against observed (NCA) metrics, one point per subject (private)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from cellkin._stats import check_confidence
from cellkin.errors import DataError
from cellkin.fit import BatchFit
from cellkin.plot._axes import axes
from cellkin.plot._common import identity_line, log_mean_ci

__all__ = ["metric_agreement"]


_METRICS = {"cmax", "tmax", "auc_0_28", "auc_0_84", "auc_inf", "clast", "auc_last",
            "time_back_to_baseline", "half_life", "half_life_terminal"}  # fmt: skip


def _metric_pairs(nca_table: pd.DataFrame, model_table: pd.DataFrame, metric: str,
                  assay: str) -> pd.DataFrame:  # fmt: skip
    """One row per subject with ``nca``, ``model``, ``lower``, ``upper`` (and ``censored``)."""
    for name, table in (("nca_table", nca_table), ("model_metrics", model_table)):
        if not isinstance(table, pd.DataFrame) or not {"subject", "assay"} <= set(table):
            raise DataError(f"`{name}` must be a metrics table with `subject` and `assay`")
        if metric not in table:
            common = sorted(set(nca_table) & set(model_table) & _METRICS)
            raise DataError(f"metric {metric!r} is not a column of `{name}`; metrics in both "
                            f"tables: {common}")  # fmt: skip
        if not (table["assay"] == assay).any():
            raise DataError(f"no {assay!r} rows in `{name}`; assays: "
                            f"{sorted(map(str, table['assay'].unique()))}")  # fmt: skip
    nca = nca_table[nca_table["assay"] == assay]
    model = model_table[model_table["assay"] == assay]
    if "reliable" in model:
        reliable = model["reliable"].astype(bool)
    elif "success" in model:
        reliable = model["success"].astype(bool)
    else:
        reliable = pd.Series(True, index=model.index)
    censored = f"{metric}_censored"
    frame = pd.DataFrame({
        "subject": nca["subject"].astype(str),
        "nca": pd.to_numeric(nca[metric], errors="coerce"),
        "censored": nca[censored].fillna(False).astype(bool) if censored in nca else False,
    }).merge(pd.DataFrame({
        "subject": model["subject"].astype(str),
        "model": pd.to_numeric(model[metric], errors="coerce"),
        "lower": pd.to_numeric(model.get(f"{metric}_ci_lower", np.nan), errors="coerce"),
        "upper": pd.to_numeric(model.get(f"{metric}_ci_upper", np.nan), errors="coerce"),
        "reliable": reliable.to_numpy(),
        "model_censored": model[censored].fillna(False).astype(bool).to_numpy()
                          if censored in model else False,
    }), on="subject", how="inner")  # fmt: skip
    model_censored = frame.pop("model_censored").astype(bool)
    frame.attrs["model_censored"] = bool((model_censored & ~frame["censored"]).any())
    frame["censored"] = frame["censored"].astype(bool) | model_censored
    return frame


def _metric_label(table: pd.DataFrame, metric: str) -> str:
    if metric.startswith("auc") and "auc_unit" in table:
        unit = table["auc_unit"].dropna()
    elif metric in ("cmax", "clast") and "unit" in table:
        unit = table["unit"].dropna()
    else:
        unit = pd.Series(["day"] if "time" in metric or "tmax" in metric
                         or "half_life" in metric else [])  # fmt: skip
    return f"{metric} ({unit.iloc[0]})" if len(unit) else metric


def metric_agreement(
    nca_table: pd.DataFrame,
    model_metrics: pd.DataFrame | BatchFit,
    *,
    metric: str = "cmax",
    assay: str = "qpcr",
    ax: Any = None,
    confidence: float = 0.95,
    log: bool = True,
) -> Any:
    """Model-based against NCA (observed) value of a metric, one point per subject.

    The x axis is the NCA value (:func:`cellkin.nca`), the y axis the model-based value
    (``BatchFit.metrics`` or :meth:`cellkin.FitResult.metrics`) with the CI of the table
    (``<metric>_ci_lower``/``_ci_upper``) as an error bar; the dashed line is the identity.
    Fits that are not reliable (the table's ``reliable`` column, or ``success`` in a table
    without it) are drawn marked — open grey squares, no error bar — not hidden. A text box
    gives the geometric mean ratio model/NCA ``GMR = exp(mean(ln(model/NCA)))`` over the
    subjects with a reliable fit and both values positive, with its t-based CI
    ``exp(m ± t((1 + confidence)/2, n−1)·s/√n)``. For time back to baseline, NCA values
    censored at the last sample are drawn open and left out of the GMR (they are lower
    bounds), as are model-based values censored at the horizon.

    Parameters
    ----------
    nca_table : pandas.DataFrame
        Output of :func:`cellkin.nca` (one row per subject × assay).
    model_metrics : pandas.DataFrame or BatchFit
        Model-based metrics (its ``metrics`` table for a batch); columns named as in the NCA
        table, with ``<metric>_ci_lower``/``_ci_upper``.
    metric : str, default "cmax"
        A metric in both tables (``cmax``, ``tmax``, ``auc_0_28``, ``auc_0_84``, ``auc_inf``,
        ``time_back_to_baseline``).
    assay : str, default "qpcr"
    ax : matplotlib.axes.Axes, optional
        Axes to draw on (default: the current axes).
    confidence : float, default 0.95
        Level of the GMR's CI.
    log : bool, default True
        Log–log axes (non-positive values are then left out and counted in a note).

    Returns
    -------
    matplotlib.axes.Axes
    """
    level = check_confidence(confidence)
    table = model_metrics.metrics() if isinstance(model_metrics, BatchFit) else model_metrics
    pairs = _metric_pairs(nca_table, table, metric, assay)
    censored_label = (
        "censored (NCA: last sample; model: horizon)"
        if pairs.attrs.get("model_censored")
        else "NCA censored at last sample"
    )
    labels = [_metric_label(t[t["assay"] == assay], metric) for t in (nca_table, table)]
    finite = np.isfinite(pairs[["nca", "model"]]).all(axis=1)
    shown = finite & ((pairs["nca"] > 0) & (pairs["model"] > 0) if log else True)
    pairs, left_out = pairs[shown], int((~shown).sum())
    if pairs.empty:
        raise DataError(f"no subject has both an NCA and a model-based {metric} for {assay!r}")
    ax = axes(ax)
    error = np.vstack([pairs["model"] - pairs["lower"], pairs["upper"] - pairs["model"]])
    error = np.clip(np.nan_to_num(error), 0, None)
    reliable = pairs["reliable"].astype(bool).to_numpy()
    if (~reliable).any():
        ax.plot(pairs["nca"][~reliable], pairs["model"][~reliable], "s", mfc="none", ms=5,
                color="0.55", label="unreliable fit (not in the GMR)")  # fmt: skip
    for censored, style in ((False, {}), (True, {"mfc": "none"})):
        rows = (pairs["censored"] == censored).to_numpy() & reliable
        if rows.any():
            label = censored_label if censored else "subjects"
            ax.errorbar(pairs["nca"][rows], pairs["model"][rows], yerr=error[:, rows], fmt="o",
                        color="C0", ms=5, capsize=2, elinewidth=0.8, label=label,
                        **style)  # fmt: skip
    identity_line(ax, pairs[["nca", "model"]].to_numpy(float).ravel())
    _gmr_box(ax, pairs[reliable & ~pairs["censored"] & (pairs["nca"] > 0) & (pairs["model"] > 0)],
             level)  # fmt: skip
    if left_out:
        ax.text(0.98, 0.09, f"{left_out} subject(s) without two positive values not shown",
                transform=ax.transAxes, ha="right", fontsize=7, color="0.35")  # fmt: skip
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel(f"NCA {labels[0]}")
    ax.set_ylabel(f"model-based {labels[1]}")
    ax.set_title(f"{metric.replace('_', ' ')} ({assay})", fontsize="medium")
    ax.legend(fontsize="small", loc="upper left")
    return ax


def _gmr_box(ax: Any, used: pd.DataFrame, level: float) -> None:
    """Text box with the geometric mean ratio model/NCA and its t-based CI."""
    ratios = (used["model"] / used["nca"]).to_numpy(float)
    gmr, lower, upper = log_mean_ci(ratios, level) if ratios.size else (math.nan,) * 3
    text = (f"GMR model/NCA = {gmr:.3g} ({100 * level:g}% CI {lower:.3g}–{upper:.3g}), "
            f"n = {len(used)}")  # fmt: skip
    ax.text(0.98, 0.02, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=8,
            bbox={"boxstyle": "round", "fc": "white", "ec": "0.7"}, gid="gmr")  # fmt: skip
