"""The result of a batch fit, :class:`BatchFit`, and its tables (private; see
:func:`cellkin.fit_all`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cellkin._display import Summary
from cellkin._output import OutputFolder
from cellkin._version import __version__
from cellkin.fit._outcome import Outcome
from cellkin.fit._reliability import ISSUE_CODES
from cellkin.fit._result import FitResult
from cellkin.models.base import describe_solver

__all__ = ["FAILURE_STAGES", "BatchFit", "assemble"]

#: Stages of a failure row, in the order a subject meets them.
FAILURE_STAGES = ("validate", "fit", "convergence", "worker")

_FAILURE_COLUMNS = ["subject", "stage", "reason"]
_PARAM_COLUMNS = (
    "subject parameter kind estimate se rse_pct ci_lower ci_upper unit scale fixed description "
    "success reliable issues"
).split()
_STATISTIC_COLUMNS = (
    "subject model error blq minus2ll aic bic n_obs n_censored n_free success message at_bounds "
    "reliable issues notes warnings"
).split()


def _concat(frames: Sequence[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame(columns=list(columns))
    return pd.concat(frames, ignore_index=True)


def _params_table(fitted: Sequence[Outcome]) -> pd.DataFrame:
    """The long parameter table of the fitted subjects: their parameter tables stacked."""
    if not fitted:
        return pd.DataFrame(columns=_PARAM_COLUMNS)
    frames = [o.result.params for o in fitted]  # type: ignore[union-attr]
    sizes = [len(frame) for frame in frames]
    table = pd.concat(frames, ignore_index=True)
    table.insert(
        0, "subject", np.repeat(np.array([o.subject for o in fitted], dtype=object), sizes)
    )
    results = [o.result for o in fitted]
    table["success"] = np.repeat(np.array([r.success for r in results], dtype=np.bool_), sizes)  # type: ignore[union-attr]
    table["reliable"] = np.repeat(np.array([r.reliable for r in results], dtype=np.bool_), sizes)  # type: ignore[union-attr]
    table["issues"] = np.repeat(_issue_column(results), sizes)
    return table


def _issue_column(results: Sequence[Any]) -> np.ndarray:
    """Each fit's issue codes, comma-separated ("" when none)."""
    return np.array([", ".join(r.issue_codes) for r in results], dtype=object)


def _statistics_table(fitted: Sequence[Outcome]) -> pd.DataFrame:
    """One row per fitted subject (:meth:`FitResult.fit_statistics` plus ``warnings``)."""
    if not fitted:
        return pd.DataFrame(columns=_STATISTIC_COLUMNS)
    results = [o.result for o in fitted]
    columns: dict[str, np.ndarray] = {
        "subject": np.array([o.subject for o in fitted], dtype=object),
        "model": np.array([r.model.name for r in results], dtype=object),  # type: ignore[union-attr]
    }
    for name, kind in (("error", object), ("blq", object), ("minus2ll", float), ("aic", float),
                       ("bic", float), ("n_obs", np.int64), ("n_censored", np.int64),
                       ("n_free", np.int64), ("success", bool), ("message", object)):  # fmt: skip
        columns[name] = np.array([getattr(r, name) for r in results], dtype=kind)
    columns["at_bounds"] = np.array([", ".join(r.at_bounds) for r in results], dtype=object)  # type: ignore[union-attr]
    columns["reliable"] = np.array([r.reliable for r in results], dtype=bool)  # type: ignore[union-attr]
    columns["issues"] = _issue_column(results)
    columns["notes"] = np.array(["; ".join(r.notes) for r in results], dtype=object)  # type: ignore[union-attr]
    columns["warnings"] = np.array([o.warnings for o in fitted], dtype=object)
    return pd.DataFrame(columns)


def assemble(
    order: Sequence[str], outcomes: Mapping[str, Outcome], settings: dict[str, Any]
) -> BatchFit:
    fitted = [outcomes[s] for s in order if outcomes[s].result is not None]
    failures = []
    for subject in order:
        failures += [(subject, stage, reason) for stage, reason in outcomes[subject].failures]
    return BatchFit(
        params=_params_table(fitted),
        statistics=_statistics_table(fitted),
        failures=pd.DataFrame(failures, columns=_FAILURE_COLUMNS),
        results={o.subject: o.result for o in fitted},  # type: ignore[misc]
        subjects=tuple(order),
        settings=settings,
    )


@dataclass(frozen=True, eq=False, repr=False)
class BatchFit:
    """Fits of many subjects (from :func:`fit_all`): tidy tables plus each subject's result.

    Every input subject is in ``params`` (fitted, converged or not) or in ``failures`` (no
    fit), or both (a fit that did not converge). Model-based metrics of the fits:
    :meth:`metrics`.

    Attributes
    ----------
    params : DataFrame
        One row per subject × parameter: ``subject, parameter, kind, estimate, se, rse_pct,
        ci_lower, ci_upper, unit, scale, fixed, description, success, reliable, issues``
        (natural scale, 95% CI; ``success`` is the subject's convergence flag, ``reliable``
        and ``issues`` its reliability verdict, see below).
    statistics : DataFrame
        One row per fitted subject: ``subject, model, error, blq, minus2ll, aic, bic, n_obs,
        n_censored, n_free, success, message, at_bounds, reliable, issues, notes, warnings``
        (``at_bounds``: the parameters estimated on a bound, see
        :attr:`cellkin.fit.FitResult.at_bounds`; ``reliable``: whether its numbers can be
        used, :attr:`cellkin.fit.FitResult.reliable`; ``issues``: the codes of its
        :attr:`~cellkin.fit.FitResult.issues` (:data:`cellkin.fit.ISSUE_CODES`),
        comma-separated; ``notes``: :attr:`~cellkin.fit.FitResult.notes`; ``warnings``: the
        warnings its fit emitted, ``"; "``-joined; empty when none).
    failures : DataFrame
        ``subject, stage, reason``, one row per problem, stages in :data:`FAILURE_STAGES`:
        ``validate`` (the subject's samples are invalid or absent), ``fit`` (the fit raised,
        e.g. fewer quantified samples than free parameters), ``convergence`` (fitted with
        ``success=False``: kept in ``params``/``statistics`` and listed here) and ``worker``
        (the task died with its
        worker, e.g. ``BrokenProcessPool``; not checkpointed, so a rerun retries it).
    results : dict
        Subject → :class:`~cellkin.fit.FitResult` for every fitted subject (restored from the
        checkpoint, too, for subjects finished by an earlier run).
    subjects : tuple of str
        The input subjects, in the order of every table.
    settings : dict
        cellkin version, model, the model's solver settings
        (:attr:`cellkin.models.Model.solver_settings`), every fit option, and the checkpoint
        used.
    """

    params: pd.DataFrame
    statistics: pd.DataFrame
    failures: pd.DataFrame
    results: Mapping[str, FitResult]
    subjects: tuple[str, ...]
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        """Numbers of subjects: input, fitted, converged, not converged, failed (no fit),
        fitted with a parameter estimated on a bound (:attr:`cellkin.fit.FitResult.at_bounds`),
        reliable and unreliable fits (:attr:`cellkin.fit.FitResult.reliable`), then the fits
        with each issue, one key per code of :data:`cellkin.fit.ISSUE_CODES` (every code,
        0 when none)."""
        statistics = self.statistics
        fitted = set(statistics["subject"])
        converged = int(statistics["success"].astype(bool).sum())
        reliable = int(statistics["reliable"].astype(bool).sum())
        codes = [set(filter(None, str(cell).split(", "))) for cell in statistics["issues"]]
        return {
            "subjects": len(self.subjects),
            "fitted": len(fitted),
            "converged": converged,
            "not_converged": len(fitted) - converged,
            "failed": len(set(self.failures["subject"]) - fitted),
            "on_bound": int((statistics["at_bounds"].astype(str) != "").sum()),
            "reliable": reliable,
            "unreliable": len(fitted) - reliable,
            **{code: sum(code in found for found in codes) for code in ISSUE_CODES},
        }

    def to_frame(self) -> pd.DataFrame:
        """The long parameter table (one row per subject × parameter), a copy."""
        return self.params.copy()

    def metrics(self, **options: Any) -> pd.DataFrame:
        """Model-based metrics of every fit, with CIs: :func:`cellkin.metrics.model_metrics`
        of this batch (a convenience: the metrics layer computes them, for all fits at once)."""
        from cellkin.metrics import model_metrics  # the layer above, asked lazily

        return model_metrics(self, **options)

    def to_csv(
        self, directory: str | os.PathLike[str], *, overwrite: bool = False
    ) -> dict[str, Path]:
        """Write ``params.csv``, ``statistics.csv``, ``failures.csv`` and the manifest.

        The directory is created when missing; a non-empty one is refused unless
        `overwrite`, which replaces only the files a previous cellkin run wrote there. Files
        are renamed into place when complete, CSV text cells are made safe for spreadsheets
        and ``cellkin-manifest.json`` is written last (as by
        :meth:`cellkin.report.StudyReport.write`). Returns the path of each table's file.
        """
        folder = OutputFolder(directory, overwrite=overwrite, command="BatchFit.to_csv")
        names = ("params", "statistics", "failures")
        paths = {name: folder.csv(f"{name}.csv", getattr(self, name)) for name in names}
        folder.finish()
        return paths

    def parameter_summary(self) -> pd.DataFrame:
        """Per estimated parameter over converged fits: n, median estimate, median RSE%."""
        rows = self.params[self.params["success"].astype(bool) & ~self.params["fixed"].astype(bool)]
        grouped = rows.groupby("parameter", sort=False)
        return pd.DataFrame(
            {
                "n": grouped.size(),
                "median_estimate": grouped["estimate"].median(),
                "median_rse_pct": grouped["rse_pct"].median(),
                "unit": grouped["unit"].first(),
            }
        ).reset_index()

    def summary(self) -> Summary:
        """People-facing summary: counts, reliability (fits with each issue), parameters
        (median RSE%) and failures by stage."""
        every = self.counts
        counts = pd.DataFrame([{k: v for k, v in every.items() if k not in ISSUE_CODES}])
        issues = pd.DataFrame({"issue": list(ISSUE_CODES), "fits": [every[c] for c in ISSUE_CODES],
                               "meaning": list(ISSUE_CODES.values())})  # fmt: skip
        stages = self.failures.groupby("stage", sort=False).size().rename("subjects")
        notes = [
            f"cellkin {self.settings.get('cellkin_version', __version__)}; "
            f"{describe_solver(self.settings.get('solver'))}; options "
            f"{self.settings.get('fit_options', {})}"
        ]
        title = f"Batch fit of {counts.at[0, 'subjects']} subjects: {self.settings.get('model')}"
        notes.insert(0, f"{every['reliable']} of {every['fitted']} fits reliable")
        tables = [("Subjects", counts), ("Reliability: fits with each issue",
                                         issues[issues["fits"] > 0]),
                  ("Parameters (converged fits)", self.parameter_summary())]  # fmt: skip
        if len(stages):
            tables.append(("Failures by stage", stages.reset_index()))
        return Summary(title, tuple(tables), tuple(notes))

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.counts.items() if k not in ISSUE_CODES)
        return f"BatchFit(model={self.settings.get('model')!r}, {counts})"

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()
