"""Tables that agree with each other (issue #17 item 5): cellkin.io.check_study on study tables
written the way sites write them (tests/data/lab_exports/). Each contradiction planted in the
files is listed with its subject and columns; the severities follow the table in
cellkin/io/_crosscheck.py."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cellkin.io import (
    check_study,
    harmonise_ids,
    read_adverse_events,
    read_kinetics,
    read_subjects,
    reading_notes,
)

EXPORTS = Path(__file__).parent.parent / "data" / "lab_exports"


def _problems(**tables) -> pd.DataFrame:
    return check_study(**tables)


def test_every_clinical_contradiction_is_listed_in_one_pass():
    subjects = read_subjects(EXPORTS / "subjects_contradictions.csv")
    found = _problems(subjects=subjects)
    listed = {(r.severity, r.subject, r.columns) for r in found.itertuples()}
    assert listed == {
        ("error", "P01", "pfs_days, os_days"),  # OS 100 < PFS 150
        ("error", "P02", "bor, responder"),  # CR, responder N
        ("error", "P03", "dose, dose_level"),  # 3e6 in DL1 (DL1 is 1e6)
        ("error", "P04", "bor, responder"),  # PD, responder Y
        ("warning", "P05", "bor, responder"),  # PR, responder N: allowed, warned
        ("error", "P06", "pfs_event, os_event"),  # died at the PFS time, no PFS event
    }
    assert found["severity"].tolist()[:5] == ["error"] * 5  # errors first
    dose = found[found["subject"] == "P03"]["message"].iloc[0]
    assert "dose level 'DL2'" in dose and "dose_level is 'DL1'" in dose


def test_ids_differing_in_case_or_blanks_and_missing_subjects():
    kinetics = read_kinetics(EXPORTS / "kinetics_case_ids.csv")
    subjects = read_subjects(EXPORTS / "subjects_ids.csv")
    events = read_adverse_events(EXPORTS / "adverse_events_unknown_subject.csv")
    found = _problems(kinetics=kinetics, subjects=subjects, adverse_events=events)
    errors = found[found["severity"] == "error"]["message"].tolist()
    assert len(errors) == 2
    assert "'p01' (kinetics); 'P01' (subjects" in errors[0]
    assert "'P02 ' (kinetics)" in errors[1] or "'P02 '" in errors[1]
    warnings = found[found["severity"] == "warning"]["message"].tolist()
    assert any("1 subject(s) not in the subject table: 'P09'" in w for w in warnings)
    assert any("'P08'" in w and "safety" in w for w in warnings)
    assert any("without kinetics samples: 'P04'" in w for w in warnings)
    assert "ids" in set(reading_notes(kinetics)["step"])  # 'P02 ' stripped, noted


def test_normalise_ids_reports_notes_and_rewrites_to_one_spelling():
    kinetics = read_kinetics(EXPORTS / "kinetics_case_ids.csv")
    subjects = read_subjects(EXPORTS / "subjects_ids.csv")
    found = _problems(kinetics=kinetics, subjects=subjects, normalise_ids=True)
    assert "error" not in set(found["severity"])
    fixed = harmonise_ids({"kinetics": kinetics, "subjects": subjects})
    assert fixed["kinetics"]["subject"].tolist() == ["P01", "P02", "P03", "P09"]
    assert reading_notes(fixed["kinetics"])["rows"].iloc[-1] == 1
    assert kinetics["subject"].tolist()[0] == "p01"  # the input is not modified


def test_consistent_tables_have_no_problems():
    subjects = read_subjects(EXPORTS / "subjects_ids.csv")
    kinetics = read_kinetics(EXPORTS / "title_lines.csv")
    found = _problems(kinetics=kinetics, subjects=subjects.iloc[:1])
    assert found.empty and list(found.columns) == [
        "severity", "table", "subject", "columns", "message"
    ]  # fmt: skip
