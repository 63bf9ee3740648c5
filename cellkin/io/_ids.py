"""Subject ids as written: blanks around them, and spellings that differ only in case.

Readers strip blanks around ids (``"S01 "`` is ``"S01"``) and say so in the reading notes
(:func:`id_notes`); the spellings as written are kept in ``attrs["cellkin"]["id_spellings"]``
(:func:`id_spellings`) so that the cross-table checks (:mod:`cellkin.io._crosscheck`) can list
ids that differ between tables only in case or surrounding blanks.
"""

from __future__ import annotations

import pandas as pd

from cellkin.io._notes import Notes

__all__ = ["id_notes", "id_spellings"]


def _written(raw: pd.Series) -> pd.Series:
    """The non-missing ids as text, as written (Excel's 1.0 is 1)."""
    ids = raw.dropna()
    return ids.map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))


def id_spellings(raw: pd.Series) -> dict[str, list[str]]:
    """Stripped id -> its spellings with surrounding blanks (only ids written so)."""
    ids = _written(raw)
    padded = ids[ids != ids.str.strip()]
    spellings: dict[str, list[str]] = {}
    for text in pd.unique(padded):
        spellings.setdefault(text.strip(), []).append(text)
    return spellings


def id_notes(raw: pd.Series, column: str) -> Notes:
    """A note counting the ids written with blanks around them (removed)."""
    notes = Notes()
    ids = _written(raw)
    padded = ids != ids.str.strip()
    if padded.any():
        shown = ", ".join(repr(v) for v in pd.unique(ids[padded])[:3])
        notes.add("ids", column, int(padded.sum()), f"{int(padded.sum())} subject id(s) written "
                  f"with blanks around them ({shown}); the blanks were removed")  # fmt: skip
    return notes
