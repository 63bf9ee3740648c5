"""Visual predictive check from the population of fitted individual estimates (private)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cellkin.errors import DataError, FitError, OptionError
from cellkin.fit import FitResult
from cellkin.models.transforms import Transform
from cellkin.plot._axes import axes
from cellkin.plot._common import BINNED_NOTE, DAYS, assay_rows, is_binned, note
from cellkin.plot._fits import converged_fits, fit_map
from cellkin.plot._population import population
from cellkin.population import PopulationFit

__all__ = ["vpc"]


def _population(
    fits: Mapping[str, FitResult], assay: str
) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """Model, mean and covariance of the estimation-scale parameters (+ ln scale), error SDs."""
    models = {r.model.name for r in fits.values()}
    errors = {  # an error model per assay is a dict (unhashable): compare its items
        r.error
        if isinstance(r.error, str)
        else ", ".join(f"{a}: {e}" for a, e in sorted(r.error.items()))
        for r in fits.values()
    }
    if len(models) > 1 or len(errors) > 1:
        raise FitError(f"fits mix models {sorted(models)} / error models {sorted(errors)}")
    lacking = [s for s, r in fits.items() if assay not in r.assays]
    if lacking:
        raise DataError(f"assay {assay!r} was not fitted for subject(s) {lacking[:5]}")
    if len(fits) < 2:
        raise FitError(f"a VPC needs at least 2 converged fits, got {len(fits)}")
    model = next(iter(fits.values())).model
    transform = Transform(tuple(p.scale for p in model.params))
    rows, sds = [], []
    for r in fits.values():
        est = r.estimates
        scale = 1.0 if assay == r.assays[0] else est[f"scale_{assay}"]
        rows.append([*transform.to_search(np.array([est[n] for n in model.param_names])),
                     math.log(scale)])  # fmt: skip
        kind = r.error if isinstance(r.error, str) else r.error[assay]
        names = ([f"sigma_{assay}"] if kind == "log-additive"
                 else [f"sigma_add_{assay}", f"sigma_prop_{assay}"])  # fmt: skip
        sds.append([est[n] for n in names])
    phi = np.array(rows)
    if not np.isfinite(phi).all():
        raise FitError("an estimate lies on a bound where its estimation scale is infinite")
    pooled = np.sqrt(np.mean(np.square(sds), axis=0))
    return model, phi.mean(axis=0), np.cov(phi, rowvar=False), pooled


def _simulate_vpc(
    fits: Mapping[str, FitResult], assay: str, times: np.ndarray, n: int, seed: int
) -> np.ndarray:
    """Simulated observations ``(n, n_times)`` of `n` virtual patients (NaN: failed kernel)."""
    model, mean, cov, sd = _population(fits, assay)
    w, v = np.linalg.eigh(cov)
    root = v * np.sqrt(np.clip(w, 0.0, None))
    rng = np.random.default_rng(seed)
    phi = mean + rng.standard_normal((n, mean.size)) @ root.T
    k = len(model.params)
    lower = np.array([p.lower for p in model.params])
    upper = np.array([p.upper for p in model.params])
    theta = np.clip(Transform(tuple(p.scale for p in model.params)).to_model(phi[:, :k]),
                    lower, upper)  # fmt: skip
    level = model.simulate_many(times, theta) * np.exp(phi[:, k : k + 1])
    eps = rng.standard_normal(level.shape)
    if sd.size == 1:
        return level * np.exp(sd[0] * eps)
    return level + np.sqrt(sd[0] ** 2 + (sd[1] * level) ** 2) * eps


def _observed_quantiles(observed: pd.DataFrame, lloq: float, q: np.ndarray) -> pd.DataFrame:
    """Quantiles per nominal time (bins of >= 3 samples), BLQ samples counted at the LLOQ."""
    levels = np.where(observed["blq"], lloq, observed["value"]).astype(float)
    bins = pd.DataFrame({"nominal": observed["nominal"].to_numpy(), "level": levels})
    grouped = bins.groupby("nominal")["level"]
    return grouped.quantile(list(q)).unstack()[grouped.count() >= 3]


def vpc(
    fits: Any,
    kinetics: pd.DataFrame | None = None,
    *,
    assay: str = "qpcr",
    n_draws: int = 200,
    quantiles: Sequence[float] = (0.05, 0.5, 0.95),
    seed: int = 0,
    times: Sequence[float] | None = None,
    ax: Any = None,
) -> Any:
    """Visual predictive check: a two-stage one from individual fits, or the prediction-corrected
    VPC of a population fit.

    Given a :class:`~cellkin.population.PopulationFit`, draws its prediction-corrected VPC
    (:func:`population` with ``kind="vpc"``; ``kinetics``, ``n_draws``, ``quantiles``,
    ``seed`` and ``times`` are not used: the fit simulated its replicates). Otherwise:

    A simple **two-stage** VPC, not an NLME one: the population distribution is estimated
    from the converged individual fits rather than fitted as a mixed-effects model, so it
    carries each subject's estimation error into the between-subject variability (the
    simulated spread tends to be wider than the true one when individual estimates are
    imprecise).

    Method, in this order:

    1. for every converged fit, the kinetic parameters on their estimation scale (``ln``,
       ``logit`` or linear per the model's :class:`~cellkin.models.ParamSpec`), plus
       ``ln scale_<assay>`` (0 when `assay` is the fit's first assay);
    2. their sample mean ``μ`` and covariance ``Σ`` (``ddof=1``) across subjects;
    3. ``rng = numpy.random.default_rng(seed)``; ``n_draws`` virtual patients
       ``φ = μ + Z·Lᵀ`` with ``Z = rng.standard_normal((n_draws, k))`` and
       ``L = V·diag(√max(w, 0))`` from the eigen-decomposition ``Σ = V·diag(w)·Vᵀ`` (so a
       singular ``Σ``, e.g. fewer subjects than parameters, is allowed); parameters back on
       the natural scale and set to their bounds when beyond them;
    4. levels ``f`` at `times` by ``model.simulate_many``, times the scale;
    5. residual error with ``E = rng.standard_normal((n_draws, n_times))``:
       ``y = f·exp(σ·E)`` (log-additive; ``σ`` = root mean square of the fitted
       ``sigma_<assay>``) or ``y = f + √(a² + (b·f)²)·E`` (combined; ``a``, ``b`` root mean
       squares of the fitted SDs);
    6. censoring: ``y`` below the LLOQ (the median LLOQ of the observed samples of `assay`)
       is set to the LLOQ; the `quantiles` of the simulated observations at each time are
       drawn: a shaded band between the outermost ones (the prediction interval) and dashed
       lines for each;
    7. the quantified observed samples (grey dots, at their nominal time) and the observed
       `quantiles` per nominal-time bin (``nominal_time`` where present, otherwise the actual
       day binned into the windows of ``cellkin.plot._common.TIME_WINDOW_DAYS``, noted on the
       figure; bins with at least 3 samples), BLQ samples counted at the LLOQ as the simulated
       ones are: solid lines.

    A quantile drawn at the LLOQ (dotted line) means "at or below the LLOQ". Pre-infusion
    samples (time < 0) are left out.

    Parameters
    ----------
    fits : BatchFit, mapping of str to FitResult, or FitResult
        At least 2 converged fits of one model and error model, all fitting `assay`.
    kinetics : pandas.DataFrame, optional
        The observed kinetics table (every subject of it, so that subjects whose fit failed
        still count); default: the samples of the fits themselves.
    assay : str, default "qpcr"
    n_draws : int, default 200
        Number of virtual patients drawn.
    quantiles : sequence of float, default (0.05, 0.5, 0.95)
        Quantiles in (0, 1), increasing.
    seed : int, default 0
        Seed of every random draw; the same seed gives the same figure.
    times : sequence of float, optional
        Simulation days (default: the observed post-infusion nominal times).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        Simulated quantile lines carry the labels ``"simulated <q>%"``, observed ones
        ``"observed <q>%"`` (q in percent, ``:g`` format).
    """
    if isinstance(fits, PopulationFit):
        chosen = assay if assay in fits.data.assays else None
        return population(fits, kind="vpc", assay=chosen, ax=ax)
    q = np.asarray(quantiles, dtype=float)
    if q.ndim != 1 or not q.size or not ((q > 0) & (q < 1)).all() or (np.diff(q) <= 0).any():
        raise OptionError(f"`quantiles` must be increasing values in (0, 1), got {quantiles!r}")
    if not (isinstance(n_draws, int | np.integer) and n_draws >= 10):
        raise OptionError(f"`n_draws` must be an integer >= 10, got {n_draws!r}")
    converged = converged_fits(fits)
    if kinetics is None:
        kinetics = pd.concat([r.data for r in fit_map(fits).values()], ignore_index=True)
    observed = assay_rows(kinetics, assay)
    observed = observed[observed["time"] >= 0]
    if observed.empty:
        raise DataError(f"no post-infusion samples of assay {assay!r} to compare with")
    grid = np.unique(observed["nominal"]) if times is None else np.asarray(times, float)
    if grid.ndim != 1 or not grid.size or not np.isfinite(grid).all():
        raise OptionError(f"`times` must be a non-empty 1-D sequence of finite days, got {times!r}")
    grid = np.unique(grid)
    lloq = float(observed["lloq"].median())
    simulated = _simulate_vpc(converged, assay, grid, int(n_draws), seed)
    simulated = np.where(np.isnan(simulated) | (simulated >= lloq), simulated, lloq)
    sim_q = np.nanquantile(simulated, q, axis=0)
    ax = axes(ax)
    band = f"simulated {100 * (q[-1] - q[0]):g}% PI ({n_draws} VPs)"
    ax.fill_between(grid, sim_q[0], sim_q[-1], color="C0", alpha=0.2, lw=0, label=band)
    for i, quantile in enumerate(q):
        ax.plot(grid, sim_q[i], "--", color="C0", label=f"simulated {100 * quantile:g}%")
    obs_q = _observed_quantiles(observed, lloq, q)
    for i, quantile in enumerate(q):
        ax.plot(obs_q.index, obs_q.iloc[:, i], "o-", color="C3", ms=3, lw=1.2,
                label=f"observed {100 * quantile:g}%")  # fmt: skip
    quantified = observed[~observed["blq"].astype(bool)]
    ax.plot(quantified["nominal"], quantified["value"], ".", color="0.5", ms=3, alpha=0.5)
    ax.axhline(lloq, color="0.3", ls=":", lw=1, label=f"LLOQ {lloq:g}")
    ax.set_yscale("log")
    unit = observed["unit"].dropna().iloc[0] if observed["unit"].notna().any() else ""
    ax.set_xlabel(DAYS)
    ax.set_ylabel(f"{assay} ({unit})" if unit else assay)
    ax.set_title(f"VPC ({len(converged)} converged fits; two-stage)", fontsize="medium")
    ax.legend(fontsize="x-small")
    if is_binned(observed):
        note(ax, BINNED_NOTE)
    return ax
