"""The bundled synthetic example study: tables, internal consistency and reproducibility.

The expectations here come from the study's design (data/README.md) and from the rules it
claims to follow — 3+3 escalation, RECIST 1.1 thresholds (Eisenhauer 2009), follow-up limits —
re-implemented in the test, not copied from the generator. The exposure–response check
recomputes AUC0–28 from the observed qPCR samples with the trapezoidal rule.
"""

from __future__ import annotations

import dataclasses
import filecmp
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cellkin.datasets import ExampleStudy, load_example

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "data" / "make_example_study.py"
FILES = ("kinetics.csv", "subjects.csv", "lesions.csv", "adverse_events.csv", "columns.json")
LEVELS = ["DL1", "DL2", "DL3"]  # in escalation order


@pytest.fixture(scope="module")
def study() -> ExampleStudy:
    return load_example()


def _geometric_mean(values: pd.Series) -> float:
    return float(np.exp(np.log(values.to_numpy(dtype=float)).mean()))


def test_load_example_returns_the_four_validated_tables(study):
    assert isinstance(study, ExampleStudy)
    assert list(study.kinetics.columns[:7]) == [
        "subject", "time", "value", "assay", "unit", "lloq", "blq",
    ]  # fmt: skip
    assert {"visit", "nominal_time"} <= set(study.kinetics.columns)
    assert list(study.subjects.columns) == [
        "subject", "dose", "dose_unit", "dose_level", "cohort", "age", "sex", "tumour_type",
        "baseline_sld_mm", "bor", "responder", "crs_grade", "icans_grade", "dlt", "pfs_days",
        "pfs_event", "os_days", "os_event",
    ]  # fmt: skip
    assert list(study.lesions.columns) == [
        "subject", "day", "lesion_id", "kind", "organ", "nodal", "diameter_mm", "status",
    ]  # fmt: skip
    assert list(study.adverse_events.columns) == [
        "subject", "term", "soc", "grade", "onset_day", "end_day", "serious", "related", "dlt",
    ]  # fmt: skip
    assert study.kinetics["blq"].dtype == bool and study.subjects["responder"].dtype == bool
    assert set(study.kinetics["assay"]) == {"qpcr", "flow"}
    assert set(study.kinetics.groupby("assay")["unit"].first().items()) == {
        ("qpcr", "copies/ug"),
        ("flow", "cells/uL"),
    }
    assert "synthetic" in study.description.lower()
    assert study.source.is_dir() and (study.source / "columns.json").is_file()
    with pytest.raises(dataclasses.FrozenInstanceError):
        study.kinetics = pd.DataFrame()  # type: ignore[misc]
    assert "subjects" in repr(study) and "% BLQ" in study._repr_html_()


def test_column_dictionary_describes_every_column(study):
    tables = {
        "kinetics": study.kinetics,
        "subjects": study.subjects,
        "lesions": study.lesions,
        "adverse_events": study.adverse_events,
    }
    assert set(study.columns) == set(tables)
    for name, table in tables.items():
        assert list(study.columns[name]) == list(table.columns), name
        for column, meta in study.columns[name].items():
            assert set(meta) == {"role", "unit", "description"} and meta["description"], column


def test_subject_ids_agree_across_tables(study):
    ids = set(study.subjects["subject"])
    assert study.subjects["subject"].is_unique and 20 <= len(ids) <= 30
    assert set(study.kinetics["subject"]) == ids
    assert set(study.lesions["subject"]) <= ids
    assert set(study.adverse_events["subject"]) <= ids
    assert all(s.startswith("KD025-") for s in ids)


def test_design_doses_and_units(study):
    sub = study.subjects
    assert set(sub["dose_unit"]) == {"1e6 cells/kg"}
    doses = sub.groupby("dose_level")["dose"].agg(set).to_dict()
    assert doses == {"DL1": {1.0}, "DL2": {3.0}, "DL3": {10.0}}
    assert set(sub["cohort"]) == {"escalation", "expansion"}
    assert sub.loc[sub["cohort"] == "expansion", "dose_level"].nunique() == 1
    assert (sub["os_days"] >= sub["pfs_days"]).all()


def test_escalation_follows_three_plus_three(study):
    """Replay the 3+3 rules on the escalation cohort's DLTs, in enrolment order."""
    esc = study.subjects.loc[study.subjects["cohort"] == "escalation"].sort_values("subject")
    cohorts = [esc.iloc[i : i + 3] for i in range(0, len(esc), 3)]
    assert all(len(c) == 3 for c in cohorts)
    treated = {level: 0 for level in LEVELS}
    dlts = {level: 0 for level in LEVELS}
    k, ceiling, chosen = 0, len(LEVELS), None  # ceiling: lowest level found too toxic
    for position, cohort in enumerate(cohorts):
        assert chosen is None, "subjects were treated after the escalation had ended"
        assert set(cohort["dose_level"]) == {LEVELS[k]}, f"cohort {position + 1}"
        treated[LEVELS[k]] += 3
        dlts[LEVELS[k]] += int(cohort["dlt"].sum())
        n, d = treated[LEVELS[k]], dlts[LEVELS[k]]
        if d >= 2:  # stop escalating; step down to a level with 6 treated and <= 1 DLT
            ceiling, k = k, k - 1
            assert k >= 0, "the lowest level was not tolerated"
            if treated[LEVELS[k]] == 6:
                chosen = LEVELS[k]
        elif n == 3 and (d == 1 or k + 1 == ceiling):
            pass  # 3 more at the same level (1/3, or 0/3 where it may be declared)
        elif k + 1 == ceiling:
            chosen = LEVELS[k]  # <= 1/6 just below the ceiling (or at the top level)
        else:
            k += 1  # 0/3 or <= 1/6: escalate
    assert chosen is not None, "escalation ended without a decision"
    assert treated[chosen] == 6 and dlts[chosen] <= 1
    expansion = study.subjects.loc[study.subjects["cohort"] == "expansion", "dose_level"]
    assert set(expansion) == {chosen} and len(expansion) >= 9


def test_dlt_flags_match_the_adverse_events(study):
    sub, ae = study.subjects.set_index("subject"), study.adverse_events
    flagged = ae.groupby("subject")["dlt"].any().reindex(sub.index, fill_value=False)
    assert (flagged == sub["dlt"]).all()
    dlt_events = ae.loc[ae["dlt"]]
    assert (dlt_events["grade"] >= 3).all() and dlt_events["related"].all()
    assert dlt_events["onset_day"].between(0, 28).all()
    for term, column in (
        ("Cytokine release syndrome", "crs_grade"),
        ("Immune effector cell-associated neurotoxicity syndrome", "icans_grade"),
    ):
        worst = ae.loc[ae["term"] == term].groupby("subject")["grade"].max()
        assert (worst.reindex(sub.index, fill_value=0).astype(int) == sub[column]).all(), term


def test_adverse_events_span_the_teae_windows(study):
    ae = study.adverse_events
    assert (ae["onset_day"] < 0).any(), "no event before infusion"
    assert (ae["onset_day"] > 90).any(), "no event after the 3-month TEAE window"
    assert ae["grade"].between(1, 5).all()
    assert ae["soc"].notna().all()
    last = study.subjects.set_index("subject")["os_days"]
    assert (ae["onset_day"].to_numpy() <= last.loc[ae["subject"]].to_numpy()).all()


def test_sampling_ends_with_follow_up(study):
    last_sample = study.kinetics.groupby("subject")["time"].max()
    last_contact = study.subjects.set_index("subject")["os_days"]
    assert (last_sample <= last_contact.loc[last_sample.index]).all()
    post = study.kinetics.loc[study.kinetics["time"] > 0]
    assert post["time"].max() <= 365


def test_blq_fraction_and_special_subjects(study):
    kin = study.kinetics
    qpcr, flow = kin.loc[kin["assay"] == "qpcr"], kin.loc[kin["assay"] == "flow"]
    for table in (qpcr, flow):
        assert 0.2 < table["blq"].mean() < 0.6
        assert table.loc[table["blq"], "value"].isna().all()
        assert (table.loc[~table["blq"], "value"] >= table.loc[~table["blq"], "lloq"]).all()
    assert set(qpcr["lloq"]) == {50.0} and set(flow["lloq"]) == {0.5}
    # every pre-infusion sample is BLQ except one subject's quantifiable qPCR baseline
    pre = qpcr.loc[qpcr["time"] < 0]
    quantified = pre.loc[~pre["blq"], "subject"].unique()
    assert len(quantified) == 1
    assert (pre.loc[pre["subject"] == quantified[0], "value"] > 50).all()
    assert flow.loc[flow["time"] < 0, "blq"].all()
    # some subjects never have a quantifiable qPCR sample
    ever = qpcr.groupby("subject")["blq"].all()
    assert 1 <= ever.sum() <= 4
    # visits: screening near day -14, pre-infusion just before day 0
    assert qpcr.loc[qpcr["visit"] == "SCR", "time"].between(-21, -7).all()
    assert qpcr.loc[qpcr["visit"] == "D0 pre", "time"].between(-0.5, 0, inclusive="left").all()


def test_responses_follow_recist_thresholds(study):
    """Responders shrink >= 30 % at some assessment; each progression has its assessment."""
    les = study.lesions
    target = les.loc[les["kind"] == "target"]
    sums = target.groupby(["subject", "day"])["diameter_mm"].sum()
    sub = study.subjects.set_index("subject")
    for subject, row in sub.iterrows():
        s = sums.loc[subject]
        assert s.iloc[0] == row["baseline_sld_mm"]
        if row["responder"]:
            assert (s.iloc[1:] <= 0.7 * s.iloc[0]).sum() >= 2, subject  # response + confirmation
        if row["pfs_event"]:
            assert s.index.max() == row["pfs_days"], subject  # assessments stop at PD
        if row["bor"] == "PD":
            assert len(s) == 2, subject  # progression at the first assessment
    new = les.loc[les["kind"] == "new"]
    assert (
        new.groupby("subject")["day"].min().le(sub.loc[new["subject"].unique(), "pfs_days"]).all()
    )


def test_exposure_response_signal(study):
    """Observed AUC0-28 (trapezoid, BLQ as LLOQ/2) is higher in responders and in CRS >= 2."""
    qpcr = study.kinetics.loc[
        (study.kinetics["assay"] == "qpcr") & study.kinetics["time"].between(0, 29)
    ].copy()
    qpcr["level"] = qpcr["value"].where(~qpcr["blq"], qpcr["lloq"] / 2)

    def auc(group: pd.DataFrame) -> float:
        t = np.concatenate([[0.0], group["time"].to_numpy()])
        c = np.concatenate([[0.0], group["level"].to_numpy()])
        return float(np.trapezoid(c, t))

    sub = study.subjects.set_index("subject")
    sub["auc28"] = pd.Series({s: auc(g) for s, g in qpcr.groupby("subject")})
    by_response = sub.groupby("responder")["auc28"].apply(_geometric_mean)
    assert by_response[True] > 2 * by_response[False]
    by_crs = sub.groupby(sub["crs_grade"] >= 2)["auc28"].apply(_geometric_mean)
    assert by_crs[True] > by_crs[False]
    assert 0.1 <= sub["responder"].mean() <= 0.5


def test_regenerating_gives_byte_identical_files(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    shipped = load_example().source
    match, mismatch, errors = filecmp.cmpfiles(shipped, tmp_path, FILES, shallow=False)
    assert not mismatch and not errors, f"differ: {mismatch}, missing: {errors}"
    assert sorted(match) == sorted(FILES)
