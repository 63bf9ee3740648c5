"""Figures of individual fits: one subject's fit, and a grid of every subject's (private).

Also the helpers that turn the ``fits`` argument of the diagnostics and the VPC (a
:class:`~cellkin.fit.BatchFit`, a mapping of subject to :class:`~cellkin.fit.FitResult` or one
``FitResult``) into a mapping of converged fits.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cellkin.errors import DataError, FitError, OptionError
from cellkin.fit import BatchFit, FitResult
from cellkin.plot._axes import axes, new_figure
from cellkin.plot._common import DAYS

__all__ = ["UNRELIABLE", "converged_fits", "fit_map", "individual_fit", "individual_fits",
           "used_samples"]  # fmt: skip

#: Colour of what is drawn for a fit that is not reliable (titles).
UNRELIABLE = "#d95f02"


def fit_map(fits: Any) -> dict[str, FitResult]:
    """Subject → FitResult from a BatchFit, a mapping or a single FitResult."""
    if isinstance(fits, BatchFit):
        results = dict(fits.results)
    elif isinstance(fits, FitResult):
        results = {fits.subject: fits}
    elif isinstance(fits, Mapping):
        results = dict(fits)
    else:
        raise DataError(
            f"`fits` must be a BatchFit, a mapping of subject to FitResult or a FitResult, "
            f"got {type(fits).__name__}"
        )
    wrong = [str(k) for k, v in results.items() if not isinstance(v, FitResult)]
    if wrong:
        raise DataError(f"`fits` values must be FitResult objects; not for {wrong[:5]}")
    return results


def converged_fits(fits: Any) -> dict[str, FitResult]:
    """The fits whose optimiser converged; FitError when there is none."""
    results = fit_map(fits)
    converged = {s: r for s, r in results.items() if r.success}
    if not converged:
        raise FitError(f"no converged fits among the {len(results)} given")
    return converged


def used_samples(results: Mapping[str, FitResult]) -> pd.DataFrame:
    """The samples in the likelihood of every fit (``used`` rows with a finite residual)."""
    data = pd.concat([r.data for r in results.values()], ignore_index=True)
    keep = data["used"].astype(bool) & np.isfinite(data["residual"].to_numpy(float))
    return data[keep]


# ----------------------------------------------------------------------------- one fit


def individual_fit(
    result: FitResult, *, ax: Any = None, band: bool = True, days: float | None = None
) -> Any:
    """One subject's fit: observed levels, BLQ samples at their LLOQ, fitted curve and band.

    Per assay (one colour each): quantified samples as filled circles, BLQ samples as open
    down triangles at their LLOQ, the fitted curve and — when the covariance is finite — its
    confidence band (:meth:`cellkin.fit.FitResult.predict_interval`). Log y axis. A fit that
    is not :attr:`~cellkin.fit.FitResult.reliable` is drawn marked, not hidden: a dashed
    curve labelled "fit (unreliable)" and a title naming its issue codes, in orange.

    Parameters
    ----------
    result : FitResult
        The fit (:func:`cellkin.fit`).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on (default: the current axes).
    band : bool, default True
        Shade the confidence band of the fitted curve.
    days : float, optional
        End of the curve in days (default: the last sample or day 28, whichever is later).

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = axes(ax)
    data = result.data
    end = days if days is not None else max(float(data["time"].max()), 28.0)
    grid = np.unique(
        np.concatenate([np.linspace(0, end, 400), [result.estimates.get("tmax", 0.0)]])
    )
    for k, assay in enumerate(result.assays):
        colour = f"C{k}"
        rows = data[data["assay"] == assay]
        quantified = rows[~rows["blq"]]
        censored = rows[rows["blq"]]
        ax.plot(quantified["time"], quantified["value"], "o", color=colour,
                label=f"{assay} observed ({result.units[assay]})")  # fmt: skip
        ax.plot(censored["time"], censored["lloq"], "v", mfc="none", color=colour,
                label=f"{assay} BLQ (at LLOQ)")  # fmt: skip
        style, label = ("-", "fit") if result.reliable else ("--", "fit (unreliable)")
        ax.plot(grid, result.predict(grid, assay), style, color=colour, label=f"{assay} {label}")
        if band and np.isfinite(result.covariance_search).all():
            lower, upper = result.predict_interval(grid, assay)
            ax.fill_between(grid, lower, upper, color=colour, alpha=0.2, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel(DAYS)
    units = list(dict.fromkeys(result.units[assay] for assay in result.assays))
    ax.set_ylabel(f"level ({'; '.join(units)})")
    if result.reliable:
        ax.set_title(f"{result.subject}: {result.model.name}")
    else:
        ax.set_title(f"{result.subject}: {result.model.name} — unreliable: "
                     f"{', '.join(result.issue_codes)}", color=UNRELIABLE)  # fmt: skip
    ax.legend(fontsize="small")
    return ax


# ----------------------------------------------------------------------------- fits grid


def individual_fits(
    fits: Any,
    *,
    subjects: Sequence[str] | None = None,
    ncols: int = 4,
    fig: Any = None,
    sharey: bool = True,
) -> Any:
    """Grid of small panels, one per subject: observations, BLQ markers, fitted curve, band.

    Each panel is :func:`individual_fit` (quantified samples filled, BLQ samples as open down
    triangles at their LLOQ, fitted curve with its 95% confidence band, one colour per assay,
    log y axis) titled with the subject id; a fit that did not converge is titled in red with
    "(not converged)", one that converged but is not reliable in orange with "(unreliable)"
    and its curve dashed. With a :class:`~cellkin.fit.BatchFit`, a subject without a fit gets a
    panel naming the failure. Unused grid cells are hidden; one legend for the figure.

    Parameters
    ----------
    fits : BatchFit or mapping of str to FitResult
        The fits (``BatchFit.results`` is used for a batch).
    subjects : sequence of str, optional
        Subjects to show, in this order (default: every subject of the batch or mapping).
    ncols : int, default 4
        Panels per row.
    fig : matplotlib.figure.Figure, optional
        Figure to draw in; by default a new ``Figure`` (not registered with pyplot) sized to
        the grid.
    sharey : bool, default True
        One y range for every panel.

    Returns
    -------
    matplotlib.figure.Figure
        A grid of panels: the figure, not an ``Axes``.
    """
    given = fits
    fits = fit_map(given)
    failures = given.failures if isinstance(given, BatchFit) else None
    order = _grid_order(given, fits, failures, subjects)
    if not (isinstance(ncols, int) and ncols >= 1):
        raise OptionError(f"`ncols` must be a positive integer, got {ncols!r}")
    ncols = min(ncols, len(order))
    nrows = -(-len(order) // ncols)
    fig = new_figure(fig, (2.8 * ncols + 0.4, 2.3 * nrows + 0.8))
    grid = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, sharey=sharey, squeeze=False))
    panels = grid.ravel()
    for ax, subject in zip(panels, order, strict=False):
        if subject in fits:
            _fit_panel(ax, fits[subject], sharey)
        else:
            assert failures is not None  # _grid_order refused subjects without fit or failure
            reasons = failures.loc[failures["subject"] == subject, "reason"].astype(str)
            text = textwrap.fill("no fit: " + "; ".join(map(_short, reasons.head(2))), 30)
            ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=6, transform=ax.transAxes)
            ax.set_title(subject, fontsize=9, color="C3")
    if sharey and fits:
        panels[0].set_ylim(*_level_range([fits[s] for s in order if s in fits]))
    for ax in panels[len(order) :]:
        ax.set_visible(False)
    units = {u for r in fits.values() for u in r.units.values()}
    ylabel = next(iter(units)) if len(units) == 1 else f"level ({'; '.join(sorted(units))})"
    for ax in grid[:, 0]:
        ax.set_ylabel(ylabel, fontsize=8)
    for ax in grid[-1, :]:
        ax.set_xlabel(DAYS, fontsize=8)
    _figure_legend(fig, panels[: len(order)])
    return fig


def _grid_order(
    results: Any, fits: Mapping[str, FitResult], failures: Any, subjects: Sequence[str] | None
) -> list[str]:
    default = results.subjects if isinstance(results, BatchFit) else tuple(fits)
    order = [str(s) for s in (default if subjects is None else subjects)]
    known = set(fits) | (set() if failures is None else set(failures["subject"]))
    unknown = [s for s in order if s not in known]
    if unknown or not order:
        raise DataError(f"no fit for subject(s) {unknown}" if unknown else "no subjects to plot")
    return order


def _short(reason: str, limit: int = 90) -> str:
    """The first clause of a failure reason, at most ``limit`` characters (the full text is
    in the batch's failures table)."""
    clause = reason.split("; ")[0]
    return clause if len(clause) <= limit else clause[: limit - 1].rstrip() + "…"


def _figure_legend(fig: Any, panels: Iterable[Any]) -> None:
    handles: dict[str, Any] = {}
    for ax in panels:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if handles:
        fig.legend(handles.values(), handles.keys(), loc="outside lower center",
                   ncols=min(len(handles), 4), fontsize="small", frameon=False)  # fmt: skip


def _level_range(results: Sequence[FitResult]) -> tuple[float, float]:
    """Log-axis limits from the samples (BLQ at their LLOQ), not from extrapolated curves."""
    levels = np.concatenate(
        [np.where(r.data["blq"], r.data["lloq"], r.data["value"]) for r in results]
    ).astype(float)
    levels = levels[np.isfinite(levels) & (levels > 0)]
    return (levels.min() / 10, levels.max() * 10) if levels.size else (0.1, 10.0)


def _fit_panel(ax: Any, result: FitResult, shared: bool) -> None:
    individual_fit(result, ax=ax)
    if not shared:
        ax.set_ylim(*_level_range([result]))
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.tick_params(labelsize=7)
    if not result.success:
        title, colour = f"{result.subject} (not converged)", "C3"
    elif not result.reliable:
        title, colour = f"{result.subject} (unreliable)", UNRELIABLE
    else:
        title, colour = result.subject, "black"
    ax.set_title(title, fontsize=9, color=colour)
