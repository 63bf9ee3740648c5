"""Kaplan–Meier estimates against R's survival::survfit, and PFS derivation.

The reference values in ``reference/km_reference_*.csv`` were produced by
``reference/km_reference.R`` (R 4.2.2, survival 3.5.3) on the data in KM_DATA below; the test
never needs R. Regenerate with ``cd tests/outcomes/reference && Rscript km_reference.R``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cellkin import DataError, plot
from cellkin.outcomes import KaplanMeierResult, derive_pfs, kaplan_meier

REFERENCE = Path(__file__).parent / "reference"
TOL = 1e-10

# The data written into km_reference.R (keep both in step).
KM_DATA = pd.DataFrame(
    {
        "subject": [f"S{i:02d}" for i in range(34)],
        "dose_level": [1] * 12 + [2] * 10 + [3] * 8 + [4] * 4,
        "pfs_days": [
            10, 25, 25, 40, 61, 61, 61, 90, 120, 150, 200, 365,
            15, 30, 30, 45, 91, 120, 183, 200, 300, 400,
            5, 12, 12, 33, 50, 75, 75, 110,
            30, 61, 100, 365,
        ],
        "pfs_event": [
            1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0, 0,
            1, 1, 1, 1, 1, 0, 1, 0, 1, 0,
            1, 1, 1, 0, 1, 1, 0, 1,
            1, 0, 1, 0,
        ],
    }
)  # fmt: skip
SETTINGS = [(c, level) for c in ("log", "log-log", "plain") for level in (0.95, 0.90)]


def _reference(name: str, conf_type: str, confidence: float) -> pd.DataFrame:
    table = pd.read_csv(REFERENCE / f"km_reference_{name}.csv", na_values=["NA"])
    table["group"] = table["group"].astype(str)
    pick = (table["conf_type"] == conf_type) & np.isclose(table["confidence"], confidence)
    return table[pick].reset_index(drop=True)


def _fit(conf_type: str, confidence: float, by: str | None) -> KaplanMeierResult:
    return kaplan_meier(KM_DATA, "pfs", by=by, confidence=confidence, conf_type=conf_type)


def _ours(result: KaplanMeierResult, frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(group=frame["group"].astype(str))


def _assert_close_or_both_nan(ours, theirs, what):
    ours, theirs = np.asarray(ours, float), np.asarray(theirs, float)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg=what)
    both = ~np.isnan(theirs)
    np.testing.assert_allclose(ours[both], theirs[both], rtol=0, atol=TOL, err_msg=what)


@pytest.mark.parametrize(("conf_type", "confidence"), SETTINGS)
def test_survival_table_matches_r(conf_type, confidence):
    ref = _reference("table", conf_type, confidence)
    for by in (None, "dose_level"):
        result = _fit(conf_type, confidence, by)
        ours = _ours(result, result.table)
        merged = ref.merge(ours, on=["group", "time"], suffixes=("_r", ""), validate="1:1")
        expected = ref[ref["group"] == "all"] if by is None else ref[ref["group"] != "all"]
        assert len(merged[merged["group"].isin(ours["group"])]) == len(expected)
        merged = merged[merged["group"].isin(ours["group"])]
        for column in ("at_risk", "events", "censored"):
            assert merged[column].tolist() == merged[f"{column}_r"].tolist(), column
        for column in ("survival", "ci_lower", "ci_upper"):
            _assert_close_or_both_nan(merged[column], merged[f"{column}_r"], column)
        extra = ours[
            ~ours.set_index(["group", "time"]).index.isin(merged.set_index(["group", "time"]).index)
        ]
        assert (extra["time"] == 0).all() and (extra["survival"] == 1).all()
        assert (extra[["ci_lower", "ci_upper"]] == 1).all().all()


@pytest.mark.parametrize(("conf_type", "confidence"), SETTINGS)
def test_median_and_its_ci_match_r(conf_type, confidence):
    ref = _reference("median", conf_type, confidence)
    ours = pd.concat(
        [
            _ours(r, r.median)
            for r in (_fit(conf_type, confidence, None), _fit(conf_type, confidence, "dose_level"))
        ]
    )
    merged = ref.merge(ours, on="group", suffixes=("_r", ""), validate="1:1")
    assert len(merged) == 5
    for column in ("median", "ci_lower", "ci_upper"):
        _assert_close_or_both_nan(merged[column], merged[f"{column}_r"], column)
    # level 2 reaches S = 0.5 exactly at day 91; R's rule gives the midpoint to day 183
    assert merged.set_index("group").loc["2", "median"] == 137.0


@pytest.mark.parametrize(("conf_type", "confidence"), SETTINGS)
def test_landmarks_match_r(conf_type, confidence):
    ref = _reference("landmarks", conf_type, confidence)
    # R reports events/censored per interval between landmarks; ours are cumulative
    for column in ("events", "censored"):
        ref[f"{column}_cum"] = ref.groupby("group")[column].cumsum()
    for by in (None, "dose_level"):
        result = _fit(conf_type, confidence, by)
        ours = _ours(result, result.landmarks())
        merged = ref.merge(ours, on=["group", "time"], suffixes=("_r", ""), validate="1:1")
        assert len(merged) == len(ours) == 5 * len(result.groups)
        assert merged["at_risk"].tolist() == merged["at_risk_r"].tolist()
        assert merged["events"].tolist() == merged["events_cum"].tolist()
        assert merged["censored"].tolist() == merged["censored_cum"].tolist()
        for column in ("survival", "ci_lower", "ci_upper"):
            _assert_close_or_both_nan(merged[column], merged[f"{column}_r"], column)


def test_logrank_matches_r_survdiff():
    ref = pd.read_csv(REFERENCE / "km_reference_logrank.csv").iloc[0]
    test = _fit("log-log", 0.95, "dose_level").logrank().iloc[0]
    assert test["df"] == ref["df"] == 3
    assert test["test_statistic"] == pytest.approx(ref["chisq"], abs=TOL)
    assert test["p_value"] == pytest.approx(ref["p_value"], abs=TOL)
    with pytest.raises(ValueError, match="two groups"):
        _fit("log-log", 0.95, None).logrank()


def test_log_log_interval_is_lifelines_exponential_greenwood():
    from lifelines import KaplanMeierFitter

    rows = KM_DATA[KM_DATA["dose_level"] == 1]
    with np.errstate():
        fitter = KaplanMeierFitter().fit(rows["pfs_days"], rows["pfs_event"])
    ci = fitter.confidence_interval_.to_numpy()
    ours = _fit("log-log", 0.95, "dose_level").table.query("group == 1")
    np.testing.assert_allclose(ours["survival"], fitter.survival_function_.iloc[:, 0], atol=TOL)
    np.testing.assert_allclose(ours[["ci_lower", "ci_upper"]], ci, atol=TOL)


def test_numpy_error_state_is_left_alone():
    before = np.geterr()
    _fit("log", 0.95, "dose_level")
    assert np.geterr() == before


def test_adtte_input_with_cnsr_polarity():
    adtte = pd.DataFrame(
        {
            "USUBJID": KM_DATA["subject"].tolist() * 2,
            "PARAMCD": ["PFS"] * 34 + ["OS"] * 34,
            "AVAL": KM_DATA["pfs_days"].tolist() + [400] * 34,
            "CNSR": (1 - KM_DATA["pfs_event"]).tolist() + [1] * 34,  # 0 = event, 1 = censored
            "dose_level": KM_DATA["dose_level"].tolist() * 2,
        }
    )
    from_adtte = kaplan_meier(adtte, "pfs", by="dose_level")
    from_subjects = kaplan_meier(KM_DATA, "pfs", by="dose_level")
    pd.testing.assert_frame_equal(from_adtte.table, from_subjects.table)
    pd.testing.assert_frame_equal(from_adtte.median, from_subjects.median)
    assert from_adtte.records["subject"].iloc[0] == "S00"
    assert kaplan_meier(adtte, "os").median["events"].iloc[0] == 0
    with pytest.raises(DataError, match=r"no rows with PARAMCD 'DOR'.*OS, PFS"):
        kaplan_meier(adtte, "dor")
    bad = adtte.assign(CNSR=adtte["CNSR"].where(adtte.index != 3, -1))
    with pytest.raises(DataError, match=r"CNSR.*subject 'S03'"):
        kaplan_meier(bad, "pfs", adtte=True)
    with pytest.raises(DataError, match="PARAMCD"):
        kaplan_meier(KM_DATA, "pfs", adtte=True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pfs_days": -1.0}, r"finite numbers of days >= 0; subject 'S03' has -1\.0"),
        ({"pfs_days": np.nan}, r"subject 'S03' has \(empty\).*dropna"),
        ({"pfs_event": 2}, "`pfs_event` must be 0/1.*subject 'S03' has 2"),
        ({"pfs_event": np.nan}, "`pfs_event` must be 0/1.*subject 'S03'"),
        ({"dose_level": np.nan}, "`dose_level` is empty for subject 'S03'"),
    ],
    ids=["negative time", "missing time", "event not 0/1", "missing event", "missing group"],
)
def test_bad_input_names_subject_and_fix(change, message):
    data = KM_DATA.astype({"pfs_days": float, "pfs_event": float, "dose_level": float})
    for column, value in change.items():
        data.loc[3, column] = value
    with pytest.raises(DataError, match=message):
        kaplan_meier(data, "pfs", by="dose_level")


def test_missing_columns_and_bad_arguments():
    with pytest.raises(DataError, match="`os_days`, `os_event`"):
        kaplan_meier(KM_DATA, "os")
    with pytest.raises(ValueError, match="conf_type"):
        kaplan_meier(KM_DATA, conf_type="arcsin")
    with pytest.raises(ValueError, match="confidence"):
        kaplan_meier(KM_DATA, confidence=1.5)
    with pytest.raises(ValueError, match="days"):
        kaplan_meier(KM_DATA).landmarks([-1])


def test_boolean_event_column_and_landmark_beyond_follow_up():
    data = pd.DataFrame({"os_days": [10.0, 20.0, 30.0], "os_event": [True, False, False]})
    result = kaplan_meier(data, "os")
    marks = result.landmarks([15, 30, 31])
    np.testing.assert_allclose(marks["survival"][:2], [2 / 3, 2 / 3])
    assert np.isnan(marks["survival"][2])  # beyond the last follow-up: not estimable
    assert marks["at_risk"].tolist() == [2, 1, 0]


def test_result_faces():
    result = _fit("log-log", 0.95, "dose_level")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.endpoint = "os"
    pd.testing.assert_frame_equal(result.to_frame(), result.table)
    text = str(result.summary())
    assert "Kaplan-Meier: PFS" in text and "Log-rank" in text and "log-log" in text
    assert "<table" in result._repr_html_()
    assert result.groups == [1, 2, 3, 4]


def test_plot_km_with_at_risk_table():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    result = _fit("log-log", 0.95, "dose_level")
    assert result.plot(ax=ax) is ax
    assert len(ax.get_lines()) == 8  # a step line and censoring ticks per group
    texts = [t.get_text() for t in ax.texts]
    assert "At risk" in texts and "12" in texts
    assert len(ax.collections) == len(result.groups)  # a confidence band per group
    plt.close(fig)
    fig, ax = plt.subplots()
    assert plot.kaplan_meier(result, ax=ax, band=False, at_risk=False) is ax
    assert len(ax.collections) == 0 and not ax.texts
    plt.close(fig)


# ------------------------------------------------------------------------------ derive PFS


def _lesions():
    """S1: PR then PD on day 84. S2: SD, SD, NE; alive. S3: SD then death on day 70.
    S4: baseline only, alive. S5: SD on day 28, PD on day 200 (after missed scans)."""
    rows = [
        ("S1", -5, 50), ("S1", 28, 30), ("S1", 56, 30), ("S1", 84, 40),
        ("S2", -5, 50), ("S2", 28, 45), ("S2", 56, 45), ("S2", 84, None),
        ("S3", -5, 50), ("S3", 28, 45),
        ("S4", -5, 50),
        ("S5", -5, 50), ("S5", 28, 45), ("S5", 200, 70),
    ]  # fmt: skip
    table = pd.DataFrame(rows, columns=["subject", "day", "diameter_mm"])
    table["status"] = np.where(table["diameter_mm"].isna(), "not_assessed", None)
    return table.assign(lesion_id="T1", kind="target")


def _subjects():
    return pd.DataFrame(
        {
            "subject": ["S1", "S2", "S3", "S4", "S5"],
            "os_days": [300.0, 250.0, 70.0, 100.0, 365.0],
            "os_event": [1, 0, 1, 0, 0],
        }
    )


def test_derive_pfs_hand_worked():
    out = derive_pfs(_lesions(), _subjects()).set_index("subject")
    assert out["pfs_days"].tolist() == [84.0, 56.0, 70.0, 0.0, 200.0]
    assert out["pfs_event"].tolist() == [1, 0, 1, 0, 1]
    assert out["pfs_reason"].tolist() == [
        "progression",
        "censored: last adequate assessment",  # day 84 is NE, so censored at day 56
        "death",
        "censored: no adequate assessment",
        "progression",
    ]
    gap = derive_pfs(_lesions(), _subjects(), max_gap_days=112).set_index("subject")
    assert (gap.loc["S5", "pfs_days"], gap.loc["S5", "pfs_event"]) == (28.0, 0)
    km = kaplan_meier(out, "pfs")
    assert km.median["events"].iloc[0] == 3


def test_derive_pfs_death_column_and_errors():
    subjects = _subjects().drop(columns=["os_days", "os_event"])
    with pytest.raises(DataError, match="death_column"):
        derive_pfs(_lesions(), subjects)
    subjects["death_day"] = [np.nan, 40.0, np.nan, np.nan, np.nan]
    out = derive_pfs(_lesions(), subjects, death_column="death_day").set_index("subject")
    assert (out.loc["S2", "pfs_days"], out.loc["S2", "pfs_reason"]) == (40.0, "death")
    assert out.loc["S3", "pfs_event"] == 0
    with pytest.raises(DataError, match="subject 'S5' has tumour assessments but no row"):
        derive_pfs(_lesions(), _subjects().iloc[:4])


def test_edge_cases_single_subject_all_censored_and_empty():
    one = kaplan_meier(pd.DataFrame({"os_days": [5.0], "os_event": [1]}), "os")
    assert one.table["survival"].tolist() == [1.0, 0.0]
    assert np.isnan(one.table["ci_lower"].iloc[1])  # undefined where S = 0, as in R
    assert one.median["median"].iloc[0] == 5.0
    censored = kaplan_meier(pd.DataFrame({"os_days": [5.0, 9.0], "os_event": [0, 0]}), "os")
    assert (censored.table["survival"] == 1).all()
    assert censored.median[["median", "ci_lower", "ci_upper"]].isna().all().all()
    with pytest.raises(DataError, match="no rows"):
        kaplan_meier(pd.DataFrame({"os_days": [], "os_event": []}), "os")
