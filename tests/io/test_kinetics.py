"""cellkin.io kinetics reader on canonical tables: columns, order, formats, mappings, exclusions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cellkin.errors import DataError, DataWarning
from cellkin.io import (
    KNOWN_UNITS,
    read_kinetics,
    read_kinetics_with_exclusions,
    reading_notes,
)

CANONICAL = ["subject", "time", "value", "assay", "unit", "lloq", "blq"]
TIMES = (0.0, 3.0, 7.0, 14.0, 28.0)


def test_read_canonical_csv(tmp_path, kinetics_frame, write_csv):
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


def test_rows_are_sorted_stably_by_subject_order_assay_and_time(kinetics_frame):
    frame = kinetics_frame().iloc[::-1].reset_index(drop=True)  # S02 first, times descending
    kin = read_kinetics(frame)
    assert kin["subject"].iloc[0] == "S02"  # order of first appearance is kept
    first = kin[kin["subject"] == "S02"]
    assert first["assay"].tolist() == ["qpcr"] * 5 + ["flow"] * 5
    assert first["time"].tolist()[:5] == list(TIMES)


def test_read_excel_by_position_and_name(tmp_path, kinetics_frame):
    path = tmp_path / "kinetics.xlsx"
    with pd.ExcelWriter(path) as book:
        pd.DataFrame({"note": ["cover sheet"]}).to_excel(book, sheet_name="README", index=False)
        kinetics_frame().to_excel(book, sheet_name="CK", index=False)
    expected = read_kinetics(kinetics_frame())
    pd.testing.assert_frame_equal(read_kinetics(path, sheet_name="CK"), expected)
    pd.testing.assert_frame_equal(read_kinetics(path, sheet_name=1), expected)


def test_read_parquet(tmp_path, kinetics_frame):
    path = tmp_path / "kinetics.parquet"
    kinetics_frame().to_parquet(path)
    pd.testing.assert_frame_equal(read_kinetics(path), read_kinetics(kinetics_frame()))


def test_dataframe_input_is_not_mutated(kinetics_frame):
    frame = kinetics_frame()
    frame["assay"] = frame["assay"].str.upper()
    frame.index = [f"r{i}" for i in range(len(frame))]
    before = frame.copy(deep=True)
    read_kinetics_with_exclusions(frame, exclude_before=5)
    pd.testing.assert_frame_equal(frame, before)


def test_read_is_idempotent(kinetics_frame):
    kin = read_kinetics(kinetics_frame())
    pd.testing.assert_frame_equal(read_kinetics(kin), kin)


def test_ids_keep_leading_zeros_in_csv(tmp_path, kinetics_frame, write_csv):
    frame = kinetics_frame().assign(subject=lambda f: f["subject"].str.replace("S", "0"))
    kin = read_kinetics(write_csv(tmp_path, frame))
    assert kin["subject"].unique().tolist() == ["001", "002"]


def test_numeric_subject_ids_become_text(kinetics_frame):
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
def test_unit_aliases_are_normalised(alias, canonical, kinetics_frame):
    frame = kinetics_frame().query("assay == 'qpcr'").assign(unit=alias)
    assert set(read_kinetics(frame)["unit"]) == {canonical}
    assert KNOWN_UNITS[canonical] == canonical


def test_blq_is_derived_from_value_and_lloq(kinetics_frame):
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
def test_blq_flag_spellings(true, false, kinetics_frame):
    frame = kinetics_frame()
    frame["blq"] = [true if np.isnan(v) else false for v in frame["value"]]
    kin = read_kinetics(frame)
    assert kin["blq"].dtype == bool
    assert kin["blq"].sum() == 1


def test_empty_blq_cells_are_derived(kinetics_frame):
    frame = kinetics_frame()
    frame["blq"] = [None] * 20
    frame.loc[0, "blq"] = "N"
    frame.loc[2, "value"] = 3.0  # below the LLOQ of 10, no flag: BLQ
    kin = read_kinetics(frame)  # row 5 (no value, no flag) is missing, not BLQ
    assert kin["blq"].sum() == 1 and len(kin) == 19


def test_optional_and_extra_columns_are_kept_in_order(kinetics_frame):
    frame = kinetics_frame()
    frame.insert(0, "site", "Paris")
    frame["tissue"] = "blood"
    frame["dose_level"] = "DL2"
    frame["dose"] = 2e6
    kin = read_kinetics(frame)
    assert list(kin.columns) == [*CANONICAL, "dose", "dose_level", "tissue", "site"]
    assert kin["dose"].dtype == float


def test_tissue_is_not_invented(kinetics_frame):
    assert "tissue" not in read_kinetics(kinetics_frame()).columns


def test_tissue_is_part_of_the_sample_key(kinetics_frame):
    blood = kinetics_frame().assign(tissue="blood")
    marrow = blood.assign(tissue="bone marrow", value=blood["value"] * 2)
    kin = read_kinetics(pd.concat([marrow, blood], ignore_index=True))
    assert len(kin) == 40
    assert kin["tissue"].tolist()[:10] == ["blood"] * 5 + ["bone marrow"] * 5


def test_mapping_renames_user_columns(kinetics_frame):
    frame = kinetics_frame().rename(
        columns={"subject": "PatientID", "time": "Day", "value": "Result", "lloq": "LOQ"}
    )
    mapping = {"PatientID": "subject", "Day": "time", "Result": "value", "LOQ": "lloq"}
    pd.testing.assert_frame_equal(
        read_kinetics(frame, mapping=mapping), read_kinetics(kinetics_frame())
    )


def test_mapping_options_fill_missing_columns(kinetics_frame):
    frame = kinetics_frame().query("assay == 'flow'").drop(columns=["assay", "unit", "lloq"])
    kin = read_kinetics(frame, mapping={"assay": "flow", "unit": "cells/µL", "lloq": 1.0})
    assert set(kin["assay"]) == {"flow"} and set(kin["unit"]) == {"cells/uL"}
    assert (kin["lloq"] == 1.0).all()


def test_time_unit_mapping_converts_hours_and_records_it(kinetics_frame):
    frame = kinetics_frame().assign(time=lambda f: f["time"] * 24)
    kin = read_kinetics(frame, mapping={"time_unit": "hours"})
    assert kin["time"].tolist()[:5] == list(TIMES)
    notes = reading_notes(kin)
    assert "hours to days" in notes.loc[0, "note"] and notes.loc[0, "rows"] == 20


def test_exclude_before_moves_samples_to_exclusions(kinetics_frame):
    frame = kinetics_frame()
    frame.loc[[0, 5], "time"] = -5.0  # pre-lymphodepletion samples, rows 1 and 6
    kin, excl = read_kinetics_with_exclusions(frame, exclude_before=-3)
    assert len(kin) == 18
    assert list(excl.columns) == ["source_row", "subject", "time", "reason"]
    assert excl["source_row"].tolist() == [1, 6]
    assert excl["time"].tolist() == [-5.0, -5.0]
    assert excl["reason"].str.contains("exclude_before=-3").all()


def test_exclusions_are_empty_with_columns_when_nothing_is_excluded(kinetics_frame):
    _, excl = read_kinetics_with_exclusions(kinetics_frame())
    assert excl.empty
    assert list(excl.columns) == ["source_row", "subject", "time", "reason"]
    assert excl["source_row"].dtype == np.int64


def test_identical_duplicate_rows_warn_and_are_excluded(kinetics_frame):
    frame = pd.concat([kinetics_frame(), kinetics_frame().iloc[[16]]], ignore_index=True)
    with pytest.warns(
        DataWarning, match=r"DataFrame input: 1 sample row.*row 21, a copy of row 17"
    ):
        kin, excl = read_kinetics_with_exclusions(frame)
    assert len(kin) == 20
    assert excl[["source_row", "reason"]].values.tolist() == [[21, "identical duplicate of row 17"]]


def test_all_empty_rows_are_skipped_but_counted(tmp_path, kinetics_frame, write_csv):
    path = tmp_path / "kinetics.csv"
    text = write_csv(tmp_path, kinetics_frame()).read_text().splitlines()
    text.insert(3, ",,,,,")  # an empty data row 3: the sample of data row 12 becomes row 13
    path.write_text("\n".join(text).replace("S02,3.0", "S02,D3", 1) + "\n")
    with pytest.raises(DataError, match=r"column `time` has 1 non-numeric value, at row 13: 'D3'"):
        read_kinetics(path)
