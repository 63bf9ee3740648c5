"""Figures of one subject's fit (matplotlib imported lazily; every function takes ``ax``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from cellkin._plotting import axes

if TYPE_CHECKING:
    from cellkin.fit import FitResult

__all__ = ["plot_fit"]


def plot_fit(result: FitResult, ax: Any = None, *, band: bool = True,
             days: float | None = None) -> Any:  # fmt: skip
    """Observed levels (filled), BLQ samples at their LLOQ (open), fitted curve and band.

    Levels are on a log axis; each assay has its own colour. Returns ``ax``.
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
        ax.plot(grid, result.predict(grid, assay), "-", color=colour, label=f"{assay} fit")
        if band and np.isfinite(result.covariance_search).all():
            lower, upper = result.predict_interval(grid, assay)
            ax.fill_between(grid, lower, upper, color=colour, alpha=0.2, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel("days since infusion")
    ax.set_ylabel("level")
    ax.set_title(f"{result.subject}: {result.model.name}")
    ax.legend(fontsize="small")
    return ax
