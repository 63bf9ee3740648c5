"""Render a study analysis as one self-contained HTML file (jinja2; figures embedded as PNG).

The page has a fixed outline — overview of every endpoint by dose level, data and provenance,
safety, observed kinetics, model fit, model-based metrics, efficacy, exposure–response,
methods and options, failures and exclusions — and links each table to the CSV file written
beside it. Nothing is fetched from the network: styles are inline and images are data URIs,
so the file can be mailed or archived on its own.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from cellkin import models
from cellkin.models.base import describe_solver
from cellkin.report._analysis import StudyAnalysis
from cellkin.report._figures import RenderedFigure
from cellkin.report._population import sources_text

__all__ = ["render_html", "table_html"]

_MAX_ROWS = 60


@dataclass(frozen=True)
class _Table:
    name: str
    title: str
    columns: Sequence[str] | None = None
    note: str = ""
    collapsed: bool = False
    query: str | None = None


@dataclass
class _Section:
    id: str
    title: str
    intro: list[str] = field(default_factory=list)
    tables: Sequence[_Table] = ()
    figures: Sequence[str] = ()


def _fmt(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not np.isfinite(value):
            return "–" if np.isnan(value) else ("∞" if value > 0 else "−∞")
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.3e}"
        return f"{value:.4g}"
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return str(value)


def table_html(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    """An HTML table of `frame` (chosen columns, numbers to 4 significant digits)."""
    if columns is not None:
        frame = frame.loc[:, [c for c in columns if c in frame]]
    shown = frame.head(_MAX_ROWS)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
        for row in shown.itertuples(index=False)
    )
    more = ""
    if len(frame) > _MAX_ROWS:
        more = f"<p class='note'>First {_MAX_ROWS} of {len(frame)} rows; all are in the CSV.</p>"
    return f"<table class='data'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


_NCA_COLUMNS = (
    "subject",
    "assay",
    "unit",
    "cmax",
    "tmax",
    "auc_0_28",
    "auc_0_84",
    "half_life",
    "time_back_to_baseline",
    "time_back_to_baseline_censored",
    "exclude_reason",
)
_SUMMARY_COLUMNS = (
    "dose_level",
    "dose",
    "assay",
    "metric",
    "unit",
    "n",
    "geo_mean",
    "geo_cv_pct",
    "median",
    "min",
    "max",
    "n_missing",
    "n_censored",
    "median_ci_lower",
    "median_ci_upper",
    "p_back_6m",
)
_KEY_METRICS = ("cmax", "tmax", "auc_0_28", "auc_0_84", "time_back_to_baseline")
_RATE_COLUMNS = (
    "group",
    "day",
    "month",
    "n",
    "n_responders",
    "orr",
    "orr_ci_lower",
    "orr_ci_upper",
    "n_cr",
    "cr_rate",
    "cr_ci_lower",
    "cr_ci_upper",
)
_ER_COLUMNS = ("outcome", "exposure", "assay", "n", "n_positive", "gmr", "gmr_ci_lower",
               "gmr_ci_upper", "mann_whitney_p", "roc_auc", "or_per_doubling", "or_ci_lower",
               "or_ci_upper", "logit_lr_p", "logit_status")  # fmt: skip


#: The page outline; "{model}" in a title is the fitted model's name.
_SECTIONS = (
    _Section("overview", "Endpoints at a glance", tables=[
        _Table("overview", "Study endpoints by dose level",
               note="n/N (%; exact 95% CI). Safety over the first 3 months after infusion; "
                    "kinetics observed (NCA); medians from Kaplan–Meier (NR: not reached).")]),
    _Section("data", "Data and provenance", tables=[
        _Table("input_files", "Input files (SHA-256)"),
        _Table("kinetics_summary", "Kinetics samples by assay"),
        _Table("kinetics_exclusions", "Kinetics rows not analysed", collapsed=True)]),
    _Section("safety", "Safety", tables=[
        _Table("dlt", "Dose-limiting toxicities (first 3 months)"),
        _Table("teae_incidence", "TEAEs in the first 3 months: any TEAE and by SOC",
               query="level != 'term'"),
        _Table("teae_incidence", "TEAEs by preferred term", collapsed=True,
               query="level == 'term'"),
        _Table("crs_grades", "Cytokine release syndrome (worst ASTCT grade)"),
        _Table("icans_grades", "ICANS (worst ASTCT grade)")]),
    _Section("kinetics", "Observed kinetics (NCA)", figures=["spaghetti"], tables=[
        _Table("kinetic_endpoints", "CAR+ peak time and time back to baseline (6 months)",
               note="Observed (NCA) and model-based. Back to baseline: the level is at or "
                    "below max(baseline, LLOQ) after Tmax. A time-to-event endpoint: "
                    "Kaplan–Meier probability of being back by 183 days (p_back_to_baseline, "
                    "95% CI) and median (tbb_median, NaN: not reached), with subjects who "
                    "never returned censored at their last sample (NCA) or at the horizon "
                    "(model); n_tbb_censored counts them."),
        _Table("nca_summary", "Key NCA metrics by dose level", columns=_SUMMARY_COLUMNS,
               query=f"metric in {list(_KEY_METRICS)}",
               note="Time back to baseline by Kaplan–Meier (median with 95% CI, "
                    "n_censored, p_back_6m: probability back by 6 months), never a median "
                    "over censored values."),
        _Table("nca_summary", "All NCA metrics by dose level", columns=_SUMMARY_COLUMNS,
               collapsed=True),
        _Table("nca", "NCA metrics per subject", columns=_NCA_COLUMNS, collapsed=True)]),
    _Section("fit", "Model fit ({model})",
             figures=["individual_fits", "diagnostics", "vpc"], tables=[
        _Table("fit_reliability", "Reliability of the fits by dose level",
               note="A fit is reliable when it converged and none of the reliability checks "
                    "finds a problem (cellkin.fit.ISSUE_CODES); reasons count the fits with "
                    "each issue and the subjects not fitted (e.g. refused: fewer quantified "
                    "samples than free parameters)."),
        _Table("unreliable_fits", "Subjects without a reliable fit, with the reasons"),
        _Table("fit_parameter_summary", "Parameter estimates across subjects"),
        _Table("fit_statistics", "Fit statistics per subject", collapsed=True,
               columns=("subject", "minus2ll", "aic", "bic", "n_obs", "n_censored",
                        "n_free", "success", "at_bounds", "reliable", "issues", "warnings"),
               note="at_bounds: parameters estimated on one of their bounds (too few "
                    "informative samples, or the optimum lies beyond the bound); their "
                    "SE and CI are not meaningful.")]),
    _Section("population", "Population model ({model})",
             figures=["population_gof", "population_vpc", "population_trajectories"], tables=[
        _Table("population_fixed_effects", "Fixed effects (typical values)",
               columns=("parameter", "term", "estimate", "se", "rse_pct", "ci_lower",
                        "ci_upper", "unit"),
               note="Nonlinear mixed-effects model fitted to all subjects at once by SAEM "
                    "(M3 for BLQ samples); SEs from the Fisher information."),
        _Table("population_random_effects", "Random effects (between-subject SD, "
               "estimation scale) and η-shrinkage"),
        _Table("population_residual_error", "Residual error"),
        _Table("population_metrics", "Individual metrics from the conditional distribution "
               "(every subject, 95% CI)", collapsed=True,
               note="Median of each metric over the subject's conditional draws, 95% CI from "
                    "their percentiles; subjects that could not enter the fit have a reason.",
               columns=("subject", "assay", "cmax", "cmax_ci_lower", "cmax_ci_upper", "tmax",
                        "auc_0_28", "auc_0_28_ci_lower", "auc_0_28_ci_upper",
                        "time_back_to_baseline", "time_back_to_baseline_censored",
                        "exclude_reason"))]),
    _Section("metrics", "Model-based metrics", figures=["metric_agreement"], tables=[
        _Table("model_metrics_used", "Model-based metrics per subject as summarised, with "
               "their source",
               columns=("subject", "assay", "source", "cmax", "cmax_ci_lower",
                        "cmax_ci_upper", "tmax", "auc_0_28", "auc_0_28_ci_lower",
                        "auc_0_28_ci_upper", "time_back_to_baseline",
                        "time_back_to_baseline_censored"),
               note="source: “per-subject fit” (the subject's own fit is used) or "
                    "“population (conditional)” (from the population model, where the own "
                    "fit is not used or not possible)."),
        _Table("model_metrics_summary", "Key model-based metrics by dose level ({fits})",
               columns=_SUMMARY_COLUMNS, query=f"metric in {list(_KEY_METRICS)}"),
        _Table("model_metrics_summary", "All model-based metrics by dose level ({fits})",
               columns=_SUMMARY_COLUMNS, collapsed=True),
        _Table("model_metrics", "Model-based metrics per subject, every fit (95% CI)",
               collapsed=True,
               note="reliable/issues: the fit's verdict; *_extrapolated: the metric rests on "
                    "the fitted curve beyond the quantified samples; a time back to baseline "
                    "beyond the horizon (2× the last sample day) is censored there.",
               columns=("subject", "assay", "reliable", "issues", "cmax", "cmax_ci_lower",
                        "cmax_ci_upper", "cmax_extrapolated", "tmax", "auc_0_28",
                        "auc_0_28_ci_lower", "auc_0_28_ci_upper", "auc_0_28_extrapolated",
                        "time_back_to_baseline", "time_back_to_baseline_ci_lower",
                        "time_back_to_baseline_ci_upper", "time_back_to_baseline_censored",
                        "time_back_to_baseline_extrapolated"))]),
    _Section("efficacy", "Efficacy (RECIST 1.1, PFS, OS)",
             figures=["waterfall", "km_pfs", "km_os", "swimmer"], tables=[
        _Table("response_rates", "Best overall response: ORR and CR rate",
               columns=_RATE_COLUMNS),
        _Table("response_landmarks", "Response and CR at 1, 2, 3, 6 and 12 months",
               columns=_RATE_COLUMNS,
               note="Status at each landmark: the latest assessment on or before it "
                    "(progression is final); NE without an assessment."),
        _Table("pfs_landmarks", "Progression-free survival at 1, 2, 3, 6, 12 months"),
        _Table("pfs_median", "Median PFS (days)"),
        _Table("os_landmarks", "Overall survival at 1, 2, 3, 6, 12 months"),
        _Table("os_median", "Median OS (days)"),
        _Table("best_overall_response", "Best overall response per subject",
               collapsed=True)]),
    _Section("exposure", "Exposure–response",
             figures=["exposure_response", "exposure_pfs", "dose_exposure"], tables=[
        _Table("exposure_response", "Exposure (NCA) vs response and toxicity",
               columns=_ER_COLUMNS,
               note="Geometric mean ratio (positive/negative), Mann–Whitney test, ROC AUC "
                    "and the logistic regression odds ratio per doubling of exposure."),
        _Table("exposure_groups", "Rates by exposure group", collapsed=True),
        _Table("dose_exposure", "Dose–exposure power model",
               columns=("exposure", "assay", "n", "n_doses", "n_excluded", "intercept",
                        "slope", "slope_ci_lower", "slope_ci_upper", "slope_p",
                        "proportionality_p", "r_squared", "status")),
        _Table("exposure_pfs", "PFS by exposure group", collapsed=True)]),
    _Section("methods", "Methods and options"),
    _Section("failures", "Failures and exclusions", tables=[
        _Table("failures", "Steps, subjects and figures not in the report, with the reason",
               note="Every subject and every step is accounted for here or in the tables "
                    "above.")]),
    _Section("files", "Tables"),
)  # fmt: skip


def _sections(analysis: StudyAnalysis) -> list[_Section]:
    """The page outline with the model's name in the titles and, in the model sections, what
    the reliability of the fits allows."""
    model = analysis.options["model"]
    fits = analysis.options.get("model_fits", "reliable")
    borrowed = "model_metrics_used" in analysis.tables  # the population fills the gaps
    intro = _reliability_intro(analysis.tables.get("fit_reliability"), fits, borrowed)
    label = f"{fits} fits; population model for the others" if borrowed else f"{fits} fits"
    sections = []
    for section in _SECTIONS:
        tables = [replace(t, title=t.title.format(fits=label)) for t in section.tables]
        extra = intro if section.id in ("fit", "metrics") else []
        if section.id == "metrics":
            extra = [*extra, *sources_text(analysis)]
        sections.append(replace(section, title=section.title.format(model=model),
                                tables=tables, intro=[*section.intro, *extra]))  # fmt: skip
    return sections


def _reliability_intro(table: pd.DataFrame | None, fits: str, borrowed: bool) -> list[str]:
    """Paragraphs: k of n fits reliable (and why not), and each group where fewer than half
    are, pointing to the NCA values (or, with ``borrowed``, to the population model that
    stands in for them)."""
    if table is None or table.empty:
        return []
    pooled = table[table["group"].astype(str) == "all"].iloc[0]
    used = {"reliable": "only the reliable fits", "converged": "every converged fit",
            "all": "every fit, reliable or not"}[fits]  # fmt: skip
    text = [f"{pooled['n_reliable']} of {pooled['n_subjects']} fits reliable"
            + (f" (reasons for the rest: {pooled['reasons']})" if pooled["reasons"] else "")
            + f". Model-based summaries use {used}"
            + (", and the population model's conditional metrics for the other subjects"
               if borrowed else "")
            + "; the fits that are not reliable are listed and drawn marked (dashed curve, "
            "orange title; open grey markers)."]  # fmt: skip
    for row in table.itertuples():
        if row.fewer_than_half:
            where = "Overall" if str(row.group) == "all" else f"In {row.group}"
            advice = (
                "most of its model-based numbers come from the population model (section "
                "Population model, column `source`)" if borrowed else
                "do not read its model-based numbers as the group's; use the observed (NCA) "
                "values, or fit a population model (cellkin.fit_population) and refit each "
                "subject with its prior"
            )  # fmt: skip
            text.append(f"{where}, fewer than half of the fits are reliable ({row.n_reliable} "
                        f"of {row.n_subjects}): {advice}.")  # fmt: skip
    return text


def _methods(analysis: StudyAnalysis) -> list[dict[str, Any]]:
    options = analysis.options
    model = models.get(options["model"])
    nca_options = options["nca"]
    fit_options = options["fit"]
    methods = [
        f"Observed metrics by non-compartmental analysis with PKNCA conventions: "
        f"{nca_options['auc_method']} trapezoid, BLQ rule '{nca_options['blq']}', "
        f"baseline '{nca_options['baseline']}', AUC intervals "
        + ", ".join(f"{a:g}–{b:g} d" for a, b in nca_options["intervals"])
        + ".",
        f"Model: {model.name} — {model.citation} (doi:{model.doi}), fitted to each subject by "
        f"maximum likelihood (lmfit, L-BFGS-B) with the {fit_options['error']} residual error "
        f"model; BLQ samples by {fit_options['blq'].upper()} (M3: the censored likelihood "
        "Φ((ln LLOQ − ln f)/σ), Beal 2001, doi:10.1023/A:1012299115260); "
        f"{fit_options['n_starts']} start(s) per subject, seed {fit_options['seed']}; "
        f"levels by {_solver_words(model)}.",
        "Parameter uncertainty: Jacobian-based covariance scaled by n/(n−p), 95% CIs from t "
        "quantiles; model-based metric CIs by sampling the parameter covariance.",
        "Reliability: a subject with fewer quantified samples than free parameters is not "
        "fitted; a fit is reliable when it converged with no parameter on a bound, no "
        "residual SD at its floor, an identifiable (non-singular) covariance, RSE ≤ 100% on "
        "the parameters driving Cmax, Tmax and the AUCs, Cmax/Tmax/AUC CIs within two "
        "decades, a quantified sample after the model's Tmax, Tmax within the sampled days "
        "and 1–60 days, and no outlying sample (cellkin.fit.ISSUE_CODES). Model-based "
        f"summaries use {options.get('model_fits', 'reliable')} fits.",
        *_population_methods(options),
        "Time back to baseline as a time-to-event endpoint: Kaplan–Meier (lifelines) with "
        "subjects who never returned censored at their last sample (NCA) or at the horizon, "
        "twice the last sample day (model); median with its 95% CI and the probability back "
        "by 1, 3 and 6 months (log-log intervals).",
        "Tumour response by RECIST 1.1 (Eisenhauer et al. 2009, doi:10.1016/j.ejca.2008.10.026), "
        "CR/PR confirmed ≥ 4 weeks later; ORR and CR rate with exact Clopper–Pearson 95% CIs; "
        "intention-to-treat denominators (NE counted).",
        "PFS and OS by Kaplan–Meier (lifelines), 95% log-log pointwise intervals, identical to "
        "R survival::survfit(conf.type = 'log-log'); landmarks at 1, 2, 3, 6 and 12 months "
        "(365.25/12 days per month, rounded).",
        f"Safety: TEAEs with onset from day 0 to day {options['safety_window_days']:g} at the "
        "worst CTCAE grade per subject; CRS and ICANS by ASTCT grade; DLT rate with the exact "
        "95% CI.",
        "Exposure–response: logistic regression of each binary outcome on the natural log of "
        "the NCA exposure (statsmodels), odds ratio per doubling; geometric mean ratios with "
        "Welch t intervals on the log scale.",
    ]
    settings = {
        "model": options["model"],
        "NCA": json.dumps(nca_options),
        "fit": json.dumps(fit_options),
        "solver": json.dumps(model.solver_settings),
        "landmark months (days)": ", ".join(
            f"{m} ({d})" for m, d in zip(options["landmark_months"], options["landmark_days"],
                                          strict=True)
        ),
        "time back to baseline horizon": f"{options['tbb_horizon_days']:g} days",
        "grouping": str(options["group_by"]),
        **{f"version: {name}": version for name, version in analysis.versions.items()},
    }  # fmt: skip
    return [
        {"kind": "text", "title": "Methods", "entries": methods},
        {"kind": "options", "title": "Options and software", "entries": list(settings.items())},
    ]


def _solver_words(model: models.Model) -> str:
    """How the model's levels are computed, for the methods (the ODE solver and tolerances)."""
    settings = model.solver_settings
    if settings.get("rtol") is None:
        return "the model's closed form (no ODE solver)"
    return f"numerical integration ({describe_solver(settings)})"


def _population_methods(options: Mapping[str, Any]) -> list[str]:
    """The population model's paragraph of the methods (none when it was switched off)."""
    if not options.get("population"):
        return ["Population model: not fitted (switched off: --no-population)."]
    return [
        "Population model: the same model fitted to all subjects at once as a nonlinear "
        "mixed-effects model (cellkin.fit_population; SAEM, Kuhn & Lavielle 2005, "
        "doi:10.1016/j.csda.2004.07.002) with log-/logit-normal random effects on every free "
        "parameter, M3 for BLQ samples, the same residual error model and seed. Subjects "
        "whose own fit is not used get their metrics from their conditional distribution "
        "given the population (median over the conditional draws, 95% CI from their "
        "percentiles); the column `source` says which."
    ]


def _unknown_note(analysis: StudyAnalysis) -> str:
    """What the "unknown dose" row is, when the study has kinetics-only subjects."""
    unknown = analysis.options.get("unknown_dose_subjects") or []
    if not unknown:
        return ""
    return (f" “unknown dose”: {len(unknown)} subject(s) with kinetics samples but no row in "
            f"the subject table ({', '.join(unknown[:5])}{' …' if len(unknown) > 5 else ''}; "
            "listed under Failures and exclusions): their kinetics are shown in this row only, "
            "and they are in no safety or efficacy denominator, nor in “all”.")  # fmt: skip


def render_html(
    analysis: StudyAnalysis,
    figures: Mapping[str, RenderedFigure],
    tables: Mapping[str, pd.DataFrame],
    csv_names: Mapping[str, str],
    *,
    title: str = "CAR-T cellular kinetics study report",
    command: str = "",
) -> str:
    """The report page as a string.

    Parameters
    ----------
    analysis : StudyAnalysis
    figures : mapping
        Name → :class:`~cellkin.report._figures.RenderedFigure`.
    tables : mapping
        Name → DataFrame: every table the page may show (analysis tables plus the report's
        own: ``overview``, ``input_files``, ``kinetics_summary``, ``kinetics_exclusions``,
        ``failures``).
    csv_names : mapping
        Table name → relative path of its CSV file (for the links).
    title, command : str
        Page title; the command line that made the report (shown in the header).
    """
    import jinja2

    sections = []
    number = 0
    for section in _sections(analysis):
        blocks: list[dict[str, Any]] = []
        for name in section.figures:
            if name in figures:
                number += 1
                figure = figures[name]
                width, height = (round(90 * x) for x in figure.spec.size)
                blocks.append({"kind": "figure", "name": name, "src": figure.data_uri,
                               "caption": figure.spec.caption, "number": number,
                               "width": width, "height": height})  # fmt: skip
        for spec in section.tables:
            frame = tables.get(spec.name)
            if frame is None:
                continue
            if spec.query is not None:
                frame = frame.query(spec.query)
            if frame.empty and spec.name != "failures":
                continue
            note = spec.note + (_unknown_note(analysis) if spec.name == "overview" else "")
            blocks.append({
                "kind": "table", "title": spec.title, "note": note,
                "collapsed": spec.collapsed, "rows": len(frame),
                "html": table_html(frame, spec.columns) if len(frame) else
                        "<p class='ok'>None.</p>",
                "csv": csv_names.get(spec.name),
            })  # fmt: skip
        if section.id == "methods":
            blocks += _methods(analysis)
        if section.id == "files":
            blocks.append({"kind": "links", "entries": list(csv_names.items())})
        if blocks:
            sections.append({"id": section.id, "title": section.title, "intro": section.intro,
                             "blocks": blocks})  # fmt: skip
    template = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
        resources.files("cellkin.report").joinpath("templates/report.html.j2").read_text("utf-8")
    )
    return template.render(
        title=title,
        study_label=analysis.inputs.label,
        synthetic=analysis.inputs.synthetic,
        versions=analysis.versions,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        command=command,
        sections=sections,
    )
