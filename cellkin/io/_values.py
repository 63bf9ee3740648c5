"""Levels as laboratories write them: BLQ text, censoring qualifiers, missing-value words.

A central laboratory or LIMS rarely leaves a BLQ value empty with a flag beside it. It writes
text in the value column (``<LLOQ``, ``BLQ``, ``ND``, ``<50``, ``below LLOQ``, ``not
detected``) or a qualifier in a column of its own (``<``, ``BLQ``, ``ND``; the value column
then often holds the LLOQ itself). This module reads both, in any case and spacing:

==========================================  ================================================
written                                     read as
==========================================  ================================================
a number (``1234``, ``1.2e4``, ``1234,5``   quantified value (decimal comma when the file
with a decimal comma)                       uses one)
``<LLOQ``, ``< LOQ``, ``BLQ``, ``BLOQ``,    below the LLOQ (BLQ); value empty
``BQL``, ``ND``, ``N.D.``, ``not
detected``, ``undetected``, ``below
LLOQ``, ``below limit of quantification``
``<50``, ``< 50``, ``<=50``, ``< 5,0``      BLQ, and the sample's LLOQ is 50 when no LLOQ is
                                            given (an LLOQ that differs is an error)
``not sampled``, ``missing``, ``NA``,       missing, **not BLQ** (DESIGN §5.1): the row is
``N/A``, ``not done``, ``no sample``,       dropped and listed in the exclusions table
``QNS``, ``lost``, ``-``, empty
qualifier ``<``, ``<=``, ``BLQ``, ``ND``    BLQ (with Y/N, 1/0, true/false flags as before)
qualifier ``=``, empty                      quantified
``>x`` or qualifier ``>``                   refused: cellkin has no upper limit (enter the
                                            diluted re-assay value)
==========================================  ================================================

Any other text is an error naming the column, row and value. Negative and zero levels follow
one documented rule: a background-subtracted qPCR (or gated flow) result at or below zero is
below the LLOQ; it is read as BLQ with its value emptied and counted in the reading notes.
cellkin writes its own parser because no library reads these laboratory conventions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cellkin._validation import Context, check_rows, map_unique

__all__ = ["BLQ_WORDS", "MISSING_WORDS", "ParsedLevels", "parse_levels", "parse_qualifier"]

#: Text meaning "below the LLOQ" (compared after case folding and removing blanks and dots).
BLQ_WORDS = frozenset(
    {"<lloq", "<loq", "<llq", "blq", "bloq", "bql", "nd", "notdetected", "undetected",
     "belowlloq", "belowloq", "belowlimitofquantification", "belowlimitofquantitation",
     "<lod", "notquantifiable", "belowthelloq", "blqnotdetected"}
)  # fmt: skip
#: Text meaning "no result" (missing, not BLQ).
MISSING_WORDS = frozenset(
    {"na", "n/a", "nan", "missing", "notsampled", "notdone", "nosample", "nr", "notreported",
     "qns", "lost", "samplelost", "notavailable", "notcollected", "-", "--", "notanalysed",
     "notanalyzed", "null", "none", "samplenotreceived", "hemolysed", "hemolyzed"}
)  # fmt: skip
_QUALIFIER_BLQ = frozenset({"<", "<=", "≤", "blq", "bloq", "bql", "nd", "<lloq", "<loq"})
_QUALIFIER_QUANTIFIED = frozenset({"=", "==", ""})
_BOUND = re.compile(r"^(<=?|≤)\s*([-+]?[0-9][0-9.,\s]*(?:[eE][-+]?\d+)?)\s*([^\d\s].*)?$")
_ABOVE = re.compile(r"^(>=?|≥)")
_TRUE = frozenset({"true", "yes", "y", "1", "1.0"})
_FALSE = frozenset({"false", "no", "n", "0", "0.0"})
_ACCEPTED = (
    "numbers; BLQ text (<LLOQ, BLQ, ND, not detected, below LLOQ, <50); missing-value words "
    "(not sampled, missing, NA, empty)"
)


@dataclass(frozen=True)
class ParsedLevels:
    """The value column of a kinetics table, read.

    Attributes
    ----------
    value : pandas.Series
        Numbers (float; NaN where the cell held text or nothing).
    blq_text : pandas.Series
        True where the cell held BLQ text (``<LLOQ``, ``ND``, ``<50``, ...).
    bound : pandas.Series
        The number of a ``<x`` cell (NaN elsewhere): that sample's LLOQ when none is given.
    missing_text : pandas.Series
        True where the cell held a missing-value word (``not sampled``, ``NA``, ...).
    """

    value: pd.Series
    blq_text: pd.Series
    bound: pd.Series
    missing_text: pd.Series


def _fold(text: str) -> str:
    return "".join(text.casefold().replace(".", "").split())


def _number(text: str, decimal: str) -> float | None:
    """A number written with `decimal` as the decimal mark (blanks as thousands), or None."""
    cleaned = "".join(text.split())
    if decimal == ",":
        cleaned = cleaned.replace(".", "").replace(",", ".") if "," in cleaned else cleaned
    try:
        number = float(cleaned)
    except ValueError:
        return None
    return number if np.isfinite(number) else None


def _classify(cell: Any, decimal: str) -> tuple[float, bool, float, bool] | None:
    """``(value, blq, bound, missing)`` of one cell, or None when it cannot be read."""
    if isinstance(cell, (int, float, np.integer, np.floating)) and not isinstance(cell, bool):
        return float(cell), False, np.nan, False
    text = str(cell).strip()
    folded = _fold(text)
    if folded == "" or folded in MISSING_WORDS:
        return np.nan, False, np.nan, True
    if folded in BLQ_WORDS or folded.startswith(("<lloq", "<loq", "blq")):
        return np.nan, True, np.nan, False
    number = _number(text, decimal)
    if number is not None:
        return number, False, np.nan, False
    match = _BOUND.match(text)
    if match:
        bound = _number(match.group(2), decimal)
        if bound is not None and bound > 0:
            return np.nan, True, bound, False
    return None


def parse_levels(ctx: Context, raw: pd.Series, name: str, decimal: str = ".") -> ParsedLevels:
    """Read a value column as laboratories write it (see the module docstring).

    Raises
    ------
    DataError
        On ``>x`` values (no upper limit in cellkin) and on text that is neither a number, BLQ
        text nor a missing-value word; the message names the column, row and value.
    """
    if raw.dtype.kind in "fiu":
        value = raw.astype(float)
        false = pd.Series(False, index=raw.index)
        return ParsedLevels(value, false, pd.Series(np.nan, index=raw.index), false.copy())
    present = raw.notna()
    parsed = map_unique(raw, lambda cell: _classify(cell, decimal), missing=(np.nan, False,
                        np.nan, True))  # fmt: skip
    above = map_unique(raw, lambda c: bool(_ABOVE.match(str(c).strip())), missing=False)
    check_rows(ctx, above.astype(bool), raw, name, "value{s} above a limit ('>')",
               "cellkin has no upper limit of quantification: enter the value of the diluted "
               "re-assay instead.")  # fmt: skip
    unread = present & parsed.isna()
    check_rows(ctx, unread, raw, name, "value{s} that cannot be read",
               f"A value cell holds {_ACCEPTED}. Correct the cell, or leave it empty and set "
               "the BLQ flag for a sample below the LLOQ.")  # fmt: skip
    table = pd.DataFrame(parsed.tolist(), index=raw.index,
                         columns=["value", "blq", "bound", "missing"])  # fmt: skip
    return ParsedLevels(
        table["value"].astype(float),
        table["blq"].astype(bool),
        table["bound"].astype(float),
        table["missing"].astype(bool) & present,
    )


def _qualifier(cell: Any) -> Any:
    """True (BLQ), False (quantified), None (empty) or ``...`` (unknown) for one cell."""
    if isinstance(cell, (bool, np.bool_)):
        return bool(cell)
    text = str(cell.item() if isinstance(cell, np.generic) else cell).strip().casefold()
    folded = _fold(text)
    if text in _QUALIFIER_BLQ or folded in _QUALIFIER_BLQ or folded in BLQ_WORDS:
        return True
    if text in _QUALIFIER_QUANTIFIED:
        return None if text == "" else False
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _ABOVE.match(text):
        return ">"
    return ...


def parse_qualifier(ctx: Context, raw: pd.Series, name: str) -> pd.Series:
    """A BLQ flag or qualifier column as a nullable boolean (True = below the LLOQ).

    Accepts Y/N, yes/no, 1/0, true/false and the qualifiers ``<``, ``<=``, ``BLQ``, ``ND``
    (below) and ``=`` (quantified), in any case; empty cells are missing (the flag is then
    derived from value and LLOQ).

    Raises
    ------
    DataError
        On ``>`` (no upper limit) and on unknown spellings, naming column, row and value.
    """
    parsed = map_unique(raw, _qualifier, missing=None)
    fix = (
        "cellkin has no upper limit of quantification: enter the diluted re-assay value "
        "instead, or remove the row."
    )
    check_rows(ctx, parsed.eq(">"), raw, name, "right-censored row{s} ('>')", fix)
    fix = "A BLQ flag or qualifier is one of <, BLQ, ND, = or Y/N, yes/no, 1/0, true/false."
    check_rows(ctx, parsed.eq(...), raw, name, "invalid flag{s}", fix)
    return parsed.mask(parsed.eq(...) | parsed.eq(">"), None).astype("boolean")
