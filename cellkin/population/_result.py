"""The frozen result of a population fit, :class:`PopulationFit` (private)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from cellkin._display import Summary
from cellkin.errors import OptionError
from cellkin.fit import Prior
from cellkin.models.base import Model, describe_solver
from cellkin.population._design import Design, PopulationData
from cellkin.population._state import Estimates

__all__ = ["PopulationFit", "likelihood_ratio_test"]


@dataclass(frozen=True, eq=False, repr=False)
class PopulationFit:
    """A population (nonlinear mixed-effects) fit from :func:`cellkin.fit_population`.

    Attributes
    ----------
    model : Model
        The fitted model.
    fixed_effects : DataFrame
        ``parameter, term, kind, estimate, se, rse_pct, ci_lower, ci_upper, p_value, unit,
        scale, random, fixed``: typical values on the natural scale (``kind == "typical"``) and
        covariate effects β on the estimation scale with their Wald p-values
        (``kind == "covariate"``). CIs at ``settings["confidence"]``.
    random_effects : DataFrame
        ``parameter, kind, estimate, se, rse_pct, ci_lower, ci_upper, shrinkage_pct, scale``:
        ω (SD on the estimation scale) of each random effect, its η-shrinkage, and the
        correlations estimated within blocks of Ω.
    residual_error : DataFrame
        ``assay, parameter, model, estimate, se, rse_pct, ci_lower, ci_upper``.
    individual : DataFrame
        One row per subject × parameter: ``ebe`` (conditional mode), ``conditional_mean``,
        ``conditional_sd`` (natural scale, from the conditional draws), ``unit``.
    minus2ll, minus2ll_se : float
        −2 ln L by importance sampling and its Monte Carlo standard error.
    n_subjects, n_obs, n_censored, n_parameters : int
        Subjects and samples in the likelihood, censored samples (M3), estimated population
        parameters (for AIC/BIC).
    converged : bool
        Whether SAEM's exploratory phase became stationary and its smoothing phase settled;
        ``reason`` says which and why.
    trajectory : DataFrame
        Every tracked parameter at every iteration (``phase`` exploratory or smoothing).
    failures : DataFrame
        ``subject, reason`` of the input subjects that could not enter the fit.
    settings : dict
        cellkin version, model, the model's solver settings (``"solver"``,
        :attr:`cellkin.models.Model.solver_settings`), every option, the seed and the
        iteration counts.
    """

    model: Model
    design: Design = field(repr=False)
    data: PopulationData = field(repr=False)
    estimates: Estimates = field(repr=False)
    fixed_effects: pd.DataFrame
    random_effects: pd.DataFrame
    residual_error: pd.DataFrame
    individual: pd.DataFrame
    covariance: pd.DataFrame | None
    minus2ll: float
    minus2ll_se: float
    n_parameters: int
    converged: bool
    reason: str
    trajectory: pd.DataFrame
    predictions: pd.DataFrame = field(repr=False)
    vpc: pd.DataFrame = field(repr=False)
    conditional_draws: np.ndarray = field(repr=False)  # (n, draws, r) estimation scale
    ebe: np.ndarray = field(repr=False)  # (n, r) estimation scale
    failures: pd.DataFrame = field(repr=False)
    settings: dict[str, Any] = field(repr=False)

    # ------------------------------------------------------------------ counts
    @property
    def subjects(self) -> tuple[str, ...]:
        """The subjects in the fit, in input order."""
        return self.data.subjects

    @property
    def n_subjects(self) -> int:
        """Number of subjects in the fit."""
        return self.data.n

    @property
    def n_obs(self) -> int:
        """Samples in the likelihood."""
        return int(self.data.time.size)

    @property
    def n_censored(self) -> int:
        """Censored (M3) samples."""
        return int(self.data.censored.sum())

    @property
    def aic(self) -> float:
        """AIC = −2 ln L + 2 × estimated population parameters."""
        return self.minus2ll + 2 * self.n_parameters

    @property
    def bic(self) -> float:
        """BIC = −2 ln L + ln(number of subjects) × estimated population parameters."""
        return self.minus2ll + math.log(self.n_subjects) * self.n_parameters

    # ------------------------------------------------------------------ individual use
    def individual_parameters(self, subject: str, *, draws: bool = False) -> np.ndarray:
        """Natural-scale structural parameters of ``subject`` (kinetic, then assay scales):
        its EBE, or with ``draws=True`` its conditional draws ``(n_draws, q)``."""
        s = self._index(subject)
        values = self.design.transform.to_model(
            self._full(self.conditional_draws[s] if draws else self.ebe[[s]])
        )
        return values if draws else values[0]

    def _full(self, sampled: np.ndarray) -> np.ndarray:
        """Rows of every structural parameter (estimation scale) from the sampled ones."""
        design = self.design
        fixed = np.array([design.fixed.get(n, 0.0) for n in design.names], dtype=float)
        rows = np.tile(design.transform.to_search(fixed), (sampled.shape[0], 1))
        rows[:, design.sampled] = sampled
        return rows

    def _index(self, subject: str) -> int:
        try:
            return self.data.subjects.index(str(subject))
        except ValueError:
            raise OptionError(f"subject {subject!r} is not in the population fit") from None

    def prior_for(self, subject: str | None = None, *, model: Model | None = None) -> Prior:
        """The population distribution of a subject's parameters, as a :class:`~cellkin.fit.Prior`
        for ``cellkin.fit(..., prior=...)``.

        Parameters with a random effect: N(Z_iγ̂, Ω̂) on the estimation scale, ``Z_i`` the
        subject's covariates (a subject of this fit; a new subject only when the model has no
        covariates). Parameters estimated without one: N(μ̂, SE(μ̂)²), their estimate and its
        uncertainty.
        """
        if model is not None and model.name != self.model.name:
            raise OptionError(f"this population fit is of `{self.model.name}`, not `{model.name}`")
        design, est = self.design, self.estimates
        if subject is not None and str(subject) in self.data.subjects:
            means = est.means(design)[self._index(subject)]
        elif design.covariates:
            raise OptionError(
                f"subject {subject!r} is not in the population fit and the model has covariates "
                f"({design.covariates}); fit the population with this subject, or build a "
                f"cellkin.fit.Prior with its covariate-adjusted mean"
            )
        else:
            means = np.array([c[0] for c in est.coefficients])
        sampled = design.sampled_names
        variances = np.diag(est.omega).copy()
        covariance = est.omega.copy()
        lookup = self._coefficient_se()
        for k in np.flatnonzero(~design.random):
            covariance[k, :] = covariance[:, k] = 0.0
            se = lookup.get(sampled[k], np.nan)
            covariance[k, k] = se**2 if np.isfinite(se) and se > 0 else max(variances[k], 1e-8)
        return Prior(
            sampled,
            means,
            covariance,
            f"population fit of {self.model.name} ({self.n_subjects} subjects)",
        )

    def _coefficient_se(self) -> dict[str, float]:
        if self.covariance is None:
            return {}
        names = [n.split(":")[0] for n in self.covariance.index if n.endswith(":")]
        values = [
            float(np.sqrt(max(self.covariance.loc[n, n], 0.0)))
            for n in self.covariance.index
            if n.endswith(":")
        ]
        return dict(zip(names, values, strict=True))

    # ------------------------------------------------------------------ faces
    def diagnostics(self) -> pd.DataFrame:
        """One row per sample: ``dv, pred, ipred, iwres, npde`` and the sample's identity."""
        return self.predictions.copy()

    def to_frame(self) -> pd.DataFrame:
        """All population parameters in one long table (``table``: fixed, random, error)."""
        return pd.concat(
            [
                self.fixed_effects.assign(table="fixed"),
                self.random_effects.assign(table="random"),
                self.residual_error.assign(table="error"),
            ],
            ignore_index=True,
        )

    def metrics(self, **options: Any) -> pd.DataFrame:
        """Per-subject model-based metrics with CIs from the conditional distribution:
        :func:`cellkin.metrics.model_metrics` of this fit (a convenience). The estimate is
        the median of each metric over the subject's conditional draws and the CI its
        percentiles; subjects of :attr:`failures` get rows of NaN with their reason."""
        from cellkin.metrics import model_metrics  # the layer above, asked lazily

        return model_metrics(self, **options)

    def summary(self) -> Summary:
        """People-facing summary: fit statistics, fixed and random effects, residual error."""
        stats_row = pd.DataFrame(
            [
                {
                    "subjects": self.n_subjects,
                    "samples": self.n_obs,
                    "censored": self.n_censored,
                    "parameters": self.n_parameters,
                    "minus2ll": self.minus2ll,
                    "minus2ll_se": self.minus2ll_se,
                    "aic": self.aic,
                    "bic": self.bic,
                    "converged": self.converged,
                }
            ]
        )
        notes = (
            f"{self.model.name} ({self.model.doi}); "
            f"{describe_solver(self.settings.get('solver'))}; SAEM: {self.reason}",
            f"{len(self.failures)} subject(s) not in the fit (see .failures)"
            if len(self.failures)
            else "every input subject is in the fit",
        )
        shown = ["parameter", "term", "estimate", "se", "rse_pct", "ci_lower", "ci_upper", "unit"]
        tables = (
            ("Fit", stats_row),
            ("Fixed effects", self.fixed_effects[shown]),
            ("Random effects", self.random_effects),
            ("Residual error", self.residual_error),
        )
        return Summary(
            f"Population fit: {self.model.name}, {self.n_subjects} subjects", tables, notes
        )

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def __repr__(self) -> str:
        return (
            f"PopulationFit(model={self.model.name!r}, subjects={self.n_subjects}, "
            f"minus2ll={self.minus2ll:.2f}, converged={self.converged})"
        )

    def plot(self, kind: str = "gof", *, ax: Any = None) -> Any:
        """A figure of the fit: ``"gof"`` (observed vs individual predictions),
        ``"vpc"`` (prediction-corrected VPC), ``"npde"`` (NPDE vs time) or ``"trajectories"``
        (SAEM's parameter trajectories) — see :mod:`cellkin.plot`."""
        from cellkin import plot  # the layer beside, asked lazily

        return plot.population(self, kind=kind, ax=ax)


def likelihood_ratio_test(full: PopulationFit, reduced: PopulationFit) -> pd.DataFrame:
    """Likelihood-ratio test of a population model against a nested one.

    ``LR = −2 ln L(reduced) − (−2 ln L(full))`` compared with χ² with as many degrees of
    freedom as the full model has more parameters (both −2 ln L by importance sampling, whose
    Monte Carlo SEs are reported: a difference within a few SE is not resolved).
    """
    df = full.n_parameters - reduced.n_parameters
    if df <= 0:
        raise OptionError("`full` must have more estimated parameters than `reduced`")
    if full.subjects != reduced.subjects:
        raise OptionError("the two fits must be of the same subjects (the same data)")
    statistic = reduced.minus2ll - full.minus2ll
    return pd.DataFrame(
        [
            {
                "statistic": statistic,
                "df": df,
                "p_value": float(stats.chi2.sf(max(statistic, 0.0), df)),
                "minus2ll_full": full.minus2ll,
                "minus2ll_reduced": reduced.minus2ll,
                "monte_carlo_se": math.hypot(full.minus2ll_se, reduced.minus2ll_se),
            }
        ]
    )
