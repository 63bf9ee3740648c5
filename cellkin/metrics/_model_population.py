"""Model-based metrics of every subject of a population fit, from its conditional
distribution (private).

A subject of a :class:`~cellkin.population.PopulationFit` takes the place a per-subject
:class:`~cellkin.fit.FitResult` has in :func:`cellkin.metrics.model_metrics`: its metrics are
summaries of the metric over the subject's **conditional draws** (the population's posterior
of its individual parameters, :meth:`PopulationFit.individual_parameters` with
``draws=True``) — the estimate is their **median** and the CI their percentiles, so the
estimate and its interval are quantiles of one distribution (the estimate always lies in its
CI, and does not depend on the parameterisation). The extrapolation flags are judged on the
curve of the subject's EBE (conditional mode). Subjects that could not enter the fit
(``PopulationFit.failures``) get rows of NaN metrics with their reason.

The population layer is duck-typed here (metrics sits above fit and population and never
imports them at module level).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cellkin.errors import OptionError
from cellkin.metrics._model_tasks import Options, Task, assay_tasks

__all__ = ["Member", "is_population_fit", "population_tasks"]


@dataclass(frozen=True)
class Member:
    """One subject of a population fit, in the role a ``FitResult`` plays for the metrics:
    ``success`` (it is in a converged fit), ``reliable``, ``issue_codes`` and the ``reasons``
    that go to ``exclude_reason``; ``failed`` when it could not enter the fit."""

    subject: str
    model: Any
    units: Mapping[str, str]
    success: bool
    reliable: bool
    issue_codes: tuple[str, ...]
    reasons: tuple[str, ...]
    failed: bool = False


def is_population_fit(fits: Any) -> bool:
    """Whether ``fits`` is a population fit (duck-typed: conditional draws and the
    per-subject accessor of :class:`~cellkin.population.PopulationFit`)."""
    return hasattr(fits, "conditional_draws") and callable(
        getattr(fits, "individual_parameters", None)
    )


def population_tasks(fit: Any, options: Options) -> list[Task]:
    """The tasks of every subject of ``fit`` (in the fit's order, then its failures): the
    EBE as the point, the first ``options.n_draws`` conditional draws, the median estimate."""
    if options.n_draws < 1:
        raise OptionError(
            "`n_draws` must be >= 1 for a population fit: its metrics are the median and "
            "percentiles of the metric over each subject's conditional draws"
        )
    data = fit.data
    names = list(fit.design.names)
    columns = [None] + [names.index(f"scale_{a}") for a in data.assays[1:]]
    rows = data.rows.assign(subject=data.rows["subject"].astype(str))
    groups = rows.groupby("subject", sort=False)
    converged = bool(fit.converged)
    issues = () if converged else ("not_converged",)
    reasons = () if converged else (f"population fit did not converge ({fit.reason})",)
    tasks: list[Task] = []
    for subject in fit.subjects:
        member = Member(subject, fit.model, data.units, converged, converged, issues, reasons)
        point = fit.individual_parameters(subject)
        draws = fit.individual_parameters(subject, draws=True)[: options.n_draws]
        samples = groups.get_group(subject)
        tasks += assay_tasks(member, samples, data.assays, point, draws, columns, options,
                             median=True)  # fmt: skip
    nothing = np.full(len(names), math.nan)
    for subject, reason in zip(fit.failures["subject"], fit.failures["reason"], strict=True):
        member = Member(str(subject), fit.model, data.units, False, False, (),
                        (f"not in the population fit: {reason}",), failed=True)  # fmt: skip
        tasks += [Task(member, assay, math.nan, math.nan, nothing, None, None)
                  for assay in data.assays]  # fmt: skip
    return tasks
