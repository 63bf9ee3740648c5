"""Tables shared by the cellkin.io tests, as fixtures that return the function that builds them
(call ``kinetics_frame()`` in a test that takes the ``kinetics_frame`` fixture)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

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


@pytest.fixture(name="kinetics_frame")
def _kinetics_frame_fixture():
    return kinetics_frame


@pytest.fixture(name="write_csv")
def _write_csv_fixture():
    return write_csv


@pytest.fixture(name="with_cells")
def _with_cells_fixture():
    return with_cells


@pytest.fixture(name="nonmem_frame")
def _nonmem_frame_fixture():
    return nonmem_frame


@pytest.fixture(name="adpc_frame")
def _adpc_frame_fixture():
    return adpc_frame


@pytest.fixture(name="subjects_frame")
def _subjects_frame_fixture():
    return subjects_frame


@pytest.fixture(name="lesions_frame")
def _lesions_frame_fixture():
    return lesions_frame


@pytest.fixture(name="ae_frame")
def _ae_frame_fixture():
    return ae_frame


@pytest.fixture(name="CANONICAL")
def _canonical_fixture():
    return CANONICAL


@pytest.fixture(name="TIMES")
def _times_fixture():
    return TIMES
