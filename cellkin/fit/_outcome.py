"""One subject of a batch fit, as the task a worker runs (private; see :func:`cellkin.fit_all`).

A worker fits a few subjects from their own rows (:func:`run_chunk`) and returns one
:class:`Outcome` per subject: its result and warnings, or its failure rows. Nothing a subject
does escapes as an exception.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cellkin.errors import CellkinError, DataError
from cellkin.fit._result import FitResult
from cellkin.fit._subject import fit_table
from cellkin.models.base import Model

__all__ = ["Outcome", "fit_subject", "reason", "run_chunk"]

# ``warnings.catch_warnings`` swaps process-global state: one recording block at a time.
_WARNINGS_LOCK = threading.Lock()


@dataclass(frozen=True, eq=False)
class Outcome:
    """What one subject produced: its result and the warnings its fit emitted, and/or its
    failure rows. The ``params`` and ``statistics`` tables are built once for the whole batch
    (:func:`cellkin.fit._batch_result.assemble`), not as small tables per subject."""

    subject: str
    result: FitResult | None = None
    warnings: str = ""
    failures: tuple[tuple[str, str], ...] = ()

    @property
    def final(self) -> bool:
        """Whether the outcome is stored in a checkpoint (worker failures are retried)."""
        return all(stage != "worker" for stage, _ in self.failures)


def reason(exc: BaseException) -> str:
    """One line saying why ``exc`` happened (the class name where cellkin did not raise it)."""
    text = " ".join(str(exc).split())
    if isinstance(exc, CellkinError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _fit_steps(
    subject: str, rows: pd.DataFrame, model: Model, options: dict
) -> tuple[FitResult | None, list[tuple[str, str]]]:
    try:
        result = fit_table(rows, model, subject=subject, **options)
    except DataError as exc:
        return None, [("validate", reason(exc))]
    except Exception as exc:  # any error of one subject is a failure row, never a crash
        return None, [("fit", reason(exc))]
    failures = [] if result.success else [("convergence", result.message or "not converged")]
    return result, failures


def fit_subject(subject: str, rows: pd.DataFrame, model: Model, options: dict) -> Outcome:
    """Fit one subject; warnings are recorded in its statistics row, never lost or raised."""
    if rows.empty:
        return Outcome(subject, failures=(("validate", "no samples in the kinetics table"),))
    with _WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result, failures = _fit_steps(subject, rows, model, options)
    if result is None:
        return Outcome(subject, failures=tuple(failures))
    noted = dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught)
    return Outcome(subject, result=result, warnings="; ".join(noted), failures=tuple(failures))


def run_chunk(
    subjects: tuple[str, ...], rows: pd.DataFrame, model: Model, options: dict
) -> list[Outcome]:
    """Fit a few subjects from their own rows (the task a worker runs; picklable by name)."""
    ids = rows["subject"].to_numpy()
    outcomes = []
    for subject in subjects:
        mine = ids == subject
        own = rows if mine.all() else rows.iloc[np.flatnonzero(mine)]
        outcomes.append(fit_subject(subject, own, model, options))
    return outcomes
