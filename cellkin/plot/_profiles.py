"""Observed individual profiles by group with each group's geometric mean (private)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cellkin._stats import check_confidence
from cellkin.errors import OptionError
from cellkin.plot._axes import axes
from cellkin.plot._common import (
    BINNED_NOTE,
    BLQ_STYLE,
    DAYS,
    assay_rows,
    is_binned,
    log_mean_ci,
    note,
)

__all__ = ["spaghetti"]


def _groups(
    kinetics: pd.DataFrame, subjects: pd.DataFrame | None, by: str | None
) -> tuple[pd.Series, list[str]]:
    """Group label per subject id and the group order (one group without a ``by`` column)."""
    ids = pd.Index(pd.unique(kinetics["subject"].astype(str)))
    if subjects is not None and by is not None and by in subjects.columns:
        table = subjects.assign(subject=subjects["subject"].astype(str))
        labels = table.drop_duplicates("subject").set_index("subject")[by].reindex(ids)
    elif subjects is None and by is not None and by in kinetics.columns:
        labels = kinetics.assign(subject=kinetics["subject"].astype(str))
        labels = labels.groupby("subject")[by].first().reindex(ids)
    else:
        return pd.Series("all subjects", index=ids), ["all subjects"]
    labels = labels.astype(object).where(labels.notna(), f"no {by}").astype(str)
    return labels, sorted(pd.unique(labels))


def _summary_table(rows: pd.DataFrame, level: float) -> pd.DataFrame:
    """Geometric mean and its CI per nominal time, BLQ samples replaced by LLOQ/2."""
    shown = np.where(rows["blq"], rows["lloq"] / 2, rows["value"])
    frame = pd.DataFrame({"nominal": rows["nominal"].to_numpy(), "level": shown})
    records = []
    for nominal, group in frame.groupby("nominal", sort=True):
        values = group["level"].to_numpy(float)
        values = values[np.isfinite(values) & (values > 0)]
        if values.size:
            records.append((nominal, values.size, *log_mean_ci(values, level)))
    return pd.DataFrame(records, columns=["nominal", "n", "gmean", "ci_lower", "ci_upper"])


def spaghetti(
    kinetics: pd.DataFrame,
    subjects: pd.DataFrame | None = None,
    *,
    assay: str = "qpcr",
    by: str | None = "dose_level",
    ax: Any = None,
    summary: str | None = "geometric_mean",
    confidence: float = 0.95,
    log: bool = True,
) -> Any:
    """Observed individual profiles by group, with each group's geometric mean and its CI.

    Each subject is a thin line through its samples in time order (actual sampling days),
    quantified samples at their value and BLQ samples at their LLOQ, where they are also
    marked with an open down triangle. Lines are coloured by the subject's group: the `by`
    column of `subjects` (joined on ``subject``), or of `kinetics` when `subjects` is None;
    one group when neither has it.

    The summary (``summary="geometric_mean"``) is, per group and nominal time (the
    ``nominal_time`` column where present; otherwise the actual day binned into the windows
    of ``cellkin.plot._common.TIME_WINDOW_DAYS``, which the figure then notes), the geometric
    mean of the samples with **BLQ samples replaced by LLOQ/2**, with its t-based CI
    ``exp(m ± t((1 + confidence)/2, n−1)·s/√n)`` (``m``, ``s``: mean and SD of the log levels;
    no CI when n = 1), drawn as markers joined by a line with error bars. ``summary=None`` draws the
    individual profiles only.

    Parameters
    ----------
    kinetics : pandas.DataFrame
        Validated kinetics table (:func:`cellkin.read_kinetics`).
    subjects : pandas.DataFrame, optional
        Subject table with the `by` column.
    assay : str, default "qpcr"
        Assay to plot (one unit).
    by : str or None, default "dose_level"
        Grouping column; None for one group.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.
    summary : {"geometric_mean", None}
        Group summary to draw.
    confidence : float, default 0.95
        Level of the geometric mean's CI.
    log : bool, default True
        Log y axis.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if summary not in ("geometric_mean", None):
        raise OptionError(f"`summary` must be 'geometric_mean' or None, got {summary!r}")
    level = check_confidence(confidence)
    rows = assay_rows(kinetics, assay)
    ax = axes(ax)
    labels, order = _groups(rows, subjects, by)
    rows = rows.assign(subject=rows["subject"].astype(str)).sort_values(["subject", "time"])
    for k, group in enumerate(order):
        colour = f"C{k}"
        members = rows[rows["subject"].map(labels) == group]
        for i, (subject, one) in enumerate(members.groupby("subject", sort=False)):
            shown = np.where(one["blq"], one["lloq"], one["value"])
            label = f"{group}: individuals (n={members['subject'].nunique()})" if i == 0 else None
            ax.plot(one["time"], shown, "-", color=colour, lw=0.7, alpha=0.5, label=label,
                    gid=f"subject:{subject}")  # fmt: skip
            blq = one[one["blq"]]
            ax.plot(blq["time"], blq["lloq"], color=colour, ms=4, alpha=0.6, **BLQ_STYLE)
        if summary is not None:
            _draw_summary(ax, _summary_table(members, level), colour, f"{group}: geometric "
                          f"mean ({100 * level:g}% CI)")  # fmt: skip
    ax.plot([], [], color="0.4", **BLQ_STYLE, label="BLQ (at LLOQ)")
    if log:
        ax.set_yscale("log")
    unit = rows["unit"].dropna().iloc[0] if rows["unit"].notna().any() else ""
    ax.set_xlabel(DAYS)
    ax.set_ylabel(f"{assay} ({unit})" if unit else assay)
    suffix = "; BLQ as LLOQ/2 in the geometric mean" if summary is not None else ""
    ax.set_title(f"Observed {assay} by {by if len(order) > 1 else 'subject'}{suffix}",
                 fontsize="medium")  # fmt: skip
    ax.legend(fontsize="x-small", ncols=2 if len(order) > 2 else 1)
    if summary is not None and is_binned(rows):
        note(ax, BINNED_NOTE)
    return ax


def _draw_summary(ax: Any, table: pd.DataFrame, colour: str, label: str) -> None:
    error = np.vstack([table["gmean"] - table["ci_lower"], table["ci_upper"] - table["gmean"]])
    ax.errorbar(table["nominal"], table["gmean"], yerr=np.nan_to_num(error), fmt="o-",
                color=colour, lw=2, ms=4, capsize=2, label=label)  # fmt: skip
