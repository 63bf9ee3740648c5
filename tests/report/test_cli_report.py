"""`cellkin report` from files: exit 0 and a report; bad input: exit 2 and one line."""

from __future__ import annotations

import pytest

import cellkin
from cellkin.cli import main

STUDY = cellkin.load_example()
SUBSET = ["KD025-101", "KD025-106", "KD025-109", "KD025-112"]


def _write(tmp_path):
    paths = []
    for name in ("kinetics", "subjects", "lesions", "adverse_events"):
        table = getattr(STUDY, name)
        path = tmp_path / f"{name}_export.csv"
        table[table["subject"].isin(SUBSET)].to_csv(path, index=False)
        paths.append(str(path))
    return paths


@pytest.mark.slow
def test_report_from_files(tmp_path, capsys):
    out = tmp_path / "report"
    status = main(["report", *_write(tmp_path), "-o", str(out), "--jobs", "1", "--starts", "1",
                   "--no-progress", "--no-population"])  # fmt: skip
    assert status == 0
    assert (out / "report.html").is_file()
    assert (out / "tables" / "overview.csv").is_file()
    text = capsys.readouterr().out
    assert "wrote" in text and "Endpoints" in text
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "kinetics_export.csv" in html and "Synthetic data" not in html
    assert "cellkin report " in html and "--starts 1" in html  # the command that made it
    assert "Population model: not fitted (switched off" in html
    assert not (out / "tables" / "population_fixed_effects.csv").exists()


def test_report_bad_input_is_one_line(tmp_path, capsys):
    bad = tmp_path / "notes.csv"
    bad.write_text("x,y\n1,2\n")
    assert main(["report", str(bad), "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cellkin: error: ") and "notes.csv" in err[0]
    assert main(["report", "-o", str(tmp_path / "r")]) == 2
