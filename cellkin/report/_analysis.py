"""The study analysis behind the report: every endpoint as a table, by dose level.

:func:`analyse_study` runs, in order, the observed (NCA) metrics, the model fit of every
subject (:func:`cellkin.fit_all`), the model-based metrics, the population model
(:func:`cellkin.fit_population`, whose individual metrics stand in for the subjects without a
usable fit of their own: :mod:`cellkin.report._population`), the kinetic endpoints (CAR+ peak
time and time back to baseline, observed and model-based), safety (TEAEs, CRS/ICANS, DLT rate
over 3 months), efficacy (RECIST 1.1 best overall response and ORR, CR and response rates and
PFS/OS at 1, 2, 3, 6 and 12 months) and exposure–response. A step that cannot be done on the
data at hand (a missing table, too few subjects for a regression) becomes a row of
``failures`` with its reason; the other steps go on. Bugs are not swallowed: only
:class:`cellkin.errors.CellkinError` is caught.
"""

from __future__ import annotations

import dataclasses
import functools
import platform
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cellkin import outcomes
from cellkin._progress import progress_bar
from cellkin._version import __version__
from cellkin.errors import CellkinError
from cellkin.fit import fit_all
from cellkin.metrics import (
    dose_exposure,
    exposure_response,
    exposure_survival,
    summarize,
)
from cellkin.metrics import nca as run_nca
from cellkin.outcomes import MONTH_DAYS
from cellkin.report._endpoints import TBB_HORIZON_DAYS, kinetic_endpoints
from cellkin.report._inputs import StudyInputs
from cellkin.report._population import population_step
from cellkin.report._reliability import check_model_fits, reliability_tables, selected_subjects

__all__ = [
    "LANDMARK_MONTHS",
    "SAFETY_WINDOW_DAYS",
    "TBB_HORIZON_DAYS",
    "UNKNOWN_DOSE",
    "StudyAnalysis",
    "analyse_study",
    "kinetic_endpoints",
]

#: Months at which response, CR, PFS and OS are reported, and their days (365.25/12 per month).
LANDMARK_MONTHS = (1, 2, 3, 6, 12)
#: The safety window of the study's endpoints: TEAEs and DLTs in the first 3 months.
SAFETY_WINDOW_DAYS = float(MONTH_DAYS[3])
#: Group of kinetics subjects that have no row in the subject table (no dose known).
UNKNOWN_DOSE = "unknown dose"
#: Subject-table columns each endpoint needs; a subject with a blank cell among them is left
#: out of that endpoint only (and listed).
ENDPOINT_COLUMNS = {
    "PFS": ("pfs_days", "pfs_event"),
    "OS": ("os_days", "os_event"),
    "CRS": ("crs_grade",),
    "ICANS": ("icans_grade",),
    "DLT": ("dlt",),
}
#: Binary outcomes of the exposure–response analysis and the subject column each needs.
_ER_OUTCOMES = {"responder": "responder", "crs>=2": "crs_grade", "icans>=1": "icans_grade",
                "dlt": "dlt"}  # fmt: skip


def _versions() -> dict[str, str]:
    import lifelines
    import lmfit
    import numba
    import scipy
    import statsmodels

    return {
        "cellkin": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "numba": numba.__version__,
        "lmfit": lmfit.__version__,
        "lifelines": lifelines.__version__,
        "statsmodels": statsmodels.__version__,
    }


def _group_column(subjects: pd.DataFrame | None) -> str | None:
    if subjects is None:
        return None
    for column in ("dose_level", "dose"):
        if column in subjects and subjects[column].notna().any():
            return column
    return None


@dataclass(frozen=True, eq=False)
class StudyAnalysis:
    """Everything the report shows, as tables and result objects.

    Attributes
    ----------
    inputs : StudyInputs
        The validated tables and their provenance.
    options : dict
        Every option of the analysis (model, AUC method, BLQ rules, baseline, windows).
    tables : dict
        Name → DataFrame, in report order; each is also written as ``<name>.csv``.
    objects : dict
        Result objects behind the tables and figures (``nca``, ``batch``, ``bor``,
        ``km_pfs``, ``km_os``, ``exposure_response``, ...), present when their step ran.
    failures : pandas.DataFrame
        ``step, subject, reason``: analysis steps that could not run and subjects that could
        not be fitted; nothing is left out silently.
    versions : dict
        cellkin and its numerical dependencies.
    """

    inputs: StudyInputs
    options: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    objects: dict[str, Any] = field(default_factory=dict)
    failures: pd.DataFrame = field(default_factory=pd.DataFrame)
    versions: dict[str, str] = field(default_factory=dict)


class _Steps:
    """Runs analysis steps, recording a CellkinError as a failure row instead of stopping."""

    def __init__(self, progress: bool, total: int) -> None:
        self.failures: list[dict[str, str]] = []
        self.bar = progress_bar(progress, total=total, desc="cellkin report", unit="step")

    def run(self, name: str, function: Callable[[], Any]) -> Any:
        self.bar.set_postfix_str(name)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                value = function()
            for warning in caught:
                self.failures.append(
                    {"step": name, "subject": "", "reason": f"warning: {warning.message}"}
                )
            return value
        except CellkinError as exc:
            self.failures.append({"step": name, "subject": "", "reason": str(exc)})
            return None
        finally:
            self.bar.update()

    def close(self) -> None:
        if self.bar.n != self.bar.total:  # steps skipped for absent inputs: end at the total
            self.bar.total = self.bar.n
            self.bar.refresh()
        self.bar.close()


def _bor_table(inputs: StudyInputs) -> pd.DataFrame:
    if inputs.lesions is not None:
        return outcomes.best_overall_response(inputs.lesions, confirm=True)
    if inputs.subjects is not None and "bor" in inputs.subjects:
        return inputs.subjects[["subject", "bor"]].dropna(subset=["bor"])
    raise _missing("best overall response", "a lesions table (or a `bor` column in subjects)")


def _missing(what: str, needs: str) -> CellkinError:
    return CellkinError(f"{what}: not computed — it needs {needs}")


def _with_group(table: pd.DataFrame, subjects: pd.DataFrame, by: str | None) -> pd.DataFrame:
    if by is None or by in table:
        return table
    return table.merge(subjects[["subject", by]], on="subject", how="left")


def _landmark_rates(inputs: StudyInputs, by: str | None) -> pd.DataFrame:
    if inputs.lesions is None:
        raise _missing("response at landmarks", "a lesions table")
    status = outcomes.response_at(inputs.lesions, [MONTH_DAYS[m] for m in LANDMARK_MONTHS])
    groups = []
    if by is not None and inputs.subjects is not None:
        status = _with_group(status, inputs.subjects, by)
        groups += [(key, part) for key, part in status.groupby(by, sort=True)]
    groups.append(("all", status))
    frames = []
    for key, part in groups:
        rates = outcomes.response_rates(part, by="day", response_column="response")
        rates = rates[rates["group"] != "all"].rename(columns={"group": "day"})
        rates.insert(0, "group", key)
        rates.insert(2, "month", [LANDMARK_MONTHS[i] for i in range(len(rates))])
        frames.append(rates)
    return pd.concat(frames, ignore_index=True)


def _complete(subjects: pd.DataFrame, endpoint: str, excluded: list[dict[str, str]]):
    """The subjects whose cells for `endpoint` are filled; the others listed in `excluded`."""
    columns = [c for c in ENDPOINT_COLUMNS[endpoint] if c in subjects]
    blank = subjects[columns].isna().any(axis=1)
    for _, row in subjects[blank].iterrows():
        cells = ", ".join(f"`{c}`" for c in columns if pd.isna(row[c]))
        excluded.append({"step": endpoint, "subject": str(row["subject"]),
                         "reason": f"blank {cells} in the subject table: left out of "
                         f"{endpoint} only"})  # fmt: skip
    return subjects[~blank]


def _survival(
    inputs: StudyInputs, endpoint: str, by: str | None, excluded: list[dict[str, str]]
) -> tuple[Any, pd.DataFrame, pd.DataFrame]:
    subjects = inputs.subjects
    if subjects is None or f"{endpoint}_days" not in subjects:
        raise _missing(endpoint.upper(), f"`{endpoint}_days`/`{endpoint}_event` in subjects")
    subjects = _complete(subjects, endpoint.upper(), excluded)
    result = outcomes.kaplan_meier(subjects, endpoint=endpoint, by=by)
    pooled = outcomes.kaplan_meier(subjects, endpoint=endpoint)
    days = [MONTH_DAYS[m] for m in LANDMARK_MONTHS]
    parts = [result, pooled] if by is not None else [pooled]
    landmarks = pd.concat([part.landmarks(days) for part in parts], ignore_index=True)
    landmarks.insert(2, "month", np.tile(LANDMARK_MONTHS, len(landmarks) // len(days)))
    median = pd.concat([part.median for part in parts], ignore_index=True)
    return result, landmarks, median


def _outcome_subjects(inputs: StudyInputs, bor: pd.DataFrame | None) -> pd.DataFrame | None:
    subjects = inputs.subjects
    if subjects is None:
        return None
    if bor is not None and "responder" in bor and "responder" not in subjects:
        subjects = subjects.merge(bor[["subject", "responder"]], on="subject", how="left")
    return subjects


def analyse_study(
    inputs: StudyInputs,
    *,
    model: str = "stein2019",
    auc_method: str = "linear",
    nca_blq: str = "positional",
    baseline: str = "lloq",
    fit_blq: str = "m3",
    error: str = "log-additive",
    n_starts: int = 4,
    seed: int = 0,
    n_jobs: int | None = None,
    executor: Any = None,
    exposures: Sequence[str] = ("cmax", "auc_0_28"),
    model_fits: str = "reliable",
    population: bool = True,
    progress: bool = True,
) -> StudyAnalysis:
    """Run the whole study analysis (see the module docstring).

    Parameters
    ----------
    inputs : StudyInputs
        From :func:`~cellkin.report.load_inputs` or
        :func:`~cellkin.report.load_example_inputs`.
    model : str, default "stein2019"
        Registered model fitted to every subject (``cellkin.models.available()``).
    auc_method, nca_blq, baseline
        NCA options (:func:`cellkin.nca`): trapezoid rule, BLQ handling, baseline definition
        of the time back to baseline.
    fit_blq, error, n_starts, seed
        Fit options (:func:`cellkin.fit`): BLQ method (M3 by default), residual error model,
        starts per subject and the seed of the multi-start design.
    n_jobs, executor
        Parallelism of the batch fit (:func:`cellkin.fit_all`).
    exposures : sequence of str
        NCA metrics used for exposure–response.
    model_fits : {"reliable", "converged", "all"}, default "reliable"
        The fits whose model-based metrics enter the summaries by dose level, the kinetic
        endpoints and the VPC: those whose numbers can be used
        (:attr:`cellkin.fit.FitResult.reliable`), every converged one, or every one. The
        others stay in the per-subject tables, are listed with their reasons
        (``fit_reliability``, ``unreliable_fits``) and drawn marked.
    population : bool, default True
        Also fit the model to the whole study as a population (mixed-effects) model
        (:func:`cellkin.fit_population`) and use each remaining subject's metrics from its
        conditional distribution (``model_metrics_used``, column ``source``; see
        :mod:`cellkin.report._population`); False: per-subject fits only.
    progress : bool, default True
        Show progress bars (steps, and subjects during the fit).

    Returns
    -------
    StudyAnalysis
    """
    options: dict[str, Any] = {
        "model": model,
        "model_fits": check_model_fits(model_fits),
        "nca": {"auc_method": auc_method, "blq": nca_blq, "baseline": baseline,
                "intervals": [(0.0, 28.0), (0.0, 84.0)]},
        "fit": {"blq": fit_blq, "error": error, "n_starts": n_starts, "seed": seed},
        "population": bool(population),
        "landmark_months": list(LANDMARK_MONTHS),
        "landmark_days": [MONTH_DAYS[m] for m in LANDMARK_MONTHS],
        "safety_window_days": SAFETY_WINDOW_DAYS,
        "tbb_horizon_days": TBB_HORIZON_DAYS,
        "recist": {"version": "1.1", "confirm": True},
        "exposures": list(exposures),
        "km_confidence_interval": "95%, log-log (as R survfit conf.type='log-log')",
        "response_confidence_interval": "95% exact (Clopper-Pearson)",
    }  # fmt: skip
    inputs, unknown, left_out = _restrict(inputs)
    steps = _Steps(progress, total=11 + bool(population))
    run = _Run(inputs, _group_column(inputs.subjects), steps, unknown=unknown)
    run.steps.failures.extend(left_out)
    nca_table = _nca_step(run, options["nca"])
    batch, fit_failures = _fit_step(run, model, options["fit"], n_jobs, executor, progress)
    model_table = _model_metrics_step(run, batch, model_fits)
    if population:
        model_table = population_step(run, model, options["fit"], model_table, progress)
        model_fits += " per-subject + population" if "model_metrics_used" in run.objects else ""
    run.tables["kinetic_endpoints"] = run.steps.run(
        "kinetic endpoints",
        lambda: _kinetic_endpoints(run, nca_table, model_table, model, model_fits),
    )
    run.steps.run("safety", lambda: _safety_step(run))
    bor = _efficacy_steps(run)
    run.steps.run("exposure-response", lambda: _exposure_step(run, nca_table, bor, exposures))
    run.steps.close()
    failures = pd.DataFrame(
        run.steps.failures + fit_failures, columns=["step", "subject", "reason"]
    ).astype(str)
    options["group_by"] = run.by
    options["unknown_dose_subjects"] = list(unknown)
    return StudyAnalysis(
        inputs=inputs,
        options=options,
        tables={name: table for name, table in run.tables.items() if table is not None},
        objects=run.objects,
        failures=failures,
        versions=_versions(),
    )


@dataclass
class _Run:
    """The working state of one analysis: its inputs, grouping, tables and result objects."""

    inputs: StudyInputs
    by: str | None
    steps: _Steps
    tables: dict[str, pd.DataFrame | None] = field(default_factory=dict)
    objects: dict[str, Any] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)

    @property
    def kinetic_subjects(self) -> pd.DataFrame | None:
        """The subject table plus one row per kinetics-only subject, grouped as
        :data:`UNKNOWN_DOSE` (for the kinetics summaries only: they are in no safety or
        efficacy denominator)."""
        subjects = self.inputs.subjects
        if subjects is None or not self.unknown or self.by is None:
            return subjects
        known = subjects.assign(**{self.by: subjects[self.by].astype(str)})
        extra = pd.DataFrame({"subject": self.unknown, self.by: UNKNOWN_DOSE})
        return pd.concat([known[["subject", self.by]], extra], ignore_index=True)


def _restrict(inputs: StudyInputs) -> tuple[StudyInputs, list[str], list[dict[str, str]]]:
    """Clinical tables restricted to the subject table's subjects; the kinetics-only subjects;
    and one failure row per subject left out, with the reason."""
    subjects = inputs.subjects
    if subjects is None:
        return inputs, [], []
    known = set(subjects["subject"].astype(str))
    rows: list[dict[str, str]] = []
    changes: dict[str, pd.DataFrame] = {}
    for name, step in (("lesions", "efficacy"), ("adverse_events", "safety")):
        table = inputs.table(name)
        if table is None:
            continue
        absent = ~table["subject"].astype(str).isin(known)
        for subject in pd.unique(table.loc[absent, "subject"].astype(str)):
            rows.append({"step": f"inputs: {name}", "subject": subject, "reason": "not in the "
                         f"subject table: left out of {step}"})  # fmt: skip
        if absent.any():
            changes[name] = table[~absent].reset_index(drop=True)
    for row in inputs.problems.itertuples() if len(inputs.problems) else ():
        if "not in the subject table" not in row.message:
            rows.append({"step": f"inputs: {row.table}", "subject": row.subject,
                         "reason": f"{row.severity}: {row.message}"})  # fmt: skip
    unknown = [s for s in pd.unique(inputs.kinetics["subject"].astype(str)) if s not in known]
    for subject in unknown:
        rows.append({"step": "inputs: kinetics", "subject": subject, "reason": "not in the "
                     f"subject table: kinetics only, grouped as '{UNKNOWN_DOSE}'"})  # fmt: skip
    return dataclasses.replace(inputs, **changes), unknown, rows


def _nca_step(run: _Run, options: dict[str, Any]) -> pd.DataFrame | None:
    """Observed metrics (NCA) and their summary by group."""
    nca_table = run.steps.run("NCA", lambda: run_nca(run.inputs.kinetics, **options))
    if nca_table is not None:
        run.objects["nca"] = nca_table
        run.tables["nca"] = nca_table
        run.tables["nca_summary"] = summarize(nca_table, by=run.by, subjects=run.kinetic_subjects)
    return nca_table


def _fit_step(
    run: _Run,
    model: str,
    options: dict[str, Any],
    n_jobs: int | None,
    executor: Any,
    progress: bool,
) -> tuple[Any, list[dict[str, str]]]:
    """The model fit of every subject; returns the batch (or None) and its failure rows."""
    batch = run.steps.run(
        f"fit ({model})",
        lambda: fit_all(run.inputs.kinetics, model, n_jobs=n_jobs, executor=executor,
                        progress=progress, **options),
    )  # fmt: skip
    if batch is None:
        return None, []
    run.objects["batch"] = batch
    run.tables["fit_reliability"], run.tables["unreliable_fits"] = reliability_tables(
        batch, run.inputs.subjects, run.by
    )
    run.tables["fit_statistics"] = batch.statistics
    run.tables["fit_parameters"] = batch.params
    run.tables["fit_parameter_summary"] = batch.parameter_summary()
    return batch, [
        {"step": f"fit: {row.stage}", "subject": row.subject, "reason": row.reason}
        for row in batch.failures.itertuples()
    ]


def _model_metrics_step(run: _Run, batch: Any, model_fits: str) -> pd.DataFrame | None:
    """Model-based metrics of every fit (:meth:`cellkin.BatchFit.metrics`) and, over the
    selected fits (``model_fits``), their summary by group; returns the selected rows."""
    if batch is None:
        return None
    table = run.steps.run("model metrics", batch.metrics)
    if table is None:
        return None
    run.objects["model_metrics"] = table
    run.tables["model_metrics"] = table
    chosen = table[table["subject"].isin(selected_subjects(batch, model_fits))]
    run.objects["model_metrics_selected"] = chosen
    if len(chosen):
        run.tables["model_metrics_summary"] = summarize(
            chosen, by=run.by, subjects=run.kinetic_subjects
        )
    return chosen


def _kinetic_endpoints(
    run: _Run,
    nca_table: pd.DataFrame | None,
    model_table: pd.DataFrame | None,
    model: str,
    model_fits: str,
) -> pd.DataFrame:
    """Peak time and time back to baseline, observed (NCA) and model-based."""
    frames = []
    if nca_table is not None:
        frames += _endpoints_by_group(run, nca_table, "observed (NCA)")
    if model_table is not None and len(model_table):
        frames += _endpoints_by_group(run, model_table, f"model ({model}, {model_fits} fits)")
    if not frames:
        raise _missing("kinetic endpoints", "NCA or model-based metrics")
    return pd.concat(frames, ignore_index=True)


def _endpoints_by_group(run: _Run, metrics: pd.DataFrame, basis: str) -> list[pd.DataFrame]:
    """Kinetic endpoints by group with "all" over the subject table's subjects, and the
    kinetics-only subjects as their own :data:`UNKNOWN_DOSE` group (one denominator per row)."""
    unknown = metrics["subject"].astype(str).isin(run.unknown)
    subjects, by = run.inputs.subjects, run.by
    frames = [kinetic_endpoints(metrics[~unknown], subjects, basis=basis, by=by)]
    if unknown.any():
        alone = kinetic_endpoints(metrics[unknown], None, basis=basis, by=None)
        frames.append(alone.assign(group=UNKNOWN_DOSE))
    return frames


def _safety_step(run: _Run) -> None:
    """TEAEs, DLTs and CRS/ICANS grades over the safety window."""
    subjects, events, by = run.inputs.subjects, run.inputs.adverse_events, run.by
    if subjects is None:
        raise _missing("safety", "a subject table (the safety population)")
    if events is not None:
        teae = outcomes.teae_table(events, subjects, window_days=SAFETY_WINDOW_DAYS, by=by)
        run.objects["teae"] = teae
        run.tables["teae_incidence"] = teae.incidence
        run.tables["teae_grade3"] = teae.grade3
    with_dlt_flag = events is not None and "dlt" in events
    run.tables["dlt"] = outcomes.dlt_table(
        subjects if with_dlt_flag else _complete(subjects, "DLT", run.steps.failures),
        events if with_dlt_flag else None,
        by=by,
        window_days=SAFETY_WINDOW_DAYS if with_dlt_flag else None,
    )
    for event in ("crs", "icans"):
        if f"{event}_grade" in subjects:
            graded = _complete(subjects, event.upper(), run.steps.failures)
            run.tables[f"{event}_grades"] = outcomes.grade_distribution(graded, event, by=by)


def _efficacy_steps(run: _Run) -> pd.DataFrame | None:
    """Best overall response and rates, response at landmarks, PFS and OS; returns the BOR."""
    inputs, by = run.inputs, run.by
    bor = run.steps.run("best overall response", lambda: _bor_table(inputs))
    if bor is not None:
        run.objects["bor"] = bor
        run.tables["best_overall_response"] = bor
        if inputs.subjects is not None:
            with_group = _with_group(bor, inputs.subjects, by)
            run.tables["response_rates"] = outcomes.response_rates(with_group, by=by)
    landmarks = run.steps.run("response at landmarks", lambda: _landmark_rates(inputs, by))
    if landmarks is not None:
        run.tables["response_landmarks"] = landmarks
    for endpoint in ("pfs", "os"):
        survival = run.steps.run(
            endpoint.upper(), functools.partial(_survival, inputs, endpoint, by, run.steps.failures)
        )
        if survival is not None:
            run.objects[f"km_{endpoint}"] = survival[0]
            run.tables[f"{endpoint}_landmarks"], run.tables[f"{endpoint}_median"] = survival[1:]
    return bor


def _exposure_step(
    run: _Run, nca_table: pd.DataFrame | None, bor: pd.DataFrame | None, exposures: Sequence[str]
) -> None:
    """Exposure–response, exposure–PFS and dose–exposure from the NCA metrics."""
    subjects = _outcome_subjects(run.inputs, bor)
    if nca_table is None or subjects is None:
        raise _missing("exposure-response", "NCA metrics and a subject table")
    wanted = [outcome for outcome, column in _ER_OUTCOMES.items() if column in subjects]
    result = exposure_response(nca_table, subjects, list(exposures), wanted)
    run.objects["exposure_response"] = result
    run.tables["exposure_response"] = result.table
    run.tables["exposure_groups"] = result.groups
    if "pfs_days" in subjects:
        run.objects["exposure_pfs"] = exposure_survival(nca_table, subjects)
        run.tables["exposure_pfs"] = run.objects["exposure_pfs"].to_frame()
    if "dose" in subjects:
        run.objects["dose_exposure"] = dose_exposure(nca_table, subjects, list(exposures))
        run.tables["dose_exposure"] = run.objects["dose_exposure"].table
