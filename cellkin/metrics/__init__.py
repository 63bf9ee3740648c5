"""Exposure metrics: observed (NCA) and model-based metrics, and their study summaries."""

from __future__ import annotations

from cellkin.metrics.model import model_metrics
from cellkin.metrics.nca import nca
from cellkin.metrics.summary import summarize

__all__ = ["model_metrics", "nca", "summarize"]
