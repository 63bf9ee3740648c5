"""Exposure metrics: observed (NCA) and model-based metrics, their study summaries, and their
links to response and toxicity (exposure-response, survival by exposure, dose-exposure)."""

from __future__ import annotations

from cellkin.metrics._nca import nca, nca_long, nca_parameters
from cellkin.metrics._nca_options import NCAOptions
from cellkin.metrics._summary import summarize
from cellkin.metrics.exposure import (
    DoseExposureResult,
    ExposureResponseResult,
    ExposureSurvivalResult,
    dose_exposure,
    exposure_response,
    exposure_survival,
)
from cellkin.metrics.exposure_plots import (
    plot_dose_exposure,
    plot_exposure_by_outcome,
    plot_logistic,
)
from cellkin.metrics.model import model_metrics

__all__ = [
    "DoseExposureResult",
    "ExposureResponseResult",
    "ExposureSurvivalResult",
    "NCAOptions",
    "dose_exposure",
    "exposure_response",
    "exposure_survival",
    "model_metrics",
    "nca",
    "nca_long",
    "nca_parameters",
    "plot_dose_exposure",
    "plot_exposure_by_outcome",
    "plot_logistic",
    "summarize",
]
