"""Wide kinetics tables (one column per visit) melted to one row per sample.

Laboratories and study spreadsheets often keep one row per subject (and assay) with one
column per visit::

    Patient ID, Assay, Unit,      LLOQ, Screening, Day 7, Day 14, Week 4, Month 3
    P01,        qPCR,  copies/ug, 50,   <50,       12000, 8000,   900,    <50

:func:`melt_wide` recognises such a table (no value column, at least two columns whose names
are visit labels, :mod:`cellkin.io._visits`) and melts it with :func:`pandas.melt`: ``visit``
is the column name, ``nominal_time`` its nominal day, ``value`` the cell. Empty cells are
visits without a sample and are left out (counted in the notes). Rows are renumbered; messages
cite each sample's file row and column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellkin._validation import Context
from cellkin.io._mapping import SYNONYMS, normal_name
from cellkin.io._notes import Notes
from cellkin.io._visits import nominal_day

__all__ = ["melt_wide", "visit_columns"]

_VALUE_NAMES = frozenset({"value", "dv", "aval", *SYNONYMS["value"]})


def visit_columns(columns: list[str]) -> dict[str, float]:
    """The columns named like visits (``Day 7``, ``W4``, ``Month 3``, ...) with their days;
    empty unless the table has no value column and at least two such columns."""
    if any(normal_name(c) in _VALUE_NAMES for c in columns):
        return {}
    days = {c: nominal_day(c) for c in columns}
    found = {c: d for c, d in days.items() if np.isfinite(d)}
    return found if len(found) >= 2 else {}


def melt_wide(
    ctx: Context, frame: pd.DataFrame, visits: dict[str, float], notes: Notes
) -> tuple[pd.DataFrame, Context]:
    """One row per (input row, visit column) with a cell; a Context citing file row and column.

    Raises
    ------
    DataError
        If the table already has a ``visit`` or ``nominal_time`` column.
    """
    clash = [c for c in ("visit", "nominal_time") if c in frame.columns]
    if clash:
        raise ctx.error(
            f"the table has one column per visit ({', '.join(visits)}) and also a column "
            f"`{clash[0]}`; rename or drop it."
        )
    keep = [c for c in frame.columns if c not in visits]
    long = frame.reset_index().melt(
        id_vars=["row", *keep], value_vars=list(visits), var_name="visit", value_name="value"
    )
    empty = long["value"].isna() | long["value"].astype(str).str.strip().eq("")
    long = long.loc[~empty]
    long.insert(len(long.columns) - 1, "nominal_time", long["visit"].map(visits).astype(float))
    labels = tuple(f"file row {r}, column `{v}`" for r, v in zip(long["row"], long["visit"],
                                                                     strict=True))  # fmt: skip
    long = long.drop(columns="row").reset_index(drop=True)
    long.index = pd.RangeIndex(1, len(long) + 1, name="row")
    notes.add("layout", "", len(long), f"wide table: {len(visits)} visit columns "
              f"({', '.join(visits)}) melted to one row per sample; {int(empty.sum())} empty "
              "cell(s) are visits without a sample")  # fmt: skip
    return long, Context(ctx.label, labels)
