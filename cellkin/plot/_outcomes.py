"""Figures of clinical outcomes: waterfall, spider, swimmer and Kaplan–Meier plots (private).

RECIST categories have one colour each everywhere (:data:`RESPONSE_COLOURS`, Okabe–Ito,
colour-blind safe).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cellkin._tables import require
from cellkin.plot._axes import axes, matplotlib_module

if TYPE_CHECKING:
    from cellkin.outcomes import KaplanMeierResult

__all__ = ["RESPONSE_COLOURS", "kaplan_meier", "spider", "swimmer", "waterfall"]

#: Colours of the RECIST categories (colour-blind safe, Okabe–Ito).
RESPONSE_COLOURS = {
    "CR": "#009E73",
    "PR": "#56B4E9",
    "SD": "#E69F00",
    "NON-CR/NON-PD": "#F0E442",
    "PD": "#D55E00",
    "NE": "#999999",
}


def _legend(ax: Any, codes: Any) -> None:
    patch = matplotlib_module("matplotlib.patches").Patch
    shown = [code for code in RESPONSE_COLOURS if code in set(codes)]
    handles = [patch(color=RESPONSE_COLOURS[code], label=code) for code in shown]
    if handles:
        ax.legend(handles=handles, title="Response", frameon=False)


def waterfall(bor_table: pd.DataFrame, *, ax: Any = None, value: str = "best_pct_change") -> Any:
    """Waterfall plot: best % change in the sum of target diameters, one bar per subject.

    Parameters
    ----------
    bor_table : pandas.DataFrame
        Output of :func:`~cellkin.outcomes.best_overall_response` (``best_pct_change`` and
        ``bor``); subjects without a measurable change are left out.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on (default: the current axes).
    value : str, default "best_pct_change"
        Column to plot (%).

    Returns
    -------
    matplotlib.axes.Axes
        Bars sorted from largest increase to largest decrease, coloured by BOR, with the RECIST
        PD (+20 %) and PR (−30 %) thresholds as dashed lines.
    """
    require(bor_table, [value, "bor"], "bor_table")
    ax = axes(ax)
    data = bor_table[bor_table[value].notna()].sort_values(value, ascending=False)
    colours = [RESPONSE_COLOURS.get(code, "#999999") for code in data["bor"]]
    ax.bar(np.arange(len(data)), data[value].to_numpy(float), color=colours, width=0.8)
    for level in (20, -30):
        ax.axhline(level, color="0.4", linestyle="--", linewidth=0.8)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(np.arange(len(data)))
    ax.set_xticklabels(data["subject"].astype(str) if "subject" in data else [], rotation=90)
    ax.set_ylabel("Best change in sum of diameters (%)")
    _legend(ax, data["bor"])
    return ax


def spider(timepoints: pd.DataFrame, *, ax: Any = None, bor: pd.DataFrame | None = None) -> Any:
    """Spider plot: % change of the sum of diameters from baseline over time, per subject.

    Parameters
    ----------
    timepoints : pandas.DataFrame
        Output of :func:`~cellkin.outcomes.recist_timepoints`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on (default: the current axes).
    bor : pandas.DataFrame, optional
        Output of :func:`~cellkin.outcomes.best_overall_response`, to colour lines by BOR.

    Returns
    -------
    matplotlib.axes.Axes
    """
    require(timepoints, ["subject", "day", "pct_change_baseline"], "timepoints")
    ax = axes(ax)
    colour_of = {} if bor is None else dict(zip(bor["subject"], bor["bor"], strict=True))
    for subject, rows in timepoints.groupby("subject", sort=False):
        rows = rows[rows["pct_change_baseline"].notna()].sort_values("day")
        colour = RESPONSE_COLOURS.get(colour_of.get(subject, ""), "0.3")
        ax.plot(rows["day"], rows["pct_change_baseline"], marker="o", markersize=3, color=colour)
    for level in (20, -30):
        ax.axhline(level, color="0.4", linestyle="--", linewidth=0.8)
    ax.set_xlabel("Days since infusion")
    ax.set_ylabel("Change in sum of diameters (%)")
    if bor is not None:
        _legend(ax, bor["bor"])
    return ax


def swimmer(timepoints: pd.DataFrame, *, ax: Any = None, follow_up: pd.Series | None = None) -> Any:
    """Swimmer plot: one lane per subject with its timepoint responses as markers.

    Parameters
    ----------
    timepoints : pandas.DataFrame
        Output of :func:`~cellkin.outcomes.recist_timepoints`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on (default: the current axes).
    follow_up : pandas.Series, optional
        Follow-up (days) per subject, indexed by subject (e.g. ``subjects.set_index("subject")
        ["os_days"]``); default: the last assessment day.

    Returns
    -------
    matplotlib.axes.Axes
        Lanes sorted by length (longest on top); markers coloured by the response.
    """
    require(timepoints, ["subject", "day", "response"], "timepoints")
    ax = axes(ax)
    last = timepoints.groupby("subject", sort=False)["day"].max()
    length = last if follow_up is None else follow_up.reindex(last.index).fillna(last)
    order = length.sort_values().index
    for lane, subject in enumerate(order):
        ax.barh(lane, length[subject], color="0.85", height=0.6)
        rows = timepoints[(timepoints["subject"] == subject) & timepoints["response"].notna()]
        colours = [RESPONSE_COLOURS.get(code, "#999999") for code in rows["response"]]
        ax.scatter(rows["day"], np.full(len(rows), lane), c=colours, s=18, zorder=3)
    ax.set_yticks(np.arange(len(order)))
    ax.set_yticklabels([str(s) for s in order])
    ax.set_xlabel("Days since infusion")
    _legend(ax, timepoints["response"].dropna())
    return ax


def kaplan_meier(
    result: KaplanMeierResult,
    *,
    ax: Any = None,
    band: bool = True,
    at_risk: bool = True,
    at_risk_days: Sequence[float] | None = None,
    by_unit: str | None = None,
) -> Any:
    """Kaplan–Meier curves (steps, censoring ticks, confidence bands) with an at-risk table.

    Parameters
    ----------
    result : KaplanMeierResult
        From :func:`~cellkin.outcomes.kaplan_meier`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on (default: the current axes).
    band : bool, default True
        Shade the pointwise confidence band (level ``result.confidence``).
    at_risk : bool, default True
        Write the number at risk per group under the x axis (at `at_risk_days`; default the
        x ticks). Save the figure with ``bbox_inches="tight"`` to keep it.
    at_risk_days : sequence of float, optional
        Days at which to count subjects at risk.
    by_unit : str, optional
        Unit of the grouping variable, added to each curve's label (e.g. the exposure
        thresholds of :func:`cellkin.metrics.exposure_survival`: "auc_0_28 Q1 ≤ 23700
        copies/ug*day").

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = axes(ax)
    for group in result.groups:
        table = result.table[result.table["group"] == group]
        label = str(group) if result.by is None else f"{result.by} {group}"
        label = f"{label} {by_unit}" if by_unit else label
        (line,) = ax.step(table["time"], table["survival"], where="post", label=label)
        cens = table[table["censored"] > 0]
        ax.plot(cens["time"], cens["survival"], "|", color=line.get_color(), markersize=8)
        if band:
            ax.fill_between(
                table["time"], table["ci_lower"], table["ci_upper"], step="post",
                color=line.get_color(), alpha=0.15, linewidth=0,
            )  # fmt: skip
    ax.set_ylim(0, 1.05)
    ax.set_xlim(left=0)
    ax.set_xlabel("Days since infusion")
    ax.set_ylabel(f"{result.endpoint.upper()} probability")
    ax.legend(frameon=False)
    if at_risk:
        _at_risk_rows(ax, result, at_risk_days)
    return ax


def _at_risk_rows(ax: Any, result: KaplanMeierResult, days: Sequence[float] | None) -> None:
    """Numbers at risk under the x axis, one text row per group."""
    blended_transform_factory = matplotlib_module("matplotlib.transforms").blended_transform_factory
    if days is None:
        lo, hi = ax.get_xlim()
        days = [tick for tick in ax.get_xticks() if lo <= tick <= hi]
    counts = result.landmarks(days)
    transform = blended_transform_factory(ax.transData, ax.transAxes)
    # Labels sit left of the axes, clear of the centred day-0 counts (which overhang the edge).
    label_x = -0.07
    ax.text(label_x, -0.16, "At risk", transform=ax.transAxes, ha="right", fontsize=8,
            weight="bold")  # fmt: skip
    for row_number, group in enumerate(result.groups):
        y = -0.22 - 0.06 * row_number
        ax.text(label_x, y, str(group), transform=ax.transAxes, ha="right", fontsize=8)
        mine = counts[counts["group"] == group]
        for day, n in zip(mine["time"], mine["at_risk"], strict=True):
            ax.text(day, y, str(n), transform=transform, ha="center", fontsize=8)
