"""The frozen result of one subject's fit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cellkin._display import Summary
from cellkin.errors import FitError
from cellkin.fit._problem import ParameterLayout
from cellkin.fit._reliability import FitIssue, bound_hits
from cellkin.models.base import Model, describe_solver
from cellkin.models.transforms import Transform

__all__ = ["PARAM_COLUMNS", "FitResult"]

PARAM_COLUMNS = ("parameter", "kind", "estimate", "se", "rse_pct", "ci_lower", "ci_upper",
                 "unit", "scale", "fixed", "description")  # fmt: skip


@dataclass(frozen=True, eq=False)
class FitResult:
    """Result of :func:`cellkin.fit` for one subject (frozen; never mutates the model).

    Attributes
    ----------
    subject : str
        Subject id.
    model : Model
        The fitted model.
    assays : tuple of str
        Assays fitted (the first is the reference of any ``scale_<assay>``).
    units : dict
        Unit of each assay's level.
    error, blq : str
        Residual error model and BLQ method.
    params : DataFrame
        One row per parameter: ``parameter, kind, estimate, se, rse_pct, ci_lower,
        ci_upper, unit, scale, fixed, description`` (natural scale; 95% CI).
    minus2ll, aic, bic : float
        −2 ln L (all constants included, so comparable across models and error models), and
        AIC/BIC counting every free parameter, error parameters included.
    n_obs, n_censored, n_free, dof : int
        Samples in the likelihood, of which censored (M3); free parameters; degrees of
        freedom of the CIs (``n_obs`` − free kinetic/scale parameters).
    success : bool
        Whether the optimiser converged and the covariance could be computed. It says
        nothing about whether the data determine the parameters: see :attr:`reliable`.
    message : str
        Optimiser message (and the covariance problem, if any).
    issues : tuple of FitIssue
        Why the fit's numbers should not be used as they are (empty when nothing is known
        against them): one :class:`~cellkin.fit.FitIssue` per problem found, each a code
        from :data:`cellkin.fit.ISSUE_CODES` and a message. The checks are described in
        :data:`~cellkin.fit.ISSUE_CODES`' module, :mod:`cellkin.fit._reliability`.
    notes : tuple of str
        What the fit did that a reader should know and that does not make it unreliable,
        e.g. a joint fit made on the one assay the subject has.
    data : DataFrame
        The subject's samples of the fitted assays with ``used``, ``prediction`` and
        ``residual`` (standardised; for a censored sample the M3 argument
        ``(g(LLOQ) − g(f))/s``).
    excluded : DataFrame
        Samples not in the likelihood, with the reason.
    settings : dict
        cellkin version and every option, the optimiser, and under ``"solver"`` how the
        model's levels were computed (:attr:`cellkin.models.Model.solver_settings`: the ODE
        method and tolerances, or ``"method": "none"`` for a closed-form model).
    """

    subject: str
    model: Model
    assays: tuple[str, ...]
    units: dict[str, str]
    error: str | dict[str, str]
    blq: str
    params: pd.DataFrame
    search_estimate: np.ndarray = field(repr=False)
    free: np.ndarray = field(repr=False)
    structural: np.ndarray = field(repr=False)
    covariance_search: np.ndarray = field(repr=False)
    minus2ll: float
    aic: float
    bic: float
    n_obs: int
    n_censored: int
    n_free: int
    dof: int
    success: bool
    message: str
    nfev: int
    data: pd.DataFrame = field(repr=False)
    excluded: pd.DataFrame = field(repr=False)
    settings: dict[str, Any] = field(repr=False)
    layout: ParameterLayout = field(repr=False)
    issues: tuple[FitIssue, ...] = ()
    notes: tuple[str, ...] = ()

    # ------------------------------------------------------------------ estimates
    @property
    def estimates(self) -> dict[str, float]:
        """Natural-scale estimates by parameter name."""
        return dict(zip(self.params["parameter"], self.params["estimate"], strict=True))

    @property
    def kinetic_params(self) -> dict[str, float]:
        """The model's parameters only (what ``model.simulate`` takes)."""
        return {name: self.estimates[name] for name in self.model.param_names}

    @property
    def reliable(self) -> bool:
        """Whether the fit's numbers can be used: it converged and has no :attr:`issues`."""
        return self.success and not self.issues

    @property
    def issue_codes(self) -> tuple[str, ...]:
        """The codes of :attr:`issues`, in order (see :data:`cellkin.fit.ISSUE_CODES`)."""
        return tuple(issue.code for issue in self.issues)

    @property
    def at_bounds(self) -> tuple[str, ...]:
        """Free parameters whose estimate lies on one of its bounds.

        On the estimation scale, within 10⁻⁶ of the bound-to-bound range: where the optimiser
        stopped on the bound (L-BFGS-B projects onto it). The likelihood would still improve
        beyond the bound, or the data do not determine the parameter (e.g. a fold expansion
        with no pre-peak sample); the SE and CI of such a parameter are not meaningful and
        the fit is not :attr:`reliable` (issue ``parameter_at_bound``, or ``sigma_at_floor``
        for a residual SD at its lower bound). Widen the bound (``bounds=``) or fix the
        parameter (``fixed=``).
        """
        low, high = bound_hits(self.layout, self.search_estimate, self.free)
        return tuple(name for name, hit in zip(self.layout.names, low | high, strict=True) if hit)

    @property
    def covariance(self) -> pd.DataFrame:
        """Covariance of the free kinetic/scale parameters on the natural scale (delta method)."""
        names = [n for n, s in zip(self.layout.names, self.structural, strict=True) if s]
        transform = _transform(self)
        jac = transform.derivative(self.search_estimate)[self.structural]
        matrix = self.covariance_search * np.outer(jac, jac)
        return pd.DataFrame(matrix, index=names, columns=names)

    @property
    def correlation(self) -> pd.DataFrame:
        """Correlation of the free kinetic/scale parameters (scale-free)."""
        cov = self.covariance
        sd = np.sqrt(np.diag(cov.to_numpy()))
        return cov / np.outer(sd, sd)

    def sample_parameters(self, n_draws: int = 1000, seed: int = 0) -> np.ndarray:
        """Draw ``n_draws`` natural-scale parameter vectors from the estimation-scale normal
        approximation, truncated at the parameter bounds (draws beyond a bound are set to
        it); fixed and error parameters stay at their estimates."""
        if not np.isfinite(self.covariance_search).all():
            raise FitError(f"subject {self.subject!r}: no covariance, cannot sample parameters")
        rng = np.random.default_rng(seed)
        draws = np.tile(self.search_estimate, (n_draws, 1))
        draws[:, self.structural] = rng.multivariate_normal(
            self.search_estimate[self.structural],
            self.covariance_search,
            size=n_draws,
            method="eigh",
        )
        transform = _transform(self)
        lower = transform.to_search(self.layout.lower)
        upper = transform.to_search(self.layout.upper)
        natural = transform.to_model(np.clip(draws, lower, upper))
        return np.clip(natural, self.layout.lower, self.layout.upper)  # round-off at bounds

    # ------------------------------------------------------------------ predictions
    def _assay_scale(self, assay: str | None) -> tuple[str, float]:
        assay = self.assays[0] if assay is None else assay
        if assay not in self.assays:
            raise FitError(f"assay {assay!r} was not fitted; fitted assays: {self.assays}")
        scale = 1.0 if assay == self.assays[0] else self.estimates[f"scale_{assay}"]
        return assay, scale

    def predict(self, t: object, assay: str | None = None) -> np.ndarray:
        """Fitted level at days ``t`` for ``assay`` (default: the first fitted assay)."""
        _, scale = self._assay_scale(assay)
        return scale * self.model.simulate(t, self.kinetic_params)

    def predict_interval(
        self,
        t: object,
        assay: str | None = None,
        confidence: float = 0.95,
        n_draws: int = 500,
        seed: int = 0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise confidence band of the fitted curve from parameter uncertainty."""
        assay, _ = self._assay_scale(assay)
        draws = self.sample_parameters(n_draws, seed)
        k = len(self.model.params)
        levels = self.model.simulate_many(t, draws[:, :k])
        if assay != self.assays[0]:
            levels = levels * draws[:, [self.layout.index(f"scale_{assay}")]]
        tail = 50 * (1 - confidence)
        return np.nanpercentile(levels, tail, axis=0), np.nanpercentile(levels, 100 - tail, axis=0)

    # ------------------------------------------------------------------ faces
    def to_frame(self) -> pd.DataFrame:
        """Parameter table with the subject id (tidy, one row per parameter)."""
        return self.params.assign(subject=self.subject).loc[:, ["subject", *PARAM_COLUMNS]]

    def fit_statistics(self) -> pd.DataFrame:
        """One-row table: −2LL, AIC, BIC, n_obs, n_censored, n_free, success, message,
        ``at_bounds`` (:attr:`at_bounds`, comma-separated; empty when none), ``reliable``,
        ``issues`` (the codes of :attr:`issues`, comma-separated) and ``notes``."""
        return pd.DataFrame([{
            "subject": self.subject, "model": self.model.name, "error": self.error,
            "blq": self.blq, "minus2ll": self.minus2ll, "aic": self.aic, "bic": self.bic,
            "n_obs": self.n_obs, "n_censored": self.n_censored, "n_free": self.n_free,
            "success": self.success, "message": self.message,
            "at_bounds": ", ".join(self.at_bounds), "reliable": self.reliable,
            "issues": ", ".join(self.issue_codes), "notes": "; ".join(self.notes),
        }])  # fmt: skip

    def metrics(self, **options: Any) -> pd.DataFrame:
        """Model-based metrics with CIs: :func:`cellkin.metrics.model_metrics` of this fit
        (a convenience: the metrics layer computes them)."""
        from cellkin.metrics import model_metrics  # the layer above, asked lazily

        return model_metrics(self, **options)

    def summary(self) -> Summary:
        """People-facing summary (text via ``str``, HTML in notebooks)."""
        shown = self.params.loc[:, ["parameter", "estimate", "se", "rse_pct", "ci_lower",
                                    "ci_upper", "unit", "fixed"]]  # fmt: skip
        notes = (
            f"{self.model.name} ({self.model.doi}); error {self.error}, BLQ {self.blq}; "
            f"{self.n_obs} samples ({self.n_censored} censored); converged: {self.success} "
            f"({self.message}); {describe_solver(self.settings.get('solver'))}",
            "reliable: yes" if self.reliable else "NOT RELIABLE (do not use its numbers as they "
            "are):",
            *(f"  {issue}" for issue in self.issues),
            *self.notes,
        )  # fmt: skip
        title = f"Fit of subject {self.subject} ({', '.join(self.assays)})"
        return Summary(title, (("Parameters", shown), ("Fit", self.fit_statistics())), notes)

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def plot(self, *, ax: Any = None, band: bool = True, days: float | None = None) -> Any:
        """Observations (BLQ at the LLOQ, open markers), fitted curve and CI band per assay.

        Drawn by :func:`cellkin.plot.individual_fit` (see it for the arguments); returns the
        matplotlib ``Axes``.
        """
        from cellkin import plot

        return plot.individual_fit(self, ax=ax, band=band, days=days)


def _transform(result: FitResult) -> Transform:
    return Transform(result.layout.scales, result.layout.lower, result.layout.upper)
