"""Helpers shared by the kinetics figures (private): tables, labels, geometric means."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from cellkin.errors import DataError

__all__ = [
    "BINNED_NOTE",
    "BLQ_STYLE",
    "DAYS",
    "TIME_WINDOW_DAYS",
    "assay_rows",
    "binned_days",
    "identity_line",
    "is_binned",
    "log_mean_ci",
    "note",
]

#: x-axis label of every kinetics figure.
DAYS = "days since infusion"
#: BLQ samples: open down triangles at the LLOQ.
BLQ_STYLE = {"marker": "v", "mfc": "none", "ls": "none"}


def assay_rows(kinetics: pd.DataFrame, assay: str) -> pd.DataFrame:
    """The samples of one assay (one unit), with a ``nominal`` time column (the visit's
    nominal day, or the actual day binned into a window: :func:`binned_days`)."""
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


#: Nominal days that actual sampling days are binned to when a table has no ``nominal_time``
#: (a typical CAR-T schedule). A post-infusion day t goes to the nominal day d nearest on the
#: log(1 + t) scale, so each window runs between the geometric midpoints of log(1 + d) of its
#: neighbours (day 7 takes days 5.32–8.38, day 28 takes 24.26–34.31); pre-infusion days go to −1.
TIME_WINDOW_DAYS = (0.0, 1.0, 2.0, 3.0, 4.0, 7.0, 10.0, 14.0, 21.0, 28.0, 42.0, 56.0, 84.0,
                    112.0, 168.0, 252.0, 365.0, 547.0, 730.0, 1095.0)  # fmt: skip
#: Note drawn on figures whose visit bins come from :data:`TIME_WINDOW_DAYS`.
BINNED_NOTE = (
    "no nominal times: actual days binned into windows around days 0, 1, 2, 3, 4, 7, "
    "10, 14, 21, 28, 42, 56, 84, ... (log scale)"
)


def binned_days(time: np.ndarray) -> np.ndarray:
    """Each actual day as the nominal day of its window (:data:`TIME_WINDOW_DAYS`)."""
    grid = np.log1p(np.asarray(TIME_WINDOW_DAYS))
    logs = np.log1p(np.clip(time, 0.0, None))
    nearest = np.abs(logs[:, None] - grid[None, :]).argmin(axis=1)
    return np.where(time < 0, -1.0, np.asarray(TIME_WINDOW_DAYS)[nearest])


def _nominal(rows: pd.DataFrame) -> np.ndarray:
    """Nominal time where the table has it, the actual time binned into windows otherwise."""
    time = rows["time"].to_numpy(float)
    binned = binned_days(time)
    if "nominal_time" not in rows:
        return binned
    nominal = pd.to_numeric(rows["nominal_time"], errors="coerce").to_numpy(float)
    return np.where(np.isfinite(nominal), nominal, binned)


def is_binned(rows: pd.DataFrame) -> bool:
    """Whether some visit bins of `rows` come from binning actual days (no nominal time)."""
    if "nominal_time" not in rows:
        return True
    return bool(pd.to_numeric(rows["nominal_time"], errors="coerce").isna().any())


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
