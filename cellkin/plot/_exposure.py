"""Figures of the exposure analyses: exposure–response, exposure by outcome, dose–exposure.

(private) Each draws the result object of the analysis of the same name in
:mod:`cellkin.metrics`. Subjects left out of the log-scale analysis are counted in a note on
the axes, never dropped silently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cellkin.errors import OptionError
from cellkin.plot._axes import axes

if TYPE_CHECKING:
    from cellkin.metrics import (
        DoseExposureResult,
        ExposureByOutcomeResult,
        ExposureResponseResult,
    )

__all__ = ["dose_exposure", "exposure_by_outcome", "exposure_response"]

_JITTER = 0.04


def _note_excluded(ax: Any, excluded: pd.DataFrame) -> None:
    """The count and the first ids of the excluded subjects, on two short lines (one long
    line ran past narrow panels into the next one)."""
    if len(excluded):
        names = ", ".join(map(str, excluded["subject"].head(3)))
        more = ", …" if len(excluded) > 3 else ""
        text = f"{len(excluded)} excluded (exposure or outcome unusable):\n{names}{more}"
        ax.text(0.01, 0.99, text, transform=ax.transAxes, va="top", fontsize=7, color="0.35",
                clip_on=True)  # fmt: skip


def _label(name: str, unit: str | None) -> str:
    return f"{name} ({unit})" if unit else name


def _pick(name: str | None, options: tuple[str, ...], what: str) -> str:
    if name is None:
        return options[0]
    if name not in options:
        raise OptionError(f"`{what}` must be one of {list(options)}, got {name!r}")
    return name


# ------------------------------------------------------------------------ exposure–response


def exposure_response(
    result: ExposureResponseResult,
    *,
    ax: Any = None,
    exposure: str | None = None,
    outcome: str | None = None,
    band: bool = True,
    groups: bool = True,
    seed: int = 0,
    unit: str | None = None,
) -> Any:
    """Fitted probability of the outcome against exposure (log x axis), with the data.

    The logistic regression of the outcome on ln exposure
    (:meth:`~cellkin.metrics.ExposureResponseResult.logistic_curve`) with its pointwise Wald
    band, the subjects as 0/1 points jittered vertically, and the observed rate per exposure
    group (at the group's geometric mean exposure) with its exact Clopper–Pearson interval.

    Parameters
    ----------
    result : ExposureResponseResult
        From :func:`cellkin.metrics.exposure_response`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on (default: the current axes).
    exposure, outcome : str, optional
        Which analysis to draw (default: the first of each in `result`).
    band : bool, default True
        Shade the pointwise Wald band of the fitted probability (level ``result.confidence``).
    groups : bool, default True
        Show the observed rate per exposure group with its Clopper–Pearson interval.
    seed : int, default 0
        Seed of the vertical jitter of the 0/1 points.
    unit : str, optional
        Unit of the exposure, for the x-axis label (e.g. the NCA table's ``unit`` for
        ``cmax``, ``auc_unit`` for the AUCs).

    Returns
    -------
    matplotlib.axes.Axes
        Without a logistic fit (separation, a single outcome class) the data are drawn and
        ``logit_status`` is written on the axes instead of a curve.
    """
    exposure = _pick(exposure, result.exposures, "exposure")
    outcome = _pick(outcome, result.outcomes, "outcome")
    ax = axes(ax)
    mine = result.data[(result.data["exposure"] == exposure) & (result.data["outcome"] == outcome)]
    use = mine[mine["included"]]
    x, y = use["value"].to_numpy(float), use["event"].to_numpy(float)
    rng = np.random.default_rng(seed)
    ax.scatter(x, y + rng.uniform(-_JITTER, _JITTER, y.size), s=16, alpha=0.7, color="0.25",
               label="subjects (jittered)", zorder=3)  # fmt: skip
    if x.size:
        _draw_curve(ax, result, exposure, outcome, band)
    if groups and not result.groups.empty:
        _draw_groups(ax, result, use, exposure, outcome)
    ax.set_xscale("log")
    ax.set_ylim(-0.1, 1.1)
    ax.set_xlabel(_label(exposure, unit))
    ax.set_ylabel(f"P({outcome})")
    ax.legend(frameon=False, loc="center right", fontsize=8)
    _note_excluded(ax, mine[~mine["included"]])
    return ax


def _draw_curve(ax: Any, result: Any, exposure: str, outcome: str, band: bool) -> None:
    curve = result.logistic_curve(exposure, outcome)
    row = result.table[
        (result.table["exposure"] == exposure) & (result.table["outcome"] == outcome)
    ]
    if curve.empty:
        status = row["logit_status"].iloc[0]
        ax.text(0.5, 0.5, f"no logistic fit: {status}", transform=ax.transAxes, ha="center")
        return
    ratio = row["or_per_doubling"].iloc[0]
    (line,) = ax.plot(curve["value"], curve["probability"],
                      label=f"logistic fit (OR per doubling {ratio:.2g})")  # fmt: skip
    if band:
        ax.fill_between(curve["value"], curve["ci_lower"], curve["ci_upper"],
                        color=line.get_color(), alpha=0.15, linewidth=0)  # fmt: skip


def _draw_groups(ax: Any, result: Any, use: pd.DataFrame, exposure: str, outcome: str) -> None:
    table = result.groups[(result.groups["exposure"] == exposure)
                          & (result.groups["outcome"] == outcome)]  # fmt: skip
    centre = use.groupby("group")["value"].apply(lambda v: float(np.exp(np.log(v).mean())))
    at = table["group"].map(centre).to_numpy(float)
    rate = table["rate"].to_numpy(float)
    errors = [rate - table["ci_lower"].to_numpy(float), table["ci_upper"].to_numpy(float) - rate]
    ax.errorbar(at, rate, yerr=errors, fmt="s", color="black", capsize=3, markersize=5,
                label="observed rate by group")  # fmt: skip


# ------------------------------------------------------------------------ exposure by outcome


def exposure_by_outcome(result: ExposureByOutcomeResult, *, ax: Any = None, seed: int = 0) -> Any:
    """Box and jittered strip plot of an exposure metric by outcome category (log y axis).

    Parameters
    ----------
    result : ExposureByOutcomeResult
        From :func:`cellkin.metrics.exposure_by_outcome`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on (default: the current axes).
    seed : int, default 0
        Seed of the horizontal jitter.

    Returns
    -------
    matplotlib.axes.Axes
        One box (quartiles, whiskers to 1.5 IQR) and the subjects per category; tick labels
        give the category and its n. Excluded subjects are counted in a note.
    """
    ax = axes(ax)
    use = result.data[result.data["included"]]
    rng = np.random.default_rng(seed)
    ticks = []
    for position, category in enumerate(result.categories):
        values = use.loc[use["category"] == category, "value"].to_numpy(float)
        if values.size:
            ax.boxplot([values], positions=[position], widths=0.5, showfliers=False,
                       medianprops={"color": "black"})  # fmt: skip
            jitter = rng.uniform(-0.12, 0.12, values.size)
            ax.scatter(position + jitter, values, s=16, alpha=0.75, zorder=3)
        ticks.append(f"{category}\n(n={values.size})")
    ax.set_yscale("log")
    ax.set_xticks(range(len(result.categories)))
    ax.set_xticklabels(ticks)
    ax.set_xlim(-0.6, len(result.categories) - 0.4)
    ax.set_xlabel(result.by)
    ax.set_ylabel(f"{result.exposure} ({result.unit})" if result.unit else result.exposure)
    _note_excluded(ax, result.exclusions)
    return ax


# ------------------------------------------------------------------------------ dose–exposure


def dose_exposure(
    result: DoseExposureResult,
    *,
    ax: Any = None,
    exposure: str | None = None,
    unit: str | None = None,
) -> Any:
    """Exposure against dose on log–log axes with the fitted power model.

    Parameters
    ----------
    result : DoseExposureResult
        From :func:`cellkin.metrics.dose_exposure`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on (default: the current axes).
    exposure : str, optional
        Which metric to draw (default: the first in `result`).
    unit : str, optional
        Unit of the exposure, for the y-axis label.

    Returns
    -------
    matplotlib.axes.Axes
        The subjects, the line exp(a)·dose^b and the slope with its CI in the legend.
    """
    exposure = _pick(exposure, tuple(result.table["exposure"]), "exposure")
    ax = axes(ax)
    mine = result.data[result.data["exposure"] == exposure]
    use = mine[mine["included"]]
    ax.scatter(use["dose"], use["value"], s=16, alpha=0.75, color="0.25", label="subjects")
    row = result.table[result.table["exposure"] == exposure].iloc[0]
    if row["status"] == "ok":
        dose = np.geomspace(use["dose"].min(), use["dose"].max(), 50)
        level = f"{100 * result.confidence:g}%"
        label = (f"b = {row['slope']:.2f} ({level} CI {row['slope_ci_lower']:.2f}, "
                 f"{row['slope_ci_upper']:.2f})")  # fmt: skip
        ax.plot(dose, np.exp(row["intercept"] + row["slope"] * np.log(dose)), label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"{result.dose} ({result.dose_unit})" if result.dose_unit else result.dose)
    ax.set_ylabel(_label(exposure, unit))
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    _note_excluded(ax, mine[~mine["included"]])
    return ax
