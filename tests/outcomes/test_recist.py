"""RECIST 1.1 against hand-worked cases (Eisenhauer et al. 2009, doi:10.1016/j.ejca.2008.10.026).

Every case names the rule it tests. Lesion tables are written out in full: one baseline scan
(day -7) and follow-up scans; the expected responses were worked out by hand from the rules in
the paper (§4.3 target / non-target / new lesions, Table 4 combination, §4.4 best response,
Table 3 confirmation), not from the code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cellkin import DataError, DataWarning
from cellkin.outcomes import (
    best_overall_response,
    overall_response,
    recist_timepoints,
)

SKIP = object()  # the lesion has no row at that scan (not assessed)
NE = "not_assessed"  # the lesion has a row with status not_assessed


def lesions(days, targets=(), nontargets=(), new_days=(), subject="S1", organs=None):
    """Build a lesions table.

    `targets` maps a lesion id to its diameters at each of `days` (ids starting with "LN" are
    lymph nodes, measured in short axis); a value SKIP leaves the row out and NE writes a row
    with status not_assessed. `nontargets` maps an id to its status at each day. `new_days`
    lists the days with a new lesion. Every target lesion sits in its own organ unless
    `organs` says otherwise.
    """
    rows = []
    for k, (lid, sizes) in enumerate(dict(targets).items()):
        organ = (organs or {}).get(lid, f"organ{k}")
        for day, size in zip(days, sizes, strict=True):
            if size is SKIP:
                continue
            row = {"lesion_id": lid, "kind": "target", "organ": organ, "nodal": lid[:2] == "LN"}
            if size == NE:
                row.update(diameter_mm=np.nan, status=NE)
            else:
                row.update(diameter_mm=float(size), status=np.nan)
            rows.append({"subject": subject, "day": float(day), **row})
    for lid, statuses in dict(nontargets).items():
        for day, status in zip(days, statuses, strict=True):
            if status is SKIP:
                continue
            rows.append(
                {"subject": subject, "day": float(day), "lesion_id": lid, "kind": "nontarget",
                 "organ": "bone", "nodal": False, "diameter_mm": np.nan, "status": status}
            )  # fmt: skip
    for day in new_days:
        rows.append(
            {"subject": subject, "day": float(day), "lesion_id": f"N{day}", "kind": "new",
             "organ": "liver", "nodal": False, "diameter_mm": np.nan, "status": "present"}
        )  # fmt: skip
    return pd.DataFrame(rows)


# (id = the rule tested, days, targets, nontargets, new-lesion days, expected responses after
# baseline)
TIMEPOINT_CASES = [
    ("PR: 30% decrease from baseline exactly", [-7, 28], {"T1": [50, 35]}, {}, (), ["PR"]),
    ("SD: 29% decrease is not PR", [-7, 28], {"T1": [50, 35.5]}, {}, (), ["SD"]),
    (
        "PD: >=20% and >=5 mm over the nadir",
        [-7, 28, 56],
        {"T1": [50, 30, 36]},
        {},
        (),
        ["PR", "PD"],
    ),
    (
        "5 mm rule: +27% but +4 mm over the nadir is not PD",
        [-7, 28, 56],
        {"T1": [20, 15, 19]},
        {},
        (),
        ["SD", "SD"],
    ),
    (
        "5 mm rule: +33% and +5 mm over the nadir is PD",
        [-7, 28, 56],
        {"T1": [20, 15, 20]},
        {},
        (),
        ["SD", "PD"],
    ),
    (
        "nadir after baseline: +25% over nadir is PD although -25% from baseline",
        [-7, 28, 56],
        {"T1": [60, 40, 40], "T2": [40, 20, 35]},
        {},
        (),
        ["PR", "PD"],
    ),
    (
        "nadir is baseline when no decrease: +20% and +8 mm from baseline is PD",
        [-7, 28],
        {"T1": [40, 48]},
        {},
        (),
        ["PD"],
    ),
    ("CR: every non-nodal target lesion 0 mm", [-7, 28], {"T1": [30, 0]}, {}, (), ["CR"]),
    (
        "nodal CR: non-nodal 0 mm and node 9 mm short axis (sum 9 mm, still CR)",
        [-7, 28],
        {"T1": [30, 0], "LN1": [20, 9]},
        {},
        (),
        ["CR"],
    ),
    (
        "node of 10 mm short axis is not normal: PR, not CR",
        [-7, 28],
        {"T1": [30, 0], "LN1": [20, 10]},
        {},
        (),
        ["PR"],
    ),
    ("new lesion is PD whatever the targets do", [-7, 28], {"T1": [50, 30]}, {}, (28,), ["PD"]),
    (
        "unequivocal non-target progression is PD",
        [-7, 28],
        {"T1": [50, 30]},
        {"NT1": ["present", "unequivocal_progression"]},
        (),
        ["PD"],
    ),
    (
        "NE: a target lesion without a row at the scan",
        [-7, 28],
        {"T1": [50, 30], "T2": [40, SKIP]},
        {},
        (),
        ["NE"],
    ),
    (
        "NE: a target lesion with status not_assessed",
        [-7, 28],
        {"T1": [50, 30], "T2": [40, NE]},
        {"NT1": ["present", "present"]},
        (),
        ["NE"],
    ),
    (
        "missing target but the measured ones already show PD: PD, not NE",
        [-7, 28],
        {"T1": [50, 90], "T2": [20, SKIP]},
        {},
        (),
        ["PD"],
    ),
    (
        "Table 4: target CR + non-target absent = CR",
        [-7, 28],
        {"T1": [30, 0]},
        {"NT1": ["present", "absent"]},
        (),
        ["CR"],
    ),
    (
        "Table 4: target CR + non-target present (non-CR/non-PD) = PR",
        [-7, 28],
        {"T1": [30, 0]},
        {"NT1": ["present", "present"]},
        (),
        ["PR"],
    ),
    (
        "Table 4: target CR + non-target not evaluated = PR",
        [-7, 28],
        {"T1": [30, 0]},
        {"NT1": ["present", "not_assessed"]},
        (),
        ["PR"],
    ),
    (
        "Table 4: target SD + non-target not evaluated = SD",
        [-7, 28],
        {"T1": [30, 28]},
        {"NT1": ["present", SKIP]},
        (),
        ["SD"],
    ),
    (
        "Table 5: non-target disease only: present, absent, progression",
        [-7, 28, 56, 84],
        {},
        {"NT1": ["present", "present", "absent", "unequivocal_progression"]},
        (),
        ["NON-CR/NON-PD", "CR", "PD"],
    ),
]


@pytest.mark.parametrize(
    ("days", "targets", "nontargets", "new_days", "expected"),
    [case[1:] for case in TIMEPOINT_CASES],
    ids=[case[0] for case in TIMEPOINT_CASES],
)
def test_timepoint_response(days, targets, nontargets, new_days, expected):
    table = recist_timepoints(lesions(days, targets, nontargets, new_days))
    assert table["baseline"].tolist() == [True] + [False] * len(expected)
    assert table["response"].tolist()[1:] == expected


def test_sums_percent_changes_and_nadir_hand_worked():
    # baseline 60 + 40 = 100; day 28: 40 + 20 = 60 (-40%, nadir 100); day 56: 35 + 35 = 70
    # (-30% from baseline, +16.7% over nadir 60, +10 mm: not PD, and PR by the 30% rule)
    table = recist_timepoints(lesions([-7, 28, 56], {"T1": [60, 40, 35], "T2": [40, 20, 35]}))
    assert table["sum_diameters_mm"].tolist() == [100.0, 60.0, 70.0]
    np.testing.assert_allclose(table["pct_change_baseline"], [0.0, -40.0, -30.0])
    assert table["nadir_mm"].tolist() == [100.0, 100.0, 60.0]
    np.testing.assert_allclose(table["pct_change_nadir"], [0.0, -40.0, 100 * 10 / 60])
    assert table["response"].tolist()[1:] == ["PR", "PR"]
    assert table["target_response"].tolist()[1:] == ["PR", "PR"]
    assert table["nontarget_response"].tolist()[1:] == [None, None]


def test_incomplete_assessment_does_not_become_the_nadir():
    # day 28 misses T2 (partial sum 10): NE, and the nadir stays 60 for day 56 (sum 60: SD)
    table = recist_timepoints(lesions([-7, 28, 56], {"T1": [30, 10, 30], "T2": [30, SKIP, 30]}))
    assert np.isnan(table["sum_diameters_mm"][1])
    assert table["nadir_mm"].tolist() == [60.0, 60.0, 60.0]
    assert table["response"].tolist()[1:] == ["NE", "SD"]


@pytest.mark.parametrize(
    ("target", "nontarget", "new", "expected"),
    [
        ("CR", "CR", False, "CR"),
        ("CR", None, False, "CR"),
        ("CR", "NON-CR/NON-PD", False, "PR"),
        ("CR", "NE", False, "PR"),
        ("PR", "NON-CR/NON-PD", False, "PR"),
        ("PR", "NE", False, "PR"),
        ("SD", "NE", False, "SD"),
        ("NE", "NON-CR/NON-PD", False, "NE"),
        ("PD", "CR", False, "PD"),
        ("SD", "PD", False, "PD"),
        ("CR", "CR", True, "PD"),
        (None, "CR", False, "CR"),
        (None, "NON-CR/NON-PD", False, "NON-CR/NON-PD"),
        (None, "NE", False, "NE"),
        (None, "NON-CR/NON-PD", True, "PD"),
    ],
)
def test_overall_response_is_eisenhauer_table_4_and_5(target, nontarget, new, expected):
    assert overall_response(target, nontarget, new) == expected


def test_overall_response_rejects_unknown_codes():
    with pytest.raises(ValueError, match="unknown target"):
        overall_response("XX", None, False)
    with pytest.raises(ValueError, match="target or non-target"):
        overall_response(None, None, False)


# ------------------------------------------------------------------------ best response


def points(*visits, measurable=True, subject="S1"):
    """A timepoints table from (day, response) pairs, after a baseline on day -7."""
    rows = [{"subject": subject, "day": -7.0, "baseline": True, "response": None}]
    rows += [
        {"subject": subject, "day": float(d), "baseline": False, "response": r} for d, r in visits
    ]
    table = pd.DataFrame(rows)
    table["target_response"] = table["response"] if measurable else None
    table["sum_diameters_mm"] = 50.0 if measurable else np.nan
    table["pct_change_baseline"] = np.where(table["baseline"], 0.0, -10.0)
    table["baseline_issues"] = ""
    return table


C = {"confirm": True}


def case(rule, visits, kwargs, bor, bor_day):
    return pytest.param(visits, kwargs, bor, bor_day, id=rule)


# rule tested, visits (day, response), keyword arguments, expected BOR and bor_day
BOR_CASES = [
    case("no confirmation needed: single PR counts", [(28, "PR"), (56, "SD")], {}, "PR", 28),
    case("confirm: PR confirmed by PR >= 28 days later", [(28, "PR"), (56, "PR")], C, "PR", 28),
    case("confirm: repeat 21 days later is no confirmation; SD at day 49 >= 42",
         [(28, "PR"), (49, "PR")], C, "SD", 49),
    case("confirm: unconfirmed PR becomes SD when the SD duration is met",
         [(28, "PR"), (56, "SD")], C, "SD", 56),
    case("confirm: unconfirmed PR then PD, SD too early: PD", [(28, "PR"), (56, "PD")], C,
         "PD", 56),
    case("confirm: unconfirmed PR then PD, SD duration met (min 28 d): SD",
         [(28, "PR"), (56, "PD")], C | {"min_sd_days": 28}, "SD", 28),
    case("confirm: CR confirmed by CR", [(28, "CR"), (63, "CR")], C, "CR", 28),
    case("confirm Table 3: CR then PR gives PR", [(28, "CR"), (63, "PR")], C, "PR", 28),
    case("confirm Table 3: PR then CR gives PR", [(28, "PR"), (63, "CR")], C, "PR", 28),
    case("confirm: NE between response and confirmation is allowed",
         [(28, "PR"), (42, "NE"), (84, "PR")], C, "PR", 28),
    case("confirm: SD in between breaks the confirmation",
         [(28, "PR"), (56, "SD"), (84, "PR")], C, "SD", 56),
    case("confirm: confirmation after PD does not count",
         [(28, "PR"), (42, "PD"), (84, "PR")], C, "PD", 42),
    case("SD minimum duration: SD at day 42 exactly counts", [(42, "SD")], {}, "SD", 42),
    case("SD minimum duration not met, then PD: PD", [(28, "SD"), (56, "PD")], {}, "PD", 56),
    case("SD minimum duration not met, nothing after: NE", [(28, "SD")], {}, "NE", np.nan),
    case("min_sd_days argument: SD at day 28 counts with min 28", [(28, "SD")],
         {"min_sd_days": 28}, "SD", 28),
    case("PD at first assessment: PD", [(28, "PD"), (56, "PR")], {}, "PD", 28),
    case("responses after PD do not count", [(28, "SD"), (42, "PD"), (84, "CR")], {}, "PD", 42),
    case("only NE assessments: NE", [(28, "NE"), (56, "NE")], {}, "NE", np.nan),
    case("no post-baseline assessment: NE", [], {}, "NE", np.nan),
    case("CR beats PR without confirmation", [(28, "PR"), (56, "CR")], {}, "CR", 56),
]  # fmt: skip


@pytest.mark.parametrize(("visits", "kwargs", "bor", "bor_day"), BOR_CASES)
def test_best_overall_response(visits, kwargs, bor, bor_day):
    row = best_overall_response(points(*visits), **kwargs).iloc[0]
    assert row["bor"] == bor
    np.testing.assert_equal(row["bor_day"], bor_day)
    assert row["responder"] == (bor in ("CR", "PR"))


def test_best_response_non_target_only_is_non_cr_non_pd():
    table = points((56, "NON-CR/NON-PD"), measurable=False)
    assert best_overall_response(table).loc[0, "bor"] == "NON-CR/NON-PD"


def test_confirmed_column():
    both = pd.concat([points((28, "PR"), (56, "PR")), points((28, "PR"), subject="S2")])
    out = best_overall_response(both).set_index("subject")
    assert out.loc["S1", "confirmed"] == True  # noqa: E712 (pandas boolean)
    assert out.loc["S2", "confirmed"] == False  # noqa: E712
    assert best_overall_response(points((56, "SD")))["confirmed"].isna().all()


def test_best_response_from_lesions_end_to_end():
    # T1 100 -> 60 (PR, day 28) -> 55 (PR, day 63) -> 80 (PD: +45% and +25 mm over nadir 55)
    table = lesions([-7, 28, 63, 91], {"T1": [100, 60, 55, 80]})
    out = best_overall_response(table, confirm=True)
    row = out.iloc[0]
    assert (row["bor"], row["bor_day"], row["first_pd_day"]) == ("PR", 28.0, 91.0)
    assert row["best_pct_change"] == -45.0
    assert row["last_adequate_day"] == 63.0
    assert row["n_assessments"] == 3


# ------------------------------------------------------------------------------ baseline


def test_baseline_is_last_scan_on_or_before_day_0():
    table = recist_timepoints(lesions([-30, -3, 28], {"T1": [80, 50, 35]}))
    assert table["day"].tolist() == [-3.0, 28.0]  # the screening scan is not used
    assert table["response"].tolist()[1] == "PR"


def test_baseline_is_first_scan_when_none_before_day_0():
    table = recist_timepoints(lesions([2, 28], {"T1": [50, 35]}))
    assert table["baseline"].tolist() == [True, False]


def test_baseline_day_argument():
    table = recist_timepoints(lesions([-30, -3, 28], {"T1": [50, 80, 35]}), baseline_day=-10)
    assert table["day"].tolist() == [-30.0, -3.0, 28.0]
    assert table["response"].tolist()[1:] == ["PD", "PR"]


BASELINE_ERRORS = [
    ("at most 5 target lesions", {f"T{i}": [20, 20] for i in range(6)}, None, "6 target lesions"),
    (
        "at most 2 target lesions per organ",
        {"T1": [20, 20], "T2": [20, 20], "T3": [20, 20]},
        {"T1": "liver", "T2": "liver", "T3": "liver"},
        "organ 'liver'",
    ),
    ("non-nodal target >= 10 mm", {"T1": [9, 9]}, None, "'T1' \\(non-nodal\\) measures 9 mm"),
    ("nodal target >= 15 mm short axis", {"LN1": [14, 14]}, None, "'LN1' \\(nodal"),
]


@pytest.mark.parametrize(
    ("targets", "organs", "message"),
    [case[1:] for case in BASELINE_ERRORS],
    ids=[case[0] for case in BASELINE_ERRORS],
)
def test_baseline_validity(targets, organs, message):
    table = lesions([-7, 28], targets, organs=organs)
    with pytest.raises(DataError, match=f"subject 'S1'.*{message}.*strict=False"):
        recist_timepoints(table)
    with pytest.warns(DataWarning, match="baseline problem"):
        flagged = recist_timepoints(table, strict=False)
    assert flagged["baseline_issues"].str.contains("subject 'S1'").all()
    with pytest.warns(DataWarning):
        assert best_overall_response(table, strict=False)["baseline_issues"].iloc[0] != ""


def test_valid_baseline_has_empty_flag():
    table = recist_timepoints(lesions([-7, 28], {"T1": [10, 10], "LN1": [15, 15]}))
    assert (table["baseline_issues"] == "").all()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (lesions([-7, 28], {"T1": [NE, 20]}), "no diameter at the baseline"),
        (lesions([-7], {}, new_days=(-7,)), "no usable baseline"),
        (
            pd.concat([lesions([-7, 28], {"T1": [20, 20]}), lesions([28], {"T9": [15]})]),
            "target lesion 'T9' on day 28 was not recorded at baseline",
        ),
        (
            pd.concat([lesions([-7], {"T1": [20]}), lesions([28], {}, {"NT1": ["present"]})]),
            "nontarget lesion 'NT1'",
        ),
    ],
    ids=["unmeasured baseline target", "new lesion at baseline", "target after baseline",
         "non-target after baseline"],
)  # fmt: skip
def test_bad_lesion_tables_raise(table, message):
    with pytest.raises(DataError, match=message):
        recist_timepoints(table)


def test_missing_baseline_scan_raises():
    # no scan on or before day 0: the first scan (day 5) would be the baseline, but it shows a
    # new lesion, so the baseline scan is missing
    table = lesions([5, 28], {}, new_days=(5, 28))
    with pytest.raises(DataError, match=r"subject 'S1' has no usable baseline.*day 0"):
        recist_timepoints(table)


def test_several_subjects_keep_their_order_and_input_is_not_modified():
    first = lesions([-7, 28], {"T1": [50, 30]}, subject="B")
    table = pd.concat([first, lesions([-7, 28], {"T1": [50, 80]}, subject="A")])
    before = table.copy()
    out = best_overall_response(table)
    assert out["subject"].tolist() == ["B", "A"]
    assert out["bor"].tolist() == ["PR", "PD"]
    pd.testing.assert_frame_equal(table, before)


# --------------------------------------------------------------------------------- figures


def test_waterfall_spider_and_swimmer_plots():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cellkin import plot

    table = pd.concat(
        [
            lesions([-7, 28, 56], {"T1": [50, 30, 28]}, subject="A"),
            lesions([-7, 28, 56], {"T1": [50, 55, 70]}, subject="B"),
            lesions([-7, 28], {}, {"NT1": ["present", "present"]}, subject="C"),
        ]
    )
    points = recist_timepoints(table)
    bor = best_overall_response(points)
    fig, axes = plt.subplots(1, 3)
    assert plot.waterfall(bor, ax=axes[0]) is axes[0]
    heights = [patch.get_height() for patch in axes[0].patches]
    assert heights == [10.0, -44.0]  # B: best of +10% and +40%; C has no measurable lesion
    assert plot.spider(points, ax=axes[1], bor=bor) is axes[1]
    assert len(axes[1].get_lines()) == 3 + 2  # three subjects and two threshold lines
    follow_up = pd.Series({"A": 300.0})
    assert plot.swimmer(points, ax=axes[2], follow_up=follow_up) is axes[2]
    assert [t.get_text() for t in axes[2].get_yticklabels()] == ["C", "B", "A"]
    plt.close(fig)
