"""Helpers shared by the kinetics figures (private): tables, labels, geometric means."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from cellkin.errors import DataError

__all__ = ["BLQ_STYLE", "DAYS", "assay_rows", "identity_line", "log_mean_ci", "note"]

#: x-axis label of every kinetics figure.
DAYS = "days since infusion"
#: BLQ samples: open down triangles at the LLOQ.
BLQ_STYLE = {"marker": "v", "mfc": "none", "ls": "none"}


def assay_rows(kinetics: pd.DataFrame, assay: str) -> pd.DataFrame:
    """The samples of one assay (one unit), with a ``nominal`` time column."""
    missing = {"subject", "time", "value", "assay", "unit", "lloq", "blq"} - set(kinetics)
    if missing:
        raise DataError(f"kinetics table lacks column(s) {sorted(missing)}; read it with "
                        "cellkin.read_kinetics")  # fmt: skip
    rows = kinetics[kinetics["assay"] == assay]
    if rows.empty:
        raise DataError(f"no samples of assay {assay!r}; assays in the table: "
                        f"{sorted(map(str, kinetics['assay'].unique()))}")  # fmt: skip
    units = rows["unit"].dropna().unique()
    if len(units) > 1:
        raise DataError(f"assay {assay!r} mixes units {sorted(units)}; convert them first")
    return rows.assign(nominal=_nominal(rows))


def _nominal(rows: pd.DataFrame) -> np.ndarray:
    """Nominal time where the table has it, the actual time otherwise."""
    time = rows["time"].to_numpy(float)
    if "nominal_time" not in rows:
        return time
    nominal = pd.to_numeric(rows["nominal_time"], errors="coerce").to_numpy(float)
    return np.where(np.isfinite(nominal), nominal, time)


def identity_line(ax: Any, values: np.ndarray) -> None:
    """Dashed y = x line over the finite range of `values`."""
    values = values[np.isfinite(values)]
    if values.size:
        low, high = values.min(), values.max()
        ax.plot([low, high], [low, high], "k--", lw=1, label="identity", gid="identity")


def note(ax: Any, text: str) -> None:
    """A small grey note in the top-left corner of the axes."""
    ax.text(0.01, 0.99, text, transform=ax.transAxes, va="top", fontsize=7, color="0.35")


def log_mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Geometric mean and its t-based CI (``exp(mean ± t·sd/√n)`` of the logs)."""
    logs = np.log(values)
    mean = float(logs.mean())
    if logs.size < 2:
        return math.exp(mean), math.nan, math.nan
    half = stats.t.ppf(0.5 + level / 2, logs.size - 1) * logs.std(ddof=1) / math.sqrt(logs.size)
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)
