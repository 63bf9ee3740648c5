"""cellkin.io.read_study: a whole study read at once, every problem listed in one pass (#17)."""

from __future__ import annotations

from pathlib import Path

from cellkin.io import read_study

EXPORTS = Path(__file__).parent.parent / "data" / "lab_exports"


def test_every_row_level_problem_of_a_table_in_one_pass(tmp_path):
    path = tmp_path / "many.csv"
    path.write_text(
        "subject,time,value,assay,unit,lloq\n"
        "P1,D7,12,qpcr,copies/ug,50\n"  # row 1: time
        "P1,14,pending,qpcr,copies/ug,0\n"  # row 2: value and LLOQ 0
        "P2,14,900,qpcr,furlongs,50\n"  # row 3: unit
        ",20,900,qpcr,copies/ug,50\n"  # row 4: subject
    )
    study = read_study({"kinetics": path, "subjects": EXPORTS / "subjects_ids.csv"})
    assert study.tables["kinetics"] is None and study.tables["subjects"] is not None
    found = sorted(
        (m.split("column ")[1].split(" ")[0], m.split(" at row ")[1][0])
        for m in study.errors["message"]
    )
    assert found == [("`lloq`", "2"), ("`subject`", "4"), ("`time`", "1"), ("`unit`", "3"),
                     ("`value`", "2")]  # fmt: skip
    assert all(str(path) in m for m in study.errors["message"])


def test_a_clean_study_reads_with_notes_and_no_problem():
    paths = {"kinetics": EXPORTS / "kinetics_dates.csv",
             "subjects": EXPORTS / "subjects_infusion.csv"}  # fmt: skip
    study = read_study(paths)
    assert study.problems.empty
    assert study.tables["kinetics"]["time"].tolist() == [-2.0, 7.0, 14.0, 28.0, 7.0, 14.0, 28.0]
    notes = study.notes()
    assert set(notes["table"]) == {"kinetics", "subjects"}
