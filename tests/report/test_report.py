"""The study report: endpoints checked against independent computations, every subject and
step accounted for, and a self-contained page whose every table and figure is present."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from scipy.stats import binomtest

import cellkin
from cellkin.errors import CellkinError, DataError, OptionError
from cellkin.report import (
    TBB_HORIZON_DAYS,
    StudyInputs,
    kinetic_endpoints,
    load_inputs,
    study_report,
)
from cellkin.report._figures import FIGURES

STUDY = cellkin.load_example()


def _row(table: pd.DataFrame, group: str, **where) -> pd.Series:
    mask = table["group"].astype(str) == group
    for column, value in where.items():
        mask &= table[column] == value
    assert mask.sum() == 1, (group, where)
    return table[mask].iloc[0]


# ---------------------------------------------------------------- endpoints vs independent sums
def test_orr_by_dose_level_counts_confirmed_cr_pr_with_exact_ci(example_report):
    """ORR = confirmed CR or PR over every infused subject (ITT), exact CI as SciPy's."""
    bor = example_report.tables["best_overall_response"].merge(
        STUDY.subjects[["subject", "dose_level"]], on="subject"
    )
    rates = example_report.tables["response_rates"]
    for level, part in [*bor.groupby("dose_level"), ("all", bor)]:
        k, n = int(part["bor"].isin(["CR", "PR"]).sum()), len(part)
        row = _row(rates, str(level))
        assert (row["n_responders"], row["n"]) == (k, n)
        interval = binomtest(k, n).proportion_ci(0.95, method="exact")
        assert row["orr_ci_lower"] == pytest.approx(interval.low, abs=1e-12)
        assert row["orr_ci_upper"] == pytest.approx(interval.high, abs=1e-12)
    # the overview shows the same numbers as text
    overview = example_report.to_frame().set_index("group")
    assert overview.loc["all", "ORR (RECIST 1.1)"].startswith(
        f"{int(bor['bor'].isin(['CR', 'PR']).sum())}/{len(bor)} "
    )


def test_dlt_rate_matches_subject_flags_by_dose_level(example_report):
    dlt = example_report.tables["dlt"]
    for level, part in STUDY.subjects.groupby("dose_level"):
        row = _row(dlt, str(level))
        assert row["n_dlt"] == int(part["dlt"].astype(bool).sum())
        assert row["n_evaluable"] == len(part)


def test_pfs_and_os_landmarks_equal_lifelines_directly(example_report):
    days = [30, 61, 91, 183, 365]
    for endpoint in ("pfs", "os"):
        table = example_report.tables[f"{endpoint}_landmarks"]
        fitter = KaplanMeierFitter().fit(
            STUDY.subjects[f"{endpoint}_days"], STUDY.subjects[f"{endpoint}_event"].astype(bool)
        )
        expected = fitter.survival_function_at_times(days).to_numpy()
        pooled = table[table["group"] == "all"].sort_values("time")
        np.testing.assert_allclose(pooled["survival"], expected, rtol=1e-12)
        assert list(pooled["month"]) == [1, 2, 3, 6, 12]


def test_cr_at_landmarks_counts_cr_status(example_report):
    status = cellkin.outcomes.response_at(STUDY.lesions, [30, 61, 91, 183, 365])
    table = example_report.tables["response_landmarks"]
    for day, part in status.groupby("day"):
        row = _row(table, "all", day=day)
        assert row["n_cr"] == int((part["response"] == "CR").sum())
        assert row["n"] == len(part) == STUDY.subjects["subject"].nunique()


def test_teae_window_is_three_months(example_report):
    events = STUDY.adverse_events
    window = events[(events["onset_day"] >= 0) & (events["onset_day"] <= 91)]
    incidence = example_report.tables["teae_incidence"]
    row = _row(incidence, "all", level="any")
    assert row["n_any"] == window["subject"].nunique()
    assert row["n_grade_3plus"] == window.loc[window["grade"] >= 3, "subject"].nunique()


def test_kinetic_endpoints_by_hand():
    """Time back to baseline is a time-to-event endpoint: Kaplan–Meier written out here.

    Pooled: a returns at 20 d, b at 200 d, c is censored at 60 d (never returned by its last
    sample), d has no time. At risk 3 at 20 d: S = 2/3 until 200 d, when the last one at risk
    returns (S = 0). P(back by 183 d) = 1 − 2/3, its log-log (exponential Greenwood) CI from
    var(log S) = 1/(3·2); median 200 d (first time S ≤ 1/2)."""
    metrics = pd.DataFrame({
        "subject": ["a", "b", "c", "d"],
        "assay": "flow",
        "tmax": [7.0, 10.0, 14.0, np.nan],
        "time_back_to_baseline": [20.0, 200.0, 60.0, np.nan],
        "time_back_to_baseline_censored": [False, False, True, np.nan],
    })  # fmt: skip
    subjects = pd.DataFrame({"subject": list("abcd"), "dose_level": ["L1", "L1", "L2", "L2"]})
    table = kinetic_endpoints(metrics, subjects, basis="observed")
    pooled = _row(table, "all")
    assert (pooled["tmax_median"], pooled["tmax_min"], pooled["tmax_max"]) == (10.0, 7.0, 14.0)
    assert (pooled["n"], pooled["n_tbb"], pooled["n_tbb_censored"]) == (4, 3, 1)
    assert pooled["n_back_to_baseline"] == 1  # b returns after the 183-day horizon
    survival, z = 2 / 3, 1.959963984540054
    se = np.sqrt(1 / (3 * 2))
    loglog, width = np.log(-np.log(survival)), z * se / np.log(survival)
    upper, lower = np.exp(-np.exp(loglog + width)), np.exp(-np.exp(loglog - width))
    assert pooled["p_back_to_baseline"] == pytest.approx(1 - survival, rel=1e-12)
    assert pooled["p_back_ci_lower"] == pytest.approx(1 - upper, rel=1e-9)
    assert pooled["p_back_ci_upper"] == pytest.approx(1 - lower, rel=1e-9)
    assert pooled["tbb_median"] == 200.0
    l2 = _row(table, "L2")  # c censored at 60 d, d unknown: nobody followed to 183 d
    assert (l2["n_back_to_baseline"], l2["n_tbb"]) == (0, 1)
    assert np.isnan(l2["p_back_to_baseline"]) and np.isnan(l2["tbb_median"])
    assert TBB_HORIZON_DAYS == 183


# ------------------------------------------------------------------------ nothing is lost
def test_every_subject_is_fitted_or_listed_with_a_reason(example_report):
    fitted = set(example_report.tables["fit_statistics"]["subject"])
    failures = example_report.failures
    failed = set(failures.loc[failures["step"].str.startswith("fit"), "subject"])
    assert fitted | failed == set(STUDY.subjects["subject"])
    # a subject without a fit is listed with the reason; a fit that did not converge is both
    # in the tables and listed (stage "convergence")
    not_fitted = set(failures.loc[failures["step"] == "fit: fit", "subject"])
    assert not_fitted and not fitted & not_fitted
    assert (failures["reason"].str.len() > 0).all()


def test_every_figure_is_drawn_on_the_example(example_report):
    assert list(example_report.figures) == [spec.name for spec in FIGURES]
    assert not example_report.failures["step"].str.startswith("figure").any()


def test_missing_tables_become_failure_rows_not_errors():
    kinetics = STUDY.kinetics[STUDY.kinetics["subject"].isin(["KD025-106", "KD025-109"])]
    inputs = StudyInputs(kinetics=kinetics, label="two subjects, kinetics only")
    report = study_report(inputs, n_jobs=1, n_starts=1, progress=False)
    steps = " ".join(report.failures["step"])
    for step in ("safety", "best overall response", "PFS", "OS", "exposure-response"):
        assert step in steps
    assert set(report.tables["fit_statistics"]["subject"]) == {"KD025-106", "KD025-109"}
    assert "<html" in report.html and "Failures and exclusions" in report.html


# ------------------------------------------------------------------------------ the page
class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "a":
            self.links.append(attrs["href"])
        if tag in ("script", "link") or (tag == "img" and not attrs["src"].startswith("data:")):
            self.external.append(str(attrs))


def test_page_is_self_contained_and_every_link_resolves(example_report, example_report_dir):
    page = _Page()
    page.feed((example_report_dir / "report.html").read_text(encoding="utf-8"))
    assert not page.external
    assert len(page.images) == len(example_report.figures)
    for source in page.images:
        assert base64.b64decode(source.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    for href in page.links:
        if href.startswith("#"):
            assert href[1:] in page.ids
        else:
            assert (example_report_dir / href).is_file(), href
    written = {path.stem for path in (example_report_dir / "tables").glob("*.csv")}
    assert written == set(example_report.tables)


def test_page_states_methods_versions_checksums_and_synthetic(example_report):
    html = example_report.html
    for text in ("Synthetic data", "RECIST 1.1", "M3", "10.1002/psp4.12388", "SHA-256",
                 "Clopper", "log-log", "version: lmfit",
                 "closed form (no ODE solver)", "<dt>solver</dt>"):  # fmt: skip
        assert text in html, text
    checksums = example_report.tables["input_files"]["sha256"]
    assert len(checksums) == 4 and all(re.fullmatch(r"[0-9a-f]{64}", c) for c in checksums)
    for checksum in checksums:
        assert checksum in html


# ------------------------------------------------------------------------------ inputs
def test_unrecognised_and_duplicate_files_are_clear_errors(tmp_path):
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match=r"odd\.csv: cannot tell .* --kinetics"):
        load_inputs([odd])
    with pytest.raises(OptionError, match=r"`tables` names an unknown study table 'pk'"):
        load_inputs(tables={"pk": STUDY.source / "kinetics.csv"})
    kinetics = STUDY.source / "kinetics.csv"
    with pytest.raises(DataError, match="second kinetics table"):
        load_inputs([kinetics, kinetics])
    with pytest.raises(DataError, match="no kinetics table"):
        load_inputs([STUDY.source / "subjects.csv"])
    with pytest.raises(CellkinError, match="no such file"):
        load_inputs([tmp_path / "missing.csv"])


# ------------------------------------------------------- issue 15: honest model-based results
def test_time_back_to_baseline_is_the_same_in_summarize_the_nca_table_and_the_overview(
    example_report,
):
    """One Kaplan–Meier summary per group: metrics.summarize on the NCA table, the report's
    NCA summary table, its kinetic endpoints and the overview text agree."""
    nca = example_report.tables["nca"]
    direct = cellkin.metrics.summarize(nca, by="dose_level", subjects=STUDY.subjects,
                                       metrics=["time_back_to_baseline"])  # fmt: skip
    table = example_report.tables["nca_summary"]
    endpoints = example_report.tables["kinetic_endpoints"]
    overview = example_report.to_frame().set_index("group")
    for row in direct.itertuples():
        shown = table[(table["dose_level"] == row.dose_level) & (table["assay"] == row.assay)
                      & (table["metric"] == "time_back_to_baseline")].iloc[0]  # fmt: skip
        for name in ("n", "n_events", "n_censored", "median", "median_ci_lower", "p_back_6m",
                     "p_back_6m_ci_lower", "p_back_6m_ci_upper"):  # fmt: skip
            assert shown[name] == pytest.approx(getattr(row, name), nan_ok=True), name
        kin = _row(endpoints, row.dose_level, assay=row.assay, basis="observed (NCA)")
        assert kin["p_back_to_baseline"] == pytest.approx(row.p_back_6m, nan_ok=True)
        assert kin["tbb_median"] == pytest.approx(row.median, nan_ok=True)
        assert (kin["n_tbb"], kin["n_tbb_censored"]) == (row.n, row.n_censored)
        cell = overview.loc[row.dose_level, f"back to baseline ≤6 mo ({row.assay})"]
        assert cell.endswith(f"{int(row.n_censored)} censored of {int(row.n)}")
        if np.isnan(row.p_back_6m):
            assert cell.startswith("not estimable")
        else:
            assert cell.startswith(f"{100 * row.p_back_6m:.0f}%")


def test_model_based_summaries_use_the_reliable_fits_and_list_the_others(example_report):
    """Reliable per-subject fits are used as they are; every other subject's model-based
    metrics come from the population model's conditional distribution (#18), and the
    ``source`` column and the text say which."""
    batch = example_report.analysis.objects["batch"]
    reliable = {s for s, r in batch.results.items() if r.reliable}
    groups = STUDY.subjects.set_index("subject")["dose_level"]
    summary = example_report.tables.get("model_metrics_summary")
    cmax = summary[summary["metric"] == "cmax"] if summary is not None else summary
    used = example_report.tables["model_metrics_used"]
    population = example_report.tables["population_metrics"].set_index("subject")
    for level in groups.unique():
        members = set(groups.index[groups == level])
        rows = cmax[cmax["dose_level"] == level] if cmax is not None else []
        assert (int(rows["n"].sum()) if len(rows) else 0) == len(members), level
    source = used.set_index("subject")["source"]
    assert set(source.index) == set(STUDY.subjects["subject"])
    assert set(source.index[source == "per-subject fit"]) == reliable
    borrowed = source.index[source == "population (conditional)"]
    np.testing.assert_array_equal(used.set_index("subject").loc[borrowed, "cmax"],
                                  population.loc[borrowed, "cmax"])  # fmt: skip
    own = example_report.tables["model_metrics"].set_index("subject")
    mine = sorted(reliable)
    np.testing.assert_array_equal(used.set_index("subject").loc[mine, "cmax"],
                                  own.loc[mine, "cmax"])  # fmt: skip
    assert (
        f"{len(reliable)} subject(s) from their own reliable fit, {len(borrowed)} from the "
        "population model" in example_report.html
    )
    by_group = example_report.tables["fit_reliability"].set_index("group")
    assert by_group.loc["all", "n_reliable"] == len(reliable)
    assert by_group.loc["all", "n_subjects"] == 27
    listed = example_report.tables["unreliable_fits"]
    assert set(listed["subject"]) == set(STUDY.subjects["subject"]) - reliable
    assert (listed["issues"].str.len() > 0).all() and (listed["detail"].str.len() > 0).all()
    html = example_report.html
    assert f"{len(reliable)} of 27 fits reliable" in html
    assert "fewer than half of the fits are reliable" in html and "NCA" in html
    every = example_report.tables["model_metrics"]
    assert set(every["subject"]) == set(batch.results)  # every fit is in the per-subject table
    assert {"reliable", "issues", "cmax_extrapolated", "horizon"} <= set(every.columns)


def test_unreliable_fits_are_drawn_marked(example_report):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    batch = example_report.analysis.objects["batch"]
    shaky = next(r for r in batch.results.values() if r.success and not r.reliable)
    ax = Figure().subplots()
    cellkin.plot.individual_fit(shaky, ax=ax)
    (curve,) = [line for line in ax.get_lines() if line.get_label().endswith("fit (unreliable)")]
    assert curve.get_linestyle() == "--" and "unreliable" in ax.get_title()
    ax = Figure().subplots()
    cellkin.plot.metric_agreement(example_report.tables["nca"],
                                  example_report.tables["model_metrics"], ax=ax)  # fmt: skip
    marked = [line for line in ax.get_lines() if line.get_label().startswith("unreliable fit")]
    metrics = example_report.tables["model_metrics"]
    assert len(marked) == 1 and len(marked[0].get_xdata()) == (~metrics["reliable"]).sum()


def test_model_fits_option():
    kinetics = STUDY.kinetics[STUDY.kinetics["subject"].isin(["KD025-106", "KD025-104"])]
    inputs = StudyInputs(kinetics=kinetics, label="two subjects")
    report = study_report(inputs, n_jobs=1, n_starts=1, progress=False, model_fits="converged")
    summary = report.tables["model_metrics_summary"]
    assert summary.loc[summary["metric"] == "cmax", "n"].sum() == 2
    assert report.analysis.options["model_fits"] == "converged"
    with pytest.raises(OptionError, match="`model_fits` must be one of"):
        study_report(inputs, n_jobs=1, progress=False, model_fits="good ones")
