"""Fit one subject's CAR-T kinetics with lmfit (maximum likelihood, M3 for BLQ samples).

See :func:`fit`. The pieces live in private modules, one concept each: the likelihood
(:mod:`~cellkin.fit.likelihood`), the compiled objective of models with a closed-form level
function (:mod:`~cellkin.fit._objective`) and its start-screening optimiser
(:mod:`~cellkin.fit._minimise`), the Python problem of the others
(:mod:`~cellkin.fit._problem`), the subject's data (:mod:`~cellkin.fit._data`), starts
(:mod:`~cellkin.fit._starts`), the optimisation paths (:mod:`~cellkin.fit._optimise`), the
uncertainty (:mod:`~cellkin.fit._uncertainty`) and the result (:mod:`~cellkin.fit._result`).

The data of one subject are handled as NumPy arrays taken once from the table; a table that
:func:`cellkin.read_kinetics` returned is not validated a second time (see :func:`fit`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from cellkin import models
from cellkin._version import __version__
from cellkin.errors import IdentifiabilityWarning, OptionError
from cellkin.fit import _data, likelihood
from cellkin.fit._optimise import OPTIMISERS, canonical, optimise
from cellkin.fit._prior import Prior
from cellkin.fit._problem import SubjectProblem, build_layout
from cellkin.fit._reliability import Evidence, assess, check_enough_samples
from cellkin.fit._result import FitResult
from cellkin.fit._uncertainty import build_parameter_table, covariance, stationary, t_quantile
from cellkin.io import read_kinetics
from cellkin.models.base import Model

__all__ = ["fit", "fit_table"]


def fit(
    kinetics: pd.DataFrame,
    model: str | Model = "stein2019",
    *,
    subject: str | None = None,
    assays: Sequence[str] | str | None = None,
    error: str | Mapping[str, str] = "log-additive",
    blq: str = "m3",
    fixed: Mapping[str, float] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    initial: Mapping[str, float] | None = None,
    prior: Prior | str | Any | None = None,
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
        residual error. A joint fit uses the assays the subject has with at least 3
        quantified post-infusion samples (any with a prior), with a note in
        ``FitResult.notes`` for each one left out (options naming its parameters are
        ignored); FitError when none is left.
    error : {"log-additive", "combined", "additive", "proportional"} or mapping
        Residual error model (:mod:`cellkin.fit.likelihood`): one for every assay, or one per
        assay, e.g. ``{"qpcr": "log-additive", "flow": "combined"}``.
    blq : {"m3", "drop", "lloq/2"}
        Below-LLOQ samples: censored likelihood (M3, default), dropped (Beal's M1), or
        imputed at LLOQ/2 — the last two for comparison only.
    fixed : mapping, optional
        Parameters held at a value (natural scale), e.g. ``{"sigma_qpcr": 0.56}`` or
        mechanistic parameters a study cannot identify.
    bounds : mapping, optional
        ``{name: (lower, upper)}`` on the natural scale, replacing the declared bounds.
    initial : mapping, optional
        Starting values overriding the data-driven ones.
    prior : Prior, "published" or a population fit, optional
        Fit by maximum a posteriori (MAP) instead of maximum likelihood: ``−2 ln L`` plus
        ``(φ − m)ᵀΩ⁻¹(φ − m)`` on the estimation scale of the parameters the prior covers.
        ``"published"``: the model's published typical values and between-subject SDs
        (:meth:`Prior.published`); a :class:`Prior`; or a population fit
        (:func:`cellkin.fit_population`), whose ``prior_for(subject)`` gives this subject's
        population distribution. With a prior a subject needs no minimum number of
        quantified samples (the population fills what the data leave open), CIs come from
        the curvature of the posterior with normal quantiles, and ``minus2ll``, AIC and BIC
        are those of the likelihood alone.
    n_starts : int
        Most starts: the data-driven start, then up to ``n_starts − 1`` seeded jitters on the
        estimation scale, run in turn until three reach the same best −2 ln L (to 1e-6
        relative); the best likelihood wins. ``FitResult.settings["starts_run"]`` says how
        many ran. Models that declare a kink time (Stein's Tmax) then also try it in the
        neighbouring inter-sample intervals.
    seed : int
        Seed of the multi-start design; the fit is deterministic for given inputs and seed.

    Returns
    -------
    FitResult
        Frozen result: parameter table (estimate, SE, RSE%, 95% CI on the natural scale),
        covariance, −2LL, AIC, BIC, convergence, predictions and residuals, and the
        reliability verdict (``reliable``, ``issues``: see :data:`cellkin.fit.ISSUE_CODES`).

    Raises
    ------
    FitError
        Without a prior, when the subject has fewer quantified samples than free parameters
        (the fit is refused; the message says what to do: fix parameters, pass ``prior=``,
        or fit the population), or fewer than 3 quantified post-infusion samples of a fitted
        assay.
    DataError, OptionError
        Invalid table, bad option value.

    Warns
    -----
    IdentifiabilityWarning
        When the data do not determine every parameter: parameters not identifiable
        (singular information matrix) or with an RSE over 100%. The same finding is in
        ``FitResult.issues``; batch fits record it in their ``warnings`` column.

    Notes
    -----
    Uncertainty: the covariance of the estimation-scale parameters is
    :math:`(J^\top J)^{-1}\,n/(n-p)`, with :math:`J` the Jacobian of the standardised
    residuals (and of :math:`\sqrt{-2\ln\Phi}` for censored samples) at the estimate, error
    parameters held fixed — robust to the Stein kink at Tmax, where Hessian-based SEs
    collapse when Tmax falls on a sample time. Confidence limits use t quantiles with
    ``n − p`` degrees of freedom on the estimation scale and are transformed back.

    Optimiser: models with a closed-form level function (the Stein models) are screened from
    each start by a compiled projected BFGS on the exact −2 ln L and gradient, and the best
    point is polished by lmfit's L-BFGS-B, whose message and success flag the result reports;
    other models (the ODE models) run lmfit from each start (:mod:`cellkin.fit._optimise`).

    Validation: a table returned by :func:`cellkin.read_kinetics` (it carries
    ``attrs["cellkin"]`` and the canonical columns and dtypes) is not validated again; only
    the subject's rows are re-checked (finite times, positive LLOQs, quantified values at or
    above the LLOQ, one sample per assay and time). Any other table, or one failing those
    checks, is read with :func:`cellkin.read_kinetics` first, which raises
    :class:`~cellkin.errors.DataError` on invalid input.
    """
    table = None
    if _data.as_read(kinetics):  # read_kinetics output: re-check only this subject's numbers
        chosen, rows = _data.select_subject(kinetics, subject)
        table, subject = (rows, chosen) if _data.sound(rows) else (None, subject)
    result = fit_table(
        read_kinetics(kinetics) if table is None else table,
        model,
        subject=subject,
        assays=assays,
        error=error,
        blq=blq,
        fixed=fixed,
        bounds=bounds,
        initial=initial,
        prior=prior,
        n_starts=n_starts,
        seed=seed,
    )
    _warn_identifiability(result)
    return result


def _warn_identifiability(result: FitResult) -> None:
    """:class:`IdentifiabilityWarning` naming what the data leave undetermined."""
    found = [i.message for i in result.issues if i.code in ("covariance_singular", "rse_over_100")]
    if found:
        warnings.warn(
            f"subject {result.subject!r}: the data do not determine every parameter "
            f"({'; '.join(found)}); the fit is not reliable. Fix these parameters, pass a "
            f"prior (`prior='published'`) or fit the population.",
            IdentifiabilityWarning,
            stacklevel=3,
        )


def _resolve_prior(prior: Any, model: Model, subject: str) -> Prior | None:
    """The :class:`Prior` a ``prior=`` argument stands for."""
    if prior is None or isinstance(prior, Prior):
        return prior
    if isinstance(prior, str):
        if prior != "published":
            raise OptionError(f"`prior` must be 'published', a Prior or a population fit, "
                              f"got {prior!r}")  # fmt: skip
        return Prior.published(model)
    if callable(getattr(prior, "prior_for", None)):
        return prior.prior_for(subject, model=model)
    raise OptionError(
        f"`prior` must be 'published', a Prior or a population fit, got {type(prior).__name__}"
    )


def fit_table(
    kinetics: pd.DataFrame,
    model: str | Model = "stein2019",
    *,
    subject: str | None = None,
    assays: Sequence[str] | str | None = None,
    error: str | Mapping[str, str] = "log-additive",
    blq: str = "m3",
    fixed: Mapping[str, float] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    initial: Mapping[str, float] | None = None,
    prior: Prior | str | Any | None = None,
    n_starts: int = 4,
    seed: int = 0,
) -> FitResult:
    """:func:`fit` on a table already validated by :func:`cellkin.read_kinetics` (private:
    batch fitting validates the whole table once); the options are those of :func:`fit`."""
    likelihood.check_blq(blq)
    model = models.get(model)
    subject, rows = _data.select_subject(kinetics, subject)
    chosen_prior = _resolve_prior(prior, model, subject)
    samples = _data.Samples(rows)
    least = 0 if chosen_prior is not None else _data.MIN_QUANTIFIED
    chosen, notes = _data.select_assays(samples, assays, subject, max(least, 1))
    asked = [assays] if isinstance(assays, str) else list(assays or ())
    dropped = [a for a in asked if a not in chosen]
    error = _data.for_assays(error, dropped) if isinstance(error, Mapping) else error
    fixed, bounds, initial = (_data.for_assays(o, dropped) for o in (fixed, bounds, initial))
    errors = likelihood.check_error(error, chosen)
    obs, (positions, used), excluded = _data.observations(samples, chosen, blq, subject, least)
    units = {a: str(samples.unit[samples.assay == a][0]) for a in chosen}
    kinetic, scales, typical = _data.initial_values(model, samples, chosen)
    layout = build_layout(model, chosen, units, errors, kinetic, scales, typical)
    layout, free = _data.apply_overrides(layout, fixed, bounds, initial)
    free_names = [name for name, varies in zip(layout.names, free, strict=True) if varies]
    if chosen_prior is None:
        check_enough_samples(subject, obs.n - obs.n_censored, free_names)
    else:
        chosen_prior = chosen_prior.restricted_to(free_names)
    problem = SubjectProblem(model, obs, layout, errors, chosen_prior)
    (minus2ll, search, outcome), evaluations, starts_run, objective = optimise(
        problem, free, n_starts, seed
    )
    minus2ll -= _prior_penalty(problem, search)
    search = canonical(problem, search, free)
    uncertainty = covariance(problem, search, free, objective)
    structural, cov = uncertainty.structural, uncertainty.matrix
    dof = obs.n - int(structural.sum())
    table = build_parameter_table(problem, search, free, structural, cov, dof)
    theta = problem.transform.to_model(search)
    z = objective.standardized(search) if objective is not None else problem.standardized(theta)
    data = _data.data_table(rows, positions, used, problem.predict(theta), z)
    n_free = int(free.sum())
    message = outcome.message + (f"; {uncertainty.note}" if uncertainty.note else "")
    converged = bool(outcome.success) or stationary(problem, search, structural, cov, objective)
    success = converged and not uncertainty.failed
    issues = assess(Evidence(
        problem=problem, search=search, free=free, structural=structural, covariance=cov,
        unidentified=uncertainty.unidentified, covariance_failed=uncertainty.failed,
        leverage=uncertainty.leverage, z=z, rse_pct=table["rse_pct"].to_numpy(float),
        quantile=float(stats.norm.ppf(0.975)) if chosen_prior is not None
        else t_quantile(0.975, max(dof, 1)),
        success=success, message=message,
    ))  # fmt: skip
    return FitResult(
        subject=subject,
        model=model,
        assays=chosen,
        units=units,
        error=error if isinstance(error, str) else dict(errors),
        blq=blq,
        params=table,
        search_estimate=search,
        free=free,
        structural=structural,
        covariance_search=cov,
        minus2ll=minus2ll,
        aic=minus2ll + 2 * n_free,
        bic=minus2ll + n_free * math.log(obs.n),
        n_obs=obs.n,
        n_censored=obs.n_censored,
        n_free=n_free,
        dof=dof,
        success=success,
        message=message,
        nfev=evaluations,
        data=data,
        excluded=excluded,
        settings={
            "cellkin_version": __version__,
            "model": model.name,
            "assays": chosen,
            "error": error if isinstance(error, str) else dict(errors),
            "blq": blq,
            "prior": None if chosen_prior is None else chosen_prior.source,
            "n_starts": n_starts,
            "starts_run": starts_run,
            "seed": seed,
            "fixed": dict(fixed or {}),
            "bounds": dict(bounds or {}),
            "optimiser": OPTIMISERS[objective is not None],
            "solver": model.solver_settings,
        },
        layout=layout,
        issues=issues,
        notes=notes,
    )


def _prior_penalty(problem: SubjectProblem, search: np.ndarray) -> float:
    """The prior's share of the optimised objective at ``search`` (0 without a prior)."""
    if problem.prior is None:
        return 0.0
    deviation = search[problem.prior_index] - problem.prior_mean
    return float(deviation @ problem.prior_precision @ deviation)
