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


def _written(raw: pd.Series) -> tuple[list[str], list[int]]:
    """Each distinct non-missing id as text, as written (Excel's 1.0 is 1), in the order of
    first appearance, and how many rows hold it. Per distinct value, not per row: a table of
    10,000 subjects × 16 samples has 10,000 ids to convert, not 160,000."""
    values = raw.dropna()
    distinct = pd.unique(values)
    counts = values.value_counts(sort=False).reindex(distinct).to_numpy()
    texts = [str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in distinct]
    return texts, [int(c) for c in counts]


def id_spellings(raw: pd.Series) -> dict[str, list[str]]:
    """Stripped id -> its spellings with surrounding blanks (only ids written so)."""
    spellings: dict[str, list[str]] = {}
    for text in dict.fromkeys(_written(raw)[0]):
        if text != text.strip():
            spellings.setdefault(text.strip(), []).append(text)
    return spellings


def id_notes(raw: pd.Series, column: str) -> Notes:
    """A note counting the ids written with blanks around them (removed)."""
    notes = Notes()
    texts, counts = _written(raw)
    padded = [(t, c) for t, c in zip(texts, counts, strict=True) if t != t.strip()]
    if padded:
        n_rows = sum(c for _, c in padded)
        shown = ", ".join(repr(t) for t, _ in padded[:3])
        notes.add("ids", column, n_rows, f"{n_rows} subject id(s) written "
                  f"with blanks around them ({shown}); the blanks were removed")  # fmt: skip
    return notes
