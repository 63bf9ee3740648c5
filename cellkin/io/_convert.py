"""One unit per assay: mixed units converted (with a note) or refused, never pooled.

:func:`harmonise_units` runs on the validated sample rows. For each assay (and tissue):

* ``%CD3`` levels (CAR+ as a percentage of CD3+ cells) of samples with an absolute CD3+ count
  (``cd3_count``, cells/uL) become CAR+ cells/uL: ``value × cd3_count / 100`` (the LLOQ too);
* when the assay then holds more than one unit, every level and LLOQ is converted to the
  standard unit of the quantity (copies/ug, copies/uL or cells/uL: `STANDARD_UNITS`) with the
  factor from :func:`~cellkin.io._units.conversion_factor` (pint), and the conversion is noted
  with its row count;
* units that cannot be converted into each other (copies/ug and cells/uL, or a percentage
  without a CD3+ count) are an error naming the assay, the units and a row of each.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellkin._validation import Context, show
from cellkin.io._notes import Notes
from cellkin.io._units import STANDARD_UNITS, conversion_factor, dimension

__all__ = ["harmonise_units"]


def _percent_to_counts(kin: pd.DataFrame, notes: Notes) -> pd.DataFrame:
    """``%CD3`` levels with a CD3+ count become CAR+ cells/uL."""
    if "cd3_count" not in kin:
        return kin
    rows = (kin["unit"] == "%CD3") & kin["cd3_count"].notna()
    if not rows.any():
        return kin
    factor = kin.loc[rows, "cd3_count"] / 100.0
    kin = kin.copy()
    kin.loc[rows, "value"] = kin.loc[rows, "value"] * factor
    kin.loc[rows, "lloq"] = kin.loc[rows, "lloq"] * factor
    kin.loc[rows, "unit"] = "cells/uL"
    notes.add("units", "unit", int(rows.sum()), f"{int(rows.sum())} %CAR+ of CD3+ levels "
              "converted to CAR+ cells/uL with the sample's CD3+ count (value × cd3_count / "
              "100; the LLOQ too)")  # fmt: skip
    return kin


def harmonise_units(ctx: Context, kin: pd.DataFrame, keys: list[str], notes: Notes) -> pd.DataFrame:
    """Convert each assay (× tissue) to one unit; raise when its units are not convertible."""
    kin = _percent_to_counts(kin, notes)
    groups = kin.groupby(keys, sort=False, dropna=False)["unit"]
    mixed = groups.nunique()
    if not (mixed > 1).any():
        return kin
    kin = kin.copy()
    for key in mixed.index[mixed.to_numpy() > 1]:
        key = key if isinstance(key, tuple) else (key,)
        inside = np.logical_and.reduce(
            [kin[k].eq(v).to_numpy() for k, v in zip(keys, key, strict=True)]
        )
        units = list(pd.unique(kin.loc[inside, "unit"]))
        kinds = {dimension(u) for u in units}
        if len(kinds) != 1 or None in kinds:
            _refuse(ctx, kin.loc[inside], units)
        kind = kinds.pop()
        assert kind is not None  # refused above
        target = STANDARD_UNITS[kind]
        for unit in units:
            if unit == target:
                continue
            factor = conversion_factor(unit, target)
            rows = inside & (kin["unit"] == unit).to_numpy()
            kin.loc[rows, ["value", "lloq"]] = kin.loc[rows, ["value", "lloq"]] * factor
            kin.loc[rows, "unit"] = target
            notes.add("units", "unit", int(rows.sum()), f"assay {key[0]!r}: {int(rows.sum())} "
                      f"levels and LLOQs converted from {unit} to {target} (× {factor:g}) so that "
                      "the assay has one unit")  # fmt: skip
    return kin


def _refuse(ctx: Context, rows: pd.DataFrame, units: list[str]) -> None:
    first = [rows.index[(rows["unit"] == u).to_numpy()][0] for u in units]
    listed = ", ".join(f"{show(u)} ({ctx.where(r)})" for u, r in zip(units, first, strict=True))
    raise ctx.error(
        f"assay {show(rows['assay'].iloc[0])}: column `unit` mixes units that cannot be "
        f"converted into each other: {listed}. Levels in different units are never pooled: "
        "give each measurement its own assay name, or convert the values (a %CD3 level needs "
        "the sample's absolute CD3+ count in a `cd3_count` column, cells/uL)."
    )
