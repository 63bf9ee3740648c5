"""Figures of a population fit: goodness of fit, NPDE, the prediction-corrected VPC and SAEM's
parameter trajectories (private; see :func:`population`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from cellkin.errors import OptionError
from cellkin.plot._axes import axes
from cellkin.plot._common import identity_line

__all__ = ["population"]

KINDS = ("gof", "npde", "vpc", "trajectories")


def population(fit: Any, *, kind: str = "gof", assay: str | None = None, ax: Any = None) -> Any:
    """One figure of a :class:`~cellkin.population.PopulationFit`.

    Parameters
    ----------
    fit : PopulationFit
        From :func:`cellkin.fit_population`.
    kind : {"gof", "npde", "vpc", "trajectories"}
        ``"gof"``: observations against individual predictions (at the EBEs), log–log, with
        the identity line, censored samples at their LLOQ as open markers; ``"npde"``: NPDE
        against time with 0 and ±1.96; ``"vpc"``: the prediction-corrected VPC — observed
        10th, 50th and 90th percentiles of the prediction-corrected data per time bin (points
        and lines) against the 90% interval of the same percentiles over the simulated
        replicates (bands), log scale; ``"trajectories"``: every population parameter along
        SAEM's iterations relative to its final value, the end of the exploratory phase
        marked.
    assay : str, optional
        The assay of ``"gof"``, ``"npde"`` and ``"vpc"`` (default: the first fitted one).
    ax : matplotlib Axes, optional
        Where to draw (default: the current axes).

    Returns
    -------
    matplotlib Axes
    """
    if kind not in KINDS:
        raise OptionError(f"`kind` must be one of {KINDS}, got {kind!r}")
    ax = axes(ax)
    if kind == "trajectories":
        return _trajectories(fit, ax)
    assay = fit.data.assays[0] if assay is None else assay
    if assay not in fit.data.assays:
        raise OptionError(f"assay {assay!r} was not fitted; fitted assays: {fit.data.assays}")
    unit = fit.data.units[assay]
    if kind == "gof":
        return _gof(fit, assay, unit, ax)
    if kind == "npde":
        return _npde(fit, assay, ax)
    return _vpc(fit, assay, unit, ax)


def _gof(fit: Any, assay: str, unit: str, ax: Any) -> Any:
    table = fit.predictions[fit.predictions["assay"] == assay]
    censored = table["blq"].to_numpy(bool)
    ipred = table["ipred"].to_numpy(float)
    ax.loglog(
        ipred[~censored],
        table["dv"].to_numpy(float)[~censored],
        "o",
        ms=3,
        alpha=0.6,
        label="quantified",
    )
    if censored.any():
        ax.loglog(
            ipred[censored],
            table["lloq"].to_numpy(float)[censored],
            "o",
            ms=3,
            mfc="none",
            alpha=0.6,
            label="BLQ (at LLOQ)",
        )
    identity_line(ax, np.concatenate([ipred, table["dv"].dropna().to_numpy(float)]))
    ax.set_xlabel(f"individual prediction ({unit})")
    ax.set_ylabel(f"observed {assay} ({unit})")
    ax.set_title(f"{fit.model.name}: observed vs individual prediction")
    ax.legend(frameon=False, fontsize="small")
    return ax


def _npde(fit: Any, assay: str, ax: Any) -> Any:
    table = fit.predictions[fit.predictions["assay"] == assay]
    ax.plot(table["time"], table["npde"], "o", ms=3, alpha=0.6)
    for level in (0.0, -1.96, 1.96):
        ax.axhline(level, color="0.4", ls="-" if level == 0 else "--", lw=1, gid="npde_ref")
    ax.set_xlabel("time (day)")
    ax.set_ylabel("NPDE (standard normal deviate)")
    ax.set_title(f"{fit.model.name}: NPDE vs time ({assay})")
    return ax


def _vpc(fit: Any, assay: str, unit: str, ax: Any) -> Any:
    table = fit.vpc[fit.vpc["assay"] == assay] if len(fit.vpc) else fit.vpc
    if not len(table):
        raise OptionError("this fit has no VPC (PopulationOptions(n_replicates=0))")
    for statistic, colour in (("q10", "tab:blue"), ("q50", "tab:red"), ("q90", "tab:blue")):
        rows = table[table["statistic"] == statistic].sort_values("time")
        ax.fill_between(
            rows["time"],
            rows["simulated_lower"],
            rows["simulated_upper"],
            color=colour,
            alpha=0.2,
            lw=0,
            gid=f"band_{statistic}",
        )
        ax.plot(
            rows["time"],
            rows["observed"],
            "o-",
            color=colour,
            ms=3,
            lw=1,
            gid=f"observed_{statistic}",
        )
    ax.set_yscale("log")
    ax.set_xlabel("time (day)")
    ax.set_ylabel(f"prediction-corrected {assay} ({unit})")
    binning = table["binning"].iloc[0]
    ax.set_title(
        f"{fit.model.name}: pcVPC, 10th/50th/90th percentiles (bins: {binning})", fontsize="small"
    )
    return ax


def _trajectories(fit: Any, ax: Any) -> Any:
    table = fit.trajectory
    values = table.drop(columns=["iteration", "phase"])
    final = values.iloc[-1].replace(0.0, np.nan)
    for name in values.columns:
        ax.plot(table["iteration"], values[name] / final[name], lw=0.8, label=name)
    switch = int((table["phase"] == "exploratory").sum())
    ax.axvline(switch, color="0.3", ls="--", lw=1, gid="end_of_exploration")
    ax.set_xlabel("SAEM iteration (number)")
    ax.set_ylabel("value / final value (ratio)")
    ax.set_title(
        f"{fit.model.name}: SAEM trajectories ({fit.reason.split(';')[0]})", fontsize="small"
    )
    ax.legend(frameon=False, fontsize="x-small", ncol=2)
    return ax
