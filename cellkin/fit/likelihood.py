r"""Residual error models and the censored (M3) likelihood for below-LLOQ samples.

Two error models, each per assay:

* ``log-additive`` (≙ proportional; Stein 2019): :math:`\ln y = \ln f + \sigma\varepsilon`;
* ``combined``: :math:`y = f + \sqrt{a^2 + (b f)^2}\,\varepsilon`.

with :math:`\varepsilon \sim N(0, 1)`. Below-LLOQ samples enter through Beal's M3 method,
:math:`P(y < \mathrm{LLOQ}) = \Phi((g(\mathrm{LLOQ}) - g(f))/s)` (``g = ln`` and ``s = σ`` for
the log-additive model), not by dropping or imputing them; M1 (drop) and LLOQ/2 imputation
exist for comparison only.

**Optimiser.** The fit minimises the full :math:`-2\ln L` (all constants kept, so AIC compares
error models) with lmfit's ``lbfgsb`` (L-BFGS-B) on the estimation scale, error parameters
estimated jointly. A trust-region least-squares formulation (each likelihood term written as
a squared residual) was tried first: it crept along the flat, curved (FB, β) valley for
thousands of evaluations, while the quasi-Newton method converges in about a hundred. For the
log-additive model and models with an analytic ``log_level_gradient`` (the Stein family) the
gradient of −2 ln L is exact (:meth:`cellkin.fit.problem.SubjectProblem.gradient`; censored
samples through the inverse Mills ratio φ/Φ); otherwise lmfit differentiates numerically. The
residual Jacobian is still what the covariance uses (:func:`information_residuals`).

References
----------
Beal SL. Ways to fit a PK model with some data below the quantification limit.
J Pharmacokinet Pharmacodyn 2001;28(5):481-504. doi:10.1023/A:1012299115260
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import log_ndtr

__all__ = ["BLQ_METHODS", "ERROR_MODELS", "Observations", "minus2ll_terms"]

ERROR_MODELS = ("log-additive", "combined")
BLQ_METHODS = ("m3", "m1", "lloq/2")
SD_FLOOR = 1e-3  # lower bound of every residual SD parameter (log scale or linear)
_TINY = 1e-300
_LOG_2PI = float(np.log(2 * np.pi))

ErrorKind = Literal["log-additive", "combined"]


@dataclass(frozen=True)
class Observations:
    """The samples of one fit, as arrays (built by :func:`cellkin.fit.subject.fit`).

    ``value`` is NaN on censored samples; ``assay`` indexes ``assays``.
    """

    time: np.ndarray
    value: np.ndarray
    censored: np.ndarray
    lloq: np.ndarray
    assay: np.ndarray
    assays: tuple[str, ...]

    @property
    def n(self) -> int:
        """Number of samples entering the likelihood."""
        return int(self.time.size)

    @property
    def n_censored(self) -> int:
        """Number of censored (M3) samples."""
        return int(self.censored.sum())


def standardized(
    obs: Observations, prediction: np.ndarray, sd: np.ndarray, error: ErrorKind
) -> tuple[np.ndarray, np.ndarray]:
    """Standardised residuals of quantified samples and M3 arguments of censored ones.

    Returns ``(z, s)``: ``z = (g(y) − g(f))/s`` for quantified samples and
    ``z = (g(LLOQ) − g(f))/s`` for censored ones, with ``g = ln`` for the log-additive model
    and the identity for the combined one; ``s`` is each sample's residual SD.
    """
    f = np.maximum(prediction, _TINY)
    target = np.where(obs.censored, obs.lloq, obs.value)
    if error == "log-additive":
        return (np.log(target) - np.log(f)) / sd, sd
    return (target - f) / sd, sd


def residual_sd(
    obs: Observations, prediction: np.ndarray, error_params: np.ndarray, error: ErrorKind
) -> np.ndarray:
    """Per-sample residual SD from the per-assay error parameters.

    ``error_params`` has one row per assay: ``[σ]`` (log-additive) or ``[a, b]`` (combined).
    """
    if error == "log-additive":
        return error_params[obs.assay, 0]
    additive, proportional = error_params[obs.assay, 0], error_params[obs.assay, 1]
    return np.sqrt(additive**2 + (proportional * prediction) ** 2)


def minus2ll_terms(z: np.ndarray, sd: np.ndarray, obs: Observations, error: ErrorKind):
    """Per-sample contributions to −2 ln L, with all constants (so AIC compares models)."""
    quantified = z**2 + 2 * np.log(sd) + _LOG_2PI
    if error == "log-additive":
        quantified = quantified + 2 * np.log(np.where(obs.censored, 1.0, obs.value))
    return np.where(obs.censored, -2 * log_ndtr(z), quantified)


def information_residuals(z: np.ndarray, censored: np.ndarray) -> np.ndarray:
    """Residuals at fixed error parameters, whose Jacobian gives the Fisher information.

    Quantified samples contribute their standardised residual ``z``; censored ones
    ``sqrt(−2 ln Φ(z))``, so that ``JᵀJ`` is the Gauss–Newton approximation of the
    information for the kinetic parameters.
    """
    return np.where(censored, np.sqrt(np.maximum(-2 * log_ndtr(z), 0.0)), z)
