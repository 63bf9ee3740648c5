"""Exposure metrics: observed (NCA) metrics and their study summaries."""

from __future__ import annotations

from cellkin.metrics.nca import nca
from cellkin.metrics.summary import summarize

__all__ = ["nca", "summarize"]
