"""A missing value is not BLQ (DESIGN §5.1, issue #16).

A sample row with no value and no BLQ flag was not sampled or was lost: the reader drops it
and lists it in the exclusions table with the reason; only an explicit BLQ flag (canonical
``blq``, NONMEM ``CENS``/``BLQ``, CDISC ``BLQFL``/``BLQFN``) makes an empty value BLQ. This is
PKNCA's rule too (missing concentrations are dropped, ``clean.conc.na(conc.na="drop")``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cellkin.io import MISSING_REASON, read_kinetics_with_exclusions


def _frame(blq) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "subject": "P1",
            "time": [1.0, 7.0, 14.0, 28.0],
            "value": [5.0, 800.0, np.nan, np.nan],
            "assay": "qpcr",
            "unit": "copies/ug",
            "lloq": 10.0,
            "blq": blq,
        }
    )


def test_missing_value_without_a_flag_is_dropped_with_a_note():
    """Day 14 has no value and an empty flag: missing. Day 28 is flagged: BLQ. Day 1's value
    5 is below the LLOQ of 10 with an empty flag: BLQ, derived."""
    kinetics, exclusions = read_kinetics_with_exclusions(_frame([None, None, None, True]))
    assert kinetics["time"].tolist() == [1.0, 7.0, 28.0]
    assert kinetics["blq"].tolist() == [True, False, True]
    assert exclusions[["source_row", "subject", "time"]].values.tolist() == [[3, "P1", 14.0]]
    assert exclusions["reason"].tolist() == [MISSING_REASON]
    assert MISSING_REASON.startswith("missing value, not flagged BLQ")


def test_missing_value_flagged_not_blq_is_missing_not_an_error():
    """Before #16 this was refused ("missing value not flagged BLQ")."""
    kinetics, exclusions = read_kinetics_with_exclusions(_frame([True, False, False, True]))
    assert kinetics["time"].tolist() == [1.0, 7.0, 28.0]
    assert exclusions["time"].tolist() == [14.0]


def test_without_a_blq_column_an_empty_value_is_missing():
    frame = _frame(None).drop(columns="blq")
    kinetics, exclusions = read_kinetics_with_exclusions(frame)
    assert kinetics["time"].tolist() == [1.0, 7.0]
    assert exclusions["time"].tolist() == [14.0, 28.0]
    assert (exclusions["reason"] == MISSING_REASON).all()


def test_nonmem_cens_flag_is_blq_and_an_unflagged_dot_is_missing():
    frame = pd.DataFrame(
        {
            "ID": [1, 1, 1, 1],
            "TIME": [1.0, 7.0, 14.0, 28.0],
            "DV": ["20", "800", ".", "10"],
            "CENS": [0, 0, 0, 1],
            "LLOQ": 10.0,
            "ASSAY": "qpcr",
            "UNIT": "copies/ug",
        }
    )
    kinetics, exclusions = read_kinetics_with_exclusions(frame)
    assert kinetics["time"].tolist() == [1.0, 7.0, 28.0]
    assert kinetics["blq"].tolist() == [False, False, True]
    assert exclusions["time"].tolist() == [14.0]


@pytest.mark.parametrize("flag", ["Y", 1])
def test_cdisc_blqfl_makes_an_empty_value_blq(flag):
    frame = pd.DataFrame(
        {
            "USUBJID": "S-1",
            "AFRLT": [1.0, 7.0, 28.0],
            "AFRLTU": "DAYS",
            "AVAL": [20.0, np.nan, np.nan],
            "AVALU": "copies/ug",
            "PARAMCD": "QPCR",
            "LLOQ": 10.0,
            "BLQFL": [None, None, flag],
        }
    )
    kinetics, exclusions = read_kinetics_with_exclusions(frame)
    assert kinetics["time"].tolist() == [1.0, 28.0]
    assert kinetics["blq"].tolist() == [False, True]
    assert exclusions["time"].tolist() == [7.0]
