"""The units of work of :func:`cellkin.metrics.model_metrics`: one subject × assay (private).

A :class:`Task` holds what the metric code needs of one subject's fitted assay, whatever the
fit it comes from (a per-subject :class:`~cellkin.fit.FitResult` or a subject of a population
fit): the parameter vector at which the curve is drawn, the draws that give the CIs, the
time-back-to-baseline threshold, and the days that bound the subject's data and its horizon.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cellkin.metrics._baseline import profile_baseline, threshold

__all__ = [
    "SOURCE_PER_SUBJECT",
    "SOURCE_POPULATION",
    "Options",
    "Task",
    "assay_tasks",
    "subject_threshold",
]

#: Where model-based metrics come from (``attrs["cellkin"]["source"]`` of the metrics table,
#: and the report's ``source`` column): a per-subject fit, or a population fit's conditional
#: distribution.
SOURCE_PER_SUBJECT = "per-subject fit"
SOURCE_POPULATION = "population (conditional)"


@dataclass(frozen=True)
class Options:
    """The options of one :func:`~cellkin.metrics.model_metrics` call, checked."""

    intervals: np.ndarray
    confidence: float
    n_draws: int
    seed: int
    baseline: str | float
    horizon: float | None


@dataclass
class Task:
    """One fit × assay: its identity columns, threshold, point estimate, draws, and the days
    that bound its data (post-infusion samples) and its horizon. With ``median`` the estimate
    reported is the median of the metric over the draws (a population fit's conditional
    distribution), not its value at ``point``."""

    result: Any
    assay: str
    baseline: float
    threshold: float
    point: np.ndarray  # natural-scale full vector
    draws: np.ndarray | None  # (n_draws, n_full)
    scale_column: int | None
    first_quantified: float = math.nan
    last_quantified: float = math.nan
    last_sample: float = math.nan
    horizon: float = math.inf
    quantified: np.ndarray = field(default_factory=lambda: np.empty(0))  # their days
    median: bool = False

    def scale_of(self, rows: np.ndarray) -> np.ndarray:
        """The assay's scale in each parameter row (1 for the first assay)."""
        if self.scale_column is None:
            return np.ones(rows.shape[0])
        return rows[:, self.scale_column]


def subject_threshold(data: pd.DataFrame, assay: str, baseline: str | float) -> tuple[float, float]:
    """(baseline, threshold) for one assay of one subject's samples ``data``: the rule of
    :func:`cellkin.metrics.nca` (:mod:`cellkin.metrics._baseline`), the LLOQ being the median
    post-infusion one."""
    mine = data["assay"].to_numpy() == assay
    time = data["time"].to_numpy(dtype=float)[mine]
    lloq = float(np.median(data["lloq"].to_numpy(dtype=float)[mine][time >= 0]))
    value = data["value"].to_numpy(dtype=float)[mine]
    blq = data["blq"].to_numpy(dtype=bool)[mine]
    level = profile_baseline(time, value, blq, baseline)
    return level, float(threshold(level, lloq))


def assay_tasks(
    result: Any,
    data: pd.DataFrame,
    assays: Sequence[str],
    point: np.ndarray,
    draws: np.ndarray | None,
    scale_columns: Sequence[int | None],
    options: Options,
    *,
    median: bool = False,
) -> list[Task]:
    """One task per fitted assay of one subject whose samples are ``data`` (``subject, time,
    value, assay, lloq, blq``); the horizon by default twice the last post-infusion day."""
    time = data["time"].to_numpy(dtype=float)
    post = time >= 0
    horizon = options.horizon
    if horizon is None:
        horizon = 2.0 * float(time[post].max()) if post.any() else math.inf
    blq = data["blq"].to_numpy(dtype=bool)
    tasks = []
    for assay, column in zip(assays, scale_columns, strict=True):
        base, level = subject_threshold(data, assay, options.baseline)
        mine = post & (data["assay"].to_numpy() == assay)
        quantified = time[mine & ~blq]
        days = (float(quantified.min()), float(quantified.max())) if quantified.size else (
            math.nan, math.nan)  # fmt: skip
        last = float(time[mine].max()) if mine.any() else math.nan
        tasks.append(Task(result, assay, base, level, point, draws, column, *days, last,
                          float(horizon), quantified, median))  # fmt: skip
    return tasks
