"""Goodness-of-fit diagnostics of individual fits: observed vs predicted, residuals (private).

BLQ samples are never dropped from these figures: they are drawn at their LLOQ (observed vs
predicted) or at their M3 argument, an upper bound of the residual (residuals).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cellkin.errors import OptionError
from cellkin.plot._axes import axes
from cellkin.plot._common import BLQ_STYLE, DAYS, identity_line, note
from cellkin.plot._fits import converged_fits, used_samples

__all__ = ["observed_vs_predicted", "residuals"]


def observed_vs_predicted(fits: Any, *, ax: Any = None, log: bool = True) -> Any:
    """Observed levels against the individual predictions of converged fits.

    Quantified samples are filled circles at (prediction, observed value); BLQ samples are
    open down triangles at (prediction, LLOQ) — their true value lies below. One colour per
    assay; the dashed line is the identity. Only samples in the likelihood (``used``) of
    converged fits are drawn; on a log scale, samples with a prediction ≤ 0 are left out and
    counted in a note.

    Parameters
    ----------
    fits : BatchFit, mapping of str to FitResult, or FitResult
    ax : matplotlib.axes.Axes, optional
    log : bool, default True
        Log–log axes.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    FitError
        No converged fit.
    """
    data = used_samples(converged_fits(fits))
    ax = axes(ax)
    observed = np.where(data["blq"], data["lloq"], data["value"]).astype(float)
    predicted = data["prediction"].to_numpy(float)
    clipped = 0
    if log:
        floor = observed[observed > 0].min() / 10
        clipped = int((predicted < floor).sum())
        predicted = np.maximum(predicted, floor)
    blq = data["blq"].to_numpy(bool)
    for k, assay in enumerate(pd.unique(data["assay"])):
        mine = (data["assay"] == assay).to_numpy()
        unit = data.loc[mine, "unit"].iloc[0]
        ax.plot(predicted[mine & ~blq], observed[mine & ~blq], "o", color=f"C{k}", ms=4,
                alpha=0.7, label=f"{assay} ({unit})")  # fmt: skip
        ax.plot(predicted[mine & blq], observed[mine & blq], color=f"C{k}", ms=5,
                label=f"{assay} BLQ (at LLOQ)", **BLQ_STYLE)  # fmt: skip
    identity_line(ax, np.concatenate([predicted, observed]))
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    if clipped:
        note(ax, f"{clipped} predictions below {floor:.3g} drawn at {floor:.3g}")
    unit = _unit_text(data)
    ax.set_xlabel(f"individual prediction ({unit})")
    ax.set_ylabel(f"observed ({unit})")
    ax.legend(fontsize="small", loc="lower right")
    return ax


def residuals(fits: Any, *, x: str = "time", ax: Any = None) -> Any:
    """Standardised residuals against time or individual prediction.

    Quantified samples: ``(g(y) − g(f))/s`` (``g = ln`` for the log-additive error model), as
    filled circles. BLQ samples under M3 have no residual; their M3 argument
    ``(g(LLOQ) − g(f))/s`` — an upper bound of the residual — is drawn as an open down
    triangle. Lines at 0 and ±1.96. Samples in the likelihood of converged fits only.

    Parameters
    ----------
    fits : BatchFit, mapping of str to FitResult, or FitResult
    x : {"time", "prediction"}
        Abscissa: days since infusion, or the individual prediction (log axis).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    if x not in ("time", "prediction"):
        raise OptionError(f"`x` must be 'time' or 'prediction', got {x!r}")
    data = used_samples(converged_fits(fits))
    ax = axes(ax)
    blq = data["blq"].to_numpy(bool)
    z = data["residual"].to_numpy(float)
    top = max(4.0, 1.2 * np.abs(z[~blq]).max(initial=0.0))
    notes = [f"{int((z > top).sum())} BLQ arguments above {top:.3g} drawn at {top:.3g}"]
    z = np.minimum(z, top)
    abscissa = data[x].to_numpy(float)
    if x == "prediction":
        floor = np.where(blq, data["lloq"], data["value"]).astype(float).min() / 10
        notes.append(f"{int((abscissa < floor).sum())} predictions below {floor:.3g} drawn at it")
        abscissa = np.maximum(abscissa, floor)
    for k, assay in enumerate(pd.unique(data["assay"])):
        mine = (data["assay"] == assay).to_numpy()
        ax.plot(abscissa[mine & ~blq], z[mine & ~blq], "o", color=f"C{k}", ms=4, alpha=0.7,
                label=f"{assay}")  # fmt: skip
        ax.plot(abscissa[mine & blq], z[mine & blq], color=f"C{k}", ms=5,
                label=f"{assay} BLQ (M3 argument, upper bound)", **BLQ_STYLE)  # fmt: skip
    ax.axhline(0.0, color="black", lw=1, gid="zero")
    for bound in (-1.96, 1.96):
        ax.axhline(bound, color="0.5", ls="--", lw=1, gid="pm1.96")
    notes = [n for n in notes if not n.startswith("0 ")]
    if notes:
        note(ax, "; ".join(notes))
    if x == "prediction":
        ax.set_xscale("log")
    ax.set_xlabel(DAYS if x == "time" else f"individual prediction ({_unit_text(data)})")
    ax.set_ylabel("standardised residual (SD units)")
    ax.legend(fontsize="small", loc="lower right")
    return ax


def _unit_text(data: pd.DataFrame) -> str:
    """The samples' unit, or each assay's (``"qpcr: copies/ug; flow: cells/uL"``)."""
    units = data.groupby("assay", sort=False)["unit"].first()
    if units.nunique() == 1:
        return str(units.iloc[0])
    return "; ".join(f"{assay}: {unit}" for assay, unit in units.items())
