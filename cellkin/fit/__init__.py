"""Fitting kinetic models to CAR-T data: one subject (:func:`fit`) with lmfit, M3 for BLQ.

Structure: :mod:`~cellkin.fit.likelihood` (error models, M3), :mod:`~cellkin.fit.problem`
(one subject's objective), :mod:`~cellkin.fit.subject` (the fit),
:mod:`~cellkin.fit.result` (the frozen :class:`FitResult`), :mod:`~cellkin.fit.batch`
(:func:`fit_all`: many subjects on any executor, failures as rows, resumable checkpoints) and
:mod:`~cellkin.fit.compare` (AIC/BIC model comparison).
"""

from __future__ import annotations

from cellkin.fit.batch import BatchFit, fit_all
from cellkin.fit.compare import ModelComparison, compare_models
from cellkin.fit.result import FitResult
from cellkin.fit.subject import fit

__all__ = ["BatchFit", "FitResult", "ModelComparison", "compare_models", "fit", "fit_all"]
