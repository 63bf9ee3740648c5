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
from cellkin.errors import DataError, DataWarning
from cellkin.metrics import nca

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
    included = nca(HAND, lambda_z_include={"A": [7, 14, 28]}).iloc[0]
    assert included["n_points_lambda_z"] == 3 and included["lambda_z_time_first"] == 7
    excluded = nca(HAND, lambda_z_exclude={("A", "qpcr"): [56]}).iloc[0]
    assert np.isnan(excluded["lambda_z"])
    assert "fewer than 3" in excluded["exclude_reason"]
    with pytest.raises(DataError, match=r"no sample at day\(s\) \[9.0\]"):
        nca(HAND, lambda_z_include={"A": [9]})
    with pytest.raises(DataError, match="no post-infusion samples"):
        nca(HAND, lambda_z_include={"Z": [7]})


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
    row = nca(HAND, blq_rule=rule).iloc[0]
    assert row["auc_last"] == pytest.approx(expected_last)
    if expected_0_84 is None:
        assert np.isnan(row["auc_0_84"])
        assert "auc_0_84: interval ends after the last sample (day 84)" in row["exclude_reason"]
    else:
        assert row["auc_0_84"] == pytest.approx(expected_0_84)
    assert row["blq_rule"] == rule


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
    zero = nca(table, intervals=[(0, 56)], blq_rule="zero").iloc[0]
    assert zero["auc_0_56"] == pytest.approx(60 + 1260 + 400 * 7 + 50 * 14 + 50 * 28)


def test_interval_after_last_sample_and_extrapolation():
    table = _table([0, 1, 2, 3, 4], 100 * np.exp(-0.2 * np.arange(5)), lloq=0.01)
    row = nca(table, intervals=[(0, 10)], auc_method="log").iloc[0]
    assert np.isnan(row["auc_0_10"])
    assert "extrapolate=True" in row["exclude_reason"]
    extended = nca(table, intervals=[(0, 10)], auc_method="log", extrapolate=True).iloc[0]
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
    ("times", "values", "reason_fragment"),
    [
        ([1, 4, 7], [np.nan, np.nan, np.nan], "no quantifiable sample after infusion"),
        ([-3], [np.nan], "no sample after infusion"),
        ([7], [100.0], "fewer than 3"),
        ([1, 4, 7], [10.0, 50, 300], "no sample after Tmax"),
        ([1, 4, 7, 14, 28], [10.0, 10, 10, 10, 10], "lambda_z <= 0"),
    ],
    ids=["all-BLQ", "pre-infusion only", "one sample", "peak at last sample", "flat"],
)
def test_edge_cases_give_nan_with_a_reason(times, values, reason_fragment):
    row = nca(_table(times, values)).iloc[0]
    assert reason_fragment in row["exclude_reason"]


def test_one_sample_profile():
    row = nca(_table([7], [100.0])).iloc[0]
    assert row["cmax"] == 100 and row["tmax"] == 7
    assert row["auc_last"] == pytest.approx(350)  # (0 + 100)/2·7 with C(0) = 0
    assert np.isnan(row["auc_0_28"])


def test_without_start_imputation_intervals_from_zero_are_not_computable():
    row = nca(HAND, impute_start=False).iloc[0]
    assert np.isnan(row["auc_0_28"])
    assert "interval starts before the first sample" in row["exclude_reason"]
    assert row["auc_last"] == pytest.approx(10564 - 1)


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
    long = nca(table, long=True)
    cmax = long[(long["metric"] == "cmax") & (long["subject"] == "A")]
    assert cmax["unit"].tolist() == ["cells/uL", "copies/ug"]
    assert cmax["pptestcd"].iloc[0] == "CMAX"
    assert set(long.loc[long["metric"] == "auc_0_28", "unit"]) == {"cells/uL*day", "copies/ug*day"}
    missing = long[(long["subject"] == "B") & (long["metric"] == "auc_0_84")]
    assert missing["value"].isna().all()
    assert missing["exclude_reason"].str.contains("after the last sample").all()
    assert wide.attrs["cellkin"]["auc_method"] == "linear"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"auc_method": "spline"}, "auc_method"),
        ({"blq_rule": "half"}, "blq_rule"),
        ({"tbb_method": "model"}, "tbb_method"),
        ({"baseline": "screening"}, "baseline"),
        ({"baseline": -1.0}, "baseline"),
        ({"intervals": [(28, 0)]}, "not a valid interval"),
        ({"intervals": [(0, 28, 84)]}, "pairs of days"),
    ],
)
def test_bad_options_raise(kwargs, message):
    with pytest.raises(DataError, match=message):
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
