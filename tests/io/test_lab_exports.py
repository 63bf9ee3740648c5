"""Real lab exports in (issue #17): each file of tests/data/lab_exports/ is written the way a
central lab, LIMS or flow core writes it, and each test checks that the canonical table read
from it equals the clean table written by hand beside it (``clean/<name>.csv``: values, times,
BLQ flags, LLOQs, units), or that it is refused with a DataError naming file, column and row.

The clean tables are hand-made from the export by the rules the README states (e.g. ``<50``
is BLQ with LLOQ 50; 10^9/L = 1000 cells/uL; a day-first date minus the infusion date), and are
read with plain pandas, not with cellkin.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cellkin.errors import DataError
from cellkin.io import (
    MISSING_REASON,
    read_kinetics,
    read_kinetics_with_exclusions,
    read_subjects,
    reading_notes,
)

EXPORTS = Path(__file__).parent.parent / "data" / "lab_exports"
CORE = ["subject", "time", "value", "assay", "unit", "lloq", "blq"]


def clean(name: str) -> pd.DataFrame:
    """The hand-written canonical table of an export (plain pandas)."""
    table = pd.read_csv(EXPORTS / "clean" / f"{name}.csv", dtype={"subject": str})
    return table.astype({"time": float, "value": float, "lloq": float, "blq": bool})


def assert_same(kinetics: pd.DataFrame, name: str) -> None:
    expected = clean(name)
    columns = list(expected.columns)
    got = kinetics[columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-12)


def steps(kinetics: pd.DataFrame) -> dict[str, int]:
    """Rows changed per step of the reading notes."""
    notes = reading_notes(kinetics)
    return notes.groupby("step")["rows"].sum().to_dict()


# ----------------------------------------------------------------- 1. values as labs write them


def test_lims_qualifier_with_the_lloq_in_the_value_column():
    """The issue's LIMS export: value 50 with qualifier '<' is BLQ (LLOQ 50), not a quantified
    50 (read before as 0% BLQ); quantified rows take the assay's one LLOQ (50)."""
    kin = read_kinetics(EXPORTS / "lims_qualifier.csv")
    assert_same(kin, "lims_qualifier")
    notes = reading_notes(kin)
    assert set(notes.loc[notes["step"] == "columns", "column"]) == {
        "Patient ID", "Study Day", "Analyte", "Result", "Result Qualifier", "Units"
    }  # fmt: skip
    assert notes.loc[notes["step"] == "lloq", "rows"].tolist() == [3, 4]


def test_blq_text_missing_words_and_negative_values():
    kin, excl = read_kinetics_with_exclusions(EXPORTS / "blq_text.csv")
    assert_same(kin, "blq_text")
    assert excl["source_row"].tolist() == [6, 11, 12]  # not sampled, NA, empty: missing
    assert (excl["reason"] == MISSING_REASON).all()
    notes = reading_notes(kin)
    blq = notes[notes["step"] == "blq"]
    assert blq["rows"].tolist() == [7, 1]  # 7 BLQ texts, 1 value <= 0
    assert "≤ 0" in blq["note"].iloc[1]
    assert notes.loc[notes["step"] == "lloq", "rows"].tolist() == [1]  # '<25' sets the LLOQ


def test_a_bound_that_contradicts_the_lloq_is_refused(tmp_path):
    path = tmp_path / "conflict.csv"
    path.write_text("subject,time,value,assay,unit,lloq\nP1,7,<25,qpcr,copies/ug,50\n")
    with pytest.raises(DataError, match=r"conflict\.csv: column `lloq` has 1 row whose '<x' "
                       r"value differs from the LLOQ, at row 1"):  # fmt: skip
        read_kinetics(path)


def test_lloq_zero_is_refused_naming_the_rows():
    with pytest.raises(DataError, match=r"lloq_zero\.csv: column `lloq` has 2 LLOQs ≤ 0, first "
                       r"at row 2: 0\.0\. An LLOQ is a positive level"):  # fmt: skip
        read_kinetics(EXPORTS / "lloq_zero.csv")


@pytest.mark.parametrize("text", ["pending", "see comment", ">1e6"])
def test_unreadable_value_text_is_refused(tmp_path, text):
    path = tmp_path / "odd.csv"
    path.write_text(f"subject,time,value,assay,unit,lloq\nP1,7,{text},qpcr,copies/ug,50\n")
    with pytest.raises(DataError, match=r"odd\.csv: column `value` has 1 value .*at row 1"):
        read_kinetics(path)


# ------------------------------------------------------------------- 2. time as labs write it


def test_sample_dates_minus_the_infusion_date_of_the_subject_table():
    subjects = read_subjects(EXPORTS / "subjects_infusion.csv")
    kin = read_kinetics(EXPORTS / "kinetics_dates.csv", infusion_dates=subjects)
    assert_same(kin, "kinetics_dates")
    note = reading_notes(kin).query("step == 'time'")["note"].iloc[0]
    assert "%d/%m/%Y" in note and "the subject table's `infusion_date`" in note


def test_infusion_dates_as_a_dict_and_a_missing_subject():
    dates = {"P01": "2024-03-01", "P02": "2024-03-15"}
    assert_same(read_kinetics(EXPORTS / "kinetics_dates.csv", infusion_dates=dates),
                "kinetics_dates")  # fmt: skip
    message = (
        r"kinetics_dates\.csv: column `Sample Date` \(read as `date`\): 1 subject\(s\) with "
        r"dated samples have no infusion date, first 'P02' at row 5"
    )
    with pytest.raises(DataError, match=message):
        read_kinetics(EXPORTS / "kinetics_dates.csv", infusion_dates={"P01": "2024-03-01"})


def test_ambiguous_dates_are_refused_unless_the_format_is_given():
    path = EXPORTS / "dates_ambiguous.csv"
    dates = {"P01": "2024-04-01"}
    message = (
        r"dates_ambiguous\.csv: column `sample_date` \(read as `date`\), row 1: dates are "
        r"ambiguous: '03/04/2024' reads as 2024-04-03 .*date_format"
    )
    with pytest.raises(DataError, match=message):
        read_kinetics(path, infusion_dates=dates)
    kin = read_kinetics(path, infusion_dates=dates, mapping={"date_format": "%d/%m/%Y"})
    assert kin["time"].tolist() == [2.0, 9.0]  # 3 and 10 April minus 1 April


def test_times_in_hours():
    assert_same(read_kinetics(EXPORTS / "hours.csv"), "hours")


def test_visit_labels_give_time_and_nominal_time():
    kin = read_kinetics(EXPORTS / "visits.csv")
    assert_same(kin, "visits")
    assert steps(kin)["time"] == 6  # the note says times come from visits


def test_visits_beside_actual_times_are_kept_as_nominal_time(tmp_path):
    path = tmp_path / "both.csv"
    path.write_text("subject,time,visit,value,assay,unit,lloq\n"
                    "P1,6.5,Day 7,900,qpcr,copies/ug,50\nP1,15,Day 14,400,qpcr,copies/ug,50\n"
                    "P1,40,Unscheduled,100,qpcr,copies/ug,50\n")  # fmt: skip
    kin = read_kinetics(path)
    assert kin["time"].tolist() == [6.5, 15.0, 40.0]
    assert kin["nominal_time"].tolist()[:2] == [7.0, 14.0] and np.isnan(kin["nominal_time"][2])


def test_a_visit_without_a_day_needs_a_time(tmp_path):
    path = tmp_path / "unscheduled.csv"
    path.write_text("subject,visit,value,assay,unit,lloq\nP1,Day 7,900,qpcr,copies/ug,50\n"
                    "P1,Unscheduled,100,qpcr,copies/ug,50\n")  # fmt: skip
    with pytest.raises(DataError, match=r"unscheduled\.csv: column `visit` has 1 visit without "
                       r"a nominal day, at row 2: 'Unscheduled'"):  # fmt: skip
        read_kinetics(path)
    kin = read_kinetics(path, mapping={"visits": {"Unscheduled": 45}})
    assert kin["time"].tolist() == [7.0, 45.0]


# ---------------------------------------------------------------- 3. tables as labs lay them out


def test_wide_table_is_melted():
    kin, excl = read_kinetics_with_exclusions(EXPORTS / "wide_visits.csv")
    assert_same(kin, "wide_visits")
    assert excl.empty  # the empty Day 14 cell of P02 is a visit without a sample
    assert "melted" in reading_notes(kin).query("step == 'layout'")["note"].iloc[0]


def test_wide_excel_sheet_below_title_rows():
    kin = read_kinetics(EXPORTS / "wide_with_title.xlsx")
    assert_same(kin, "wide_visits")
    assert "3 title row(s) skipped" in reading_notes(kin)["note"].iloc[0]


def test_csv_with_title_lines_above_the_header():
    kin = read_kinetics(EXPORTS / "title_lines.csv")
    assert_same(kin, "canonical")
    assert_same(read_kinetics(EXPORTS / "title_lines.csv", mapping={"skiprows": 3}), "canonical")
    assert "3 title line(s) skipped" in reading_notes(kin)["note"].iloc[0]


def test_semicolons_decimal_commas_and_thousands_points():
    kin = read_kinetics(EXPORTS / "semicolon_decimal_comma.csv")
    assert_same(kin, "semicolon_decimal_comma")
    assert "semicolon-separated, decimal ','" in reading_notes(kin)["note"].iloc[0]


def test_a_decimal_mark_that_cannot_be_told_is_refused_unless_given():
    path = EXPORTS / "decimal_ambiguous.csv"
    with pytest.raises(DataError, match=r"decimal_ambiguous\.csv: column `value`, row 1: cannot "
                       r"tell the decimal mark: "
                       r"numbers such as '1,234'.*mapping=\{'decimal': ','\}"):  # fmt: skip
        read_kinetics(path)
    assert read_kinetics(path, mapping={"decimal": ","})["value"].tolist() == [1.234, 2.5]
    thousands = read_kinetics(path, mapping={"decimal": ".", "thousands": ","})
    assert thousands["value"].tolist() == [1234.0, 2500.0]


def test_toml_mapping_renames_and_constants():
    kin = read_kinetics(EXPORTS / "novel_lims.csv", mapping=EXPORTS / "novel_lims.toml")
    assert_same(kin, "novel_lims")
    notes = reading_notes(kin)
    assert notes.loc[notes["step"] == "columns", "column"].tolist() == [
        "PT_NO", "DRAW_HRS", "RES", "RES_Q"
    ]  # fmt: skip


def test_a_bad_toml_mapping_names_its_file(tmp_path):
    path = tmp_path / "map.toml"
    path.write_text('Patient ID = "subject"\n')
    with pytest.raises(DataError, match=r"map\.toml: not a valid TOML mapping .*\"Patient ID\""):
        read_kinetics(EXPORTS / "hours.csv", mapping=path)


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz", ".zip"])
def test_compressed_csv(suffix):
    assert_same(read_kinetics(EXPORTS / f"canonical.csv{suffix}"), "canonical")


def test_excel_formulas_without_saved_results_are_refused():
    with pytest.raises(
        DataError,
        match=r"formulas_no_cache\.xlsx: column `value` has 3 formula "
        r"cell\(s\) without a saved result, first at row 1 \(cell D2\).*save it",
    ):
        read_kinetics(EXPORTS / "formulas_no_cache.xlsx")


# -------------------------------------------------------------------- 4. units checked, converted


def test_flow_in_cells_per_ml_for_one_subject_is_converted_not_pooled():
    kin = read_kinetics(EXPORTS / "flow_mixed_units.csv")
    assert_same(kin, "flow_mixed_units")
    notes = reading_notes(kin).query("step == 'units'")
    assert "'cells/µL' as cells/uL" in notes["note"].iloc[0]  # the spelling, noted
    notes = notes[notes["note"].str.contains("converted")]
    assert notes["rows"].tolist() == [2, 1]
    assert re.search(r"cells/mL to cells/uL \(× 0\.001\)", notes["note"].iloc[0])
    assert re.search(r"10\^9/L to cells/uL \(× 1000\)", notes["note"].iloc[1])


def test_units_that_cannot_be_converted_are_refused():
    with pytest.raises(DataError, match=r"units_not_convertible\.csv: assay 'flow': column `unit` "
                       r"mixes units that cannot be converted into each other: 'cells/uL' "
                       r"\(row 1\), 'copies/ug' \(row 2\)"):  # fmt: skip
        read_kinetics(EXPORTS / "units_not_convertible.csv")


def test_percent_car_of_cd3_with_cd3_counts_becomes_cells_per_ul():
    kin = read_kinetics(EXPORTS / "pct_cd3.csv")
    assert_same(kin, "pct_cd3")
    assert "CAR+ cells/uL" in reading_notes(kin).query("step == 'units'")["note"].iloc[-1]


def test_percent_without_cd3_counts_is_not_pooled_with_counts(tmp_path):
    path = tmp_path / "pct.csv"
    path.write_text("subject,time,value,assay,unit,lloq\nP1,7,12.5,flow,%CD3,0.1\n"
                    "P2,7,40,flow,cells/uL,1\n")  # fmt: skip
    with pytest.raises(
        DataError,
        match=r"pct\.csv: assay 'flow': column `unit` mixes units "
        r"that cannot be converted into each other: '%CD3' \(row 1\)",
    ):
        read_kinetics(path)


def test_the_readme_mapping_example_reads_as_it_says(tmp_path):
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    toml = re.search(r"```toml\n(.*?)```", readme, re.S).group(1)
    (tmp_path / "lab.toml").write_text(toml)
    (tmp_path / "lims_export.csv").write_text(
        "PT_NO,DRAW_DATE,RES,RES_Q\n101,29.02.2024,50,<\n101,08.03.2024,15230,\n"
    )
    kin = read_kinetics(
        tmp_path / "lims_export.csv",
        mapping=tmp_path / "lab.toml",
        infusion_dates={"101": "2024-03-01"},
    )
    expected = pd.DataFrame({"subject": ["101", "101"], "time": [-1.0, 7.0],
                             "value": [np.nan, 15230.0], "assay": "qpcr", "unit": "copies/ug",
                             "lloq": 50.0, "blq": [True, False]})  # fmt: skip
    pd.testing.assert_frame_equal(kin[CORE], expected)
