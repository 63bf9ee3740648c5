"""The report runs on what is there (issue #17 item 5): a subject with kinetics, lesions and AEs
but no row in the subject table, and a subject whose outcome cells are blank.

Expected: the kinetics-only subject is its own "unknown dose" row (explained on the page) and in
no safety/efficacy denominator; its lesions and AEs are left out, listed; the blank cells remove
that one subject from PFS, OS and CRS only, listed. Counts are checked against plain pandas
counts of the input tables.
"""

from __future__ import annotations

import pandas as pd
import pytest

import cellkin
from cellkin.errors import DataError
from cellkin.report import load_inputs, study_report

STUDY = cellkin.load_example()
KEEP = list(pd.unique(STUDY.kinetics["subject"]))[:8]
ORPHAN, BLANK = KEEP[0], KEEP[1]


@pytest.fixture(scope="module")
def lab_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lab_study")
    subjects = STUDY.subjects[STUDY.subjects["subject"].isin(KEEP[1:])].copy()
    blank = subjects["subject"] == BLANK
    for column in ("pfs_days", "pfs_event", "os_days", "os_event", "crs_grade"):
        subjects[column] = subjects[column].astype(object).where(~blank, None)
    tables = {
        "kinetics": STUDY.kinetics[STUDY.kinetics["subject"].isin(KEEP)],
        "subjects": subjects,
        "lesions": STUDY.lesions[STUDY.lesions["subject"].isin(KEEP)],
        "adverse_events": STUDY.adverse_events[STUDY.adverse_events["subject"].isin(KEEP)],
    }
    paths = {}
    for name, table in tables.items():
        paths[name] = folder / f"{name}.csv"
        table.to_csv(paths[name], index=False)
    inputs = load_inputs(tables=paths)
    report = study_report(inputs, n_jobs=1, n_starts=1, progress=False)
    return report, subjects, folder


def test_kinetics_only_subject_is_an_unknown_dose_row_not_in_all(lab_study):
    report, subjects, _ = lab_study
    overview = report.tables["overview"].set_index("group")
    assert "unknown dose" in overview.index
    n_known = len(subjects)  # 7 subjects in the subject table
    assert overview.loc["all", "DLT (≤3 mo)"].split(" ")[0].endswith(f"/{n_known}")
    kinetics = STUDY.kinetics[STUDY.kinetics["assay"] == "qpcr"]
    with_qpcr = len(set(subjects["subject"]) & set(kinetics["subject"]))  # the known subjects
    counted = int(overview.loc["all", "back to baseline ≤6 mo (qpcr)"].rsplit(" of ", 1)[1])
    assert counted <= with_qpcr  # subjects with a time back to baseline; never the unknown one
    assert overview.loc["unknown dose", "back to baseline ≤6 mo (qpcr)"].endswith(" of 1")
    assert pd.isna(overview.loc["unknown dose", "DLT (≤3 mo)"])


def test_left_out_subjects_and_blank_cells_are_listed(lab_study):
    report, _, _ = lab_study
    failures = report.failures
    orphan = failures[failures["subject"] == ORPHAN]
    assert set(orphan["step"]) >= {"inputs: kinetics", "inputs: lesions", "inputs: adverse_events"}
    blank = failures[failures["subject"] == BLANK].set_index("step")["reason"]
    assert {"PFS", "OS", "CRS"} <= set(blank.index)
    assert "left out of PFS only" in blank["PFS"]


def test_blank_cells_remove_one_subject_from_that_endpoint_only(lab_study):
    report, subjects, _ = lab_study
    crs = report.tables["crs_grades"].set_index("group")
    assert crs.loc["all", "n"] == len(subjects) - 1  # the blank CRS grade
    dlt = report.tables["dlt"].set_index("group")
    assert dlt.loc["all", "n_evaluable"] == len(subjects)  # DLT is not blank: all 7
    for endpoint in ("pfs", "os"):
        median = report.tables[f"{endpoint}_median"].set_index("group")
        assert median.loc["all", "n"] == len(subjects) - 1  # the blank days/event cells


def test_the_page_explains_the_unknown_dose_row(lab_study, tmp_path):
    report, _, _ = lab_study
    paths = report.write(tmp_path / "out")
    page = paths["report"].read_text(encoding="utf-8")
    assert "“unknown dose”: 1 subject(s) with kinetics samples but no row in the subject table" in (
        page
    )


def test_contradicting_tables_are_refused_with_the_first_error(lab_study, tmp_path):
    _, subjects, folder = lab_study
    bad = subjects.copy()
    bad.loc[bad.index[2], "os_days"] = 1.0  # OS shorter than PFS
    path = tmp_path / "subjects.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"error\(s\) in the study tables .*OS \(1 d\) is shorter"):
        load_inputs(tables={"kinetics": folder / "kinetics.csv", "subjects": path})
