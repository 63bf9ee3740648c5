"""Time back to baseline as a time-to-event endpoint: Kaplan–Meier summaries (issue 15).

References: lifelines' ``KaplanMeierFitter`` called directly on the same durations and events,
and the product-limit estimate worked by hand. The one documented difference: where S(t) sits
at exactly 0.5 over an interval, the median is the interval's midpoint (R's
``quantile.survfit`` and SAS), where lifelines takes its start.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.utils import median_survival_times

import cellkin
from cellkin.metrics import nca, summarize, time_to_event_summary

DAYS = {"p_back_1m": 30.0, "p_back_3m": 91.0, "p_back_6m": 183.0}


def _lifelines(durations: np.ndarray, events: np.ndarray) -> KaplanMeierFitter:
    return KaplanMeierFitter().fit(durations, event_observed=events)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_summary_equals_lifelines_on_the_same_durations_and_events(seed):
    rng = np.random.default_rng(seed)
    returned = rng.exponential(90.0, 41)  # days to baseline
    followed = rng.uniform(60.0, 400.0, 41)  # last sample
    durations = np.minimum(returned, followed).round(2)
    events = returned <= followed
    fitter = _lifelines(durations, events)
    assert not np.isclose(fitter.survival_function_.to_numpy(), 0.5).any()  # no plateau at ½
    found = time_to_event_summary(durations, events)
    assert (found["n"], found["n_events"], found["n_censored"]) == (
        41,
        events.sum(),
        (~events).sum(),
    )
    assert found["median"] == pytest.approx(fitter.median_survival_time_, rel=1e-12)
    limits = median_survival_times(fitter.confidence_interval_).to_numpy().ravel()
    assert (found["median_ci_lower"], found["median_ci_upper"]) == pytest.approx(tuple(limits))
    band = fitter.confidence_interval_cumulative_density_
    for name, day in DAYS.items():
        assert day <= durations.max()  # within follow-up
        expected = 1 - fitter.survival_function_at_times(day).iloc[0]
        assert found[name] == pytest.approx(expected, rel=1e-12, abs=1e-15)
        at = band[band.index <= day].iloc[-1]
        assert found[f"{name}_ci_lower"] == pytest.approx(at.iloc[0], rel=1e-9, abs=1e-12)
        assert found[f"{name}_ci_upper"] == pytest.approx(at.iloc[1], rel=1e-9, abs=1e-12)


def test_the_product_limit_by_hand():
    """Returns at 5, 8, 12 d; censored at 8 and 20 d. S = 4/5 after 5 d, 4/5·3/4 = 0.6
    after 8 d (the one censored at 8 d still at risk then), 0.6·1/2 = 0.3 after 12 d."""
    durations = np.array([5.0, 8.0, 8.0, 12.0, 20.0])
    events = np.array([True, True, False, True, False])
    found = time_to_event_summary(durations, events, landmarks={"p10": 10.0, "p25": 25.0})
    assert found["median"] == 12.0
    assert found["p10"] == pytest.approx(0.4, rel=1e-12)
    assert np.isnan(found["p25"])  # after the last subject's time (20 d): not estimable
    assert (found["n"], found["n_events"], found["n_censored"]) == (5, 3, 2)
    nothing = time_to_event_summary(np.array([np.nan]), np.array([False]))
    assert nothing["n"] == 0 and np.isnan(nothing["median"])


def test_a_median_on_a_plateau_at_one_half_is_its_midpoint():
    """All four return, at 1, 2, 3, 4 d: S = ½ on [2, 3). R and SAS: 2.5; lifelines: 2."""
    durations, events = np.array([1.0, 2.0, 3.0, 4.0]), np.ones(4, dtype=bool)
    assert time_to_event_summary(durations, events)["median"] == 2.5
    assert _lifelines(durations, events).median_survival_time_ == 2.0


def test_summarize_uses_kaplan_meier_for_the_time_back_to_baseline():
    """On the example's NCA: per dose level and assay, the row is the Kaplan–Meier summary of
    that group, and no row is a median over censored and observed values alike."""
    study = cellkin.load_example()
    table = nca(study.kinetics).merge(study.subjects[["subject", "dose_level"]], on="subject",
                                      suffixes=("_x", ""))  # fmt: skip
    summary = summarize(table, by="dose_level", metrics=["time_back_to_baseline"])
    naive_differs = False
    for row in summary.itertuples():
        part = table[(table["dose_level"] == row.dose_level) & (table["assay"] == row.assay)]
        known = part["time_back_to_baseline_censored"].notna()
        durations = part["time_back_to_baseline"][known].to_numpy(float)
        events = ~part["time_back_to_baseline_censored"][known].astype(bool).to_numpy()
        expected = time_to_event_summary(durations, events)
        for name, value in expected.items():
            assert getattr(row, name) == pytest.approx(value, nan_ok=True), name
        assert (
            row.n_missing == (~known).sum() + part.loc[known, "time_back_to_baseline"].isna().sum()
        )
        assert np.isnan(row.mean) and np.isnan(row.sd)
        naive = np.nanmedian(part["time_back_to_baseline"].to_numpy(float))
        naive_differs |= not np.isclose(naive, row.median, equal_nan=True)
    assert naive_differs  # the old summary's number was not the Kaplan–Meier median


def test_model_based_times_censored_at_the_horizon_are_censored_in_the_summary():
    metrics = pd.DataFrame({
        "subject": list("abcd"), "assay": "qpcr",
        "time_back_to_baseline": [30.0, 50.0, 56.0, 80.0],
        "time_back_to_baseline_censored": [False, False, True, True],
    })  # fmt: skip
    row = summarize(metrics, by=None, metrics=["time_back_to_baseline"]).iloc[0]
    # S = 3/4 after 30 d, 3/4·2/3 = 1/2 after 50 d, then both censored: median on the
    # plateau at ½ from 50 d to the last time, 80 d -> midpoint 65 d.
    assert (row["n_events"], row["n_censored"]) == (2, 2)
    assert row["median"] == 65.0 and row["max"] == 50.0
