"""The study analysis behind the report: every endpoint as a table, by dose level.

:func:`analyse_study` runs, in order, the observed (NCA) metrics, the model fit of every
subject (:func:`cellkin.fit_all`), the model-based metrics, the kinetic endpoints (CAR+ peak
time and time back to baseline, observed and model-based), safety (TEAEs, CRS/ICANS, DLT rate
over 3 months), efficacy (RECIST 1.1 best overall response and ORR, CR and response rates and
PFS/OS at 1, 2, 3, 6 and 12 months) and exposure–response. A step that cannot be done on the
data at hand (a missing table, too few subjects for a regression) becomes a row of
``failures`` with its reason; the other steps go on. Bugs are not swallowed: only
:class:`cellkin.errors.CellkinError` is caught.
"""

from __future__ import annotations

import platform
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cellkin import outcomes
from cellkin._version import __version__
from cellkin.errors import CellkinError
from cellkin.metrics import dose_exposure, exposure_response, exposure_survival, summarize
from cellkin.metrics import nca as run_nca
from cellkin.outcomes import MONTH_DAYS
from cellkin.report.inputs import StudyInputs

__all__ = ["StudyAnalysis", "analyse_study", "kinetic_endpoints"]

#: Months at which response, CR, PFS and OS are reported, and their days (365.25/12 per month).
LANDMARK_MONTHS = (1, 2, 3, 6, 12)
#: The safety window of the study's endpoints: TEAEs and DLTs in the first 3 months.
SAFETY_WINDOW_DAYS = float(MONTH_DAYS[3])
#: Horizon of the time-back-to-baseline endpoint (6 months).
TBB_HORIZON_DAYS = float(MONTH_DAYS[6])
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


def kinetic_endpoints(
    metrics: pd.DataFrame,
    subjects: pd.DataFrame | None = None,
    *,
    basis: str,
    by: str | None = "dose_level",
    horizon_days: float = TBB_HORIZON_DAYS,
) -> pd.DataFrame:
    """Peak time and time back to baseline by group and assay (the study's kinetic endpoints).

    Parameters
    ----------
    metrics : pandas.DataFrame
        One row per subject × assay with ``tmax``, ``time_back_to_baseline`` and
        ``time_back_to_baseline_censored`` (NCA, or model-based metrics from a batch fit).
    subjects : pandas.DataFrame, optional
        Subject table carrying `by`.
    basis : str
        Label of the metrics, e.g. ``"observed (NCA)"`` or ``"model (stein2019)"``.
    by : str or None
        Grouping column; the pooled group ``"all"`` is always added.
    horizon_days : float, default 183 (6 months)
        A subject counts as back to baseline when its time back to baseline is known (not
        censored) and at most `horizon_days`.

    Returns
    -------
    pandas.DataFrame
        ``group, assay, basis, n, tmax_median, tmax_min, tmax_max, n_back_to_baseline,
        pct_back_to_baseline, tbb_median, tbb_min, tbb_max, n_tbb_censored`` — times in days;
        the time-back-to-baseline statistics are over subjects whose return was observed
        (or predicted) within the horizon.
    """
    table = metrics.copy()
    if by is not None and by not in table:
        if subjects is None or by not in subjects:
            by = None
        else:
            table = table.merge(subjects[["subject", by]], on="subject", how="left")
    groups: list[tuple[Any, pd.DataFrame]] = []
    if by is not None:
        groups += [(key, part) for key, part in table.groupby(by, sort=True)]
    groups.append(("all", table))
    rows = []
    for key, part in groups:
        for assay, rows_of_assay in part.groupby("assay", sort=False):
            tmax = rows_of_assay["tmax"].astype(float).dropna()
            tbb = rows_of_assay["time_back_to_baseline"].astype(float)
            censored = (
                rows_of_assay["time_back_to_baseline_censored"].astype("boolean").fillna(True)
            ).astype(bool)
            reached = tbb[~censored & (tbb <= horizon_days)].dropna()
            n = int(rows_of_assay["subject"].nunique())
            rows.append(
                {
                    "group": key,
                    "assay": assay,
                    "basis": basis,
                    "n": n,
                    "tmax_median": tmax.median() if tmax.size else np.nan,
                    "tmax_min": tmax.min() if tmax.size else np.nan,
                    "tmax_max": tmax.max() if tmax.size else np.nan,
                    "n_back_to_baseline": int(reached.size),
                    "pct_back_to_baseline": 100.0 * reached.size / n if n else np.nan,
                    "tbb_median": reached.median() if reached.size else np.nan,
                    "tbb_min": reached.min() if reached.size else np.nan,
                    "tbb_max": reached.max() if reached.size else np.nan,
                    "n_tbb_censored": int(censored.sum()),
                }
            )
    return pd.DataFrame(rows)


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
        from tqdm.auto import tqdm

        self.failures: list[dict[str, str]] = []
        self.bar = tqdm(total=total, desc="cellkin report", unit="step", disable=not progress)

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


def _survival(
    inputs: StudyInputs, endpoint: str, by: str | None
) -> tuple[Any, pd.DataFrame, pd.DataFrame]:
    subjects = inputs.subjects
    if subjects is None or f"{endpoint}_days" not in subjects:
        raise _missing(endpoint.upper(), f"`{endpoint}_days`/`{endpoint}_event` in subjects")
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
    blq_rule: str = "positional",
    baseline: str = "lloq",
    fit_blq: str = "m3",
    error: str = "log-additive",
    n_starts: int = 4,
    seed: int = 0,
    n_jobs: int | None = None,
    executor: Any = None,
    exposures: Sequence[str] = ("cmax", "auc_0_28"),
    progress: bool = True,
) -> StudyAnalysis:
    """Run the whole study analysis (see the module docstring).

    Parameters
    ----------
    inputs : StudyInputs
        From :func:`~cellkin.report.inputs.load_inputs` or
        :func:`~cellkin.report.inputs.load_example_inputs`.
    model : str, default "stein2019"
        Registered model fitted to every subject (``cellkin.models.available()``).
    auc_method, blq_rule, baseline
        NCA options (:func:`cellkin.nca`): trapezoid rule, BLQ handling, baseline definition
        of the time back to baseline.
    fit_blq, error, n_starts, seed
        Fit options (:func:`cellkin.fit`): BLQ method (M3 by default), residual error model,
        starts per subject and the seed of the multi-start design.
    n_jobs, executor
        Parallelism of the batch fit (:func:`cellkin.fit_all`).
    exposures : sequence of str
        NCA metrics used for exposure–response.
    progress : bool, default True
        Show progress bars (steps, and subjects during the fit).

    Returns
    -------
    StudyAnalysis
    """
    from cellkin.fit.batch import fit_all

    options = {
        "model": model,
        "nca": {"auc_method": auc_method, "blq_rule": blq_rule, "baseline": baseline,
                "intervals": [(0.0, 28.0), (0.0, 84.0)]},
        "fit": {"blq": fit_blq, "error": error, "n_starts": n_starts, "seed": seed},
        "landmark_months": list(LANDMARK_MONTHS),
        "landmark_days": [MONTH_DAYS[m] for m in LANDMARK_MONTHS],
        "safety_window_days": SAFETY_WINDOW_DAYS,
        "tbb_horizon_days": TBB_HORIZON_DAYS,
        "recist": {"version": "1.1", "confirm": True},
        "exposures": list(exposures),
        "km_confidence_interval": "95%, log-log (as R survfit conf.type='log-log')",
        "response_confidence_interval": "95% exact (Clopper-Pearson)",
    }  # fmt: skip
    subjects = inputs.subjects
    by = _group_column(subjects)
    steps = _Steps(progress, total=10)
    tables: dict[str, pd.DataFrame] = {}
    objects: dict[str, Any] = {}

    nca_table = steps.run(
        "NCA",
        lambda: run_nca(inputs.kinetics, auc_method=auc_method, blq_rule=blq_rule,
                        baseline=baseline, intervals=options["nca"]["intervals"]),
    )  # fmt: skip
    if nca_table is not None:
        objects["nca"] = nca_table
        tables["nca"] = nca_table
        tables["nca_summary"] = summarize(nca_table, by=by, subjects=subjects)

    batch = steps.run(
        f"fit ({model})",
        lambda: fit_all(inputs.kinetics, model, n_jobs=n_jobs, executor=executor,
                        progress=progress, blq=fit_blq, error=error, n_starts=n_starts,
                        seed=seed),
    )  # fmt: skip
    fit_failures: list[dict[str, str]] = []
    if batch is not None:
        objects["batch"] = batch
        tables["fit_statistics"] = batch.statistics
        tables["fit_parameters"] = batch.params
        tables["fit_parameter_summary"] = batch.parameter_summary()
        tables["model_metrics"] = batch.metrics
        tables["model_metrics_summary"] = summarize(batch.metrics, by=by, subjects=subjects)
        fit_failures = [
            {"step": f"fit: {row.stage}", "subject": row.subject, "reason": row.reason}
            for row in batch.failures.itertuples()
        ]

    def endpoints() -> pd.DataFrame:
        frames = []
        if nca_table is not None:
            frames.append(kinetic_endpoints(nca_table, subjects, basis="observed (NCA)", by=by))
        if batch is not None and len(batch.metrics):
            frames.append(
                kinetic_endpoints(batch.metrics, subjects, basis=f"model ({model})", by=by)
            )
        if not frames:
            raise _missing("kinetic endpoints", "NCA or model-based metrics")
        return pd.concat(frames, ignore_index=True)

    tables["kinetic_endpoints"] = steps.run("kinetic endpoints", endpoints)

    def safety() -> None:
        if subjects is None:
            raise _missing("safety", "a subject table (the safety population)")
        if inputs.adverse_events is not None:
            teae = outcomes.teae_table(
                inputs.adverse_events, subjects, window_days=SAFETY_WINDOW_DAYS, by=by
            )
            objects["teae"] = teae
            tables["teae_incidence"] = teae.incidence
            tables["teae_grade3"] = teae.grade3
        events = inputs.adverse_events
        with_dlt_flag = events is not None and "dlt" in events
        tables["dlt"] = outcomes.dlt_table(
            subjects,
            events if with_dlt_flag else None,
            by=by,
            window_days=SAFETY_WINDOW_DAYS if with_dlt_flag else None,
        )
        for event in ("crs", "icans"):
            if f"{event}_grade" in subjects:
                tables[f"{event}_grades"] = outcomes.grade_distribution(subjects, event, by=by)

    steps.run("safety", safety)

    bor = steps.run("best overall response", lambda: _bor_table(inputs))
    if bor is not None:
        objects["bor"] = bor
        tables["best_overall_response"] = bor
        if subjects is not None:
            with_group = _with_group(bor, subjects, by)
            tables["response_rates"] = outcomes.response_rates(with_group, by=by)
    landmarks = steps.run("response at landmarks", lambda: _landmark_rates(inputs, by))
    if landmarks is not None:
        tables["response_landmarks"] = landmarks
    for endpoint in ("pfs", "os"):
        survival = steps.run(endpoint.upper(), lambda e=endpoint: _survival(inputs, e, by))
        if survival is not None:
            objects[f"km_{endpoint}"] = survival[0]
            tables[f"{endpoint}_landmarks"], tables[f"{endpoint}_median"] = survival[1:]

    outcome_subjects = _outcome_subjects(inputs, bor)

    def exposure() -> None:
        if nca_table is None or outcome_subjects is None:
            raise _missing("exposure-response", "NCA metrics and a subject table")
        wanted = [outcome for outcome, column in _ER_OUTCOMES.items() if column in outcome_subjects]
        result = exposure_response(nca_table, outcome_subjects, list(exposures), wanted)
        objects["exposure_response"] = result
        tables["exposure_response"] = result.table
        tables["exposure_groups"] = result.groups
        if "pfs_days" in outcome_subjects:
            objects["exposure_pfs"] = exposure_survival(nca_table, outcome_subjects)
            tables["exposure_pfs"] = objects["exposure_pfs"].to_frame()
        if "dose" in outcome_subjects:
            objects["dose_exposure"] = dose_exposure(nca_table, outcome_subjects, list(exposures))
            tables["dose_exposure"] = objects["dose_exposure"].table

    steps.run("exposure-response", exposure)
    steps.close()
    tables = {name: table for name, table in tables.items() if table is not None}
    failures = pd.DataFrame(
        steps.failures + fit_failures, columns=["step", "subject", "reason"]
    ).astype(str)
    options["group_by"] = by
    return StudyAnalysis(
        inputs=inputs,
        options=options,
        tables=tables,
        objects=objects,
        failures=failures,
        versions=_versions(),
    )


def _fraction(k: Any, n: Any, rate: Any = None, low: Any = None, high: Any = None) -> str:
    if pd.isna(n) or not n:
        return "–"
    text = f"{int(k)}/{int(n)} ({100 * (k / n if rate is None else rate):.0f}%"
    if low is not None and pd.notna(low):
        text += f"; {100 * low:.0f}–{100 * high:.0f}%"
    return text + ")"


def _median_text(row: pd.Series | None) -> str:
    if row is None or pd.isna(row["median"]):
        return "not reached" if row is not None else "–"
    low, high = row["ci_lower"], row["ci_upper"]
    limits = f"{low:.0f}–{high:.0f}" if pd.notna(high) else f"{low:.0f}–NR"
    return f"{row['median']:.0f} d ({limits})"


def endpoint_overview(analysis: StudyAnalysis) -> pd.DataFrame:
    """One row per dose level (and all subjects) with every study endpoint, as text.

    Columns: safety (DLT rate and TEAE grade ≥ 3 in the first 3 months, CRS), kinetics (CAR+
    peak time and subjects back to baseline within 6 months, observed), efficacy (ORR and best
    CR with exact 95% CIs, median PFS and OS with 95% CIs). The numbers behind each cell are
    in the report's other tables.
    """
    tables = analysis.tables
    groups = tables.get("dlt") if "dlt" in tables else tables.get("response_rates")
    if groups is None:
        return pd.DataFrame()

    def row_of(name: str, group: Any, **where: Any) -> pd.Series | None:
        table = tables.get(name)
        if table is None:
            return None
        mask = table["group"].astype(str) == str(group)
        for column, value in where.items():
            mask &= table[column] == value
        return table[mask].iloc[0] if mask.any() else None

    rows = []
    for group in groups["group"]:
        row: dict[str, Any] = {"group": group}
        dlt = row_of("dlt", group)
        if dlt is not None:
            row["DLT (≤3 mo)"] = _fraction(dlt["n_dlt"], dlt["n_evaluable"], dlt["dlt_rate"],
                                           dlt["dlt_ci_lower"], dlt["dlt_ci_upper"])  # fmt: skip
        teae = row_of("teae_incidence", group, level="any")
        if teae is not None:
            row["TEAE grade ≥3 (≤3 mo)"] = _fraction(teae["n_grade_3plus"], teae["n_population"])
        crs = row_of("crs_grades", group)
        if crs is not None:
            row["CRS any / ≥3"] = f"{int(crs['n_any'])} / {int(crs['n_grade_3plus'])}"
        for assay in ("flow", "qpcr"):
            kin = row_of("kinetic_endpoints", group, assay=assay, basis="observed (NCA)")
            if kin is not None:
                row[f"Tmax {assay}, median d"] = f"{kin['tmax_median']:.1f}"
                row[f"back to baseline ≤6 mo ({assay})"] = _fraction(
                    kin["n_back_to_baseline"], kin["n"]
                )
        rates = row_of("response_rates", group)
        if rates is not None:
            row["ORR (RECIST 1.1)"] = _fraction(
                rates["n_responders"], rates["n"], rates["orr"], rates["orr_ci_lower"],
                rates["orr_ci_upper"],
            )  # fmt: skip
            row["best response CR"] = _fraction(rates["n_cr"], rates["n"])
        for endpoint in ("pfs", "os"):
            if f"{endpoint}_median" in tables:
                label = f"median {endpoint.upper()} (95% CI)"
                row[label] = _median_text(row_of(f"{endpoint}_median", group))
        rows.append(row)
    return pd.DataFrame(rows)
