"""Observed (NCA) metrics against hand calculations, closed forms and an independent NCA.

References:

* hand-worked tables (the arithmetic is written in each test's docstring);
* the exact AUC of the Stein 2019 closed form (``Stein2019.auc``, itself checked against
  ``scipy.integrate.quad`` in ``tests/models/test_stein.py``);
* the Theoph data set (R ``datasets::Theoph``) analysed by ``pynca`` (a port of the R package
  NonCompart, validated against Phoenix WinNonlin): ``reference/theoph_pynca.csv``, produced
  by ``reference/make_theoph_reference.py``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cellkin import models
from cellkin.errors import DataError, DataWarning, OptionError
from cellkin.metrics import NCAOptions, nca, nca_long

REFERENCE = Path(__file__).parent / "reference"


def _table(times, values, lloq=1.0, subject="A", assay="qpcr", unit="copies/ug"):
    values = np.asarray(values, dtype=float)
    return pd.DataFrame(
        {
            "subject": subject,
            "time": np.asarray(times, dtype=float),
            "value": values,
            "assay": assay,
            "unit": unit,
            "lloq": lloq,
            "blq": np.isnan(values),
        }
    )


# A CAR-T-like profile used by several hand-worked tests (LLOQ 1):
# day   -7   1   4    7     14   28   56   84(BLQ)
HAND = _table([-7, 1, 4, 7, 14, 28, 56, 84], [np.nan, 2, 40, 800, 400, 100, 10, np.nan])


def test_hand_worked_linear_auc_and_peak():
    """Linear trapezoid with C(0) = 0 imputed:

    0-1: (0+2)/2·1 = 1; 1-4: (2+40)/2·3 = 63; 4-7: (40+800)/2·3 = 1260; 7-14: (800+400)/2·7
    = 4200; 14-28: (400+100)/2·14 = 3500 → AUC0-28 = 9024. 28-56: (100+10)/2·28 = 1540 →
    AUClast (to day 56) = 10564; 56-84: trailing BLQ → 0 under the positional rule:
    (10+0)/2·28 = 140 → AUC0-84 = 10704.
    """
    row = nca(HAND).iloc[0]
    assert (row["cmax"], row["tmax"], row["clast"], row["tlast"]) == (800, 7, 10, 56)
    assert row["auc_0_28"] == pytest.approx(9024)
    assert row["auc_last"] == pytest.approx(10564)
    assert row["auc_0_84"] == pytest.approx(10704)
    assert row["auc_unit"] == "copies/ug*day" and row["auc_method"] == "linear"
    assert row["exclude_reason"] == ""


def test_hand_worked_log_methods():
    """Log trapezoid (c1−c2)/ln(c1/c2)·Δt where both ends > 0 and differ.

    linup-logdown: rising segments linear (1 + 63 + 1260 = 1324), falling ones log:
    7-14: 400·7/ln2 = 4039.58; 14-28: 300·14/ln4 = 3029.69 → AUC0-28 = 8393.27.
    log: also 1-4: 38·3/ln20 = 38.054 and 4-7: 760·3/ln20 = 761.08, 0-1 stays linear (C=0)
    → AUC0-28 = 1 + 38.054 + 761.08 + 4039.58 + 3029.69.
    """
    linup = nca(HAND, auc_method="linup-logdown").iloc[0]
    expected_down = 400 * 7 / math.log(2) + 300 * 14 / math.log(4)
    assert linup["auc_0_28"] == pytest.approx(1324 + expected_down, rel=1e-12)
    log = nca(HAND, auc_method="log").iloc[0]
    up = 1 + 38 * 3 / math.log(20) + 760 * 3 / math.log(20)
    assert log["auc_0_28"] == pytest.approx(up + expected_down, rel=1e-12)
    assert log["auc_method"] == "log"


def test_interval_end_between_samples_is_interpolated_with_the_method():
    """AUC0-20: linear interpolation C(20) = 400 − 300·6/14 = 271.43; log interpolation
    C(20) = 400·(1/4)^(6/14)."""
    linear = nca(HAND, intervals=[(0, 20)]).iloc[0]
    c20 = 400 - 300 * 6 / 14
    assert linear["auc_0_20"] == pytest.approx(1324 + 4200 + (400 + c20) / 2 * 6)
    log = nca(HAND, intervals=[(0, 20)], auc_method="linup-logdown").iloc[0]
    c20 = 400 * 0.25 ** (6 / 14)
    expected = 1324 + 400 * 7 / math.log(2) + (400 - c20) * 6 / math.log(400 / c20)
    assert log["auc_0_20"] == pytest.approx(expected, rel=1e-12)


def test_lambda_z_window_and_derived_metrics():
    """Candidates after Tmax (7): 14, 28, 56. Only one window of ≥ 3 points:
    ln c = a − λz t through (14, ln400), (28, ln100), (56, ln10)."""
    row = nca(HAND).iloc[0]
    t, y = np.array([14, 28, 56.0]), np.log([400, 100, 10.0])
    slope, intercept = np.polyfit(t, y, 1)
    assert row["lambda_z"] == pytest.approx(-slope, rel=1e-12)
    assert row["n_points_lambda_z"] == 3
    assert row["half_life"] == pytest.approx(math.log(2) / -slope, rel=1e-12)
    assert row["clast_pred"] == pytest.approx(math.exp(intercept + slope * 56), rel=1e-12)
    assert row["auc_inf"] == pytest.approx(10564 + 10 / -slope, rel=1e-12)
    assert row["auc_pct_extrap"] == pytest.approx(100 * (10 / -slope) / row["auc_inf"])
    assert row["span_ratio"] == pytest.approx((56 - 14) / row["half_life"])
    r = np.corrcoef(t, y)[0, 1]
    assert row["r2"] == pytest.approx(r**2, rel=1e-12)
    assert row["r2_adj"] == pytest.approx(1 - (1 - r**2) * 2 / 1, rel=1e-12)


def test_lambda_z_prefers_more_points_within_the_adjusted_r2_tolerance():
    """A perfect mono-exponential tail (λ = 0.1/day) after the peak: every window has
    adjusted R² = 1, so PKNCA's rule takes the longest (5 points)."""
    times = [0, 2, 5, 10, 15, 20, 25, 30]
    values = [1, 50, 100, *(100 * np.exp(-0.1 * (np.array([10, 15, 20, 25, 30]) - 5)))]
    row = nca(_table(times, values, lloq=0.01)).iloc[0]
    assert row["n_points_lambda_z"] == 5
    assert row["lambda_z"] == pytest.approx(0.1, rel=1e-10)
    assert row["r2_adj"] == pytest.approx(1.0)


def test_manual_lambda_z_points():
    included = nca(HAND, NCAOptions(lambda_z_include={"A": [7, 14, 28]})).iloc[0]
    assert included["n_points_lambda_z"] == 3 and included["lambda_z_time_first"] == 7
    excluded = nca(HAND, NCAOptions(lambda_z_exclude={("A", "qpcr"): [56]})).iloc[0]
    assert np.isnan(excluded["lambda_z"])
    assert "fewer than 3" in excluded["exclude_reason"]
    with pytest.raises(OptionError, match=r"no sample at day\(s\) \[9.0\]"):
        nca(HAND, NCAOptions(lambda_z_include={"A": [9]}))
    with pytest.raises(OptionError, match="no post-infusion samples"):
        nca(HAND, NCAOptions(lambda_z_include={"Z": [7]}))


@pytest.mark.parametrize(
    ("rule", "expected_0_84", "expected_last"),
    [
        ("positional", 10704, 10564),
        ("zero", 10704, 10564),
        ("lloq/2", 10564 + (10 + 0.5) / 2 * 28, 10564),
        ("drop", None, 10564),
    ],
)
def test_blq_rules(rule, expected_0_84, expected_last):
    """Trailing BLQ at day 84: → 0 (positional/zero), → LLOQ/2 = 0.5, or dropped (the
    interval then ends after the last sample used and is not computable)."""
    row = nca(HAND, blq=rule).iloc[0]
    assert row["auc_last"] == pytest.approx(expected_last)
    if expected_0_84 is None:
        assert np.isnan(row["auc_0_84"])
        assert "auc_0_84: interval ends after the last sample" in row["exclude_reason"]
    else:
        assert row["auc_0_84"] == pytest.approx(expected_0_84)
    assert row["blq"] == rule


def test_positional_rule_leading_embedded_and_later_trailing_blq():
    """Leading BLQ (day 1) → 0, embedded BLQ (day 14) dropped, first trailing (56) → 0,
    second trailing (84) dropped (PKNCA's positional rule).

    Points: (0,0) (1,0) (4,40) (7,800) (28,100) (56,0): AUC0-56 = 0 + 60 + 1260 +
    450·21 + 50·28 = 12170 and, since the profile ended at zero and BLQ samples reach day 84,
    AUC0-84 = 12170 as well.
    """
    table = _table([1, 4, 7, 14, 28, 56, 84], [np.nan, 40, 800, np.nan, 100, np.nan, np.nan])
    row = nca(table, intervals=[(0, 56), (0, 84)]).iloc[0]
    assert row["auc_0_56"] == pytest.approx(12170)
    assert row["auc_0_84"] == pytest.approx(12170)
    assert row["tlast"] == 28 and row["auc_last"] == pytest.approx(12170 - 50 * 28)
    zero = nca(table, intervals=[(0, 56)], blq="zero").iloc[0]
    assert zero["auc_0_56"] == pytest.approx(60 + 1260 + 400 * 7 + 50 * 14 + 50 * 28)


def test_interval_after_last_sample_and_extrapolation():
    table = _table([0, 1, 2, 3, 4], 100 * np.exp(-0.2 * np.arange(5)), lloq=0.01)
    row = nca(table, intervals=[(0, 10)], auc_method="log").iloc[0]
    assert np.isnan(row["auc_0_10"])
    assert "interval_auc='all'" in row["exclude_reason"]
    options = NCAOptions(intervals=[(0, 10)], auc_method="log", interval_auc="inf_obs")
    extended = nca(table, options).iloc[0]
    exact = 100 * (1 - math.exp(-2.0)) / 0.2  # mono-exponential: log trapezoid is exact
    assert extended["auc_0_10"] == pytest.approx(exact, rel=1e-10)


def test_linear_trapezoid_converges_to_the_exact_stein_auc():
    stein = models.get("stein2019")
    errors = []
    for n in (30, 300, 3000):
        times = np.unique(np.concatenate([np.linspace(0, 28, n), [stein.defaults["tmax"]]]))
        table = _table(times, stein.simulate(times), lloq=1e-3)
        auc = nca(table, intervals=[(0, 28)]).iloc[0]["auc_0_28"]
        errors.append(abs(auc / stein.auc(0, 28) - 1))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-5  # second order: error ∝ 1/n²
    assert errors[1] / errors[2] == pytest.approx(100, rel=0.2)


def test_log_trapezoid_is_exact_on_mono_exponential_segments():
    """Stein with FB = 0 is exponential growth then a single exponential decline, so the log
    trapezoid is exact whenever Tmax is a sample time."""
    stein = models.get("stein2019")
    params = {**stein.defaults, "fb": 1e-7}
    times = np.array([0, 1, 4, 7, 9.3, 14, 21, 28, 40, 60, 84])
    table = _table(times, stein.simulate(times, params), lloq=1e-6)
    row = nca(table, auc_method="log").iloc[0]
    assert row["auc_0_28"] == pytest.approx(stein.auc(0, 28, params), rel=1e-6)
    assert row["auc_0_84"] == pytest.approx(stein.auc(0, 84, params), rel=1e-6)


def test_time_back_to_baseline_observed_interpolated_and_censored():
    """Threshold = LLOQ = 1 (baseline BLQ). After Tmax (7) the first sample at/below it is
    the BLQ one at day 84 → observed 84; interpolated between (56, 10) and (84, 1 = the
    threshold, a BLQ sample counting as at it) → 84 as well."""
    row = nca(HAND).iloc[0]
    assert row["time_back_to_baseline"] == 84
    assert row["time_back_to_baseline_method"] == "observed"
    assert not row["time_back_to_baseline_censored"]
    assert row["time_back_to_baseline_interpolated"] == 84
    assert row["tbb_threshold"] == 1
    censored = nca(HAND[HAND["time"] < 84]).iloc[0]
    assert censored["time_back_to_baseline"] == 56
    assert censored["time_back_to_baseline_censored"]


def test_time_back_to_baseline_uses_a_quantified_pre_infusion_baseline():
    """Pre-infusion level 50 (> LLOQ 1): threshold 50. After Tmax: 400 (14), 100 (28),
    10 (56) → observed 56; interpolated log-linearly between (28, 100) and (56, 10):
    28 + 28·ln(100/50)/ln(100/10) = 36.43."""
    table = HAND.copy()
    table.loc[0, ["value", "blq"]] = [50.0, False]
    row = nca(table, tbb_method="interpolated").iloc[0]
    assert row["baseline"] == 50 and row["tbb_threshold"] == 50
    expected = 28 + 28 * math.log(2) / math.log(10)
    assert row["time_back_to_baseline"] == pytest.approx(expected, rel=1e-12)
    assert row["time_back_to_baseline_observed"] == 56
    ignore = nca(table, baseline="lloq_only").iloc[0]
    assert ignore["tbb_threshold"] == 1 and ignore["time_back_to_baseline"] == 84
    fixed = nca(table, baseline=500.0).iloc[0]
    assert fixed["time_back_to_baseline"] == 14 and fixed["baseline_method"] == "fixed"


@pytest.mark.parametrize(
    ("times", "values", "metric", "reason_fragment"),
    [
        ([1, 4, 7], [np.nan, np.nan, np.nan], "tmax", "no quantifiable sample after infusion"),
        ([-3], [np.nan], "tmax", "no sample after infusion"),
        ([7], [100.0], "lambda_z", "fewer than 3"),
        ([1, 4, 7], [10.0, 50, 300], "time_back_to_baseline", "no sample after Tmax"),
        ([1, 4, 7, 14, 28], [10.0, 10, 10, 10, 10], "lambda_z", "no variability"),
    ],
    ids=["all-BLQ", "pre-infusion only", "one sample", "peak at last sample", "flat"],
)
def test_edge_cases_give_nan_with_a_reason(times, values, metric, reason_fragment):
    """The metric is NaN, and ``exclude_reason`` names it with the reason."""
    row = nca(_table(times, values)).iloc[0]
    assert np.isnan(row[metric])
    reasons = dict(part.split(": ", 1) for part in row["exclude_reason"].split("; "))
    assert reason_fragment in reasons[metric]


def test_one_sample_profile():
    row = nca(_table([7], [100.0])).iloc[0]
    assert row["cmax"] == 100 and row["tmax"] == 7
    assert row["auc_last"] == pytest.approx(350)  # (0 + 100)/2·7 with C(0) = 0
    assert np.isnan(row["auc_0_28"])


def test_without_start_imputation_aucs_from_zero_are_not_computable():
    """PKNCA (no imputation): an AUC from day 0 needs a day-0 sample; AUClast too."""
    row = nca(HAND, NCAOptions(impute_start="none")).iloc[0]
    assert np.isnan(row["auc_0_28"]) and np.isnan(row["auc_last"])
    assert "auc_0_28: interval starts before the first sample" in row["exclude_reason"]
    assert "auc_last: interval starts before the first sample" in row["exclude_reason"]


def test_unsorted_input_and_identical_duplicates_give_the_same_result():
    shuffled = HAND.sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(nca(shuffled), nca(HAND))
    duplicated = pd.concat([HAND, HAND.iloc[[3]]])
    with pytest.warns(DataWarning, match="repeat an earlier row exactly"):
        result = nca(duplicated)
    assert result.loc[0, "auc_0_28"] == pytest.approx(9024)


def test_conflicting_duplicates_are_refused():
    conflicting = pd.concat([HAND, HAND.iloc[[3]].assign(value=900.0)])
    with pytest.raises(DataError, match="duplicate"):
        nca(conflicting)


def test_zero_valued_segments_fall_back_to_linear_in_the_log_trapezoid():
    row = nca(_table([0, 1, 2], [np.nan, 10, 5]), auc_method="log", intervals=[(0, 2)])
    assert row.iloc[0]["auc_0_2"] == pytest.approx(5 + 5 / math.log(2))


def test_several_subjects_and_assays_and_long_form():
    flow = _table([1, 7, 28], [0.5, 20, 2], lloq=0.1, assay="flow", unit="cells/uL")
    other = _table([1, 7, 28], [5, 200, 20], subject="B")
    table = pd.concat([HAND, flow, other])
    wide = nca(table)
    assert list(zip(wide["subject"], wide["assay"], strict=True)) == [
        ("A", "flow"),
        ("A", "qpcr"),
        ("B", "qpcr"),
    ]
    assert wide.loc[0, "auc_unit"] == "cells/uL*day"
    long = nca_long(table)
    pd.testing.assert_frame_equal(nca_long(wide), long)
    cmax = long[(long["metric"] == "cmax") & (long["subject"] == "A")]
    assert cmax["unit"].tolist() == ["cells/uL", "copies/ug"]
    assert cmax["pptestcd"].iloc[0] == "CMAX" and cmax["pknca"].iloc[0] == "cmax"
    assert set(long.loc[long["metric"] == "auc_0_28", "unit"]) == {"cells/uL*day", "copies/ug*day"}
    missing = long[(long["subject"] == "B") & (long["metric"] == "auc_0_84")]
    assert missing["value"].isna().all()
    assert missing["exclude_reason"].str.contains("after the last sample").all()
    assert wide.attrs["cellkin"]["auc_method"] == "linear"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"auc_method": "spline"}, "auc_method"),
        ({"blq": "half"}, "blq"),
        ({"blq": "m1"}, '"m1" is now called "drop"'),
        ({"tbb_method": "model"}, "tbb_method"),
        ({"baseline": "screening"}, "baseline"),
        ({"baseline": -1.0}, "baseline"),
        ({"intervals": [(28, 0)]}, "not a valid interval"),
        ({"intervals": [(0, 28, 84)]}, "pairs of days"),
    ],
)
def test_bad_options_raise(kwargs, message):
    with pytest.raises(OptionError, match=message):
        nca(HAND, **kwargs)


@pytest.mark.parametrize("method", ["linear", "linup-logdown"])
def test_theoph_matches_an_independent_nca_implementation(method):
    data = pd.read_csv(REFERENCE / "theoph.csv", dtype={"Subject": str})
    # Unit-free arithmetic: Theoph's mg/L and hours are relabelled to a cellkin unit and days.
    kinetics = pd.DataFrame(
        {
            "subject": data["Subject"],
            "time": data["Time"],
            "value": data["conc"],
            "assay": "qpcr",
            "unit": "copies/ug",
            "lloq": 0.01,
        }
    )
    reference = pd.read_csv(REFERENCE / "theoph_pynca.csv", dtype={"subject": str})
    reference = reference[reference["auc_method"] == method].set_index("subject")
    result = nca(kinetics, auc_method=method).set_index("subject").loc[reference.index]
    for column in reference.columns.drop("auc_method"):
        np.testing.assert_allclose(
            result[column].astype(float), reference[column], rtol=1e-8, err_msg=column
        )


# ------------------------------------------------------------------ issue #16 behaviours


def test_a_missing_value_is_not_blq():
    """Day 28 not sampled (no value, no BLQ flag): dropped when read, so AUC0-28 is not
    computable (the profile ends at day 14) and the time back to baseline is censored at the
    last sample instead of being 28 days; a BLQ flag on the same row makes it BLQ."""
    table = _table([1, 7, 14, 28], [5, 800, 400, np.nan])
    missing = nca(table.assign(blq=False)).iloc[0]
    assert np.isnan(missing["auc_0_28"]) and "after the last sample" in missing["exclude_reason"]
    assert missing["time_back_to_baseline"] == 14 and missing["time_back_to_baseline_censored"]
    flagged = nca(table).iloc[0]  # _table flags NaN values BLQ
    # (0,0) (1,5) (7,800) (14,400) (28, BLQ → 0): 2.5 + 805·3 + 1200·3.5 + 400·7
    assert flagged["auc_0_28"] == pytest.approx(2.5 + 805 * 3 + 4200 + 2800)
    assert flagged["time_back_to_baseline"] == 28 and not flagged["time_back_to_baseline_censored"]
    records = nca(table.assign(blq=False)).attrs["cellkin"]["exclusions"]  # the note
    assert [r["time"] for r in records] == [28.0] and "not flagged BLQ" in records[0]["reason"]


def test_all_blq_profile_has_pknca_values():
    """A non-expander: Cmax = Clast = 0, AUClast = AUCall = AUC0-28 = 0, Tmax/Tlast/λz NaN
    with a reason, time above the LLOQ 0."""
    row = nca(_table([0, 7, 14, 28], [np.nan] * 4)).iloc[0]
    assert (row["cmax"], row["clast"], row["auc_last"], row["auc_all"]) == (0, 0, 0, 0)
    assert row["auc_0_28"] == 0 and row["time_above_lloq"] == 0
    assert np.isnan(row["tmax"]) and np.isnan(row["tlast"]) and np.isnan(row["lambda_z"])
    assert "tmax: no quantifiable sample after infusion (all BLQ)" in row["exclude_reason"]


def test_single_sample_gives_no_auc_as_pknca():
    """A lone day-0 sample: AUClast NaN ('only one level'), PKNCA #176 (was 0)."""
    row = nca(_table([0], [100.0])).iloc[0]
    assert np.isnan(row["auc_last"]) and "only one level" in row["exclude_reason"]


def test_flat_profile_has_no_lambda_z():
    """Equal values gave λz ≈ 1e-33 and t½ ≈ 1e33 days from round-off; now NaN + reason."""
    row = nca(_table([0, 7, 14, 21, 28], [np.nan, 37.1, 37.1, 37.1, 37.1])).iloc[0]
    assert np.isnan(row["lambda_z"]) and np.isnan(row["half_life"])
    assert "no variability" in row["exclude_reason"]


def test_lambda_z_is_nan_when_the_best_window_rises():
    """PKNCA: the best adjusted R² is taken over all windows. The last three points rise
    exactly exponentially (adjusted R² = 1, λz < 0), the 4-point window declines with a
    poorer fit: no λz (the old rule took the declining 4-point window)."""
    times = [0, 5, 10, 20, 30, 40]
    row = nca(_table(times, [np.nan, 200, 100, 10, 11, 12.1])).iloc[0]
    assert np.isnan(row["lambda_z"])
    assert "within the adjusted-R2 tolerance" in row["exclude_reason"]


def test_manual_points_are_used_as_given():
    """Issue #16: PKNCA's manual case (half-life 1.00653 with all 6 points; the old code
    searched windows inside them: 9.89); 2 points are enough; an empty list means no λz."""
    table = _table(range(6), [3, 1, 0.5, 0.13, 0.12, 0.113], lloq=0.01)
    row = nca(table, NCAOptions(lambda_z_include={"A": list(range(6))})).iloc[0]
    assert row["half_life"] == pytest.approx(1.00653, rel=1e-4)
    assert row["n_points_lambda_z"] == 6 and row["lambda_z_time_first"] == 0
    two = nca(table, NCAOptions(lambda_z_include={"A": [1, 3]})).iloc[0]
    assert two["lambda_z"] == pytest.approx(np.log(1 / 0.13) / 2, rel=1e-12)
    assert np.isnan(two["r2_adj"])
    empty = nca(table, NCAOptions(lambda_z_include={"A": []})).iloc[0]
    assert np.isnan(empty["lambda_z"]) and "empty include list" in empty["exclude_reason"]


def test_lambda_z_agrees_with_scipy_linregress():
    """One window (the 3 points after Tmax) against scipy.stats.linregress."""
    from scipy import stats

    fit = stats.linregress([14, 28, 56], np.log([400, 100, 10]))
    row = nca(HAND).iloc[0]
    assert row["lambda_z"] == pytest.approx(-fit.slope, rel=1e-13)
    assert row["lambda_z_corrxy"] == pytest.approx(fit.rvalue, rel=1e-13)
    assert row["r2"] == pytest.approx(fit.rvalue**2, rel=1e-13)


def test_hand_worked_aucall_aumc_mrt_and_pred_metrics():
    """HAND (linear): AUCall adds the triangle 56→84 to the trailing BLQ: 10564 + 140.
    AUMClast: trapezoid of t·C: 0-1: 1; 1-4: (2 + 160)·3/2 = 243; 4-7: (160 + 5600)·3/2 =
    8640; 7-14: (5600 + 5600)·7/2 = 39200; 14-28: (5600 + 2800)·14/2 = 58800; 28-56: (2800 +
    560)·28/2 = 47040 → 153924. MRTlast = AUMClast/AUClast."""
    row = nca(HAND).iloc[0]
    assert row["auc_all"] == pytest.approx(10564 + 140)
    assert row["aumc_last"] == pytest.approx(153924)
    assert row["mrt_last"] == pytest.approx(153924 / 10564)
    rate, pred = row["lambda_z"], row["clast_pred"]
    assert row["auc_inf_pred"] == pytest.approx(10564 + pred / rate)
    assert row["aumc_inf"] == pytest.approx(153924 + 10 * 56 / rate + 10 / rate**2)
    assert row["mrt_inf"] == pytest.approx(row["aumc_inf"] / row["auc_inf"])
    assert row["auc_pct_extrap_pred"] == pytest.approx(100 * (pred / rate) / row["auc_inf_pred"])


def test_dose_normalised_time_above_and_levels_at():
    """Dose 2e6 cells/kg: Cmax/dose. Time at or above the LLOQ (1), linear interpolation:
    0→2 on day 0-1 crosses 1 at day 0.5; 10→0 on day 56-84 (trailing BLQ as 0) crosses it at
    56 + 28·9/10 = 81.2 → 80.7 days. At or above 100: 40→800 on day 4-7 crosses at
    4 + 3·60/760; 100 at day 28 is the last level at or above it → 28 − 4.2368. C at day 20:
    400 − 300·6/14."""
    table = HAND.assign(dose=2e6, dose_unit="cells/kg")
    row = nca(table, NCAOptions(levels_at=(20,), time_above=(100,))).iloc[0]
    assert row["cmax_dn"] == pytest.approx(800 / 2e6)
    assert row["auc_last_dn"] == pytest.approx(10564 / 2e6)
    assert row["time_above_lloq"] == pytest.approx((56 + 28 * 0.9) - 0.5)
    assert row["time_above_100"] == pytest.approx(28 - (4 + 3 * 60 / 760))
    assert row["c_20"] == pytest.approx(400 - 300 * 6 / 14)
    long = nca_long(table)
    dn = long[long["metric"] == "cmax_dn"].iloc[0]
    assert (dn["unit"], dn["pknca"], dn["pptestcd"]) == ("copies/ug/cells/kg", "cmax.dn", "CMAXD")


def test_blq_actions_per_position_as_pknca_lists():
    """HAND's trailing BLQ (day 84) as LLOQ/2 and the leading pre-infusion BLQ untouched:
    {"first": "zero", "middle": "drop", "last": "lloq/2"} equals blq="lloq/2" here (only a
    trailing BLQ after infusion) and is labelled in the table."""
    options = NCAOptions(blq={"first": "zero", "middle": "drop", "last": "lloq/2"})
    row = nca(HAND, options).iloc[0]
    assert row["auc_0_84"] == pytest.approx(10564 + (10 + 0.5) / 2 * 28)
    assert row["blq"] == "first=zero;middle=drop;last=lloq/2"


def test_exclusion_column_removes_samples_with_the_reason():
    table = HAND.assign(exclude=["", "", "", "haemolysed", "", "", "", ""])
    row = nca(table).iloc[0]
    assert row["cmax"] == 400 and row["tmax"] == 14
    assert row["excluded_samples"] == "day 7: haemolysed"
    renamed = nca(table.rename(columns={"exclude": "qc"}), NCAOptions(exclude_column="qc"))
    assert renamed.loc[0, "cmax"] == 400


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("observed", np.nan),
        ("all", 10564 + 140),
        ("last", 10564),
        ("inf_obs", "obs"),
        ("inf_pred", "pred"),
    ],
)
def test_interval_past_the_last_sample(variant, expected):
    """AUC0-100 with samples to day 84: not computable by default; PKNCA's aucint.* rules."""
    row = nca(HAND, NCAOptions(intervals=[(0, 100)], interval_auc=variant)).iloc[0]
    rate = row["lambda_z"]
    clast = {"obs": 10.0, "pred": row["clast_pred"]}
    if isinstance(expected, str):
        tail = clast[expected] * (1 - np.exp(-rate * (100 - 56))) / rate
        assert row["auc_0_100"] == pytest.approx(10564 + tail, rel=1e-12)
    elif np.isnan(expected):
        assert np.isnan(row["auc_0_100"])
    else:
        assert row["auc_0_100"] == pytest.approx(expected)


def test_parameter_mapping_is_documented():
    from cellkin.metrics import nca_parameters

    table = nca_parameters().set_index("column")
    assert table.loc["auc_inf", "pknca"] == "aucinf.obs"
    assert table.loc["auc_inf", "pptestcd"] == "AUCIFO"
    assert table.loc["clast", "pknca"] == "clast.obs"
    wide = nca(HAND)
    documented = set(table.index) | set(wide.attrs["cellkin"]["interval_columns"])
    metrics = [c for c in wide.columns if c in documented]
    assert len(metrics) > 35


def test_options_are_frozen_and_validated():
    options = NCAOptions()
    with pytest.raises(AttributeError):
        options.blq = "zero"  # type: ignore[misc]
    for bad in (
        {"min_points_lambda_z": 1},
        {"adj_r2_tolerance": 0},
        {"interval_auc": "extrapolate"},
        {"impute_start": True},
        {"levels_at": [-1]},
        {"predose_max_days": -1},
        {"blq": {"first": "zero", "last": "zero"}},
        {"blq": {"before_tmax": "keep", "after_tmax": "zero"}},
    ):
        with pytest.raises(OptionError, match=next(iter(bad))):
            NCAOptions(**bad)
    with pytest.raises(OptionError, match="NCAOptions"):
        nca(HAND, {"blq": "zero"})  # type: ignore[arg-type]
