"""TEAE incidence, CRS/ICANS grades, DLT rates and 3+3 decisions against hand-worked tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cellkin import DataError, DataWarning, OptionError
from cellkin.outcomes import (
    dlt_table,
    grade_distribution,
    teae_table,
    three_plus_three,
    three_plus_three_decision,
)

GENERAL = "General disorders and administration site conditions"
GI = "Gastrointestinal disorders"
IMMUNE = "Immune system disorders"


def _subjects():
    return pd.DataFrame(
        {
            "subject": ["S1", "S2", "S3", "S4"],
            "dose_level": ["DL1", "DL1", "DL2", "DL2"],
            "crs_grade": [0, 1, 4, 2],
            "icans_grade": [0, 0, 1, 0],
            "dlt": [False, False, True, False],
        }
    )


def _events():
    rows = [
        ("S1", "Pyrexia", GENERAL, 1, 2.0, False),
        ("S1", "Pyrexia", GENERAL, 3, 10.0, False),  # S1's worst pyrexia: grade 3
        ("S1", "Fatigue", GENERAL, 2, 100.0, False),  # after the 91-day window
        ("S2", "Pyrexia", GENERAL, 2, -3.0, False),  # before infusion: not treatment-emergent
        ("S2", "Nausea", GI, 1, 91.0, False),  # on the last day of the window: counts
        ("S2", "CRS", IMMUNE, 1, 3.0, False),
        ("S3", "Cytokine release syndrome", IMMUNE, 4, 1.0, True),
        ("S3", "Pyrexia", GENERAL, 1, 0.0, False),  # day 0 counts
    ]
    return pd.DataFrame(rows, columns=["subject", "term", "soc", "grade", "onset_day", "dlt"])


def _row(incidence, group, soc, term=""):
    hit = (incidence["group"] == group) & (incidence["soc"] == soc) & (incidence["term"] == term)
    assert hit.sum() == 1, (group, soc, term)
    return incidence[hit].iloc[0]


def test_teae_flag_window():
    flags = teae_table(_events(), _subjects()).events["teae"].tolist()
    assert flags == [True, True, False, False, True, True, True, True]
    no_limit = teae_table(_events(), _subjects(), window_days=None).events["teae"]
    assert no_limit.tolist() == [True, True, True, False, True, True, True, True]


def test_teae_incidence_worst_grade_hand_worked():
    table = teae_table(_events(), _subjects()).incidence
    cols = ["n_population", "n_any", "pct_any", "n_grade_3plus", "pct_grade_3plus"]
    worst = [f"worst_grade_{g}" for g in range(1, 6)]
    # any TEAE: S1 worst 3, S2 worst 1, S3 worst 4; S4 none (4 subjects in the population)
    any_row = _row(table, "all", "Any TEAE")
    assert any_row[cols].tolist() == [4, 3, 75.0, 2, 50.0]
    assert any_row[worst].tolist() == [1, 0, 1, 1, 0]
    # general disorders = pyrexia: S1 (worst 3: grade 1 and 3 events), S3 (grade 1)
    for term in ("", "Pyrexia"):
        row = _row(table, "all", GENERAL, term)
        assert row[cols].tolist() == [4, 2, 50.0, 1, 25.0]
        assert row[worst].tolist() == [1, 0, 1, 0, 0]
    assert _row(table, "all", GI, "Nausea")[cols].tolist() == [4, 1, 25.0, 0, 0.0]
    # CRS and its spelled-out term are two terms of the immune SOC, one subject each
    assert _row(table, "all", IMMUNE)[cols].tolist() == [4, 2, 50.0, 1, 25.0]
    assert _row(table, "all", IMMUNE, "CRS")["worst_grade_1"] == 1
    order = table.loc[table["level"] != "term", "soc"].tolist()
    assert order == ["Any TEAE", GENERAL, IMMUNE, GI]  # by frequency, then name


def test_teae_by_dose_level_and_grade3_table():
    result = teae_table(_events(), _subjects(), by="dose_level")
    table = result.incidence
    assert table["group"].unique().tolist() == ["DL1", "DL2", "all"]
    cols = ["n_population", "n_any", "pct_any", "n_grade_3plus"]
    assert _row(table, "DL1", "Any TEAE")[cols].tolist() == [2, 2, 100.0, 1]
    assert _row(table, "DL1", GENERAL, "Pyrexia")[cols].tolist() == [2, 1, 50.0, 1]
    assert _row(table, "DL2", "Any TEAE")[cols].tolist() == [2, 1, 50.0, 1]
    grade3 = result.grade3
    assert (grade3["n_grade_3plus"] > 0).all()
    all3 = grade3[(grade3["group"] == "all") & (grade3["level"] == "term")]
    assert all3["term"].tolist() == ["Pyrexia", "Cytokine release syndrome"]
    assert all3[["worst_grade_3", "worst_grade_4"]].to_numpy().tolist() == [[1, 0], [0, 1]]
    assert "Grade >= 3" in str(result.summary()) and "<table" in result._repr_html_()
    pd.testing.assert_frame_equal(result.to_frame(), table)


def test_teae_errors():
    events = _events()
    events.loc[0, "subject"] = "S9"
    with pytest.raises(DataError, match="subject 'S9' who is not in `subjects`"):
        teae_table(events, _subjects())
    with pytest.raises(DataError, match="column `dose_level` is empty for subject 'S2'"):
        teae_table(
            _events(), _subjects().assign(dose_level=["DL1", None, "DL2", "DL2"]), by="dose_level"
        )
    with pytest.raises(ValueError, match="window_days"):
        teae_table(_events(), _subjects(), window_days=-1)


def test_teae_without_events_and_soc():
    events = _events().drop(columns="soc").iloc[:1]
    table = teae_table(events, _subjects()).incidence
    assert table["soc"].tolist() == ["Any TEAE", "(SOC not coded)", "(SOC not coded)"]
    none = teae_table(_events().iloc[2:4], _subjects()).incidence
    assert none["n_any"].tolist() == [0]


def test_crs_and_icans_grade_distribution_from_subjects():
    out = grade_distribution(_subjects(), "crs").set_index("group")
    grades = [f"grade_{g}" for g in range(6)]
    assert out.loc["DL1", grades].tolist() == [1, 1, 0, 0, 0, 0]
    assert out.loc["DL2", grades].tolist() == [0, 0, 1, 0, 1, 0]
    summary = ["n", "n_any", "pct_any", "n_grade_3plus", "pct_grade_3plus"]
    assert out.loc["all", summary].tolist() == [4, 3, 75.0, 1, 25.0]
    icans = grade_distribution(_subjects(), "icans", by=None)
    assert icans["group"].tolist() == ["all"] and icans["grade_1"].tolist() == [1]


def test_crs_grade_distribution_from_adverse_events():
    out = grade_distribution(_events(), "crs", subjects=_subjects()).set_index("group")
    # S2 "CRS" grade 1, S3 "Cytokine release syndrome" grade 4; S1 and S4 none
    assert out.loc["all", [f"grade_{g}" for g in range(6)]].tolist() == [2, 1, 0, 0, 1, 0]
    with pytest.raises(DataError, match="pass `subjects=`"):
        grade_distribution(_events(), "crs")
    with pytest.raises(DataError, match="subject 'S2' has"):
        grade_distribution(_subjects().assign(crs_grade=[0, None, 1, 1]), "crs")


def test_dlt_table_exact_ci():
    subjects = pd.DataFrame(
        {
            "subject": [f"S{i}" for i in range(6)],
            "dose_level": ["DL1"] * 3 + ["DL2"] * 3,
            "dlt": pd.array([False, False, False, True, False, pd.NA], dtype="boolean"),
        }
    )
    out = dlt_table(subjects).set_index("group")
    assert out["n_subjects"].tolist() == [3, 3, 6]
    assert out["n_evaluable"].tolist() == [3, 2, 5]  # DLT status unknown: not evaluable
    assert out["n_dlt"].tolist() == [0, 1, 1]
    np.testing.assert_allclose(out["dlt_rate"], [0, 0.5, 0.2])
    np.testing.assert_allclose(out.loc["DL1", "dlt_ci_upper"], 1 - 0.025 ** (1 / 3))
    ci = stats.binomtest(1, 5).proportion_ci(method="exact")
    np.testing.assert_allclose(
        out.loc["all", ["dlt_ci_lower", "dlt_ci_upper"]].astype(float), [ci.low, ci.high]
    )


def test_dlt_from_adverse_events_and_disagreement_warning():
    out = dlt_table(_subjects(), _events()).set_index("group")
    assert out["n_dlt"].tolist() == [0, 1, 1]
    with pytest.warns(DataWarning, match="subject 'S3'"):
        dlt_table(_subjects().assign(dlt=[False, False, False, False]), _events())
    # a DLT window that ends before the CRS onset (day 1) removes it
    assert dlt_table(_subjects().drop(columns="dlt"), _events(), window_days=0.5)[
        "n_dlt"
    ].tolist() == [0, 0, 0]


def _escalation(sequence, dose=None):
    levels, dlts = zip(*sequence, strict=True)
    table = pd.DataFrame(
        {"subject": [f"P{i:02d}" for i in range(len(levels))], "dose_level": levels, "dlt": dlts}
    )
    if dose is not None:
        table["dose"] = table["dose_level"].map(dose)
    return table


def _cohort(level, *dlts):
    return [(level, bool(d)) for d in dlts]


# rule tested, enrolment sequence, decision after each cohort (cohorts listed per dose level),
# MTD
ESCALATIONS = [
    pytest.param(
        _cohort("DL1", 0, 0, 0) + _cohort("DL2", 0, 1, 0) + _cohort("DL2", 0, 0, 0)
        + _cohort("DL3", 1, 1, 0),
        ["escalate", "expand", "escalate", "stop"], "DL2",
        id="0/3 escalate; 1/3 expand; 1/6 escalate; 2/3 stop; MTD = highest with <= 1/6",
    ),
    pytest.param(
        _cohort("DL1", 0, 0, 0) + _cohort("DL2", 0, 0, 0) + _cohort("DL3", 1, 0, 0)
        + _cohort("DL3", 0, 1, 0),
        ["escalate", "escalate", "expand", "stop"], None,
        id="2/6 stop; no level below with 6 treated: MTD not determined",
    ),
    pytest.param(
        _cohort("DL1", 0, 0, 0) + _cohort("DL2", 0, 0, 0) + _cohort("DL2", 0, 0, 1),
        ["escalate", "escalate", "escalate"], "DL2",
        id="no level stopped: MTD is the highest with <= 1/6 (not exceeded)",
    ),
    pytest.param(
        _cohort("DL1", 0, 0, 0) + _cohort("DL1", 1, 0, 0) + _cohort("DL2", 1, 1)
        + _cohort("DL1", 1, 1, 1),
        ["escalate", "escalate", "beyond 3+3 (not judged)", "stop"], "DL1",
        id="2/2 already stops; subjects past six at a level are not judged",
    ),
    pytest.param(
        _cohort("DL1", 0, 0), ["incomplete"], None, id="fewer than 3 evaluable: incomplete"
    ),
]  # fmt: skip


@pytest.mark.parametrize(("sequence", "decisions", "mtd"), ESCALATIONS)
def test_three_plus_three_decisions(sequence, decisions, mtd):
    result = three_plus_three(_escalation(sequence))
    assert result.cohorts["decision"].tolist() == decisions
    assert result.mtd == mtd
    assert result.dose_levels["is_mtd"].sum() == (mtd is not None)


def test_three_plus_three_tables_hand_worked():
    sequence = ESCALATIONS[0].values[0]
    result = three_plus_three(_escalation(sequence))
    levels = result.dose_levels
    assert levels["dose_level"].tolist() == ["DL1", "DL2", "DL3"]
    assert levels["n_evaluable"].tolist() == [3, 6, 3]
    assert levels["n_dlt"].tolist() == [0, 1, 2]
    assert levels["decision"].tolist() == ["escalate", "escalate", "stop"]
    assert result.mtd_exceeded
    dl2 = result.cohorts[result.cohorts["dose_level"] == "DL2"]
    assert dl2[["cum_n", "cum_dlt"]].to_numpy().tolist() == [[3, 1], [6, 1]]
    assert dl2["subjects"].iloc[0] == "P03, P04, P05"
    assert "MTD: 'DL2'" in str(result.summary())


def test_three_plus_three_dose_order_exclusions_and_non_evaluable():
    sequence = _cohort("high", 1, 1, 0) + _cohort("low", 0, 0, 0) + _cohort("low", 0, 0, 0)
    table = _escalation(sequence, dose={"low": 1.0, "high": 10.0})
    table["cohort"] = ["escalation"] * 6 + ["expansion"] * 3
    table["dlt"] = table["dlt"].astype("boolean")
    table.loc[1, "dlt"] = pd.NA
    result = three_plus_three(table)
    levels = result.dose_levels.set_index("dose_level")
    assert levels.index.tolist() == ["low", "high"]  # ordered by dose, not by label
    assert levels.loc["low", "n_excluded"] == 3  # the expansion cohort
    assert levels.loc["high", ["n_evaluable", "n_dlt", "n_excluded"]].tolist() == [2, 1, 1]
    assert result.mtd is None
    order = three_plus_three(table, dose_order=["high", "low"]).dose_levels["dose_level"]
    assert order.tolist() == ["high", "low"]
    with pytest.raises(DataError, match="'low' is not in `dose_order`"):
        three_plus_three(table, dose_order=["high"])


# The 3+3 rule as Storer (1989, doi:10.2307/2531693) states it: 0/3 escalate; 1/3 treat 3 more;
# <= 1/6 escalate; >= 2/3 or >= 2/6 stop (the level exceeds the MTD); fewer than 3: wait.
STORER_RULE = [
    (3, 0, "escalate"), (3, 1, "expand"), (3, 2, "stop"), (3, 3, "stop"),
    (6, 0, "escalate"), (6, 1, "escalate"), (6, 2, "stop"), (6, 4, "stop"),
    (0, 0, "incomplete"), (2, 1, "incomplete"), (2, 2, "stop"),
]  # fmt: skip


@pytest.mark.parametrize(("n", "dlts", "decision"), STORER_RULE)
def test_three_plus_three_decision_is_the_published_rule(n, dlts, decision):
    assert three_plus_three_decision(n, dlts) == decision


def test_three_plus_three_decision_rejects_impossible_counts():
    with pytest.raises(OptionError, match="n_dlt"):
        three_plus_three_decision(3, 4)


@pytest.mark.parametrize("seed", range(12))
def test_simulated_escalation_and_its_analysis_agree(seed):
    # The simulator and the analysis of its subjects follow the one rule: the MTD the
    # simulated trial reports is the MTD three_plus_three finds in the trial's subject table.
    from cellkin.simulate import virtual_trial

    levels = {"DL1": 1.0, "DL2": 3.0, "DL3": 10.0, "DL4": 30.0}
    risk = {"DL1": 0.05, "DL2": 0.15, "DL3": 0.35, "DL4": 0.6}
    trial = virtual_trial("stein2019", levels, design="3+3", dlt=risk, n_expansion=3,
                          seed=seed, visits=(7, 28))  # fmt: skip
    analysed = three_plus_three(trial.subjects)
    assert analysed.mtd == trial.mtd
    judged = analysed.cohorts[analysed.cohorts["decision"] != "beyond 3+3 (not judged)"]
    assert judged["n"].sum() == (trial.subjects["cohort"] == "escalation").sum()
