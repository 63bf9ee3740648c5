"""Exposure metrics: observed (NCA) and model-based metrics, their study summaries, and their
links to response and toxicity (exposure-response, survival by exposure, dose-exposure).

The time back to baseline is a time-to-event endpoint: :func:`summarize` summarises it by
Kaplan–Meier (:func:`time_to_event_summary`), never by a median over censored values."""

from __future__ import annotations

from cellkin.metrics._dose_exposure import DoseExposureResult, dose_exposure
from cellkin.metrics._exposure_by_outcome import ExposureByOutcomeResult, exposure_by_outcome
from cellkin.metrics._exposure_response import ExposureResponseResult, exposure_response
from cellkin.metrics._exposure_survival import ExposureSurvivalResult, exposure_survival
from cellkin.metrics._model import model_metrics
from cellkin.metrics._model_tasks import SOURCE_PER_SUBJECT, SOURCE_POPULATION
from cellkin.metrics._nca import nca, nca_long, nca_parameters
from cellkin.metrics._nca_options import NCAOptions
from cellkin.metrics._summary import summarize
from cellkin.metrics._time_to_event import time_to_event_summary

__all__ = [
    "SOURCE_PER_SUBJECT",
    "SOURCE_POPULATION",
    "DoseExposureResult",
    "ExposureByOutcomeResult",
    "ExposureResponseResult",
    "ExposureSurvivalResult",
    "NCAOptions",
    "dose_exposure",
    "exposure_by_outcome",
    "exposure_response",
    "exposure_survival",
    "model_metrics",
    "nca",
    "nca_long",
    "nca_parameters",
    "summarize",
    "time_to_event_summary",
]
