"""Fitting kinetic models to CAR-T data: one subject with lmfit (M3 for BLQ), or every subject.

:func:`fit` fits one subject and returns a frozen :class:`FitResult`; :func:`fit_all` fits every
subject of a study on any executor (failures as rows, resumable checkpoints) and returns a
:class:`BatchFit`; :func:`compare_models` compares models by AIC/BIC. Every fit carries a
reliability verdict apart from optimiser success (``FitResult.reliable``, ``FitResult.issues``:
:class:`FitIssue` records with a code from :data:`ISSUE_CODES`). The implementation
modules are private (``cellkin.fit.likelihood``, ``_objective``, ...); this namespace is the
API. ``cellkin.fit`` at the package root is the function :func:`fit` (the one documented
exception, like ``datetime.datetime``): reach this subpackage as ``cellkin.fit`` only through
``import cellkin.fit`` or ``from cellkin.fit import ...``, or use the names re-exported at the
root (``cellkin.fit_all``, ``cellkin.FitResult``, ...).
"""

from __future__ import annotations

from cellkin.fit._batch import FAILURE_STAGES, BatchFit, fit_all
from cellkin.fit._compare import ModelComparison, compare_models
from cellkin.fit._prior import Prior
from cellkin.fit._reliability import ISSUE_CODES, FitIssue
from cellkin.fit._result import FitResult
from cellkin.fit._subject import fit
from cellkin.fit.likelihood import BLQ_METHODS, ERROR_MODELS

__all__ = [
    "BLQ_METHODS",
    "ERROR_MODELS",
    "FAILURE_STAGES",
    "ISSUE_CODES",
    "BatchFit",
    "FitIssue",
    "FitResult",
    "ModelComparison",
    "Prior",
    "compare_models",
    "fit",
    "fit_all",
]
