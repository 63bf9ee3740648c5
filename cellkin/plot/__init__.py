"""Every cellkin figure: kinetics, fits and diagnostics, metrics, exposure and clinical outcomes.

Kinetics and fits
    :func:`spaghetti` — observed profiles by group with each group's geometric mean and CI;
    :func:`individual_fit` — one subject's fit (what ``FitResult.plot`` draws);
    :func:`individual_fits` — a grid of every subject's fit;
    :func:`observed_vs_predicted`, :func:`residuals` — goodness-of-fit diagnostics;
    :func:`vpc` — a two-stage visual predictive check (the prediction-corrected VPC of a
    population fit when given one);
    :func:`population` — goodness of fit, NPDE, pcVPC and SAEM trajectories of a population
    fit (what ``PopulationFit.plot`` draws).
Metrics
    :func:`metric_agreement` — model-based against observed (NCA) metric, per subject.
Exposure (the results of :mod:`cellkin.metrics`)
    :func:`exposure_response` — logistic curve of an outcome against exposure, with the data;
    :func:`exposure_by_outcome` — box and strip plot of exposure per outcome category;
    :func:`dose_exposure` — exposure against dose with the power model.
Clinical outcomes (the results of :mod:`cellkin.outcomes`)
    :func:`kaplan_meier` — Kaplan–Meier curves with bands and an at-risk table;
    :func:`waterfall`, :func:`spider`, :func:`swimmer` — RECIST 1.1 tumour response.

Conventions, the same for every function:

* the data (a table or a result object) come first; everything else is keyword-only;
* a function that draws one panel takes ``ax=`` (a matplotlib ``Axes``; default: the current
  axes, ``matplotlib.pyplot.gca()``) and returns the ``Axes`` it drew on;
* a function that draws a grid of panels (:func:`individual_fits`) takes ``fig=`` (default: a
  new ``Figure`` not registered with pyplot) and returns the ``Figure``;
* matplotlib is imported inside the functions, when a figure is drawn, never at module
  level; without matplotlib, drawing raises :class:`ImportError` with the command that
  installs it. Nothing here calls ``plt.show()``;
* bad data raise :class:`~cellkin.errors.DataError`, a bad option value
  :class:`~cellkin.errors.OptionError`, fits that cannot be drawn
  :class:`~cellkin.errors.FitError`.

The result objects draw themselves through these functions: ``FitResult.plot`` →
:func:`individual_fit`, ``KaplanMeierResult.plot`` and ``ExposureSurvivalResult.plot`` →
:func:`kaplan_meier`, ``ExposureResponseResult.plot`` → :func:`exposure_response`,
``ExposureByOutcomeResult.plot`` → :func:`exposure_by_outcome`, ``DoseExposureResult.plot`` →
:func:`dose_exposure`, ``PopulationFit.plot`` → :func:`population`.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import matplotlib.pyplot as plt
>>> import cellkin
>>> from cellkin import plot
>>> study = cellkin.load_example()
>>> fig, ax = plt.subplots()
>>> plot.spaghetti(study.kinetics, study.subjects, assay="qpcr", ax=ax) is ax
True
>>> plt.close(fig)
"""

from __future__ import annotations

from cellkin.plot._agreement import metric_agreement
from cellkin.plot._diagnostics import observed_vs_predicted, residuals
from cellkin.plot._exposure import dose_exposure, exposure_by_outcome, exposure_response
from cellkin.plot._fits import individual_fit, individual_fits
from cellkin.plot._outcomes import kaplan_meier, spider, swimmer, waterfall
from cellkin.plot._population import population
from cellkin.plot._profiles import spaghetti
from cellkin.plot._vpc import vpc

__all__ = [
    "dose_exposure",
    "exposure_by_outcome",
    "exposure_response",
    "individual_fit",
    "individual_fits",
    "kaplan_meier",
    "metric_agreement",
    "observed_vs_predicted",
    "population",
    "residuals",
    "spaghetti",
    "spider",
    "swimmer",
    "vpc",
    "waterfall",
]
