"""Exposure–response, exposure–toxicity and dose–exposure analyses.

Every statistic is checked against an independent computation: the geometric mean ratio and
its CI by hand from the Welch–Satterthwaite formula (and the test against SciPy's
``ttest_ind(equal_var=False)``), the ROC AUC against SciPy's Mann–Whitney U and a hand-counted
case with ties, the logistic regression against statsmodels fitted here and against a 2×2
design whose MLE is the table's odds ratio (with Woolf's standard error), and the power model
against noise-free data and statsmodels OLS. On the bundled synthetic study the effects built
into its generator (data/README.md: logit slope 1.5 per ln unit of AUC0–28 for response and of
Cmax for P(CRS ≥ 2)) are recovered.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

import cellkin
from cellkin import DataError, OptionError, plot
from cellkin.metrics import (
    DoseExposureResult,
    ExposureByOutcomeResult,
    ExposureResponseResult,
    ExposureSurvivalResult,
    dose_exposure,
    exposure_by_outcome,
    exposure_response,
    exposure_survival,
)

LN2 = np.log(2.0)
Z95 = stats.norm.ppf(0.975)


def tables(values, events, *, extra=None):
    """A metrics table (assay qpcr) and a subject table with a 0/1 `outcome` column."""
    ids = [f"S{i:02d}" for i in range(len(values))]
    metrics = pd.DataFrame({"subject": ids, "assay": "qpcr", "auc_0_28": values})
    subjects = pd.DataFrame({"subject": ids, "outcome": events, **(extra or {})})
    return metrics, subjects


def analyse(values, events, **kwargs):
    metrics, subjects = tables(values, events)
    result = exposure_response(metrics, subjects, "auc_0_28", "outcome", **kwargs)
    return result.table.iloc[0]


# ------------------------------------------------------------------ geometric mean ratio


POS = [120.0, 480.0, 950.0, 2600.0, 3100.0]
NEG = [60.0, 75.0, 300.0, 410.0, 520.0, 900.0]


def test_geometric_mean_ratio_and_welch_match_a_hand_computation():
    row = analyse(POS + NEG, [1] * 5 + [0] * 6, confidence=0.9)
    lp, ln = np.log(POS), np.log(NEG)
    vp, vn = lp.var(ddof=1) / lp.size, ln.var(ddof=1) / ln.size
    df = (vp + vn) ** 2 / (vp**2 / (lp.size - 1) + vn**2 / (ln.size - 1))
    diff, se = lp.mean() - ln.mean(), np.sqrt(vp + vn)
    half = stats.t.ppf(0.95, df) * se
    assert row["gmean_positive"] == pytest.approx(stats.gmean(POS), rel=1e-12)
    assert row["gmean_negative"] == pytest.approx(stats.gmean(NEG), rel=1e-12)
    assert row["gmr"] == pytest.approx(np.exp(diff), rel=1e-12)
    assert row["gmr_ci_lower"] == pytest.approx(np.exp(diff - half), rel=1e-10)
    assert row["gmr_ci_upper"] == pytest.approx(np.exp(diff + half), rel=1e-10)
    assert row["welch_df"] == pytest.approx(df, rel=1e-10)
    welch = stats.ttest_ind(lp, ln, equal_var=False)
    assert row["welch_t"] == pytest.approx(welch.statistic, rel=1e-12)
    assert row["welch_p"] == pytest.approx(welch.pvalue, rel=1e-12)
    assert (row["n"], row["n_positive"], row["n_negative"]) == (11, 5, 6)


def test_missing_and_non_positive_exposures_are_excluded_and_counted():
    metrics, subjects = tables([*POS, *NEG, np.nan, 0.0], [1] * 5 + [0] * 6 + [1, 0])
    metrics["exclude_reason"] = ""
    metrics.loc[11, "exclude_reason"] = "cmax: no quantifiable sample; auc_0_28: all BLQ"
    extra = pd.DataFrame({"subject": ["S99"], "assay": "qpcr", "auc_0_28": [10.0]})
    subjects = pd.concat([subjects, pd.DataFrame({"subject": ["S98"], "outcome": [1]})])
    result = exposure_response(pd.concat([metrics, extra]), subjects, "auc_0_28", "outcome")
    row = result.table.iloc[0]
    assert (row["n"], row["n_excluded"]) == (11, 4)
    reasons = result.exclusions.set_index("subject")["exclude_reason"]
    assert reasons["S11"] == "all BLQ"  # the metric's own part of exclude_reason
    assert reasons["S12"].startswith("non-positive")
    assert reasons["S98"] == "no qpcr metrics row"
    assert reasons["S99"] == "not in `subjects`"
    assert "S11: all BLQ" in row["exclude_reason"]
    assert row["gmr"] == pytest.approx(stats.gmean(POS) / stats.gmean(NEG))


# ---------------------------------------------------------------------- ROC AUC and U


def test_roc_auc_is_mann_whitney_u_over_n1_n0_with_ties():
    pos, neg = [1.0, 2.0, 2.0, 4.0], [1.0, 2.0, 3.0]
    # Pairs (positive, negative) counted by hand, a tie scoring 1/2:
    # 1: .5+0+0, 2: 1+.5+0, 2: 1+.5+0, 4: 1+1+1  ->  U = 6.5, AUC = 6.5 / 12.
    row = analyse(pos + neg, [1] * 4 + [0] * 3)
    assert row["mann_whitney_u"] == 6.5
    assert row["roc_auc"] == pytest.approx(6.5 / 12, rel=1e-15)
    scipy_u = stats.mannwhitneyu(pos, neg, alternative="two-sided")
    assert row["mann_whitney_u"] == scipy_u.statistic
    assert row["mann_whitney_p"] == pytest.approx(scipy_u.pvalue, rel=1e-12)


def test_roc_auc_matches_scipy_u_on_random_data():
    rng = np.random.default_rng(7)
    values = np.round(np.exp(rng.normal(8, 1, 40)), -2)  # rounding makes ties
    events = (rng.uniform(size=40) < 0.4).astype(int)
    row = analyse(list(values), list(events))
    u = stats.mannwhitneyu(values[events == 1], values[events == 0]).statistic
    assert row["roc_auc"] == pytest.approx(u / (events.sum() * (40 - events.sum())), rel=1e-14)


# -------------------------------------------------------------------- logistic regression


def test_logistic_regression_matches_statsmodels():
    values = [50.0, 90.0, 130.0, 200.0, 260.0, 400.0, 700.0, 1100.0, 1500.0, 3000.0]
    events = [0, 0, 1, 0, 0, 1, 0, 1, 1, 1]
    row = analyse(values, events, confidence=0.9)
    fit = sm.Logit(np.array(events, float), sm.add_constant(np.log(values))).fit(disp=0)
    assert row["log_or"] == pytest.approx(fit.params[1], rel=1e-8)
    assert row["logit_intercept"] == pytest.approx(fit.params[0], rel=1e-8)
    assert row["or_per_doubling"] == pytest.approx(np.exp(fit.params[1] * LN2), rel=1e-8)
    low, high = fit.conf_int(alpha=0.1)[1]
    assert row["or_ci_lower"] == pytest.approx(np.exp(low * LN2), rel=1e-8)
    assert row["or_ci_upper"] == pytest.approx(np.exp(high * LN2), rel=1e-8)
    assert row["logit_p"] == pytest.approx(fit.pvalues[1], rel=1e-7)
    assert row["logit_lr_p"] == pytest.approx(fit.llr_pvalue, rel=1e-7)
    assert (row["logit_status"], row["logit_message"]) == ("ok", "")


def test_logistic_on_a_two_by_two_design_gives_the_table_odds_ratio():
    # Exposure 100 or 200 (one doubling); responders / non-responders 3/9 and 8/4.
    a, b, c, d = 3, 9, 8, 4
    values = [100.0] * (a + b) + [200.0] * (c + d)
    events = [1] * a + [0] * b + [1] * c + [0] * d
    row = analyse(values, events)
    table_or = (c / d) / (a / b)  # = 8.0; the MLE of a saturated 2-group logit
    woolf = np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)  # SE of ln OR (Woolf 1955)
    assert row["or_per_doubling"] == pytest.approx(table_or, rel=1e-9)
    assert row["log_or"] == pytest.approx(np.log(table_or) / LN2, rel=1e-9)
    assert row["log_or_se"] * LN2 == pytest.approx(woolf, rel=1e-8)
    assert row["or_ci_lower"] == pytest.approx(table_or * np.exp(-Z95 * woolf), rel=1e-8)
    assert row["or_ci_upper"] == pytest.approx(table_or * np.exp(Z95 * woolf), rel=1e-8)
    assert row["logit_intercept"] == pytest.approx(np.log(a / b) - np.log(100.0) * np.log(
        table_or) / LN2, rel=1e-9)  # fmt: skip


@pytest.mark.parametrize(
    ("values", "events", "status"),
    [
        ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [0, 0, 0, 1, 1, 1], "complete separation"),
        ([6.0, 5.0, 4.0, 3.0, 2.0, 1.0], [0, 0, 0, 1, 1, 1], "complete separation"),
        ([1.0, 2.0, 3.0, 3.0, 5.0, 6.0], [0, 0, 0, 1, 1, 1], "quasi-complete separation"),
        ([1.0, 2.0, 3.0, 4.0], [1, 1, 1, 1], "not estimable"),
        ([5.0, 5.0, 5.0, 5.0], [0, 1, 0, 1], "not estimable"),
    ],
)
def test_separation_is_a_status_not_a_crash_or_a_warning(values, events, status):
    row = analyse(values, events)  # pytest turns any warning into an error
    assert row["logit_status"] == status
    assert np.isnan(row["or_per_doubling"]) and np.isnan(row["log_or"])
    assert row["logit_message"]
    if status == "complete separation":
        assert row["roc_auc"] in (0.0, 1.0)


def test_statsmodels_warnings_are_recorded_narrowly(monkeypatch):
    from statsmodels.discrete.discrete_model import Logit
    from statsmodels.tools.sm_exceptions import HessianInversionWarning

    original = Logit.fit

    def noisy_fit(self, *args, **kwargs):
        warnings.warn("Inverting hessian failed", HessianInversionWarning, stacklevel=2)
        warnings.warn("unrelated", DeprecationWarning, stacklevel=2)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Logit, "fit", noisy_fit)
    with pytest.warns(DeprecationWarning, match="unrelated"):  # not swallowed
        row = analyse([1.0, 3.0, 2.0, 4.0, 6.0, 5.0], [0, 0, 1, 0, 1, 1])
    assert row["logit_status"] == "warning"
    assert row["logit_message"] == "HessianInversionWarning: Inverting hessian failed"
    assert np.isfinite(row["or_per_doubling"])


# ------------------------------------------------------------------------------ outcomes


SUBJECTS = pd.DataFrame(
    {
        "subject": ["A", "B", "C", "D", "E", "F", "G", "H"],
        "bor": ["CR", "PR", "SD", "PD", "NE", "PR", "SD", None],
        "crs_grade": pd.array([0, 1, 2, 3, 0, 2, None, 1], dtype="Int64"),
        "dlt": [False, False, True, True, False, False, False, True],
    }
)
METRICS = pd.DataFrame(
    {"subject": list("ABCDEFGH"), "cmax": [900.0, 300, 700, 2000, 150, 2500, 400, 800]}
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("crs>=2", [0, 0, 1, 1, 0, 1, np.nan, 0]),
        ("crs_grade >= 2", [0, 0, 1, 1, 0, 1, np.nan, 0]),
        ("crs_grade>2", [0, 0, 0, 1, 0, 0, np.nan, 0]),
        ("crs<1", [1, 0, 0, 0, 1, 0, np.nan, 0]),
        ("dlt", [0, 0, 1, 1, 0, 0, 0, 1]),
        ("responder", [1, 1, 0, 0, 0, 1, 0, np.nan]),  # from bor; NE is a non-responder
    ],
)
def test_outcome_names_and_thresholds(spec, expected):
    result = exposure_response(METRICS, SUBJECTS, "cmax", spec, assay=None)
    events = result.data["event"].to_numpy(float)
    np.testing.assert_array_equal(events, np.array(expected, float))
    missing = np.isnan(np.array(expected, float))
    assert result.table["n_excluded"].iloc[0] == missing.sum()
    if missing.any():
        assert result.exclusions["exclude_reason"].str.startswith("outcome `").all()


def test_bad_outcomes_raise_with_a_fix():
    with pytest.raises(DataError, match="crs_grade>=2"):
        exposure_response(METRICS, SUBJECTS, "cmax", "crs_grade", assay=None)
    with pytest.raises(DataError, match="icans_grade"):
        exposure_response(METRICS, SUBJECTS, "cmax", "icans>=1", assay=None)
    with pytest.raises(ValueError, match="group"):
        exposure_response(METRICS, SUBJECTS, "cmax", "dlt", assay=None, group="decile")


def test_assay_selection_and_duplicate_rows():
    both = pd.concat([METRICS.assign(assay="qpcr"), METRICS.assign(assay="flow", cmax=1.0)])
    qpcr = exposure_response(both, SUBJECTS, "cmax", "dlt")
    assert qpcr.table["gmean_positive"].iloc[0] > 1.0
    with pytest.raises(DataError, match="several assays"):
        exposure_response(both, SUBJECTS, "cmax", "dlt", assay=None)
    with pytest.raises(DataError, match="no rows for assay 'ddpcr'"):
        exposure_response(both, SUBJECTS, "cmax", "dlt", assay="ddpcr")
    with pytest.raises(DataError, match="more than one row"):
        exposure_response(pd.concat([METRICS, METRICS]), SUBJECTS, "cmax", "dlt", assay=None)


def test_model_based_metrics_and_failed_fits():
    # Shaped like cellkin.fit.fit_all(...).metrics: CIs per metric, `success`, no reasons.
    model = METRICS.assign(assay="qpcr", cmax_ci_lower=METRICS["cmax"] / 2, success=True)
    model.loc[model["subject"] == "B", "success"] = False
    model = model[model["subject"] != "C"]  # a fit that failed: no metrics row
    result = exposure_response(model, SUBJECTS, "cmax", "dlt")
    reasons = result.exclusions.set_index("subject")["exclude_reason"]
    assert reasons.to_dict() == {"B": "model fit did not converge", "C": "no qpcr metrics row"}


def test_rates_by_exposure_group_with_clopper_pearson():
    values = [float(v) for v in range(1, 12)]
    events = [0, 0, 1, 0, 0, 0, 1, 1, 0, 1, 1]
    metrics, subjects = tables(values, events)
    result = exposure_response(metrics, subjects, "auc_0_28", "outcome")
    low, high = result.groups.iloc[0], result.groups.iloc[1]
    assert (low["n"], low["n_events"], high["n"], high["n_events"]) == (6, 1, 5, 4)  # ≤ median
    assert low["group"] == "Q1 ≤ 6" and high["group"] == "Q2 > 6"
    ci = stats.binomtest(4, 5).proportion_ci(method="exact")
    assert (high["ci_lower"], high["ci_upper"]) == pytest.approx((ci.low, ci.high))
    quart = exposure_response(metrics, subjects, "auc_0_28", "outcome", group="quartile")
    assert quart.groups["n"].tolist() == [3, 3, 2, 3]
    cut = exposure_response(metrics, subjects, "auc_0_28", "outcome", group=[2.5, 8])
    assert cut.groups["group"].tolist() == ["G1 ≤ 2.5", "G2 (2.5, 8]", "G3 > 8"]
    assert exposure_response(metrics, subjects, "auc_0_28", "outcome", group=None).groups.empty


# ------------------------------------------------------------------------- dose–exposure


def test_power_model_is_exact_on_noise_free_data():
    doses = np.repeat([1.0, 3.0, 10.0], 4)
    metrics = pd.DataFrame({"subject": range(12), "cmax": 7.0 * doses**0.6,
                            "auc_0_28": 50.0 * doses})  # fmt: skip
    subjects = pd.DataFrame({"subject": range(12), "dose": doses})
    table = dose_exposure(metrics, subjects, assay=None).table.set_index("exposure")
    assert table.loc["cmax", "slope"] == pytest.approx(0.6, abs=1e-12)
    assert table.loc["cmax", "intercept"] == pytest.approx(np.log(7.0), abs=1e-12)
    assert table.loc["auc_0_28", "slope"] == pytest.approx(1.0, abs=1e-12)
    assert table["r_squared"].to_numpy() == pytest.approx(1.0)
    assert (table["n"] == 12).all() and (table["n_doses"] == 3).all()


def test_power_model_ci_matches_statsmodels():
    rng = np.random.default_rng(3)
    doses = np.repeat([1.0, 3.0, 10.0], 5)
    cmax = 1000.0 * doses**0.5 * np.exp(rng.normal(0, 0.6, doses.size))
    metrics = pd.DataFrame({"subject": range(16), "cmax": [*cmax, np.nan]})
    subjects = pd.DataFrame({"subject": range(16), "dose": [*doses, 3.0]})
    result = dose_exposure(metrics, subjects, "cmax", assay=None, confidence=0.9)
    row = result.table.iloc[0]
    fit = sm.OLS(np.log(cmax), sm.add_constant(np.log(doses))).fit()
    assert row["slope"] == pytest.approx(fit.params[1], rel=1e-12)
    assert (row["slope_ci_lower"], row["slope_ci_upper"]) == pytest.approx(
        tuple(fit.conf_int(alpha=0.1)[1]), rel=1e-12
    )
    assert row["r_squared"] == pytest.approx(fit.rsquared, rel=1e-12)
    t_one = (fit.params[1] - 1) / fit.bse[1]
    assert row["proportionality_p"] == pytest.approx(2 * stats.t.sf(abs(t_one), 13), rel=1e-10)
    assert (row["n"], row["n_excluded"]) == (15, 1)


# ------------------------------------------------------------------------- example study


@pytest.fixture(scope="module")
def study():
    example = cellkin.load_example()
    return example, cellkin.nca(example.kinetics)


def test_example_study_recovers_the_response_auc_association(study):
    example, metrics = study
    result = exposure_response(metrics, example.subjects, outcome=("responder", "crs>=2"))
    table = result.table.set_index(["outcome", "exposure"])
    response = table.loc[("responder", "auc_0_28")]
    # Generator: logit P(response) = logit(0.12) + 1.5·ln(AUC0–28 / 13 393) (true AUC).
    # Found on observed NCA AUC0–28 (21 subjects): slope 1.60 per ln unit (SE 0.71),
    # OR 3.03 per doubling (95% CI 1.15–7.94), Wald p = 0.025, LR p = 0.003;
    # geometric means 47 900 vs 13 100 copies/ug*day (ratio 3.7), ROC AUC 0.83.
    assert response["log_or"] == pytest.approx(1.60, abs=0.01)
    assert response["log_or"] - Z95 * response["log_or_se"] < 1.5
    assert response["log_or"] + Z95 * response["log_or_se"] > 1.5
    assert response["or_ci_lower"] > 1 and response["logit_p"] < 0.05
    assert response["gmr"] == pytest.approx(3.66, abs=0.01) and response["gmr_ci_lower"] > 1
    assert response["roc_auc"] == pytest.approx(0.833, abs=1e-3)
    # Generator: logit P(CRS >= 2) = logit(0.20) + 1.5·ln(Cmax / 2000). Found: slope 0.81
    # (SE 0.44; its CI holds 1.5), OR 1.75 per doubling, Wald p = 0.066, LR p = 0.047,
    # ROC AUC 0.70 — positive, as built in, though weaker with 25 subjects.
    crs = table.loc[("crs>=2", "cmax")]
    assert crs["log_or"] == pytest.approx(0.81, abs=0.01)
    assert crs["log_or"] > 0 and crs["roc_auc"] > 0.5 and crs["gmr"] > 1
    assert crs["log_or"] + Z95 * crs["log_or_se"] > 1.5


def test_example_study_counts_the_non_expanders(study):
    example, metrics = study
    result = exposure_response(metrics, example.subjects, ("cmax", "auc_0_28"))
    table = result.table.set_index("exposure")
    assert table.loc["cmax", "n"] == 25 and table.loc["cmax", "n_excluded"] == 2
    cmax_out = result.exclusions[result.exclusions["exposure"] == "cmax"]
    assert set(cmax_out["subject"]) == {"KD025-105", "KD025-118"}  # all samples BLQ
    # Non-expanders have Cmax = 0 since #16 (PKNCA); a log-scale analysis cannot use 0.
    reason = "non-positive or infinite value 0 (log scale needs > 0)"
    assert (cmax_out["exclude_reason"] == reason).all()
    # AUC0–28 also needs follow-up to day 28: 4 subjects stopped sampling before it.
    assert table.loc["auc_0_28", "n"] + table.loc["auc_0_28", "n_excluded"] == 27
    assert {"KD025-105", "KD025-118"} <= set(result.exclusions["subject"])


def test_example_study_km_by_exposure_group_and_dose_exposure(study):
    example, metrics = study
    pfs = exposure_survival(metrics, example.subjects, "auc_0_28", "pfs")
    assert isinstance(pfs, ExposureSurvivalResult)
    assert pfs.groups["n"].sum() == 21 and len(pfs.groups) == 2
    assert len(pfs.exclusions) == 6
    p_value = pfs.logrank["p_value"].iloc[0]
    direct = pfs.km.logrank()["p_value"].iloc[0]
    assert 0 < p_value < 1 and p_value == direct
    assert pfs.groups["median"].iloc[1] > pfs.groups["median"].iloc[0]  # high AUC: longer PFS
    os_cut = exposure_survival(metrics, example.subjects, "cmax", "os", group=2000.0)
    assert os_cut.groups["group"].tolist() == ["G1 ≤ 2000", "G2 > 2000"]
    # Generator: Cmax ∝ dose^0.5. Found: b = 0.68 (95% CI 0.08–1.28), R² 0.19, n = 25.
    doses = dose_exposure(metrics, example.subjects).table.set_index("exposure")
    assert doses.loc["cmax", "slope"] == pytest.approx(0.68, abs=0.01)
    assert doses.loc["cmax", "slope_ci_lower"] < 0.5 < doses.loc["cmax", "slope_ci_upper"]
    assert doses.loc["cmax", "n_excluded"] == 2


# ------------------------------------------------------------------------ faces and plots


def test_results_are_frozen_with_tidy_and_people_faces():
    metrics, subjects = tables(POS + NEG, [1] * 5 + [0] * 6)
    result = exposure_response(metrics, subjects, "auc_0_28", "outcome")
    assert isinstance(result, ExposureResponseResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.table = None
    long = result.to_frame()
    assert set(long["statistic"]) == {"gmean_positive", "gmean_negative", "gmr",
                                      "mann_whitney_u", "roc_auc", "or_per_doubling"}  # fmt: skip
    gmr = long[long["statistic"] == "gmr"].iloc[0]
    assert gmr["estimate"] == result.table["gmr"].iloc[0]
    assert gmr["p_value"] == result.table["welch_p"].iloc[0]
    assert "Logistic regression" in str(result.summary())
    assert result._repr_html_().startswith("<h4>")
    subjects = subjects.assign(dose=[1.0, 3.0] * 5 + [3.0])
    doses = dose_exposure(metrics, subjects, "auc_0_28")
    assert isinstance(doses, DoseExposureResult) and "Power model" in str(doses.summary())


def test_logistic_curve_matches_a_statsmodels_glm_prediction():
    # Independent: a binomial GLM (IRLS) predicts the mean with a CI computed on the linear
    # predictor and mapped through the inverse logit, as the curve's Wald band is defined.
    values = [50.0, 90.0, 130.0, 200.0, 260.0, 400.0, 700.0, 1100.0, 1500.0, 3000.0]
    events = [0, 0, 1, 0, 0, 1, 0, 1, 1, 1]
    metrics, subjects = tables(values, events)
    result = exposure_response(metrics, subjects, "auc_0_28", "outcome", confidence=0.9)
    curve = result.logistic_curve(n_points=7)
    np.testing.assert_allclose(curve["value"], np.geomspace(50.0, 3000.0, 7), rtol=1e-12)
    glm = sm.GLM(np.array(events, float), sm.add_constant(np.log(values)),
                 family=sm.families.Binomial()).fit(tol=1e-14)  # fmt: skip
    frame = glm.get_prediction(sm.add_constant(np.log(curve["value"].to_numpy()))).summary_frame(
        alpha=0.1
    )
    np.testing.assert_allclose(curve["probability"], frame["mean"], rtol=1e-9)
    np.testing.assert_allclose(curve["ci_lower"], frame["mean_ci_lower"], rtol=1e-9)
    np.testing.assert_allclose(curve["ci_upper"], frame["mean_ci_upper"], rtol=1e-9)
    with pytest.raises(OptionError, match="n_points"):
        result.logistic_curve(n_points=1)


def test_exposure_by_outcome_matches_scipy_per_category():
    values = [10.0, 40.0, 20.0, 80.0, 30.0, 60.0, 5.0, -1.0, 25.0]
    grades = [0, 2, 1, 3, 1, 2, 0, 1, None]
    ids = [f"S{i}" for i in range(len(values))]
    metrics = pd.DataFrame({"subject": ids, "assay": "qpcr", "cmax": values, "unit": "copies/ug"})
    subjects = pd.DataFrame({"subject": ids, "crs_grade": grades})
    result = exposure_by_outcome(metrics, subjects, "cmax", "crs_grade")
    assert isinstance(result, ExposureByOutcomeResult) and result.unit == "copies/ug"
    assert list(result.categories) == [0.0, 1.0, 2.0, 3.0]
    table = result.to_frame().set_index("category")
    for grade in (0.0, 1.0, 2.0):
        used = np.array([v for v, g in zip(values, grades, strict=True) if g == grade and v > 0])
        row = table.loc[grade]
        assert row["n"] == used.size
        assert row["geo_mean"] == pytest.approx(stats.gmean(used), rel=1e-12)
        cv = 100 * np.sqrt(np.exp(np.log(stats.gstd(used)) ** 2) - 1)
        assert row["geo_cv_pct"] == pytest.approx(cv, rel=1e-12)
        assert (row["median"], row["min"], row["max"]) == (np.median(used), used.min(), used.max())
    assert table.loc[3.0, "n"] == 1 and np.isnan(table.loc[3.0, "geo_cv_pct"])
    reasons = result.exclusions.set_index("subject")["exclude_reason"]
    assert reasons["S7"].startswith("non-positive") and reasons["S8"] == "`crs_grade` missing"
    binary = exposure_by_outcome(metrics, subjects, "cmax", "crs>=2").table
    assert binary["category"].tolist() == ["no", "yes"] and binary["n"].tolist() == [4, 3]
    assert "Exposure by outcome (qpcr)" in str(result.summary())


def test_plots_take_and_return_axes(study):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    example, metrics = study
    result = exposure_response(metrics, example.subjects, outcome=("responder", "crs>=2"))
    fig, axes = plt.subplots(2, 3)
    assert result.plot(ax=axes[0, 0]) is axes[0, 0]
    drawn = plot.exposure_response(result, ax=axes[0, 1], exposure="cmax", outcome="crs>=2")
    assert drawn is axes[0, 1]
    curve = result.logistic_curve("cmax", "crs>=2")
    (line,) = [x for x in drawn.get_lines() if x.get_label().startswith("logistic fit")]
    np.testing.assert_array_equal(line.get_xdata(), curve["value"])
    np.testing.assert_array_equal(line.get_ydata(), curve["probability"])
    by_grade = exposure_by_outcome(metrics, example.subjects, "cmax", "crs_grade")
    drawn = plot.exposure_by_outcome(by_grade, ax=axes[0, 2])
    assert drawn is axes[0, 2] and drawn.get_yscale() == "log"
    assert drawn.get_xticklabels()[0].get_text() == "0\n(n=9)"
    by_response = exposure_by_outcome(metrics, example.subjects)
    assert by_response.plot(ax=axes[1, 0]) is axes[1, 0]
    pfs = exposure_survival(metrics, example.subjects)
    assert pfs.plot(ax=axes[1, 1], band=False) is axes[1, 1]
    doses = dose_exposure(metrics, example.subjects)
    assert plot.dose_exposure(doses, ax=axes[1, 2], exposure="auc_0_28") is axes[1, 2]
    assert doses.plot(ax=axes[1, 2]) is axes[1, 2]
    separated = exposure_response(*tables([1.0, 2.0, 3.0, 4.0], [0, 0, 1, 1]), "auc_0_28",
                                  "outcome")  # fmt: skip
    assert separated.logistic_curve().empty  # complete separation: no curve
    assert separated.plot(ax=axes[0, 0]) is axes[0, 0]
    with pytest.raises(OptionError, match="`outcome` must be one of"):
        plot.exposure_response(result, ax=axes[0, 0], outcome="dlt")
    with pytest.raises(OptionError, match="`exposure` must be one of"):
        doses.plot(ax=axes[1, 2], exposure="tmax")
    plt.close(fig)
