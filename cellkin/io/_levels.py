"""Value, LLOQ and BLQ flag of each sample, reconciled.

:func:`read_levels` reads the value column as labs write it (:mod:`cellkin.io._values`), the
BLQ flag or qualifier, and the LLOQ (a column, or ``mapping["lloq"]``), then applies these
rules, each counted in the reading notes:

* BLQ text marks a sample BLQ; a flag that says otherwise is an error;
* a ``<x`` value sets the sample's LLOQ to x when none is given (an LLOQ that differs is an
  error); on a row qualified BLQ whose LLOQ is not given, the value is the LLOQ (the LIMS
  convention ``value = 50, qualifier = <``);
* with no LLOQ column at all, quantified samples take their assay's LLOQ from its ``<x``
  values when they all give the same x (otherwise the LLOQ must be given);
* the LLOQ must be positive (LLOQ ≤ 0 is an error naming the rows);
* ``blq`` is the flag when given, otherwise ``value < lloq``; a missing value with no flag is
  missing, not BLQ (DESIGN §5.1);
* a value ≤ 0 is below the LLOQ (background-subtracted qPCR, gated flow): BLQ, value emptied;
* a BLQ row whose value equals its LLOQ holds the limit, not a measurement: value emptied
  (NONMEM ``CENS=1`` rows hold the LLOQ in DV, so their value is always emptied);
* a BLQ row with value above its LLOQ, or an unflagged row below it, is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from cellkin._validation import Context, check_rows, pair, require_columns, to_float
from cellkin.io._conventions import ColumnPlan
from cellkin.io._notes import Notes
from cellkin.io._values import parse_levels

__all__ = ["read_levels"]

_LLOQ_FIX = (
    "Every sample needs the lower limit of quantification of its assay, as a number in the "
    "unit of the value; take it from the assay validation report."
)


def read_levels(
    ctx: Context,
    frame: pd.DataFrame,
    plan: ColumnPlan,
    flag: pd.Series,
    lloq_source: tuple[pd.Series, str] | None,
    assay: pd.Series,
    decimal: str,
    notes: Notes,
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Return value, lloq and blq of the sample rows (see the module docstring)."""
    column = plan.cols["value"]
    name = plan.name("value")
    parsed = parse_levels(ctx, frame[column], name, decimal)
    written = plan.original("value")
    value = parsed.value
    _note(notes, "blq", written, parsed.blq_text, "BLQ text (<LLOQ, BLQ, ND, <x, ...) read as "
          "below the LLOQ")  # fmt: skip
    _note(notes, "values", written, parsed.missing_text, "missing-value words (not sampled, NA, "
          "...) read as missing, not BLQ")  # fmt: skip
    flag_name = plan.name("blq") if "blq" in plan.cols else "`blq`"
    shown = pair(frame[column], flag, (column, "flag"))
    check_rows(ctx, parsed.blq_text & flag.eq(False).fillna(False), shown, flag_name,
               "row{s} with BLQ text in the value but flagged not BLQ",
               "Correct the flag or the value.")  # fmt: skip
    flag = flag.mask(parsed.blq_text, True)
    lloq = _lloq(ctx, frame, plan, flag, lloq_source, parsed.bound, value, assay, notes)
    below = value < lloq
    blq = flag.fillna(below).astype(bool)
    nonpositive = (value <= 0) & blq
    _note(notes, "blq", written, nonpositive, "values ≤ 0 (background-subtracted) read as below "
          "the LLOQ, value emptied")  # fmt: skip
    value = value.mask(nonpositive)
    shown = pair(value, lloq, ("value", "lloq"))
    if plan.convention == "nonmem":
        check_rows(
            ctx,
            blq & (value > lloq),
            shown,
            flag_name,
            "censored row{s} with DV > LLOQ",
            "On a censored row DV holds the LLOQ (or less); check CENS/BLQ and DV.",
        )
        value = value.mask(blq)
    at_limit = blq & (value == lloq)
    _note(notes, "blq", written, at_limit, "values equal to the LLOQ on BLQ rows read as the "
          "limit, value emptied")  # fmt: skip
    value = value.mask(at_limit)
    fix = "Correct the flag, the value or the LLOQ so that BLQ means value < LLOQ."
    check_rows(ctx, blq & (value > lloq), shown, flag_name,
               "row{s} flagged BLQ with value ≥ LLOQ",
               fix + " If the value holds the LLOQ on BLQ rows, leave it empty.")  # fmt: skip
    check_rows(ctx, ~blq & (value < lloq), shown, flag_name,
               "row{s} not flagged BLQ with value < LLOQ", fix)  # fmt: skip
    return value, lloq, blq


def _note(notes: Notes, step: str, column: str, rows: pd.Series, text: str) -> None:
    count = int(rows.sum())
    if count:
        notes.add(step, column, count, f"{count} {text}")


def _lloq(
    ctx: Context,
    frame: pd.DataFrame,
    plan: ColumnPlan,
    flag: pd.Series,
    source: tuple[pd.Series, str] | None,
    bound: pd.Series,
    value: pd.Series,
    assay: pd.Series,
    notes: Notes,
) -> pd.Series:
    """The LLOQ of every sample, from its column or option, `<x` values and LIMS qualifiers."""
    column = plan.cols["value"]
    written = plan.original("value")
    flagged = flag.fillna(False).astype(bool)
    if source is None:
        lloq = pd.Series(np.nan, index=frame.index)
        name = "`lloq`"
    else:
        raw, name = source
        lloq = to_float(ctx, raw, name, fix=_LLOQ_FIX)
    conflict = lloq.notna() & bound.notna() & ~np.isclose(lloq, bound)
    check_rows(ctx, conflict, pair(frame[column], lloq, (column, "lloq")), name,
               "row{s} whose '<x' value differs from the LLOQ",
               "Make the LLOQ and the '<x' value agree (or empty the LLOQ).")  # fmt: skip
    from_bound = lloq.isna() & bound.notna()
    lloq = lloq.fillna(bound)
    _note(notes, "lloq", written, from_bound, "'<x' values set their sample's LLOQ to x")
    limit = lloq.isna() & flagged & value.notna() & (value > 0)
    _note(notes, "lloq", written, limit, "values on rows qualified BLQ read as the sample's LLOQ "
          "(LIMS convention: value = LLOQ with qualifier '<')")  # fmt: skip
    lloq = lloq.mask(limit, value)
    if source is None and lloq.isna().all():
        hint = "Add the column, or pass mapping={'lloq': ...} (a value, or one per assay)."
        require_columns(ctx, list(frame.columns), ["lloq"], hint)
    if source is None:
        lloq = _assay_lloq(lloq, assay, notes, written)
    fix = (
        _LLOQ_FIX
        if source is not None
        else (_LLOQ_FIX + " Add an LLOQ column or pass mapping={'lloq': 50} (or one per assay).")
    )
    check_rows(
        ctx,
        lloq.isna(),
        frame[column] if source is None else source[0],
        name,
        "missing value{s}" if source is not None else "sample{s} without an LLOQ",
        fix,
    )
    shown: Callable[[Any], str] | pd.Series = lloq
    check_rows(ctx, lloq <= 0, shown, name, "LLOQ{s} ≤ 0",
               "An LLOQ is a positive level: a sample cannot be below a limit of 0. Take the "
               "LLOQ from the assay validation report.")  # fmt: skip
    return lloq


def _assay_lloq(lloq: pd.Series, assay: pd.Series, notes: Notes, column: str) -> pd.Series:
    """Fill the LLOQ of quantified samples with their assay's one `<x` limit, if unique."""
    known = pd.DataFrame({"assay": assay, "lloq": lloq}).dropna()
    unique = known.groupby("assay")["lloq"].unique()
    single = {a: float(v[0]) for a, v in unique.items() if len(v) == 1}
    fill = lloq.isna() & assay.isin(list(single))
    _note(notes, "lloq", column, fill, "quantified samples given their assay's LLOQ from its "
          f"'<x' values ({', '.join(f'{a}: {v:g}' for a, v in single.items())})")  # fmt: skip
    return lloq.where(~fill, assay.map(single))
