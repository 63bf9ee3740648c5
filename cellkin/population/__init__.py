"""Population (nonlinear mixed-effects) estimation of CAR-T kinetics: SAEM with M3 censoring.

:func:`fit_population` fits a model of the catalogue to a whole study at once — the population
borrows strength across patients, and each patient's estimate shrinks toward it as far as
their data are thin — and returns a :class:`PopulationFit`: fixed and random effects with
standard errors, residual error, −2 ln L, each subject's conditional distribution and EBE,
NPDE and a prediction-corrected VPC, metrics for every sampled patient.
:meth:`PopulationFit.prior_for` turns it into the prior of a population-informed individual
fit (``cellkin.fit(..., prior=population_fit)``); :func:`likelihood_ratio_test` compares
nested models.
"""

from __future__ import annotations

from cellkin.population._fit import PopulationOptions, fit_population
from cellkin.population._result import PopulationFit, likelihood_ratio_test

__all__ = ["PopulationFit", "PopulationOptions", "fit_population", "likelihood_ratio_test"]
