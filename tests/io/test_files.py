"""cellkin.io study files: table recognition, checksums, the kinetics summary."""

from __future__ import annotations

import pandas as pd
import pytest

from cellkin.datasets import load_example
from cellkin.errors import DataError
from cellkin.io import (
    STUDY_TABLES,
    identify_table,
    kinetics_summary,
    read_kinetics,
    sha256,
)


def test_windows_1252_csv_with_micro_sign(tmp_path, kinetics_frame):
    path = tmp_path / "kinetics.csv"
    text = kinetics_frame().assign(unit=lambda f: f["unit"].str.replace("u", "µ"))
    path.write_bytes(text.to_csv(index=False).encode("cp1252"))
    assert set(read_kinetics(path)["unit"]) == {"copies/ug", "cells/uL"}


def test_excel_numeric_ids_become_text(tmp_path, kinetics_frame):
    path = tmp_path / "kinetics.xlsx"
    kinetics_frame().assign(subject=lambda f: f["subject"].str[1:].astype(int)).to_excel(
        path, index=False
    )
    assert read_kinetics(path)["subject"].unique().tolist() == ["1", "2"]


def test_example_tables_are_recognised_by_their_columns():
    source = load_example().source
    assert STUDY_TABLES == ("kinetics", "subjects", "lesions", "adverse_events")
    for name in STUDY_TABLES:
        assert identify_table(source / f"{name}.csv") == name


def test_recognition_reads_the_header_of_every_format(tmp_path, ae_frame):
    frame = ae_frame().astype(str)
    frame.to_csv(tmp_path / "ae.tsv", sep="\t", index=False)
    frame.to_csv(tmp_path / "ae.csv.gz", index=False)
    frame.to_excel(tmp_path / "ae.xlsx", index=False)
    frame.to_parquet(tmp_path / "ae.parquet")
    (tmp_path / "pk.csv").write_bytes("ID,TIME,DV,Einheit µg\n1,0,1,x\n".encode("cp1252"))
    for name in ("ae.tsv", "ae.csv.gz", "ae.xlsx", "ae.parquet"):
        assert identify_table(tmp_path / name) == "adverse_events", name
    assert identify_table(str(tmp_path / "pk.csv")) == "kinetics"


def test_unrecognised_or_missing_files_are_clear_errors(tmp_path, write_csv):
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


def test_kinetics_summary_by_hand(kinetics_frame):
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
