"""cellkin.io bad input: every DataError names the file (or "DataFrame input"), the column,
the first offending row or subject, and how to fix it. Row numbers are 1-based data rows
(row 1 = first row below the header)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from cellkin.errors import DataError, OptionError
from cellkin.io import (
    read_adverse_events,
    read_kinetics,
    read_lesions,
    read_subjects,
    reading_notes,
)

TIMES = (0.0, 3.0, 7.0, 14.0, 28.0)


def test_01_missing_required_column_suggests_close_match(tmp_path, kinetics_frame, write_csv):
    path = write_csv(tmp_path, kinetics_frame().rename(columns={"value": "valeu"}))
    with pytest.raises(
        DataError,
        match=r"kinetics\.csv: missing required column `value` \(did you mean `valeu`\?\)",
    ):
        read_kinetics(path)


def test_01_missing_lloq_column_suggests_mapping(tmp_path, kinetics_frame, write_csv):
    path = write_csv(tmp_path, kinetics_frame().drop(columns="lloq"))
    with pytest.raises(DataError, match=r"kinetics\.csv: missing required column `lloq`.*mapping"):
        read_kinetics(path)


def test_02_non_numeric_time(tmp_path, kinetics_frame, write_csv, with_cells):
    path = write_csv(tmp_path, with_cells(kinetics_frame(), "time", [17, 19, 20], "D7"))
    message = (
        r"kinetics\.csv: column `time` has 3 non-numeric values, first at row 17: 'D7'\. "
        r"Times must be numbers of days since infusion"
    )
    with pytest.raises(DataError, match=message):
        read_kinetics(path)


def test_03_unreadable_value(tmp_path, kinetics_frame, write_csv, with_cells):
    """Text that is neither a number, BLQ text nor a missing-value word is refused (BLQ text
    such as '<LLOQ' is read since #17: tests/io/test_lab_values.py)."""
    path = write_csv(tmp_path, with_cells(kinetics_frame(), "value", [8], "pending"))
    with pytest.raises(
        DataError,
        match=r"kinetics\.csv: column `value` has 1 value that cannot be read, at row 8: "
        r"'pending'.*BLQ text",
    ):
        read_kinetics(path)


def test_04_negative_value_is_blq_with_a_note(tmp_path, kinetics_frame, write_csv, with_cells):
    """Background-subtracted qPCR: a level <= 0 is below the LLOQ (#17; refused before)."""
    kin = read_kinetics(write_csv(tmp_path, with_cells(kinetics_frame(), "value", [3], -12.5)))
    day7 = kin[(kin["subject"] == "S01") & (kin["assay"] == "qpcr") & (kin["time"] == 7.0)]
    assert day7["blq"].tolist() == [True] and day7["value"].isna().all()
    notes = reading_notes(kin)
    assert notes[notes["step"] == "blq"]["rows"].tolist() == [1]


@pytest.mark.parametrize(
    ("row", "value", "flag", "problem"),
    [
        (2, 50.0, True, r"1 row flagged BLQ with value ≥ LLOQ, at row 2: value 50\.0, lloq 10\.0"),
        (12, 4.0, False, r"1 row not flagged BLQ with value < LLOQ, at row 12: value 4\.0"),
    ],
)
def test_06_blq_flag_inconsistent_with_value(
    tmp_path, row, value, flag, problem, kinetics_frame, write_csv
):
    frame = kinetics_frame()
    frame["blq"] = frame["value"].isna()
    frame.loc[row - 1, ["value", "blq"]] = [value, flag]
    with pytest.raises(DataError, match=rf"kinetics\.csv: column `blq` has {problem}"):
        read_kinetics(write_csv(tmp_path, frame))


@pytest.mark.parametrize("lloq", [-1, 0])
def test_07_lloq_not_positive(tmp_path, lloq, kinetics_frame, write_csv, with_cells):
    """LLOQ <= 0 is an error naming the rows (#17: LLOQ = 0 was accepted, then fits failed)."""
    path = write_csv(tmp_path, with_cells(kinetics_frame(), "lloq", [6, 7], lloq))
    with pytest.raises(
        DataError, match=rf"kinetics\.csv: column `lloq` has 2 LLOQs ≤ 0, first at row 6: {lloq}"
    ):
        read_kinetics(path)


def test_07b_non_numeric_lloq(tmp_path, kinetics_frame, write_csv, with_cells):
    path = write_csv(tmp_path, with_cells(kinetics_frame(), "lloq", [4], "10 copies"))
    with pytest.raises(
        DataError,
        match=r"kinetics\.csv: column `lloq` has 1 non-numeric value, at row 4: '10 copies'",
    ):
        read_kinetics(path)


def test_08_missing_lloq_value(tmp_path, kinetics_frame, write_csv, with_cells):
    path = write_csv(tmp_path, with_cells(kinetics_frame(), "lloq", [9], None))
    with pytest.raises(
        DataError,
        match=r"kinetics\.csv: column `lloq` has 1 missing value, at row 9: \(empty\)\. "
        r"Every sample needs the lower limit of quantification",
    ):
        read_kinetics(path)


def test_09_duplicate_samples_with_different_values(tmp_path, kinetics_frame, write_csv):
    frame = kinetics_frame()
    frame.loc[20] = frame.loc[16]
    frame.loc[20, "value"] = 99.0
    with pytest.raises(
        DataError,
        match=r"kinetics\.csv: subject 'S02', assay 'flow', time 3: rows 17, 21 are duplicate "
        r"samples .* average replicates",
    ):
        read_kinetics(write_csv(tmp_path, frame))


def test_10_two_units_in_one_assay_are_converted(tmp_path, kinetics_frame, write_csv, with_cells):
    """Since #17 convertible units are converted to one (with a note), never pooled."""
    frame = with_cells(kinetics_frame(), "unit", [18], "cells/mL")
    kin = read_kinetics(write_csv(tmp_path, frame))
    assert set(kin.loc[kin["assay"] == "flow", "unit"]) == {"cells/uL"}
    row = kin[(kin["subject"] == "S02") & (kin["assay"] == "flow") & (kin["time"] == 7.0)]
    assert row["value"].iloc[0] == pytest.approx(frame.at[17, "value"] / 1000)
    assert row["lloq"].iloc[0] == pytest.approx(1.0 / 1000)
    assert "cells/mL to cells/uL" in reading_notes(kin).iloc[-1]["note"]


def test_10_two_units_that_cannot_be_converted(tmp_path, kinetics_frame, write_csv, with_cells):
    frame = with_cells(kinetics_frame(), "unit", [18], "copies/ug")
    with pytest.raises(
        DataError,
        match=r"kinetics\.csv: assay 'flow': column `unit` mixes units that cannot be converted "
        r"into each other: 'cells/uL' \(row 6\), 'copies/ug' \(row 18\)",
    ):
        read_kinetics(write_csv(tmp_path, frame))


def test_11_unknown_unit(tmp_path, kinetics_frame, write_csv):
    frame = kinetics_frame().assign(unit=lambda f: f["unit"].replace("cells/uL", "IU/mL"))
    with pytest.raises(
        DataError,
        match=r"kinetics\.csv: column `unit` has 10 unknown units, first at row 6: 'IU/mL'\. "
        r"Known units .*copies/ug \(copies/µg, .*cells/uL \(cells/µL",
    ):
        read_kinetics(write_csv(tmp_path, frame))


@pytest.mark.parametrize("empty", [None, "   "])
def test_12_empty_subject_id(tmp_path, empty, kinetics_frame, write_csv, with_cells):
    path = write_csv(tmp_path, with_cells(kinetics_frame(), "subject", [14], empty))
    with pytest.raises(
        DataError, match=r"kinetics\.csv: column `subject` has 1 empty value, at row 14.*subject id"
    ):
        read_kinetics(path)


@pytest.mark.parametrize(
    ("cell", "problem"), [("inf", "infinite value"), (None, "missing value"), ("-inf", "infinite")]
)
def test_13_infinite_or_missing_time(
    tmp_path, cell, problem, kinetics_frame, write_csv, with_cells
):
    path = write_csv(tmp_path, with_cells(kinetics_frame(), "time", [11], cell))
    with pytest.raises(DataError, match=rf"kinetics\.csv: column `time` has 1 {problem}.*row 11"):
        read_kinetics(path)


def test_14_empty_table(tmp_path, kinetics_frame, write_csv):
    header_only = write_csv(tmp_path, kinetics_frame().iloc[:0])
    with pytest.raises(DataError, match=r"kinetics\.csv: the table has no data rows"):
        read_kinetics(header_only)
    with pytest.raises(DataError, match=r"DataFrame input: the table has no data rows"):
        read_kinetics(kinetics_frame().iloc[:0])
    (tmp_path / "blank.csv").write_text("")
    with pytest.raises(DataError, match=r"blank\.csv: the file is empty"):
        read_kinetics(tmp_path / "blank.csv")


def test_15_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nothere\.csv: file not found \(looked for .*check"):
        read_kinetics(tmp_path / "nothere.csv")


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("kinetics.parquet", b"PAR1 this is not parquet PAR1", "cannot read the file as parquet"),
        ("kinetics.xlsx", b"PK\x03\x04 truncated zip", "cannot read the file as excel"),
        ("kinetics.csv", bytes(range(256)) * 4, "the file contains binary data"),
    ],
    ids=["parquet", "xlsx", "csv"],
)
def test_16_unreadable_file(tmp_path, name, content, problem):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=rf"{re.escape(name)}: {problem}"):
        read_kinetics(tmp_path / name)


def test_17_unsupported_extension(tmp_path):
    (tmp_path / "kinetics.json").write_text("{}")
    with pytest.raises(
        DataError, match=r"kinetics\.json: unsupported file extension '\.json'; cellkin reads"
    ):
        read_kinetics(tmp_path / "kinetics.json")


@pytest.mark.parametrize(
    ("extra", "listed"),
    [
        ({"TIME": 1.0}, r"columns `time` and `TIME` differ only in case"),
        ({"USUBJID": "X"}, r"columns `USUBJID` and `subject` could each be `subject`"),
        (
            {"AVAL": 1.0, "AFRLT": 1.0, "USUBJID": "X"},
            r"the table matches several conventions: canonical .*cdisc",
        ),
    ],
)
def test_18_ambiguous_column_mapping(tmp_path, extra, listed, kinetics_frame, write_csv):
    path = write_csv(tmp_path, kinetics_frame().assign(**extra))
    with pytest.raises(
        DataError, match=rf"kinetics\.csv: ambiguous column mapping: {listed}.*mapping="
    ):
        read_kinetics(path)


def test_18_ambiguity_resolved_by_convention(kinetics_frame):
    frame = kinetics_frame().assign(USUBJID="X")
    kin = read_kinetics(frame, mapping={"convention": "canonical"})
    assert kin.columns[-1] == "USUBJID"


def test_18_adppk_with_nonmem_and_cdisc_names_is_ambiguous(nonmem_frame):
    frame = nonmem_frame().assign(USUBJID="X", AFRLT=0.0, AVAL=1.0)
    with pytest.raises(DataError, match=r"DataFrame input: ambiguous .* nonmem .* cdisc"):
        read_kinetics(frame)


def test_19_negative_lesion_diameter(tmp_path, write_csv, with_cells, lesions_frame):
    path = write_csv(tmp_path, with_cells(lesions_frame(), "diameter_mm", [3], -4.0), "les.csv")
    with pytest.raises(
        DataError, match=r"les\.csv: column `diameter_mm` has 1 value below 0, at row 3: -4\.0"
    ):
        read_lesions(path)


@pytest.mark.parametrize("grade", [0, 6, 2.5, "G3"])
def test_20_ae_grade_outside_1_to_5(tmp_path, grade, write_csv, with_cells, ae_frame):
    path = write_csv(tmp_path, with_cells(ae_frame(), "grade", [2], grade), "ae.csv")
    with pytest.raises(DataError, match=r"ae\.csv: column `grade` has 1 .*at row 2.*1–5"):
        read_adverse_events(path)


def test_21_ae_onset_after_end(tmp_path, write_csv, with_cells, ae_frame):
    path = write_csv(tmp_path, with_cells(ae_frame(), "end_day", [3], 2.0), "ae.csv")
    with pytest.raises(
        DataError,
        match=r"ae\.csv: column `end_day` has 1 event ending before onset, at row 3: "
        r"onset 5\.0, end 2\.0\. Check the two days",
    ):
        read_adverse_events(path)


def test_22_duplicated_subject_in_subject_table(tmp_path, write_csv, subjects_frame):
    frame = subjects_frame()
    frame.loc[3] = frame.loc[1]
    with pytest.raises(
        DataError,
        match=r"subjects\.csv: column `subject` must identify one row, but subject 'S02' is on "
        r"rows 2, 4 \(2 rows affected\)\. Give each subject one row",
    ):
        read_subjects(write_csv(tmp_path, frame, "subjects.csv"))


@pytest.mark.parametrize("flag", ["maybe", 2, "BLQ?"])
def test_23_invalid_blq_values(tmp_path, flag, kinetics_frame, write_csv, with_cells):
    frame = kinetics_frame().assign(blq=lambda f: f["value"].isna())
    path = write_csv(tmp_path, with_cells(frame, "blq", [7], flag))
    with pytest.raises(
        DataError,
        match=r"kinetics\.csv: column `blq` has 1 invalid flag, at row 7.*Y/N, yes/no, 1/0",
    ):
        read_kinetics(path)


def test_24_bad_bor_code(tmp_path, write_csv, with_cells, subjects_frame):
    path = write_csv(tmp_path, with_cells(subjects_frame(), "bor", [3], "uCR"), "subjects.csv")
    with pytest.raises(
        DataError,
        match=r"subjects\.csv: column `bor` has 1 unknown code, at row 3: 'uCR'.*CR, NE, PD",
    ):
        read_subjects(path)


def test_25_unknown_lesion_kind(tmp_path, write_csv, with_cells, lesions_frame):
    path = write_csv(tmp_path, with_cells(lesions_frame(), "kind", [2], "measurable"), "l.csv")
    with pytest.raises(
        DataError,
        match=r"l\.csv: column `kind` has 1 unknown code, at row 2: 'measurable'.*new, nontarget",
    ):
        read_lesions(path)


def test_26_nonmem_numeric_cmt_without_mapping(tmp_path, write_csv, nonmem_frame):
    path = write_csv(tmp_path, nonmem_frame(), "nm.csv")
    with pytest.raises(
        DataError,
        match=r"nm\.csv: column `CMT` has 6 numeric codes with no assay "
        r"mapping, first at row 2: 1.*mapping=\{'cmt': \{1: 'qpcr', 2: 'flow'\}\}",
    ):
        read_kinetics(path)


def test_27_nonmem_cmt_missing_from_mapping(nonmem_frame):
    with pytest.raises(
        DataError,
        match=r"DataFrame input: column `CMT` has 1 code missing from the mapping, at row 4: 2",
    ):
        read_kinetics(nonmem_frame(), mapping={"cmt": {1: "qpcr"}})


def test_28_nonmem_right_censored_rows_are_refused(nonmem_frame):
    frame = nonmem_frame()
    frame.loc[2, "CENS"] = -1
    with pytest.raises(DataError, match=r"column `CENS` .* 1 right-censored row \(-1\), at row 3"):
        read_kinetics(frame, mapping={"cmt": {1: "qpcr", 2: "flow"}})


def test_29_nonmem_censored_dv_above_lloq(nonmem_frame):
    frame = nonmem_frame()
    frame.loc[4, "DV"] = 40
    with pytest.raises(
        DataError, match=r"1 censored row with DV > LLOQ, at row 5: value 40\.0, lloq 10\.0"
    ):
        read_kinetics(frame, mapping={"cmt": {1: "qpcr", 2: "flow"}})


def test_30_nonmem_id_and_usubjid_disagree(nonmem_frame):
    frame = nonmem_frame().assign(USUBJID=["A"] * 5 + ["B"] * 3 + ["A"])
    with pytest.raises(
        DataError,
        match=r"column `USUBJID` has 1 row whose ID and USUBJID disagree, at row 9: ID '2', "
        r"USUBJID 'A'",
    ):
        read_kinetics(frame, mapping={"cmt": {1: "qpcr", 2: "flow"}})


def test_31_cdisc_time_without_unit(tmp_path, write_csv, adpc_frame):
    path = write_csv(tmp_path, adpc_frame().drop(columns="AFRLTU"), "adpc.csv")
    with pytest.raises(
        DataError,
        match=r"adpc\.csv: the unit of column `AFRLT` \(read as `time`\) is unknown.*"
        r"mapping=\{'time_unit': 'h'\}",
    ):
        read_kinetics(path)


def test_32_unknown_time_unit(tmp_path, write_csv, with_cells, adpc_frame):
    path = write_csv(tmp_path, with_cells(adpc_frame(), "AFRLTU", [4], "fortnights"), "adpc.csv")
    with pytest.raises(
        DataError, match=r"adpc\.csv: column `AFRLTU` has 1 unknown time unit, at row 4"
    ):
        read_kinetics(path)


def test_33_missing_sheet(tmp_path, kinetics_frame):
    path = tmp_path / "kinetics.xlsx"
    kinetics_frame().to_excel(path, sheet_name="CK", index=False)
    with pytest.raises(
        DataError, match=r"kinetics\.xlsx: no sheet 'qPCR'; the workbook has .*'CK'"
    ):
        read_kinetics(path, sheet_name="qPCR")


def test_34_bad_mapping_key_and_target(kinetics_frame):
    with pytest.raises(DataError, match=r"mapping key 'Visit' is neither a column"):
        read_kinetics(kinetics_frame(), mapping={"Visit": "visit"})
    with pytest.raises(DataError, match=r"mapping renames column `value` to 'level'"):
        read_kinetics(kinetics_frame(), mapping={"value": "level"})


def test_35_everything_excluded(kinetics_frame):
    with pytest.raises(DataError, match=r"DataFrame input: no sample rows remain.*row 1: before"):
        read_kinetics(kinetics_frame(), exclude_before=100)


def test_36_subject_table_values(tmp_path, write_csv, with_cells, subjects_frame):
    path = write_csv(tmp_path, with_cells(subjects_frame(), "dose", [2], -5), "subjects.csv")
    with pytest.raises(
        DataError, match=r"subjects\.csv: column `dose` has 1 value below 0, at row 2"
    ):
        read_subjects(path)
    path = write_csv(tmp_path, with_cells(subjects_frame(), "crs_grade", [1], 7), "subjects.csv")
    with pytest.raises(
        DataError, match=r"`crs_grade` has 1 value outside the whole numbers 0–5, at row 1: 7"
    ):
        read_subjects(path)
    path = write_csv(tmp_path, with_cells(subjects_frame(), "pfs_event", [3], "censored"), "s.csv")
    with pytest.raises(DataError, match=r"s\.csv: column `pfs_event` has 1 invalid flag, at row 3"):
        read_subjects(path)


def test_37_lesion_cross_checks(with_cells, lesions_frame):
    missing = with_cells(lesions_frame(), "diameter_mm", [3], None)
    with pytest.raises(
        DataError, match=r"`diameter_mm` has 1 target lesion with no diameter, at row 3"
    ):
        read_lesions(missing)
    no_status = with_cells(lesions_frame(), "status", [2], None)
    with pytest.raises(
        DataError, match=r"`status` has 1 non-target lesion with no status, at row 2"
    ):
        read_lesions(no_status)


def test_38_ae_flag_spelling(tmp_path, write_csv, with_cells, ae_frame):
    path = write_csv(tmp_path, with_cells(ae_frame(), "serious", [2], "severe"), "ae.csv")
    with pytest.raises(DataError, match=r"ae\.csv: column `serious` has 1 invalid flag, at row 2"):
        read_adverse_events(path)


def test_39_dataframe_index_label_is_cited(kinetics_frame, with_cells):
    frame = with_cells(kinetics_frame(), "time", [17], "D7")
    frame.index = [f"lab-{i}" for i in range(len(frame))]
    with pytest.raises(DataError, match=r"DataFrame input: .* at row 17 \(index 'lab-16'\): 'D7'"):
        read_kinetics(frame)


def test_40_wrong_argument_types(kinetics_frame):
    with pytest.raises(TypeError, match=r"source must be a file path or a pandas DataFrame"):
        read_kinetics([1, 2, 3])
    with pytest.raises(
        OptionError, match=r"`exclude_before` must be a finite number of days, got nan"
    ):
        read_kinetics(kinetics_frame(), exclude_before=float("nan"))


@pytest.mark.parametrize(
    ("change", "mapping", "message"),
    [
        ({"time": pd.to_timedelta(TIMES * 4, unit="D")}, None, r"`time` holds durations"),
        ({"tissue": ["blood"] * 19 + [None]}, None, r"`tissue` has 1 empty value, at row 20"),
        ({"Day": 1.0}, {"Day": "time"}, r"renames `Day` to `time`, but the table already has"),
        ({}, {"unit": "copies/ug"}, r"`unit` given twice: column `unit` and mapping\['unit'\]"),
        ({}, {"convention": "nonmem"}, r"missing required columns `ID`, `DV`"),
    ],
    ids=["timedelta", "tissue", "rename-clash", "unit-twice", "forced-convention"],
)
def test_41_column_and_mapping_problems(change, mapping, message, kinetics_frame):
    with pytest.raises(DataError, match=rf"DataFrame input: .*{message}"):
        read_kinetics(kinetics_frame().assign(**change), mapping=mapping)


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (
            {"convention": "sas"},
            r"mapping\['convention'\] must be one of canonical, nonmem, "
            r"cdisc, got 'sas'",
        ),
        (
            {"time_unit": "fortnights"},
            r"mapping\['time_unit'\] must be one of d, day, .*got "
            r"'fortnights'",
        ),
    ],
    ids=["convention", "time-unit"],
)
def test_41_bad_mapping_option_values_raise_option_error(mapping, message, kinetics_frame):
    with pytest.raises(OptionError, match=rf"DataFrame input: {message}"):
        read_kinetics(kinetics_frame(), mapping=mapping)


def test_per_assay_lloq_and_unit_from_mapping(kinetics_frame):
    frame = kinetics_frame().drop(columns=["lloq", "unit"])
    mapping = {"lloq": {"qpcr": 10, "flow": 1}, "unit": {"qpcr": "copies/µg", "flow": "cells/µL"}}
    pd.testing.assert_frame_equal(
        read_kinetics(frame, mapping=mapping), read_kinetics(kinetics_frame())
    )
    with pytest.raises(DataError, match=r"`assay` has 10 values missing from mapping\['lloq'"):
        read_kinetics(frame, mapping={**mapping, "lloq": {"qpcr": 10}})


def test_nonmem_dvid_names_give_the_assay(nonmem_frame):
    frame = nonmem_frame().drop(columns="CMT").assign(DVID=["qpcr"] * 3 + ["FLOW"] + ["qpcr"] * 5)
    assert read_kinetics(frame)["assay"].tolist() == ["qpcr"] * 3 + ["flow"] + ["qpcr"] * 2
