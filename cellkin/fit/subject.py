"""Fit one subject's CAR-T kinetics with lmfit (maximum likelihood, M3 for BLQ samples).

See :func:`fit`. The likelihood (error models, M3) is in
:mod:`cellkin.fit.likelihood`; the result object in :mod:`cellkin.fit.result`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import lmfit
import numpy as np
import pandas as pd

from cellkin import __version__, models
from cellkin.errors import FitError
from cellkin.fit import likelihood, starts
from cellkin.fit.likelihood import Observations
from cellkin.fit.problem import ParameterLayout, SubjectProblem, build_layout, central_differences
from cellkin.fit.result import FitResult, build_parameter_table
from cellkin.io import read_kinetics
from cellkin.models.base import Model

__all__ = ["fit", "fit_validated"]

_MIN_QUANTIFIED = 3
_MAX_EVALUATIONS = 4000


def _select_subject(kinetics: pd.DataFrame, subject: str | None) -> tuple[str, pd.DataFrame]:
    subjects = kinetics["subject"].unique()
    if subject is None:
        if subjects.size != 1:
            raise FitError(
                f"the kinetics table holds {subjects.size} subjects; pass `subject=` to fit one "
                f"of them or use `cellkin.fit_all` for all"
            )
        subject = str(subjects[0])
    rows = kinetics[kinetics["subject"] == subject]
    if rows.empty:
        raise FitError(f"subject {subject!r} is not in the kinetics table")
    return subject, rows


def _select_assays(rows: pd.DataFrame, assays: Sequence[str] | str | None, subject: str):
    present = list(dict.fromkeys(rows["assay"]))
    if assays is None:
        chosen = ["qpcr"] if "qpcr" in present else present[:1]
    else:
        chosen = [assays] if isinstance(assays, str) else list(assays)
    missing = [a for a in chosen if a not in present]
    if missing:
        raise FitError(
            f"subject {subject!r} has no {missing} samples (assays present: {present}); "
            f"choose `assays=` among those"
        )
    return tuple(chosen)


def _observations(
    rows: pd.DataFrame, assays: tuple[str, ...], blq: str, subject: str
) -> tuple[Observations, pd.DataFrame, pd.DataFrame]:
    """Samples entering the fit, the data table for the result, and exclusions."""
    data = rows[rows["assay"].isin(assays)].copy()
    data["used"] = data["time"] >= 0
    data.loc[data["blq"] & (blq == "m1"), "used"] = False
    excluded = data.loc[~data["used"], ["subject", "time", "assay"]].assign(
        reason=np.where(
            data.loc[~data["used"], "time"] < 0,
            "pre-infusion sample",
            "BLQ sample dropped (blq='m1')",
        )
    )
    used = data[data["used"]]
    for assay in assays:
        quantified = used[(used["assay"] == assay) & ~used["blq"]]
        if len(quantified) < _MIN_QUANTIFIED:
            raise FitError(
                f"subject {subject!r}, assay {assay!r}: {len(quantified)} quantifiable "
                f"post-infusion sample(s); a fit needs at least {_MIN_QUANTIFIED}"
            )
    value = used["value"].to_numpy(dtype=float).copy()
    censored = used["blq"].to_numpy(dtype=bool).copy()
    if blq == "lloq/2":
        value[censored] = 0.5 * used["lloq"].to_numpy(dtype=float)[censored]
        censored[:] = False
    obs = Observations(
        time=used["time"].to_numpy(dtype=float),
        value=value,
        censored=censored,
        lloq=used["lloq"].to_numpy(dtype=float),
        assay=pd.Index(assays).get_indexer(used["assay"]),
        assays=assays,
    )
    return obs, data, excluded


def _initial_values(model: Model, rows: pd.DataFrame, assays: tuple[str, ...]):
    post = rows[(rows["time"] >= 0) & ~rows["blq"]].sort_values("time")
    first = post[post["assay"] == assays[0]]
    kinetic = starts.kinetic_start(
        model, first["time"].to_numpy(float), first["value"].to_numpy(float)
    )
    peaks = post.groupby("assay")["value"].max()
    scales = {a: float(peaks[a] / peaks[assays[0]]) for a in assays[1:]}
    typical = {a: float(post.loc[post["assay"] == a, "value"].median()) for a in assays}
    return kinetic, scales, typical


def _apply_overrides(
    layout: ParameterLayout,
    fixed: Mapping[str, float] | None,
    bounds: Mapping[str, tuple[float, float]] | None,
    initial: Mapping[str, float] | None,
) -> tuple[ParameterLayout, np.ndarray]:
    lower, upper, start = layout.lower.copy(), layout.upper.copy(), layout.initial.copy()
    free = np.ones(len(layout.names), dtype=bool)
    for label, table in (("fixed", fixed), ("bounds", bounds), ("initial", initial)):
        unknown = sorted(set(table or {}) - set(layout.names))
        if unknown:
            raise FitError(f"`{label}` names unknown parameters {unknown}; known: {layout.names}")
    for name, (lo, hi) in (bounds or {}).items():
        j = layout.index(name)
        if not lo < hi:
            raise FitError(f"bounds for `{name}` must have lower < upper, got ({lo}, {hi})")
        lower[j], upper[j] = lo, hi
    for name, value in (initial or {}).items():
        start[layout.index(name)] = value
    for name, value in (fixed or {}).items():
        j = layout.index(name)
        start[j], free[j] = value, False
    for j, name in enumerate(layout.names):
        if free[j]:
            span = upper[j] - lower[j]
            start[j] = min(max(start[j], lower[j] + 1e-6 * span), upper[j] - 1e-6 * span)
        elif not lower[j] <= start[j] <= upper[j]:
            raise FitError(f"fixed `{name}` = {start[j]} lies outside [{lower[j]}, {upper[j]}]")
    updated = ParameterLayout(layout.names, layout.kinds, layout.units, layout.scales, lower,
                              upper, start, layout.descriptions)  # fmt: skip
    return updated, free


def _lmfit_params(problem: SubjectProblem, point: np.ndarray, free: np.ndarray):
    transform, layout = problem.transform, problem.layout
    lower, upper = transform.to_search(layout.lower), transform.to_search(layout.upper)
    params = lmfit.Parameters()
    for j, name in enumerate(layout.names):
        params.add(name, value=point[j], vary=bool(free[j]), min=lower[j], max=upper[j])
    return params


def _optimise(problem: SubjectProblem, free: np.ndarray, n_starts: int, seed):
    transform, layout = problem.transform, problem.layout
    first = transform.to_search(layout.initial)
    lower, upper = transform.to_search(layout.lower), transform.to_search(layout.upper)
    best, evaluations = None, 0

    def objective(params: lmfit.Parameters) -> float:
        search = np.fromiter(params.valuesdict().values(), float, len(layout.names))
        return problem.minus2ll(transform.to_model(search))

    def gradient(params: lmfit.Parameters) -> np.ndarray:
        """d(−2LL)/dφ of the varying parameters (lmfit applies its bounds transform)."""
        search = np.fromiter(params.valuesdict().values(), float, len(layout.names))
        natural = problem.gradient(transform.to_model(search))
        return (natural * transform.derivative(search))[free]

    options = {"jac": gradient} if problem.has_gradient else {}

    for point in starts.multistart(first, free, lower, upper, n_starts, seed):
        params = _lmfit_params(problem, point, free)
        outcome = lmfit.minimize(objective, params, method="lbfgsb", calc_covar=False,
                                 max_nfev=_MAX_EVALUATIONS, tol=1e-8, **options)  # fmt: skip
        evaluations += outcome.nfev
        search = np.fromiter(outcome.params.valuesdict().values(), float, len(layout.names))
        value = problem.minus2ll(transform.to_model(search))
        if math.isfinite(value) and (best is None or value < best[0] - 1e-9):
            best = (value, search, outcome)
    if best is None:
        raise FitError("no start gave a finite likelihood; check the data and bounds")
    return best, evaluations


def _canonical(problem: SubjectProblem, search: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Apply the model's canonical labelling when it keeps fixed parameters and bounds."""
    theta = problem.transform.to_model(search)
    k = problem.n_kinetic
    relabelled = theta.copy()
    relabelled[:k] = problem.model.canonical(theta[:k])
    moved = relabelled != theta
    inside = (relabelled >= problem.layout.lower) & (relabelled <= problem.layout.upper)
    if not moved.any() or (moved & ~free).any() or not inside.all():
        return search
    return problem.transform.to_search(relabelled)


def _stationary(
    problem: SubjectProblem, search: np.ndarray, structural: np.ndarray, covariance: np.ndarray
) -> bool:
    """Whether the estimate is a stationary point: the Newton decrement of −2LL over the
    structural parameters, ``¼·gᵀ·Cov·g`` (``Cov ≈ I⁻¹``, g by central differences), is below
    1e-3 — the −2LL a further Newton step could still gain.

    L-BFGS-B with finite-difference gradients often stops with an "abnormal line search" at
    the optimum itself; this scale-free check tells such a stop from a real failure.
    """
    if covariance.size == 0 or not np.isfinite(covariance).all():
        return False
    g = central_differences(
        lambda point: problem.minus2ll(problem.transform.to_model(point)),
        search,
        np.flatnonzero(structural),
    ).ravel()
    return bool(0.25 * g @ covariance @ g < 1e-3)


def _covariance(problem: SubjectProblem, search: np.ndarray, free: np.ndarray):
    """Jacobian-based covariance of the identified kinetic/scale parameters (estimation scale).

    Parameters pinned at a bound are left out, and while the information matrix is singular
    (condition number > 1e10) the parameter with the least information is left out too (e.g.
    α once FB reaches 1, when the decline is mono-exponential). Those get no SE and are
    named in the note, so that the identified ones keep their uncertainty.
    Returns ``(structural, covariance, note, failed)``.
    """
    lower = problem.transform.to_search(problem.layout.lower)
    upper = problem.transform.to_search(problem.layout.upper)
    tolerance = 1e-6 * (1 + np.abs(search))
    pinned = free & ((np.abs(search - lower) < tolerance) | (np.abs(upper - search) < tolerance))
    structural = free & (np.array(problem.layout.kinds) != "error") & ~pinned
    jacobian = problem.information_jacobian(search, structural)
    names = np.array(problem.layout.names)
    notes = [f"{', '.join(names[pinned])} at a bound"] if pinned.any() else []
    if not np.isfinite(jacobian).all():
        return structural, np.full((structural.sum(),) * 2, np.nan), "model failed", True
    columns = np.flatnonzero(structural)
    keep = np.ones(columns.size, dtype=bool)
    while keep.any() and np.linalg.cond(jacobian[:, keep].T @ jacobian[:, keep]) > 1e10:
        norms = np.where(keep, np.linalg.norm(jacobian, axis=0), np.inf)
        keep[int(np.argmin(norms))] = False
    if not keep.all():
        notes.append(f"{', '.join(names[columns[~keep]])} not identifiable")
        structural[columns[~keep]] = False
    n, p = problem.obs.n, int(keep.sum())
    if p == 0:
        return structural, np.empty((0, 0)), "; ".join(notes), False
    if n <= p:
        return structural, np.full((p, p), np.nan), "too few samples for a covariance", True
    information = jacobian[:, keep].T @ jacobian[:, keep]
    return structural, np.linalg.inv(information) * n / (n - p), "; ".join(notes), False


def fit(
    kinetics: pd.DataFrame,
    model: str | Model = "stein2019",
    *,
    subject: str | None = None,
    assays: Sequence[str] | str | None = None,
    error: str = "log-additive",
    blq: str = "m3",
    fixed: Mapping[str, float] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    initial: Mapping[str, float] | None = None,
    n_starts: int = 4,
    seed: int = 0,
) -> FitResult:
    r"""Fit a kinetic model to one subject by maximum likelihood.

    Parameters
    ----------
    kinetics : DataFrame
        A kinetics table (validated with :func:`cellkin.read_kinetics`). It may hold several
        subjects when ``subject`` names one. Pre-infusion samples (``time < 0``) do not enter
        the fit; they are listed in ``FitResult.excluded`` and set the baseline of the
        model-based time back to baseline.
    model : str or Model
        Registered model name or instance (default ``"stein2019"``).
    subject : str, optional
        The subject to fit (required when the table holds several).
    assays : str or sequence of str, optional
        Assays to fit: one (default ``qpcr`` when present, else the first) or several for a
        **joint fit** sharing the kinetic parameters, with an assay-specific scale
        (``scale_<assay>``, level of that assay per unit of the first assay's level) and
        residual error.
    error : {"log-additive", "combined"}
        Residual error model, per assay (:mod:`cellkin.fit.likelihood`).
    blq : {"m3", "m1", "lloq/2"}
        Below-LLOQ samples: censored likelihood (M3, default), dropped (M1), or imputed at
        LLOQ/2 — the last two for comparison only.
    fixed : mapping, optional
        Parameters held at a value (natural scale), e.g. ``{"sigma_qpcr": 0.56}`` or
        mechanistic parameters a study cannot identify.
    bounds : mapping, optional
        ``{name: (lower, upper)}`` on the natural scale, replacing the declared bounds.
    initial : mapping, optional
        Starting values overriding the data-driven ones.
    n_starts : int
        Number of starts: the data-driven start plus ``n_starts − 1`` seeded jitters on the
        estimation scale; the best likelihood wins.
    seed : int
        Seed of the multi-start design; the fit is deterministic for given inputs and seed.

    Returns
    -------
    FitResult
        Frozen result: parameter table (estimate, SE, RSE%, 95% CI on the natural scale),
        covariance, −2LL, AIC, BIC, convergence, predictions and residuals.

    Notes
    -----
    Uncertainty: the covariance of the estimation-scale parameters is
    :math:`(J^\top J)^{-1}\,n/(n-p)`, with :math:`J` the Jacobian of the standardised
    residuals (and of :math:`\sqrt{-2\ln\Phi}` for censored samples) at the estimate, error
    parameters held fixed — robust to the Stein kink at Tmax, where Hessian-based SEs
    collapse when Tmax falls on a sample time. Confidence limits use t quantiles with
    ``n − p`` degrees of freedom on the estimation scale and are transformed back.
    """
    return fit_validated(
        read_kinetics(kinetics),
        model,
        subject=subject,
        assays=assays,
        error=error,
        blq=blq,
        fixed=fixed,
        bounds=bounds,
        initial=initial,
        n_starts=n_starts,
        seed=seed,
    )


def fit_validated(
    kinetics: pd.DataFrame,
    model: str | Model = "stein2019",
    *,
    subject: str | None = None,
    assays: Sequence[str] | str | None = None,
    error: str = "log-additive",
    blq: str = "m3",
    fixed: Mapping[str, float] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    initial: Mapping[str, float] | None = None,
    n_starts: int = 4,
    seed: int = 0,
) -> FitResult:
    """:func:`fit` on a table already validated by :func:`cellkin.read_kinetics`.

    For batch fitting, which validates the whole table once; the options are those of
    :func:`fit`.
    """
    if error not in likelihood.ERROR_MODELS:
        raise FitError(f"`error` must be one of {likelihood.ERROR_MODELS}, got {error!r}")
    if blq not in likelihood.BLQ_METHODS:
        raise FitError(f"`blq` must be one of {likelihood.BLQ_METHODS}, got {blq!r}")
    model = models.get(model)
    subject, rows = _select_subject(kinetics, subject)
    chosen = _select_assays(rows, assays, subject)
    obs, data, excluded = _observations(rows, chosen, blq, subject)
    units = {a: str(rows.loc[rows["assay"] == a, "unit"].iloc[0]) for a in chosen}
    kinetic, scales, typical = _initial_values(model, rows, chosen)
    layout = build_layout(model, chosen, units, error, kinetic, scales, typical)  # type: ignore[arg-type]
    layout, free = _apply_overrides(layout, fixed, bounds, initial)
    problem = SubjectProblem(model, obs, layout, error)  # type: ignore[arg-type]
    (minus2ll, search, outcome), evaluations = _optimise(problem, free, n_starts, seed)
    search = _canonical(problem, search, free)
    structural, covariance, covariance_note, failed = _covariance(problem, search, free)
    dof = obs.n - int(structural.sum())
    table = build_parameter_table(problem, search, free, structural, covariance, dof)
    theta = problem.transform.to_model(search)
    z, _ = problem.standardized(theta)
    data.loc[data["used"], "prediction"] = problem.predict(theta)
    data.loc[data["used"], "residual"] = z
    n_free = int(free.sum())
    message = outcome.message + (f"; {covariance_note}" if covariance_note else "")
    return FitResult(
        subject=subject,
        model=model,
        assays=chosen,
        units=units,
        error=error,
        blq=blq,
        params=table,
        search_estimate=search,
        free=free,
        structural=structural,
        covariance_search=covariance,
        minus2ll=minus2ll,
        aic=minus2ll + 2 * n_free,
        bic=minus2ll + n_free * math.log(obs.n),
        n_obs=obs.n,
        n_censored=obs.n_censored,
        n_free=n_free,
        dof=dof,
        success=(bool(outcome.success) or _stationary(problem, search, structural, covariance))
        and not failed,
        message=message,
        nfev=evaluations,
        data=data.reset_index(drop=True),
        excluded=excluded.reset_index(drop=True),
        settings={
            "cellkin_version": __version__,
            "model": model.name,
            "assays": chosen,
            "error": error,
            "blq": blq,
            "n_starts": n_starts,
            "seed": seed,
            "fixed": dict(fixed or {}),
            "bounds": dict(bounds or {}),
            "optimiser": "lmfit lbfgsb (L-BFGS-B on -2LL)",
        },
        layout=layout,
    )
