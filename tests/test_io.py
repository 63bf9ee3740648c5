"""Tests for cellkin.io: readers, conventions, exclusions, write_nonmem, table recognition,
checksums and bad input.

Every bad-input test checks that the DataError message names the file (or "DataFrame input"),
the column, the first offending row or subject, and how to fix it. Row numbers are 1-based data
rows (row 1 = first row below the header).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from cellkin.datasets import load_example
from cellkin.errors import DataError, DataWarning, OptionError
from cellkin.io import (
    KNOWN_UNITS,
    STUDY_TABLES,
    identify_table,
    kinetics_summary,
    read_adverse_events,
    read_kinetics,
    read_kinetics_with_exclusions,
    read_lesions,
    read_subjects,
    reading_notes,
    sha256,
    write_nonmem,
)

CANONICAL = ["subject", "time", "value", "assay", "unit", "lloq", "blq"]
TIMES = (0.0, 3.0, 7.0, 14.0, 28.0)


def kinetics_frame() -> pd.DataFrame:
    """20 samples: 2 subjects x (qpcr, flow) x 5 times; row 17 is S02/flow/day 3.

    The last qPCR sample of S01 (row 5) is below its LLOQ of 10 copies/ug and has no value;
    its `blq` cell says so (a missing value without a BLQ flag is missing, not BLQ); the other
    `blq` cells are empty (derived from value < lloq).
    """
    rows = []
    for number, subject in enumerate(("S01", "S02"), start=1):
        for assay, unit, lloq, peak in (
            ("qpcr", "copies/ug", 10.0, 5e4),
            ("flow", "cells/uL", 1.0, 200.0),
        ):
            for time in TIMES:
                value = peak * math.exp(-abs(time - 7.0) / 5.0) / number
                rows.append((subject, time, value, assay, unit, lloq))
    frame = pd.DataFrame(rows, columns=CANONICAL[:-1])
    frame.loc[4, "value"] = np.nan
    frame["blq"] = pd.Series([None] * len(frame), dtype=object)
    frame.loc[4, "blq"] = True
    return frame


def write_csv(tmp_path, frame: pd.DataFrame, name: str = "kinetics.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def with_cells(frame: pd.DataFrame, column: str, rows: list[int], value) -> pd.DataFrame:
    """Copy of `frame` with `value` in data rows `rows` (1-based) of `column`."""
    out = frame.copy()
    out[column] = out[column].astype(object)
    for row in rows:
        out.at[row - 1, column] = value
    return out


# ------------------------------------------------------------------------- happy paths


def test_read_canonical_csv(tmp_path):
    kin = read_kinetics(write_csv(tmp_path, kinetics_frame()))
    assert list(kin.columns) == CANONICAL
    assert len(kin) == 20
    assert kin.dtypes.to_dict() == {
        "subject": np.dtype(object),
        "time": np.dtype(float),
        "value": np.dtype(float),
        "assay": np.dtype(object),
        "unit": np.dtype(object),
        "lloq": np.dtype(float),
        "blq": np.dtype(bool),
    }
    # sorted by subject, assay (qpcr before flow), time; index is fresh
    assert kin["subject"].tolist() == ["S01"] * 10 + ["S02"] * 10
    assert kin["assay"].tolist()[:10] == ["qpcr"] * 5 + ["flow"] * 5
    assert kin["time"].tolist()[:5] == list(TIMES)
    assert kin.index.equals(pd.RangeIndex(20))
    # the empty value is BLQ (derived), the others are quantified
    assert kin["blq"].sum() == 1
    assert kin.loc[4, ["subject", "time", "assay"]].tolist() == ["S01", 28.0, "qpcr"]
    assert np.isnan(kin.loc[4, "value"]) and kin.loc[4, "blq"]
    assert kin.attrs["cellkin"]["convention"] == "canonical"


def test_rows_are_sorted_stably_by_subject_order_assay_and_time():
    frame = kinetics_frame().iloc[::-1].reset_index(drop=True)  # S02 first, times descending
    kin = read_kinetics(frame)
    assert kin["subject"].iloc[0] == "S02"  # order of first appearance is kept
    first = kin[kin["subject"] == "S02"]
    assert first["assay"].tolist() == ["qpcr"] * 5 + ["flow"] * 5
    assert first["time"].tolist()[:5] == list(TIMES)


def test_read_excel_by_position_and_name(tmp_path):
    path = tmp_path / "kinetics.xlsx"
    with pd.ExcelWriter(path) as book:
        pd.DataFrame({"note": ["cover sheet"]}).to_excel(book, sheet_name="README", index=False)
        kinetics_frame().to_excel(book, sheet_name="CK", index=False)
    expected = read_kinetics(kinetics_frame())
    pd.testing.assert_frame_equal(read_kinetics(path, sheet_name="CK"), expected)
    pd.testing.assert_frame_equal(read_kinetics(path, sheet_name=1), expected)


def test_read_parquet(tmp_path):
    path = tmp_path / "kinetics.parquet"
    kinetics_frame().to_parquet(path)
    pd.testing.assert_frame_equal(read_kinetics(path), read_kinetics(kinetics_frame()))


def test_dataframe_input_is_not_mutated():
    frame = kinetics_frame()
    frame["assay"] = frame["assay"].str.upper()
    frame.index = [f"r{i}" for i in range(len(frame))]
    before = frame.copy(deep=True)
    read_kinetics_with_exclusions(frame, exclude_before=5)
    pd.testing.assert_frame_equal(frame, before)


def test_read_is_idempotent():
    kin = read_kinetics(kinetics_frame())
    pd.testing.assert_frame_equal(read_kinetics(kin), kin)


def test_ids_keep_leading_zeros_in_csv(tmp_path):
    frame = kinetics_frame().assign(subject=lambda f: f["subject"].str.replace("S", "0"))
    kin = read_kinetics(write_csv(tmp_path, frame))
    assert kin["subject"].unique().tolist() == ["001", "002"]


def test_numeric_subject_ids_become_text():
    frame = kinetics_frame().assign(subject=lambda f: f["subject"].str[1:].astype(float))
    assert read_kinetics(frame)["subject"].unique().tolist() == ["1", "2"]


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("copies/µg", "copies/ug"),
        ("copies/μg", "copies/ug"),
        ("Copies/ug gDNA", "copies/ug"),
        ("copies / µg gDNA", "copies/ug"),
        ("cells/µL", "cells/uL"),
        ("cells/ul", "cells/uL"),
        ("CELLS/ΜL", "cells/uL"),
        ("copies/µL", "copies/uL"),
        ("% CD3", "%CD3"),
        ("%lymphocytes", "%lymphocytes"),
    ],
)
def test_unit_aliases_are_normalised(alias, canonical):
    frame = kinetics_frame().query("assay == 'qpcr'").assign(unit=alias)
    assert set(read_kinetics(frame)["unit"]) == {canonical}
    assert KNOWN_UNITS[canonical] == canonical


def test_blq_is_derived_from_value_and_lloq():
    frame = kinetics_frame()
    frame.loc[2, "value"] = 3.0  # below the LLOQ of 10
    kin = read_kinetics(frame)
    assert kin["blq"].dtype == bool
    assert kin.loc[(kin["subject"] == "S01") & (kin["assay"] == "qpcr"), "blq"].tolist() == [
        False,
        False,
        True,
        False,
        True,
    ]
    assert kin.loc[2, "value"] == 3.0  # a reported value below LLOQ is kept, not blanked


@pytest.mark.parametrize("true, false", [("Y", "N"), ("yes", "No"), (1, 0), ("TRUE", "false")])
def test_blq_flag_spellings(true, false):
    frame = kinetics_frame()
    frame["blq"] = [true if np.isnan(v) else false for v in frame["value"]]
    kin = read_kinetics(frame)
    assert kin["blq"].dtype == bool
    assert kin["blq"].sum() == 1


def test_empty_blq_cells_are_derived():
    frame = kinetics_frame()
    frame["blq"] = [None] * 20
    frame.loc[0, "blq"] = "N"
    frame.loc[2, "value"] = 3.0  # below the LLOQ of 10, no flag: BLQ
    kin = read_kinetics(frame)  # row 5 (no value, no flag) is missing, not BLQ
    assert kin["blq"].sum() == 1 and len(kin) == 19


def test_optional_and_extra_columns_are_kept_in_order():
    frame = kinetics_frame()
    frame.insert(0, "site", "Paris")
    frame["tissue"] = "blood"
    frame["dose_level"] = "DL2"
    frame["dose"] = 2e6
    kin = read_kinetics(frame)
    assert list(kin.columns) == [*CANONICAL, "dose", "dose_level", "tissue", "site"]
    assert kin["dose"].dtype == float


def test_tissue_is_not_invented():
    assert "tissue" not in read_kinetics(kinetics_frame()).columns


def test_tissue_is_part_of_the_sample_key():
    blood = kinetics_frame().assign(tissue="blood")
    marrow = blood.assign(tissue="bone marrow", value=blood["value"] * 2)
    kin = read_kinetics(pd.concat([marrow, blood], ignore_index=True))
    assert len(kin) == 40
    assert kin["tissue"].tolist()[:10] == ["blood"] * 5 + ["bone marrow"] * 5


def test_mapping_renames_user_columns():
    frame = kinetics_frame().rename(
        columns={"subject": "PatientID", "time": "Day", "value": "Result", "lloq": "LOQ"}
    )
    mapping = {"PatientID": "subject", "Day": "time", "Result": "value", "LOQ": "lloq"}
    pd.testing.assert_frame_equal(
        read_kinetics(frame, mapping=mapping), read_kinetics(kinetics_frame())
    )


def test_mapping_options_fill_missing_columns():
    frame = kinetics_frame().query("assay == 'flow'").drop(columns=["assay", "unit", "lloq"])
    kin = read_kinetics(frame, mapping={"assay": "flow", "unit": "cells/µL", "lloq": 1.0})
    assert set(kin["assay"]) == {"flow"} and set(kin["unit"]) == {"cells/uL"}
    assert (kin["lloq"] == 1.0).all()


def test_time_unit_mapping_converts_hours_and_records_it():
    frame = kinetics_frame().assign(time=lambda f: f["time"] * 24)
    kin = read_kinetics(frame, mapping={"time_unit": "hours"})
    assert kin["time"].tolist()[:5] == list(TIMES)
    notes = reading_notes(kin)
    assert "hours to days" in notes.loc[0, "note"] and notes.loc[0, "rows"] == 20


def test_exclude_before_moves_samples_to_exclusions():
    frame = kinetics_frame()
    frame.loc[[0, 5], "time"] = -5.0  # pre-lymphodepletion samples, rows 1 and 6
    kin, excl = read_kinetics_with_exclusions(frame, exclude_before=-3)
    assert len(kin) == 18
    assert list(excl.columns) == ["source_row", "subject", "time", "reason"]
    assert excl["source_row"].tolist() == [1, 6]
    assert excl["time"].tolist() == [-5.0, -5.0]
    assert excl["reason"].str.contains("exclude_before=-3").all()


def test_exclusions_are_empty_with_columns_when_nothing_is_excluded():
    _, excl = read_kinetics_with_exclusions(kinetics_frame())
    assert excl.empty
    assert list(excl.columns) == ["source_row", "subject", "time", "reason"]
    assert excl["source_row"].dtype == np.int64


def test_identical_duplicate_rows_warn_and_are_excluded():
    frame = pd.concat([kinetics_frame(), kinetics_frame().iloc[[16]]], ignore_index=True)
    with pytest.warns(
        DataWarning, match=r"DataFrame input: 1 sample row.*row 21, a copy of row 17"
    ):
        kin, excl = read_kinetics_with_exclusions(frame)
    assert len(kin) == 20
    assert excl[["source_row", "reason"]].values.tolist() == [[21, "identical duplicate of row 17"]]


def test_all_empty_rows_are_skipped_but_counted(tmp_path):
    path = tmp_path / "kinetics.csv"
    text = write_csv(tmp_path, kinetics_frame()).read_text().splitlines()
    text.insert(3, ",,,,,")  # an empty data row 3: the sample of data row 12 becomes row 13
    path.write_text("\n".join(text).replace("S02,3.0", "S02,D3", 1) + "\n")
    with pytest.raises(DataError, match=r"column `time` has 1 non-numeric value, at row 13: 'D3'"):
        read_kinetics(path)


# ------------------------------------------------------------------------------ NONMEM


def nonmem_frame() -> pd.DataFrame:
    """Two subjects: dose record, qPCR (CMT 1) and flow (CMT 2), one censored sample each."""
    return pd.DataFrame(
        {
            "ID": [1, 1, 1, 1, 1, 2, 2, 2, 2],
            "TIME": [0, 0, 7, 7, 28, 0, 7, 14, 28],
            "DV": [".", 120, 5e4, 80, 10, ".", 2e4, ".", 10],
            "MDV": [1, 0, 0, 0, 0, 1, 0, 1, 0],
            "EVID": [1, 0, 0, 0, 0, 1, 0, 0, 0],
            "AMT": [1e6, ".", ".", ".", ".", 2e6, ".", ".", "."],
            "CMT": [1, 1, 1, 2, 1, 1, 1, 1, 1],
            "CENS": [0, 0, 0, 0, 1, 0, 0, 0, 1],
            "LLOQ": [".", 10, 10, 1, 10, ".", 10, 10, 10],
            "UNIT": [".", *["copies/µg"] * 2, "cells/µL", "copies/µg", ".", *["copies/µg"] * 3],
        }
    )


def test_read_nonmem_with_cmt_mapping(tmp_path):
    path = write_csv(tmp_path, nonmem_frame(), "nm.csv")
    kin, excl = read_kinetics_with_exclusions(path, mapping={"cmt": {1: "qpcr", 2: "flow"}})
    assert kin.attrs["cellkin"]["convention"] == "nonmem"
    assert kin["subject"].tolist() == ["1", "1", "1", "1", "2", "2"]
    assert kin["assay"].tolist() == ["qpcr", "qpcr", "qpcr", "flow", "qpcr", "qpcr"]
    assert kin["unit"].tolist() == ["copies/ug"] * 3 + ["cells/uL"] + ["copies/ug"] * 2
    # CENS=1: DV holds the LLOQ, the value is not a measurement
    assert kin["blq"].tolist() == [False, False, True, False, False, True]
    assert np.isnan(kin.loc[2, "value"]) and kin.loc[2, "lloq"] == 10.0
    assert excl["source_row"].tolist() == [1, 6, 8]
    assert excl["reason"].tolist() == [
        "dose record (EVID=1)",
        "dose record (EVID=1)",
        "no observation (MDV=1)",
    ]


def test_read_nonmem_cmt_names_and_lower_case_headers():
    frame = nonmem_frame().rename(columns=str.lower)
    frame["cmt"] = frame["cmt"].map({1: "QPCR", 2: "flow"})
    kin = read_kinetics(frame)
    assert set(kin["assay"]) == {"qpcr", "flow"}


def test_read_nonmem_mdv1_with_blq_flag_is_a_sample():
    frame = nonmem_frame().rename(columns={"CENS": "BLQ"})
    frame.loc[8, ["DV", "MDV"]] = [".", 1]  # BLQ row flagged MDV=1 (M1-style dataset)
    kin = read_kinetics(frame, mapping={"cmt": {1: "qpcr", 2: "flow"}})
    assert kin.iloc[-1][["subject", "time", "blq"]].tolist() == ["2", 28.0, True]


def test_read_nonmem_hours_via_time_unit():
    frame = nonmem_frame().assign(TIME=lambda f: f["TIME"] * 24)
    kin = read_kinetics(frame, mapping={"cmt": {1: "qpcr", 2: "flow"}, "time_unit": "h"})
    assert kin["time"].max() == 28.0


# ------------------------------------------------------------------------------- CDISC


def adpc_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "STUDYID": "KD-025-101",
            "USUBJID": ["KD-001", "KD-001", "KD-001", "KD-002", "KD-002"],
            "PARAMCD": ["CARTQPCR", "CARTQPCR", "CARTFLOW", "TRANSGEN", "TRANSGEN"],
            "AFRLT": [0.0, 168.0, 168.0, 72.0, 672.0],
            "AFRLTU": "HOURS",
            "AVAL": [150.0, 4.2e4, 95.0, 8e3, None],
            "AVALU": ["copies/ug gDNA", "copies/ug gDNA", "cells/uL", "copies/µg", "copies/µg"],
            "ALLOQ": [10.0, 10.0, 1.0, 10.0, 10.0],
            "BLQFL": ["N", "N", "N", "N", "Y"],
        }
    )


def test_read_cdisc_converts_hours_to_days(tmp_path):
    path = tmp_path / "adpc.parquet"
    adpc_frame().to_parquet(path)
    kin = read_kinetics(path)
    assert kin.attrs["cellkin"]["convention"] == "cdisc"
    assert kin["subject"].tolist() == ["KD-001", "KD-001", "KD-001", "KD-002", "KD-002"]
    assert kin["time"].tolist() == [0.0, 7.0, 7.0, 3.0, 28.0]
    assert kin["assay"].tolist() == ["qpcr", "qpcr", "flow", "qpcr", "qpcr"]
    assert kin["unit"].tolist() == ["copies/ug"] * 2 + ["cells/uL"] + ["copies/ug"] * 2
    assert kin["blq"].tolist() == [False, False, False, False, True]
    assert kin.columns[-1] == "STUDYID"  # extra columns are kept
    assert reading_notes(kin)["note"].tolist() == [
        "`AFRLT` converted from hours to days (divided by 24; unit from column `AFRLTU`)"
    ]


def test_read_cdisc_time_unit_from_mapping_and_paramcd_override():
    frame = adpc_frame().drop(columns="AFRLTU")
    frame.loc[2, "PARAMCD"] = "CARTCD8"
    kin = read_kinetics(frame, mapping={"time_unit": "h", "paramcd": {"cartcd8": "flow"}})
    assert kin["assay"].tolist() == ["qpcr", "qpcr", "flow", "qpcr", "qpcr"]


# ---------------------------------------------------------------------- write_nonmem


def test_write_nonmem_round_trip_without_subjects(tmp_path):
    kin = read_kinetics(kinetics_frame())
    path = tmp_path / "nm.csv"
    written = write_nonmem(kin, path)
    assert list(written.columns[:12]) == [
        "ID", "TIME", "DV", "MDV", "EVID", "AMT", "CMT", "CENS", "LLOQ", "ASSAY", "UNIT", "USUBJID",
    ]  # fmt: skip
    assert written["CMT"].tolist()[:10] == [1] * 5 + [2] * 5
    back, excl = read_kinetics_with_exclusions(path)
    pd.testing.assert_frame_equal(back, kin)
    assert excl.empty


def test_write_nonmem_round_trip_with_subjects(tmp_path):
    frame = kinetics_frame()
    frame.loc[10, "time"] = -2.0  # a pre-infusion baseline sample of S02
    kin = read_kinetics(frame)
    subjects = pd.DataFrame(
        {"subject": ["S01", "S02"], "dose": [1e6, 5e6], "dose_level": [1, 2], "bor": ["PR", "PD"]}
    )
    path = tmp_path / "nm.csv"
    written = write_nonmem(kin, path, subjects=subjects)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("ID,TIME,DV,MDV,EVID,AMT,CMT,CENS,LLOQ,ASSAY,UNIT,USUBJID")
    # dose record first, '.' for missing, then the covariates DOSE and DOSE_LEVEL
    assert lines[1] == "1,0.0,.,1,1,1000000.0,1,0,.,.,.,S01,1000000.0,1"
    assert "BOR" not in written.columns  # outcomes are not covariates
    s02 = written[written["USUBJID"] == "S02"]
    assert s02["EVID"].tolist()[:2] == [0, 1]  # day -2 sample, then the dose at 0
    blq = written[written["CENS"] == 1]
    assert (blq["DV"] == blq["LLOQ"]).all() and (blq["MDV"] == 0).all()
    back, excl = read_kinetics_with_exclusions(path)
    pd.testing.assert_frame_equal(back[CANONICAL], kin[CANONICAL])
    assert excl["reason"].tolist() == ["dose record (EVID=1)"] * 2


def test_write_nonmem_refuses_covariates_named_like_nonmem_columns(tmp_path):
    subjects = pd.DataFrame({"subject": ["S01", "S02"], "dose": [1e6, 2e6], "time": [1, 2]})
    with pytest.raises(DataError, match=r"write_nonmem: subjects column `time` would overwrite"):
        write_nonmem(kinetics_frame(), tmp_path / "nm.csv", subjects=subjects)


def test_write_nonmem_needs_every_subject(tmp_path):
    subjects = pd.DataFrame({"subject": ["S01"], "dose": [1e6]})
    with pytest.raises(DataError, match=r"write_nonmem: 1 subject.* no row in `subjects`.*'S02'"):
        write_nonmem(kinetics_frame(), tmp_path / "nm.csv", subjects=subjects)


# --------------------------------------------------------------------- clinical tables


def subjects_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Subject": ["S01", "S02", "S03"],
            "dose": [1e6, 3e6, 1e7],
            "bor": ["pr", "PD", None],
            "crs_grade": [1, 2.0, 0],
            "dlt": ["N", "Y", "no"],
            "pfs_days": [180.0, 35.0, 90.0],
            "pfs_event": [0, 1, 1],
            "ldh": [250, 400, 310],
        }
    )


def test_read_subjects():
    subjects = read_subjects(subjects_frame())
    assert list(subjects.columns) == [
        "subject", "dose", "bor", "crs_grade", "dlt", "pfs_days", "pfs_event", "ldh",
    ]  # fmt: skip
    assert subjects["bor"].tolist()[:2] == ["PR", "PD"] and pd.isna(subjects.loc[2, "bor"])
    assert subjects["crs_grade"].dtype == "Int64"
    assert subjects["dlt"].tolist() == [False, True, False]
    assert subjects["pfs_event"].dtype == bool


def lesions_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "subject": ["S01"] * 4,
            "day": [-7, -7, 28, 28],
            "lesion_id": ["T1", "NT1", "T1", "NT1"],
            "kind": ["target", "Non-target", "TARGET", "nontarget"],
            "nodal": ["N", "Y", "N", "Y"],
            "diameter_mm": [32.0, None, 21.5, None],
            "status": [None, "present", None, "Unequivocal progression"],
        }
    )


def test_read_lesions():
    lesions = read_lesions(lesions_frame())
    assert lesions["kind"].tolist() == ["target", "nontarget", "target", "nontarget"]
    assert lesions["status"].tolist()[3] == "unequivocal_progression"
    assert lesions["nodal"].dtype == bool


def ae_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "subject": ["S01", "S01", "S02"],
            "term": ["Cytokine release syndrome", "Neutropenia", "ICANS"],
            "soc": ["Immune system disorders", "Blood", "Nervous system disorders"],
            "grade": [2, 3, 1],
            "onset_day": [1.0, 3.0, 5.0],
            "end_day": [4.0, None, 6.0],
            "serious": ["Y", "n", "No"],
            "related": ["yes", "TRUE", 1],
            "dlt": [0, 0, 0],
        }
    )


def test_read_adverse_events():
    ae = read_adverse_events(ae_frame())
    assert ae["grade"].tolist() == [2, 3, 1]
    assert ae["serious"].tolist() == [True, False, False]
    assert ae["related"].all()
    assert pd.isna(ae.loc[1, "end_day"])


# ------------------------------------------------------------------------- bad input
# Each test names its class (numbered as in the issue) and checks file, column, row and fix.


def test_01_missing_required_column_suggests_close_match(tmp_path):
    path = write_csv(tmp_path, kinetics_frame().rename(columns={"value": "valeu"}))
    with pytest.raises(
        DataError,
        match=r"kinetics\.csv: missing required column `value` \(did you mean `valeu`\?\)",
    ):
        read_kinetics(path)


def test_01_missing_lloq_column_suggests_mapping(tmp_path):
    path = write_csv(tmp_path, kinetics_frame().drop(columns="lloq"))
    with pytest.raises(DataError, match=r"kinetics\.csv: missing required column `lloq`.*mapping"):
        read_kinetics(path)


def test_02_non_numeric_time(tmp_path):
    path = write_csv(tmp_path, with_cells(kinetics_frame(), "time", [17, 19, 20], "D7"))
    message = (
        r"kinetics\.csv: column `time` has 3 non-numeric values, first at row 17: 'D7'\. "
        r"Times must be numbers of days since infusion"
    )
    with pytest.raises(DataError, match=message):
        read_kinetics(path)


def test_03_unreadable_value(tmp_path):
    """Text that is neither a number, BLQ text nor a missing-value word is refused (BLQ text
    such as '<LLOQ' is read since #17: tests/io/test_lab_values.py)."""
    path = write_csv(tmp_path, with_cells(kinetics_frame(), "value", [8], "pending"))
    with pytest.raises(
        DataError,
        match=r"kinetics\.csv: column `value` has 1 value that cannot be read, at row 8: "
        r"'pending'.*BLQ text",
    ):
        read_kinetics(path)


def test_04_negative_value_is_blq_with_a_note(tmp_path):
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
def test_06_blq_flag_inconsistent_with_value(tmp_path, row, value, flag, problem):
    frame = kinetics_frame()
    frame["blq"] = frame["value"].isna()
    frame.loc[row - 1, ["value", "blq"]] = [value, flag]
    with pytest.raises(DataError, match=rf"kinetics\.csv: column `blq` has {problem}"):
        read_kinetics(write_csv(tmp_path, frame))


@pytest.mark.parametrize("lloq", [-1, 0])
def test_07_lloq_not_positive(tmp_path, lloq):
    """LLOQ <= 0 is an error naming the rows (#17: LLOQ = 0 was accepted, then fits failed)."""
    path = write_csv(tmp_path, with_cells(kinetics_frame(), "lloq", [6, 7], lloq))
    with pytest.raises(
        DataError, match=rf"kinetics\.csv: column `lloq` has 2 LLOQs ≤ 0, first at row 6: {lloq}"
    ):
        read_kinetics(path)


def test_07b_non_numeric_lloq(tmp_path):
    path = write_csv(tmp_path, with_cells(kinetics_frame(), "lloq", [4], "10 copies"))
    with pytest.raises(
        DataError,
        match=r"kinetics\.csv: column `lloq` has 1 non-numeric value, at row 4: '10 copies'",
    ):
        read_kinetics(path)


def test_08_missing_lloq_value(tmp_path):
    path = write_csv(tmp_path, with_cells(kinetics_frame(), "lloq", [9], None))
    with pytest.raises(
        DataError,
        match=r"kinetics\.csv: column `lloq` has 1 missing value, at row 9: \(empty\)\. "
        r"Every sample needs the lower limit of quantification",
    ):
        read_kinetics(path)


def test_09_duplicate_samples_with_different_values(tmp_path):
    frame = kinetics_frame()
    frame.loc[20] = frame.loc[16]
    frame.loc[20, "value"] = 99.0
    with pytest.raises(
        DataError,
        match=r"kinetics\.csv: subject 'S02', assay 'flow', time 3: rows 17, 21 are duplicate "
        r"samples .* average replicates",
    ):
        read_kinetics(write_csv(tmp_path, frame))


def test_10_two_units_in_one_assay_are_converted(tmp_path):
    """Since #17 convertible units are converted to one (with a note), never pooled."""
    frame = with_cells(kinetics_frame(), "unit", [18], "cells/mL")
    kin = read_kinetics(write_csv(tmp_path, frame))
    assert set(kin.loc[kin["assay"] == "flow", "unit"]) == {"cells/uL"}
    row = kin[(kin["subject"] == "S02") & (kin["assay"] == "flow") & (kin["time"] == 7.0)]
    assert row["value"].iloc[0] == pytest.approx(frame.at[17, "value"] / 1000)
    assert row["lloq"].iloc[0] == pytest.approx(1.0 / 1000)
    assert "cells/mL to cells/uL" in reading_notes(kin).iloc[-1]["note"]


def test_10_two_units_that_cannot_be_converted(tmp_path):
    frame = with_cells(kinetics_frame(), "unit", [18], "copies/ug")
    with pytest.raises(
        DataError,
        match=r"kinetics\.csv: assay 'flow': column `unit` mixes units that cannot be converted "
        r"into each other: 'cells/uL' \(row 6\), 'copies/ug' \(row 18\)",
    ):
        read_kinetics(write_csv(tmp_path, frame))


def test_11_unknown_unit(tmp_path):
    frame = kinetics_frame().assign(unit=lambda f: f["unit"].replace("cells/uL", "IU/mL"))
    with pytest.raises(
        DataError,
        match=r"kinetics\.csv: column `unit` has 10 unknown units, first at row 6: 'IU/mL'\. "
        r"Known units .*copies/ug \(copies/µg, .*cells/uL \(cells/µL",
    ):
        read_kinetics(write_csv(tmp_path, frame))


@pytest.mark.parametrize("empty", [None, "   "])
def test_12_empty_subject_id(tmp_path, empty):
    path = write_csv(tmp_path, with_cells(kinetics_frame(), "subject", [14], empty))
    with pytest.raises(
        DataError, match=r"kinetics\.csv: column `subject` has 1 empty value, at row 14.*subject id"
    ):
        read_kinetics(path)


@pytest.mark.parametrize(
    ("cell", "problem"), [("inf", "infinite value"), (None, "missing value"), ("-inf", "infinite")]
)
def test_13_infinite_or_missing_time(tmp_path, cell, problem):
    path = write_csv(tmp_path, with_cells(kinetics_frame(), "time", [11], cell))
    with pytest.raises(DataError, match=rf"kinetics\.csv: column `time` has 1 {problem}.*row 11"):
        read_kinetics(path)


def test_14_empty_table(tmp_path):
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
def test_18_ambiguous_column_mapping(tmp_path, extra, listed):
    path = write_csv(tmp_path, kinetics_frame().assign(**extra))
    with pytest.raises(
        DataError, match=rf"kinetics\.csv: ambiguous column mapping: {listed}.*mapping="
    ):
        read_kinetics(path)


def test_18_ambiguity_resolved_by_convention():
    frame = kinetics_frame().assign(USUBJID="X")
    kin = read_kinetics(frame, mapping={"convention": "canonical"})
    assert kin.columns[-1] == "USUBJID"


def test_18_adppk_with_nonmem_and_cdisc_names_is_ambiguous():
    frame = nonmem_frame().assign(USUBJID="X", AFRLT=0.0, AVAL=1.0)
    with pytest.raises(DataError, match=r"DataFrame input: ambiguous .* nonmem .* cdisc"):
        read_kinetics(frame)


def test_19_negative_lesion_diameter(tmp_path):
    path = write_csv(tmp_path, with_cells(lesions_frame(), "diameter_mm", [3], -4.0), "les.csv")
    with pytest.raises(
        DataError, match=r"les\.csv: column `diameter_mm` has 1 value below 0, at row 3: -4\.0"
    ):
        read_lesions(path)


@pytest.mark.parametrize("grade", [0, 6, 2.5, "G3"])
def test_20_ae_grade_outside_1_to_5(tmp_path, grade):
    path = write_csv(tmp_path, with_cells(ae_frame(), "grade", [2], grade), "ae.csv")
    with pytest.raises(DataError, match=r"ae\.csv: column `grade` has 1 .*at row 2.*1–5"):
        read_adverse_events(path)


def test_21_ae_onset_after_end(tmp_path):
    path = write_csv(tmp_path, with_cells(ae_frame(), "end_day", [3], 2.0), "ae.csv")
    with pytest.raises(
        DataError,
        match=r"ae\.csv: column `end_day` has 1 event ending before onset, at row 3: "
        r"onset 5\.0, end 2\.0\. Check the two days",
    ):
        read_adverse_events(path)


def test_22_duplicated_subject_in_subject_table(tmp_path):
    frame = subjects_frame()
    frame.loc[3] = frame.loc[1]
    with pytest.raises(
        DataError,
        match=r"subjects\.csv: column `subject` must identify one row, but subject 'S02' is on "
        r"rows 2, 4 \(2 rows affected\)\. Give each subject one row",
    ):
        read_subjects(write_csv(tmp_path, frame, "subjects.csv"))


@pytest.mark.parametrize("flag", ["maybe", 2, "BLQ?"])
def test_23_invalid_blq_values(tmp_path, flag):
    frame = kinetics_frame().assign(blq=lambda f: f["value"].isna())
    path = write_csv(tmp_path, with_cells(frame, "blq", [7], flag))
    with pytest.raises(
        DataError,
        match=r"kinetics\.csv: column `blq` has 1 invalid flag, at row 7.*Y/N, yes/no, 1/0",
    ):
        read_kinetics(path)


def test_24_bad_bor_code(tmp_path):
    path = write_csv(tmp_path, with_cells(subjects_frame(), "bor", [3], "uCR"), "subjects.csv")
    with pytest.raises(
        DataError,
        match=r"subjects\.csv: column `bor` has 1 unknown code, at row 3: 'uCR'.*CR, NE, PD",
    ):
        read_subjects(path)


def test_25_unknown_lesion_kind(tmp_path):
    path = write_csv(tmp_path, with_cells(lesions_frame(), "kind", [2], "measurable"), "l.csv")
    with pytest.raises(
        DataError,
        match=r"l\.csv: column `kind` has 1 unknown code, at row 2: 'measurable'.*new, nontarget",
    ):
        read_lesions(path)


def test_26_nonmem_numeric_cmt_without_mapping(tmp_path):
    path = write_csv(tmp_path, nonmem_frame(), "nm.csv")
    with pytest.raises(
        DataError,
        match=r"nm\.csv: column `CMT` has 6 numeric codes with no assay "
        r"mapping, first at row 2: 1.*mapping=\{'cmt': \{1: 'qpcr', 2: 'flow'\}\}",
    ):
        read_kinetics(path)


def test_27_nonmem_cmt_missing_from_mapping():
    with pytest.raises(
        DataError,
        match=r"DataFrame input: column `CMT` has 1 code missing from the mapping, at row 4: 2",
    ):
        read_kinetics(nonmem_frame(), mapping={"cmt": {1: "qpcr"}})


def test_28_nonmem_right_censored_rows_are_refused():
    frame = nonmem_frame()
    frame.loc[2, "CENS"] = -1
    with pytest.raises(DataError, match=r"column `CENS` .* 1 right-censored row \(-1\), at row 3"):
        read_kinetics(frame, mapping={"cmt": {1: "qpcr", 2: "flow"}})


def test_29_nonmem_censored_dv_above_lloq():
    frame = nonmem_frame()
    frame.loc[4, "DV"] = 40
    with pytest.raises(
        DataError, match=r"1 censored row with DV > LLOQ, at row 5: value 40\.0, lloq 10\.0"
    ):
        read_kinetics(frame, mapping={"cmt": {1: "qpcr", 2: "flow"}})


def test_30_nonmem_id_and_usubjid_disagree():
    frame = nonmem_frame().assign(USUBJID=["A"] * 5 + ["B"] * 3 + ["A"])
    with pytest.raises(
        DataError,
        match=r"column `USUBJID` has 1 row whose ID and USUBJID disagree, at row 9: ID '2', "
        r"USUBJID 'A'",
    ):
        read_kinetics(frame, mapping={"cmt": {1: "qpcr", 2: "flow"}})


def test_31_cdisc_time_without_unit(tmp_path):
    path = write_csv(tmp_path, adpc_frame().drop(columns="AFRLTU"), "adpc.csv")
    with pytest.raises(
        DataError,
        match=r"adpc\.csv: the unit of column `AFRLT` \(read as `time`\) is unknown.*"
        r"mapping=\{'time_unit': 'h'\}",
    ):
        read_kinetics(path)


def test_32_unknown_time_unit(tmp_path):
    path = write_csv(tmp_path, with_cells(adpc_frame(), "AFRLTU", [4], "fortnights"), "adpc.csv")
    with pytest.raises(
        DataError, match=r"adpc\.csv: column `AFRLTU` has 1 unknown time unit, at row 4"
    ):
        read_kinetics(path)


def test_33_missing_sheet(tmp_path):
    path = tmp_path / "kinetics.xlsx"
    kinetics_frame().to_excel(path, sheet_name="CK", index=False)
    with pytest.raises(
        DataError, match=r"kinetics\.xlsx: no sheet 'qPCR'; the workbook has .*'CK'"
    ):
        read_kinetics(path, sheet_name="qPCR")


def test_34_bad_mapping_key_and_target():
    with pytest.raises(DataError, match=r"mapping key 'Visit' is neither a column"):
        read_kinetics(kinetics_frame(), mapping={"Visit": "visit"})
    with pytest.raises(DataError, match=r"mapping renames column `value` to 'level'"):
        read_kinetics(kinetics_frame(), mapping={"value": "level"})


def test_35_everything_excluded():
    with pytest.raises(DataError, match=r"DataFrame input: no sample rows remain.*row 1: before"):
        read_kinetics(kinetics_frame(), exclude_before=100)


def test_36_subject_table_values(tmp_path):
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


def test_37_lesion_cross_checks():
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


def test_38_ae_flag_spelling(tmp_path):
    path = write_csv(tmp_path, with_cells(ae_frame(), "serious", [2], "severe"), "ae.csv")
    with pytest.raises(DataError, match=r"ae\.csv: column `serious` has 1 invalid flag, at row 2"):
        read_adverse_events(path)


def test_39_dataframe_index_label_is_cited():
    frame = with_cells(kinetics_frame(), "time", [17], "D7")
    frame.index = [f"lab-{i}" for i in range(len(frame))]
    with pytest.raises(DataError, match=r"DataFrame input: .* at row 17 \(index 'lab-16'\): 'D7'"):
        read_kinetics(frame)


def test_40_wrong_argument_types():
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
def test_41_column_and_mapping_problems(change, mapping, message):
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
def test_41_bad_mapping_option_values_raise_option_error(mapping, message):
    with pytest.raises(OptionError, match=rf"DataFrame input: {message}"):
        read_kinetics(kinetics_frame(), mapping=mapping)


def test_per_assay_lloq_and_unit_from_mapping():
    frame = kinetics_frame().drop(columns=["lloq", "unit"])
    mapping = {"lloq": {"qpcr": 10, "flow": 1}, "unit": {"qpcr": "copies/µg", "flow": "cells/µL"}}
    pd.testing.assert_frame_equal(
        read_kinetics(frame, mapping=mapping), read_kinetics(kinetics_frame())
    )
    with pytest.raises(DataError, match=r"`assay` has 10 values missing from mapping\['lloq'"):
        read_kinetics(frame, mapping={**mapping, "lloq": {"qpcr": 10}})


def test_nonmem_dvid_names_give_the_assay():
    frame = nonmem_frame().drop(columns="CMT").assign(DVID=["qpcr"] * 3 + ["FLOW"] + ["qpcr"] * 5)
    assert read_kinetics(frame)["assay"].tolist() == ["qpcr"] * 3 + ["flow"] + ["qpcr"] * 2


def test_windows_1252_csv_with_micro_sign(tmp_path):
    path = tmp_path / "kinetics.csv"
    text = kinetics_frame().assign(unit=lambda f: f["unit"].str.replace("u", "µ"))
    path.write_bytes(text.to_csv(index=False).encode("cp1252"))
    assert set(read_kinetics(path)["unit"]) == {"copies/ug", "cells/uL"}


def test_excel_numeric_ids_become_text(tmp_path):
    path = tmp_path / "kinetics.xlsx"
    kinetics_frame().assign(subject=lambda f: f["subject"].str[1:].astype(int)).to_excel(
        path, index=False
    )
    assert read_kinetics(path)["subject"].unique().tolist() == ["1", "2"]


# ------------------------------------------------------------------------- study files


def test_example_tables_are_recognised_by_their_columns():
    source = load_example().source
    assert STUDY_TABLES == ("kinetics", "subjects", "lesions", "adverse_events")
    for name in STUDY_TABLES:
        assert identify_table(source / f"{name}.csv") == name


def test_recognition_reads_the_header_of_every_format(tmp_path):
    frame = ae_frame().astype(str)
    frame.to_csv(tmp_path / "ae.tsv", sep="\t", index=False)
    frame.to_csv(tmp_path / "ae.csv.gz", index=False)
    frame.to_excel(tmp_path / "ae.xlsx", index=False)
    frame.to_parquet(tmp_path / "ae.parquet")
    (tmp_path / "pk.csv").write_bytes("ID,TIME,DV,Einheit µg\n1,0,1,x\n".encode("cp1252"))
    for name in ("ae.tsv", "ae.csv.gz", "ae.xlsx", "ae.parquet"):
        assert identify_table(tmp_path / name) == "adverse_events", name
    assert identify_table(str(tmp_path / "pk.csv")) == "kinetics"


def test_unrecognised_or_missing_files_are_clear_errors(tmp_path):
    odd = write_csv(tmp_path, pd.DataFrame({"a": [1], "b": [2]}), "odd.csv")
    with pytest.raises(
        DataError, match=r"odd\.csv: cannot tell .*\(a, b…\); name it with --kinetics"
    ):
        identify_table(odd)
    with pytest.raises(DataError, match=r"missing\.csv: no such file"):
        identify_table(tmp_path / "missing.csv")


def test_sha256_of_the_fips_180_2_example(tmp_path):
    path = tmp_path / "abc.txt"
    path.write_bytes(b"abc")  # FIPS 180-2, appendix B.1: SHA-256("abc")
    assert sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_kinetics_summary_by_hand():
    summary = kinetics_summary(read_kinetics(kinetics_frame()))
    # 2 subjects x 5 days per assay; one qPCR sample of 10 is BLQ; peaks at day 7 (subject 1)
    expected = pd.DataFrame(
        {
            "assay": ["flow", "qpcr"],
            "unit": ["cells/uL", "copies/ug"],
            "subjects": [2, 2],
            "samples": [10, 10],
            "blq_pct": [0.0, 10.0],
            "lloq_min": [1.0, 10.0],
            "lloq_max": [1.0, 10.0],
            "first_day": [0.0, 0.0],
            "last_day": [28.0, 28.0],
            "max_value": [200.0, 5e4],
        }
    )
    pd.testing.assert_frame_equal(summary, expected, check_dtype=False)
