"""Figures for exposure–response, exposure–toxicity and dose–exposure analyses.

* :func:`plot_exposure_by_outcome` — box and jittered strip plot of an exposure metric (log
  axis) by response, CRS grade or any outcome;
* :func:`plot_logistic` — the fitted logistic curve of an outcome against exposure (log axis)
  with its pointwise Wald band, the subjects as jittered 0/1 points and the observed rate per
  exposure group with exact Clopper–Pearson intervals;
* :func:`plot_dose_exposure` — exposure against dose on log–log axes with the power model.

Kaplan–Meier curves by exposure group are drawn by
:meth:`cellkin.metrics.exposure.ExposureSurvivalResult.plot` (:func:`cellkin.outcomes.plot_km`).

Each function draws on the matplotlib ``Axes`` it is given (or the current axes when
``ax=None``), returns that ``Axes`` and imports matplotlib only when called. Subjects left out
of the log-scale analysis are counted in a note on the axes, never dropped silently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cellkin._plotting import axes
from cellkin.metrics import exposure as _exposure
from cellkin.metrics._exposure_stats import _logistic_curve

if TYPE_CHECKING:
    from cellkin.metrics.exposure import DoseExposureResult, ExposureResponseResult

__all__ = ["plot_dose_exposure", "plot_exposure_by_outcome", "plot_logistic"]

_RECIST_ORDER = ("CR", "PR", "SD", "NON-CR/NON-PD", "PD", "NE")
_JITTER = 0.04


def _note_excluded(ax: Any, excluded: pd.DataFrame) -> None:
    if len(excluded):
        names = ", ".join(map(str, excluded["subject"].head(4)))
        more = " …" if len(excluded) > 4 else ""
        text = f"{len(excluded)} excluded (exposure or outcome unusable): {names}{more}"
        ax.text(0.01, 0.99, text, transform=ax.transAxes, va="top", fontsize=7, color="0.35")


def _pick(name: str | None, options: tuple[str, ...], what: str) -> str:
    if name is None:
        return options[0]
    if name not in options:
        raise ValueError(f"`{what}` must be one of {list(options)}, got {name!r}")
    return name


def _categories(subjects: pd.DataFrame, by: str) -> tuple[pd.Series, list[Any]]:
    """Category per subject (NaN = missing) and the category order."""
    if by in subjects.columns and not pd.api.types.is_bool_dtype(subjects[by]):
        values = subjects[by].astype(object).where(subjects[by].notna())
        present = list(pd.unique(values.dropna()))
        if present and all(str(v).upper() in _RECIST_ORDER for v in present):
            order = sorted(present, key=lambda v: _RECIST_ORDER.index(str(v).upper()))
        else:
            order = sorted(present, key=lambda v: (str(type(v)), v))
        return pd.Series(values.to_numpy(), index=subjects["subject"]), order
    events, _ = _exposure._outcome_events(subjects, by)
    labels = events.map({0.0: "no", 1.0: "yes"})
    return labels, ["no", "yes"]


def plot_exposure_by_outcome(
    metrics: pd.DataFrame,
    subjects: pd.DataFrame,
    exposure: str = "auc_0_28",
    by: str = "responder",
    *,
    assay: str | None = "qpcr",
    ax: Any = None,
    seed: int = 0,
) -> Any:
    """Box and jittered strip plot of an exposure metric by outcome category (log y axis).

    Parameters
    ----------
    metrics, subjects : pandas.DataFrame
        As for :func:`cellkin.metrics.exposure.exposure_response`.
    exposure : str, default "auc_0_28"
        Metric column of `metrics`.
    by : str, default "responder"
        A column of `subjects` whose values are the categories (``"crs_grade"``, ``"bor"``,
        ``"dose_level"``; boolean columns show as no/yes), or an outcome such as
        ``"crs>=2"`` (see :mod:`cellkin.metrics.exposure`).
    assay : str or None, default "qpcr"
        Assay whose metrics are used.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.
    seed : int, default 0
        Seed of the horizontal jitter.

    Returns
    -------
    matplotlib.axes.Axes
        One box (quartiles, whiskers to 1.5 IQR) and the subjects per category; tick labels
        give the category and its n. Excluded subjects are counted in a note.
    """
    ax = axes(ax)
    _exposure._check_subjects(subjects)
    rows = _exposure._select_metrics(metrics, assay, [exposure])
    records = _exposure._exposure_records(rows, subjects, exposure, assay)
    labels, order = _categories(subjects, by)
    records["category"] = records["subject"].map(labels)
    lacking = (records["exclude_reason"] == "") & records["category"].isna()
    records.loc[lacking, "exclude_reason"] = f"`{by}` missing"
    use = records[records["exclude_reason"] == ""]
    rng = np.random.default_rng(seed)
    ticks = []
    for position, category in enumerate(order):
        values = use.loc[use["category"] == category, "value"].to_numpy(float)
        if values.size:
            ax.boxplot([values], positions=[position], widths=0.5, showfliers=False,
                       medianprops={"color": "black"})  # fmt: skip
            jitter = rng.uniform(-0.12, 0.12, values.size)
            ax.scatter(position + jitter, values, s=16, alpha=0.75, zorder=3)
        ticks.append(f"{category}\n(n={values.size})")
    ax.set_yscale("log")
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels(ticks)
    ax.set_xlim(-0.6, len(order) - 0.4)
    ax.set_xlabel(by)
    ax.set_ylabel(_unit_label(rows, exposure))
    _note_excluded(ax, records[records["exclude_reason"] != ""])
    return ax


def _unit_label(rows: pd.DataFrame, exposure: str) -> str:
    column = "auc_unit" if exposure.startswith("auc") else "unit"
    if (
        column in rows.columns
        and rows[column].notna().any()
        and exposure.startswith(("auc", "cmax", "clast"))
    ):
        return f"{exposure} ({rows[column].dropna().iloc[0]})"
    return exposure


def plot_logistic(
    result: ExposureResponseResult,
    ax: Any = None,
    *,
    exposure: str | None = None,
    outcome: str | None = None,
    band: bool = True,
    groups: bool = True,
    seed: int = 0,
) -> Any:
    """Fitted probability of the outcome against exposure (log x axis), with the data.

    Parameters
    ----------
    result : ExposureResponseResult
        From :func:`cellkin.metrics.exposure.exposure_response`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.
    exposure, outcome : str, optional
        Which analysis to draw (default: the first of each in `result`).
    band : bool, default True
        Shade the pointwise Wald band of the fitted probability (level ``result.confidence``).
    groups : bool, default True
        Show the observed rate per exposure group (at the group's geometric mean exposure)
        with its Clopper–Pearson interval.
    seed : int, default 0
        Seed of the vertical jitter of the 0/1 points.

    Returns
    -------
    matplotlib.axes.Axes
        Without a logistic fit (separation, a single outcome class) the data are drawn and
        ``logit_status`` is written on the axes instead of a curve.
    """
    ax = axes(ax)
    exposure = _pick(exposure, result.exposures, "exposure")
    outcome = _pick(outcome, result.outcomes, "outcome")
    mine = result.data[(result.data["exposure"] == exposure) & (result.data["outcome"] == outcome)]
    use = mine[mine["included"]]
    x, y = use["value"].to_numpy(float), use["event"].to_numpy(float)
    rng = np.random.default_rng(seed)
    ax.scatter(x, y + rng.uniform(-_JITTER, _JITTER, y.size), s=16, alpha=0.7, color="0.25",
               label="subjects (jittered)", zorder=3)  # fmt: skip
    if x.size:
        _draw_curve(ax, result, exposure, outcome, x, y, band)
    if groups and not result.groups.empty:
        _draw_groups(ax, result, use, exposure, outcome)
    ax.set_xscale("log")
    ax.set_ylim(-0.1, 1.1)
    ax.set_xlabel(exposure)
    ax.set_ylabel(f"P({outcome})")
    ax.legend(frameon=False, loc="center right", fontsize=8)
    _note_excluded(ax, mine[~mine["included"]])
    return ax


def _draw_curve(
    ax: Any, result: Any, exposure: str, outcome: str, x: np.ndarray, y: np.ndarray, band: bool
) -> None:
    grid = np.geomspace(x.min(), x.max(), 200) if x.min() < x.max() else x[:1]
    curve = _logistic_curve(np.log(x), y, np.log(grid), result.confidence)
    row = result.table[
        (result.table["exposure"] == exposure) & (result.table["outcome"] == outcome)
    ]
    if curve is None:
        status = row["logit_status"].iloc[0]
        ax.text(0.5, 0.5, f"no logistic fit: {status}", transform=ax.transAxes, ha="center")
        return
    fitted, lower, upper = curve
    ratio = row["or_per_doubling"].iloc[0]
    (line,) = ax.plot(grid, fitted, label=f"logistic fit (OR per doubling {ratio:.2g})")
    if band:
        ax.fill_between(grid, lower, upper, color=line.get_color(), alpha=0.15, linewidth=0)


def _draw_groups(ax: Any, result: Any, use: pd.DataFrame, exposure: str, outcome: str) -> None:
    table = result.groups[(result.groups["exposure"] == exposure)
                          & (result.groups["outcome"] == outcome)]  # fmt: skip
    centre = use.groupby("group")["value"].apply(lambda v: float(np.exp(np.log(v).mean())))
    at = table["group"].map(centre).to_numpy(float)
    rate = table["rate"].to_numpy(float)
    errors = [rate - table["ci_lower"].to_numpy(float), table["ci_upper"].to_numpy(float) - rate]
    ax.errorbar(at, rate, yerr=errors, fmt="s", color="black", capsize=3, markersize=5,
                label="observed rate by group")  # fmt: skip


def plot_dose_exposure(
    result: DoseExposureResult, ax: Any = None, *, exposure: str | None = None
) -> Any:
    """Exposure against dose on log–log axes with the fitted power model.

    Parameters
    ----------
    result : DoseExposureResult
        From :func:`cellkin.metrics.exposure.dose_exposure`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.
    exposure : str, optional
        Which metric to draw (default: the first in `result`).

    Returns
    -------
    matplotlib.axes.Axes
        The subjects, the line exp(a)·dose^b and the slope with its CI in the legend.
    """
    ax = axes(ax)
    exposure = _pick(exposure, tuple(result.table["exposure"]), "exposure")
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
    ax.set_ylabel(exposure)
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    _note_excluded(ax, mine[~mine["included"]])
    return ax
