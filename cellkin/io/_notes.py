"""What a reader recognised and converted: structured notes that travel with the table.

Nothing a reader changes happens silently (issue #17): every recognition (a synonym column
name, a detected separator or header row, BLQ text, a visit label) and every conversion (dates
to days, hours to days, cells/mL to cells/uL) is recorded as one :class:`Note` with the number
of rows it changed. The notes are kept in ``table.attrs["cellkin"]["conversions"]`` as plain
dicts (so that pandas can copy them) and shown as a table by :func:`reading_notes`, which
``cellkin validate`` prints.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

__all__ = ["NOTE_COLUMNS", "Note", "Notes", "reading_notes"]

#: Columns of :func:`reading_notes`.
NOTE_COLUMNS = ("step", "column", "rows", "note")


@dataclass(frozen=True)
class Note:
    """One recognition or conversion made while reading a table.

    Attributes
    ----------
    step : str
        What kind of change: ``layout``, ``columns``, ``values``, ``blq``, ``time``,
        ``visits``, ``units``, ``ids``.
    column : str
        The column it concerns (as named in the file), or ``""`` for the whole table.
    rows : int
        How many rows it changed (0 for a table-wide recognition such as a separator).
    note : str
        What was recognised or converted, in words.
    """

    step: str
    column: str
    rows: int
    note: str


class Notes(list):
    """The notes of one reading, in the order they were made (a list of :class:`Note`)."""

    def add(self, step: str, column: str, rows: int, note: str) -> None:
        """Record a note (skipped when a row-wise change touched no row)."""
        self.append(Note(step, str(column), int(rows), note))

    def records(self) -> list[dict[str, object]]:
        """The notes as plain dicts (what ``attrs["cellkin"]["conversions"]`` holds)."""
        return [asdict(note) for note in self]


def reading_notes(table: pd.DataFrame) -> pd.DataFrame:
    """What a reader recognised and converted in `table`, one row per note.

    Parameters
    ----------
    table : pandas.DataFrame
        A table returned by a reader of :mod:`cellkin.io` (``read_kinetics``,
        ``read_subjects``, ...).

    Returns
    -------
    pandas.DataFrame
        Columns ``step, column, rows, note`` (see :class:`Note`); empty, with these columns,
        when the table was read as it is (or did not come from a reader).

    Examples
    --------
    >>> import pandas as pd
    >>> from cellkin.io import read_kinetics
    >>> lab = pd.DataFrame({"Patient ID": ["P1", "P1"], "Study Day": [7, 14],
    ...                     "Result": ["900", "<50"], "assay": "qpcr", "unit": "copies/ug"})
    >>> reading_notes(read_kinetics(lab))[["step", "column", "rows"]]
          step      column  rows
    0  columns  Patient ID     2
    1  columns   Study Day     2
    2  columns      Result     2
    3      blq      Result     1
    4     lloq      Result     1
    5     lloq      Result     1
    """
    records = table.attrs.get("cellkin", {}).get("conversions", [])
    frame = pd.DataFrame([r for r in records if isinstance(r, dict)], columns=list(NOTE_COLUMNS))
    return frame.astype({"rows": "int64"})
