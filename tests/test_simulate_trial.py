"""`cellkin.simulate.virtual_trial`: designs, visits, dropout, assays and random streams.

Expected values come from the design rules themselves (a 3+3 path worked out by hand, the
power-law dose effect, visit windows) and from the Stein 2019 closed form written out in the
test, never from the function under test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cellkin
from cellkin import models
from cellkin.errors import OptionError
from cellkin.simulate import Assay, VirtualTrial, Visit, virtual_trial

STEIN = models.get("stein2019")
LEVELS = {"DL1": 1.0, "DL2": 3.0, "DL3": 10.0}


def _stein(t, cmax, tmax, foldx, alpha, fb, beta):
    """Stein et al. 2019 closed form (doi:10.1002/psp4.12388), independent of the kernel."""
    t = np.asarray(t, dtype=float)
    grow = cmax / foldx * np.exp(np.log(foldx) / tmax * np.minimum(t, tmax))
    after = np.maximum(t - tmax, 0.0)
    decline = cmax * ((1 - fb) * np.exp(-alpha * after) + fb * np.exp(-beta * after))
    return np.where(t < 0, 0.0, np.where(t < tmax, grow, decline))


def test_parallel_design_doses_dose_effect_and_exact_kinetics():
    trial = virtual_trial(
        "stein2019",
        LEVELS,
        n={"DL1": 2, "DL3": 3},
        seed=7,
        omega={},  # every subject typical: the dose effect is all that varies
        dose_effect={"cmax": 0.5},
        reference_dose=3.0,
        visits=[-1.0, 1, 9.3, 28, 84],
        assays=[Assay("qpcr", lloq=1e-9, sigma=0.0)],
    )
    assert isinstance(trial, VirtualTrial) and trial.mtd is None
    assert trial.subjects["subject"].tolist() == ["S001", "S002", "S003", "S004", "S005"]
    assert trial.subjects["dose_level"].tolist() == ["DL1", "DL1", "DL3", "DL3", "DL3"]
    assert (trial.subjects["cohort"] == "parallel").all()
    expected_cmax = STEIN.defaults["cmax"] * (trial.subjects["dose"] / 3.0) ** 0.5
    np.testing.assert_allclose(trial.parameters["cmax"], expected_cmax, rtol=1e-14)
    kinetics = trial.kinetics
    assert list(kinetics.columns) == [
        "subject", "time", "value", "assay", "unit", "lloq", "blq", "visit", "nominal_time",
    ]  # fmt: skip
    for subject, rows in kinetics.groupby("subject"):
        p = trial.parameters.set_index("subject").loc[subject, list(STEIN.param_names)]
        np.testing.assert_allclose(
            rows["value"].fillna(0.0), _stein(rows["time"], *p), rtol=1e-12, atol=0
        )
    assert kinetics.loc[kinetics["time"] < 0, "blq"].all()
    cellkin.read_kinetics(kinetics)  # a valid canonical table


def test_visits_fall_in_their_windows_and_missed_visits_are_post_infusion():
    visits = [
        Visit("SCR", -14.0, 4.0),
        Visit("PRE", -0.02, 0.06, "before"),
        Visit("D7", 7.0, 0.5),
        Visit("D28", 28.0, 2.0, "after"),
    ]
    trial = virtual_trial("stein2019", {"DL": 1.0}, n=200, seed=3, visits=visits, p_missed=0.3)
    schedule = trial.schedule
    windows = {"SCR": (-18, -10), "PRE": (-0.08, -0.02), "D7": (6.5, 7.5), "D28": (28, 30)}
    for visit, (low, high) in windows.items():
        times = schedule.loc[schedule["visit"] == visit, "time"]
        assert times.between(low, high).all(), visit
        assert (times.round(2) == times).all()
    per_visit = schedule.groupby("visit").size()
    assert per_visit["SCR"] == per_visit["PRE"] == 200  # pre-infusion visits are never missed
    for visit in ("D7", "D28"):  # binomial(200, 0.7): 140 ± 6.5
        assert 110 < per_visit[visit] < 170
    every_missed = virtual_trial("stein2019", {"DL": 1.0}, n=5, seed=3, visits=visits, p_missed=1)
    assert set(every_missed.schedule["visit"]) == {"SCR", "PRE"}


def test_dropout_cuts_sampling_and_leaves_the_other_draws_unchanged():
    kwargs = {"n": 300, "seed": 11, "visits": [1, 7, 14, 28, 56, 84, 180, 365]}
    full = virtual_trial("stein2019", {"DL": 1.0}, **kwargs)
    hazard = 1 / 100
    dropped = virtual_trial("stein2019", {"DL": 1.0}, dropout=hazard, **kwargs)
    day = dropped.subjects.set_index("subject")["dropout_day"]
    assert day.mean() == pytest.approx(100, rel=0.2)  # exponential, SE 100/sqrt(300) = 5.8
    last = dropped.schedule.groupby("subject")["time"].max()
    assert (last <= day.reindex(last.index)).all()
    pd.testing.assert_frame_equal(full.parameters, dropped.parameters)
    kept = full.schedule.merge(dropped.schedule, how="inner")
    pd.testing.assert_frame_equal(kept, dropped.schedule)  # a subset of the same visits
    mapping = {"S001": 20.0, "S002": 0.5}
    cut = virtual_trial("stein2019", {"DL": 1.0}, dropout=mapping, **kwargs)
    assert cut.kinetics.loc[cut.kinetics["subject"] == "S001", "time"].max() <= 20
    assert "S002" not in set(cut.kinetics["subject"])  # dropped out before the first visit
    assert np.isnan(cut.subjects.loc[2, "dropout_day"])


def test_three_plus_three_paths_follow_the_rules():
    def run(p):
        return virtual_trial("stein2019", LEVELS, design="3+3", dlt=p, n_expansion=4, seed=5)

    # 0/3, 0/3, then 3/3 at DL3 -> stop, DL2 has only 3 -> 3 more (0/6): MTD DL2, expand there
    trial = run({"DL1": 0.0, "DL2": 0.0, "DL3": 1.0})
    assert trial.mtd == "DL2"
    levels = trial.subjects["dose_level"].tolist()
    assert levels == ["DL1"] * 3 + ["DL2"] * 3 + ["DL3"] * 3 + ["DL2"] * 3 + ["DL2"] * 4
    assert trial.subjects["cohort"].tolist() == ["escalation"] * 12 + ["expansion"] * 4
    assert trial.subjects["dlt"].tolist() == [False] * 6 + [True] * 3 + [False] * 7
    # no DLT at all: 0/3 at the top level is confirmed by 3 more
    assert run(dict.fromkeys(LEVELS, 0.0)).subjects["dose_level"].value_counts()["DL3"] == 10
    # the lowest level not tolerated: no MTD, no expansion
    toxic = run(dict.fromkeys(LEVELS, 1.0))
    assert toxic.mtd is None and len(toxic.subjects) == 3


def test_dlt_rule_sees_the_dosed_parameters_and_its_own_stream():
    seen = {}

    def rule(subject, level, params, rng):
        seen[subject] = (level, params["cmax"], rng.uniform())
        return False

    trial = virtual_trial(
        "stein2019",
        {"low": 1.0, "high": 4.0},
        n=2,
        seed=2,
        dlt=rule,
        dose_effect={"cmax": 1.0},
        reference_dose=2.0,
        overrides={"S004": {"cmax": 5.0}},
    )
    assert set(seen) == set(trial.subjects["subject"])
    cmax = trial.parameters.set_index("subject")["cmax"]
    assert all(seen[s][1] == cmax[s] for s in seen)
    assert cmax["S004"] == 5.0
    again = {}

    def draw(subject, level, params, rng):
        again[subject] = rng.uniform()
        return False

    virtual_trial("stein2019", {"low": 1.0, "high": 4.0}, n=2, seed=2, dlt=draw)
    assert again == {s: u for s, (_, _, u) in seen.items()}  # stream [seed, i, 3]


def test_assays_scale_window_subjects_and_rounding():
    qpcr = Assay("qpcr", lloq=1e-9, sigma=0.0, subjects=["S001", "S003"])
    flow = Assay("flow", lloq=1e-12, sigma=0.0, unit="cells/uL", scale=0.005, scale_omega=0.5,
                 window=(0, 14))  # fmt: skip
    trial = virtual_trial(
        "stein2019", {"DL": 1.0}, n=3, seed=4, visits=[1, 7, 28], assays=[qpcr, flow],
        value_digits=3,
    )  # fmt: skip
    kinetics, params = trial.kinetics, trial.parameters.set_index("subject")
    assert set(kinetics.loc[kinetics["assay"] == "qpcr", "subject"]) == {"S001", "S003"}
    flow_rows = kinetics.loc[kinetics["assay"] == "flow"]
    assert set(flow_rows["nominal_time"]) == {1.0, 7.0} and (flow_rows["unit"] == "cells/uL").all()
    assert params["scale_flow"].nunique() == 3 and (params["scale_qpcr"] == 1.0).all()
    for _, row in flow_rows.iterrows():
        p = params.loc[row["subject"]]
        exact = p["scale_flow"] * _stein(row["time"], *p[list(STEIN.param_names)])
        assert row["value"] == float(f"{row['value']:.3g}")  # 3 significant digits
        assert row["value"] == pytest.approx(exact, rel=5e-3)
    # sorted by subject, then assay in the order given, then time
    order = kinetics.assign(a=kinetics["assay"].map({"qpcr": 0, "flow": 1}))
    assert order.equals(order.sort_values(["subject", "a", "time"]))


def test_same_seed_same_trial_and_different_seed_differs():
    first = virtual_trial("stein2019", LEVELS, n=2, seed=1)
    again = virtual_trial("stein2019", LEVELS, n=2, seed=1)
    other = virtual_trial("stein2019", LEVELS, n=2, seed=2)
    pd.testing.assert_frame_equal(first.kinetics, again.kinetics)
    assert not first.parameters.equals(other.parameters)
    assert "6 subjects" in repr(first)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"design": "3+3"}, "needs a `dlt` rule"),
        ({"design": "adaptive"}, "parallel"),
        ({"dose_effect": {"cmax": 0.5}}, "reference_dose"),
        ({"dose_effect": {"kel": 0.5}, "reference_dose": 1.0}, "unknown parameters"),
        ({"overrides": {"X9": {"cmax": 1.0}}}, "not enrolled"),
        ({"dropout": {"X9": 3.0}}, "not enrolled"),
        ({"dropout": -0.1}, "hazard"),
        ({"n": 4, "max_subjects": 5}, "max_subjects"),
        ({"p_missed": 1.5}, "p_missed"),
        ({"seed": -1}, "seed"),
        ({"visits": [1.0, 1.0]}, "unique"),
        ({"dlt": {"DL1": 0.5}}, "every dose level"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(OptionError, match=message):
        virtual_trial("stein2019", {"DL1": 1.0, "DL2": 3.0}, **{"seed": 0, **kwargs})


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: Visit("x", 1.0, -1.0), "window"),
        (lambda: Visit("x", 1.0, 1.0, "around"), "side"),
        (lambda: Assay("a", lloq=1.0, scale=0.0), "scale"),
        (lambda: Assay("a", lloq=1.0, scale_omega=-1.0), "scale_omega"),
        (lambda: Assay("a", lloq=1.0, window=(5, 1)), "window"),
    ],
)
def test_bad_visits_and_assays(factory, message):
    with pytest.raises(OptionError, match=message):
        factory()
