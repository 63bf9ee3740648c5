"""Fitting kinetic models to CAR-T data: one subject (:func:`fit`) with lmfit, M3 for BLQ.

Structure: :mod:`~cellkin.fit.likelihood` (error models, M3), :mod:`~cellkin.fit.problem`
(one subject's objective), :mod:`~cellkin.fit.subject` (the fit),
:mod:`~cellkin.fit.result` (the frozen :class:`FitResult`).
"""

from __future__ import annotations

from cellkin.fit.result import FitResult
from cellkin.fit.subject import fit

__all__ = ["FitResult", "fit"]
