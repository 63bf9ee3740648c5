"""The kinetics reader: one validated, canonical table of qPCR/flow samples.

:func:`read_kinetics` reads a source (:mod:`cellkin.io._source`), decides which column gives
which field (:mod:`cellkin.io._conventions`), reads and checks the sample rows
(:mod:`cellkin.io._samples`), checks the table as a whole (one unit per subject × assay, no
conflicting duplicates) and sorts it. Rows that are not samples (dose records, MDV=1 rows,
identical copies, samples before ``exclude_before``) are never dropped silently:
:func:`read_kinetics_with_exclusions` returns them with the reason. :func:`kinetics_summary`
describes a validated table by assay.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from numbers import Real
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from cellkin._validation import Context, show
from cellkin.errors import DataWarning, OptionError
from cellkin.io._conventions import (
    KINETICS_COLUMNS,
    LAYOUT_OPTIONS,
    assay_codes,
    plan_columns,
    split_mapping,
)
from cellkin.io._convert import harmonise_units
from cellkin.io._ids import id_notes, id_spellings
from cellkin.io._mapping import load_mapping
from cellkin.io._samples import read_events, read_samples, read_subject_ids
from cellkin.io._source import read_source
from cellkin.io._timing import read_times
from cellkin.io._wide import melt_wide, visit_columns

__all__ = ["MISSING_REASON", "kinetics_summary", "read_kinetics", "read_kinetics_with_exclusions"]

#: Exclusion reason of a sample row with neither a value nor a BLQ flag (DESIGN §5.1).
MISSING_REASON = (
    "missing value, not flagged BLQ: read as not sampled or sample lost (set the BLQ flag if "
    "the sample was below the LLOQ)"
)

Source: TypeAlias = str | os.PathLike[str] | pd.DataFrame


def read_kinetics(
    source: Source,
    *,
    mapping: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    sheet_name: int | str = 0,
    exclude_before: float | None = None,
    infusion_dates: Any = None,
) -> pd.DataFrame:
    """Read and validate a kinetics table (one row per qPCR or flow sample).

    Parameters
    ----------
    source : str, os.PathLike or pandas.DataFrame
        A ``.csv``/``.tsv`` (optionally compressed: ``.gz``, ``.bz2``, ``.xz``, ``.zip``),
        ``.xlsx``/``.xls`` or ``.parquet``/``.pq`` file, or a DataFrame (copied, never
        modified). In text files the separator (``, ; TAB |``), a decimal comma, a thousands
        separator and title lines above the header are detected; in Excel sheets title rows
        above the header are skipped. ``.`` and empty cells are missing values; ids keep
        leading zeros.
    mapping : dict or path of a TOML file, optional
        How to read this laboratory's file (see :mod:`cellkin.io._mapping` and the README
        section "Your lab's files"): column renames ``{"Patient ID": "subject", "Result":
        "value", "Collection Date": "date", ...}`` (targets are canonical names, ``date``,
        ``visit``, ``nominal_time``, ``infusion_date``, ``cd3_count``, ``time_hours`` or
        NONMEM/CDISC names such as ``"DV"``) and options:

        - constants for columns the file lacks: ``"assay"`` (e.g. ``"qpcr"``), ``"unit"``,
          ``"lloq"`` (one value, or a dict per assay);
        - ``"time_unit"``: unit of the time column, e.g. ``"h"`` (converted to days);
        - ``"date_format"``: strptime format of sample dates, e.g. ``"%d/%m/%Y"``;
        - ``"visits"``: nominal days of visit labels, e.g. ``{"Screening": -28}``;
        - ``"sep"``, ``"decimal"``, ``"thousands"``, ``"skiprows"`` (rows above the header),
          ``"sheet"``: the file's layout, when detection is not wanted;
        - ``"convention"``: ``"canonical"``, ``"nonmem"`` or ``"cdisc"`` (resolves ambiguity);
        - ``"cmt"`` / ``"dvid"``: NONMEM codes to assays, e.g. ``{1: "qpcr", 2: "flow"}``;
        - ``"paramcd"``: CDISC PARAMCD to assay, overriding the built-in rule.

        Without a mapping, common laboratory column names (``Patient ID``, ``USUBJID``,
        ``Study Day``, ``Result``, ``Analyte``, ``Units``, ``Qualifier``, ``Sample Date``,
        ``Visit``) are recognised; every recognition is listed in the reading notes.
    sheet_name : int or str, default 0
        Excel sheet (0-based position or name).
    exclude_before : float, optional
        Samples with ``time < exclude_before`` (days; e.g. before lymphodepletion) are moved
        to the exclusions table.
    infusion_dates : dict, pandas.Series or pandas.DataFrame, optional
        Infusion date of each subject, used when samples are dated: ``{"S01": "2024-03-05"}``,
        a Series indexed by subject, or a subject table with ``subject`` and
        ``infusion_date`` (:func:`read_subjects`). Default: an ``infusion_date`` column of
        the kinetics table.

    Returns
    -------
    pandas.DataFrame
        Columns ``subject`` (str), ``time`` (float, days since infusion), ``value`` (float, NaN
        only on BLQ rows), ``assay`` (str, lower case), ``unit`` (canonical spelling, see
        `KNOWN_UNITS`), ``lloq`` (float), ``blq`` (bool), then ``dose``, ``dose_unit``,
        ``dose_level``, ``visit``, ``tissue`` when present (no ``tissue`` means blood), then the
        other columns of the input; ``nominal_time`` (protocol day) when the table has visit
        labels or nominal times. Rows are sorted stably by subject (order of first
        appearance), assay (qpcr, flow, then A–Z), tissue and time, with a fresh index.
        ``kinetics.attrs["cellkin"]`` records the source, convention and every recognition
        and conversion made (see :func:`reading_notes`).

    Raises
    ------
    DataError
        On any invalid input; the message names the file, column, row or subject and the fix.
    OptionError
        If `exclude_before`, ``mapping['convention']`` or ``mapping['time_unit']`` has a
        value it cannot take.
    TypeError
        If `mapping` is neither a dict nor a path.

    Warns
    -----
    DataWarning
        When samples repeat an earlier row exactly; the copies go to the exclusions table
        (see :func:`read_kinetics_with_exclusions`).

    See Also
    --------
    read_kinetics_with_exclusions : the same table, and the rows left out with the reason.

    Notes
    -----
    Values are read as laboratories write them (:mod:`cellkin.io._values`): BLQ text in the
    value column (``<LLOQ``, ``BLQ``, ``ND``, ``<50``, ``below LLOQ``, ``not detected``) or a
    qualifier column (``<``, ``BLQ``, ``ND``) marks a sample BLQ, and a ``<x`` value sets its
    LLOQ to x when none is given; ``not sampled``, ``missing``, ``NA`` or an empty cell are
    missing. The rules that reconcile value, LLOQ and flag are in :mod:`cellkin.io._levels`:
    ``blq`` is derived as ``value < lloq`` when no flag is given; a **missing value is not
    BLQ** (it is moved to the exclusions table, reason :data:`MISSING_REASON`); a value ≤ 0 is
    BLQ (background-subtracted); an LLOQ ≤ 0 is an error. In NONMEM tables ``CENS=1`` (or
    ``BLQ=1``) rows hold the LLOQ in DV (M3 convention), so their value is NaN; MDV=1 rows are
    samples only when flagged BLQ. Times may be days, hours, dates (minus the infusion date)
    or visit labels (:mod:`cellkin.io._timing`); a wide table with one column per visit is
    melted (:mod:`cellkin.io._wide`). One assay holds one unit: mixed units are converted
    (``cells/mL`` to ``cells/uL``, ``%CD3`` with a ``cd3_count`` column to CAR+ ``cells/uL``)
    or refused when not convertible (:mod:`cellkin.io._convert`).
    NONMEM ``TIME`` is read as days unless ``time_unit`` says otherwise; CDISC times need a
    unit (an ``AFRLTU``/``RRLTU`` column or ``time_unit``). NONMEM assays come from ``ASSAY``,
    or from ``DVID``/``CMT`` names, numeric codes needing ``mapping={"cmt": {...}}``; with a
    ``USUBJID`` column, it is the subject id. CDISC ``PARAMCD`` containing QPCR, TRANSGEN,
    COPIES or VCN is ``qpcr``; FLOW, CAR+, CARPOS or FACS is ``flow``; others are lower-cased.
    """
    return _read_kinetics(source, mapping, sheet_name, exclude_before, infusion_dates)[0]


def read_kinetics_with_exclusions(
    source: Source,
    *,
    mapping: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    sheet_name: int | str = 0,
    exclude_before: float | None = None,
    infusion_dates: Any = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read and validate a kinetics table, and list the input rows left out of it.

    Parameters
    ----------
    source, mapping, sheet_name, exclude_before, infusion_dates
        As for :func:`read_kinetics`.

    Returns
    -------
    kinetics : pandas.DataFrame
        The table :func:`read_kinetics` returns.
    exclusions : pandas.DataFrame
        ``source_row`` (1-based data row), ``subject``, ``time`` (days) and ``reason`` of
        every input row that is not in `kinetics` (dose and other event records, MDV=1 rows,
        missing values not flagged BLQ, identical duplicate samples, samples before
        `exclude_before`), in input order. Empty, with these columns, when nothing was
        excluded.

    Raises
    ------
    DataError, OptionError
        As :func:`read_kinetics`.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"subject": ["S1"] * 3, "time": [-7.0, 7.0, 14.0],
    ...                       "value": [0.0, 900.0, 300.0], "assay": "qpcr",
    ...                       "unit": "copies/ug", "lloq": 50.0})
    >>> kinetics, exclusions = read_kinetics_with_exclusions(table, exclude_before=0)
    >>> kinetics["time"].tolist()
    [7.0, 14.0]
    >>> exclusions[["source_row", "reason"]].to_dict("records")
    [{'source_row': 1, 'reason': 'before exclude_before=0 d'}]
    """
    return _read_kinetics(source, mapping, sheet_name, exclude_before, infusion_dates)


def _read_kinetics(
    source: Source,
    mapping: Any,
    sheet_name: int | str,
    exclude_before: float | None,
    infusion_dates: Any = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The kinetics table and its exclusions (see :func:`read_kinetics`)."""
    cutoff = None if exclude_before is None else _finite(exclude_before)
    mapping = load_mapping(mapping) or {}
    layout = {k: mapping[k] for k in LAYOUT_OPTIONS if k in mapping}
    read = read_source(source, sheet_name, layout)
    frame, ctx, notes = read.frame, read.ctx, read.notes
    renames, options = split_mapping(ctx, list(frame.columns), mapping)
    frame = frame.rename(columns=renames)
    for old, new in renames.items():
        notes.add("columns", old, len(frame), f"column `{old}` read as `{new}` (mapping)")
    visits = visit_columns(list(frame.columns))
    if visits:
        frame, ctx = melt_wide(ctx, frame, visits, notes)
    plan = plan_columns(ctx, list(frame.columns), renames, options, notes, len(frame))
    frame = frame.rename(columns=plan.recognised)
    if "time_hours" in plan.cols and "time_unit" in plan.options:
        raise ctx.error("time unit given twice: a column in hours and mapping['time_unit'].")
    subject = read_subject_ids(ctx, frame, plan)
    notes.extend(id_notes(frame[plan.cols["subject"]], plan.cols["subject"]))
    time, nominal = read_times(ctx, frame, plan, infusion_dates, notes)
    flag, reason = read_events(ctx, frame, plan)
    event = reason != ""
    kin = read_samples(ctx, frame.loc[~event], plan, flag, read.decimal, notes)
    kin.insert(0, "subject", subject.loc[kin.index])
    kin.insert(1, "time", time.loc[kin.index])
    if nominal is not None:
        kin["nominal_time"] = nominal.loc[kin.index]
    keys = ["assay", *(["tissue"] if "tissue" in kin else [])]
    kin = harmonise_units(ctx, kin, keys, notes)
    events = pd.DataFrame({"subject": subject, "time": time})[event]
    keys = ["subject", *keys]
    kin, exclusions = _exclude(ctx, kin, events, list(reason[event]), keys, cutoff)
    order = [*KINETICS_COLUMNS, *(c for c in kin.columns if c not in KINETICS_COLUMNS)]
    kin = _sorted(kin[order], keys).reset_index(drop=True)
    kin.attrs["cellkin"] = {
        "source": ctx.label,
        "convention": plan.convention,
        "conversions": notes.records(),
        "id_spellings": id_spellings(frame[plan.cols["subject"]]),
    }
    return kin, exclusions.reset_index(drop=True)


def _exclude(
    ctx: Context,
    kin: pd.DataFrame,
    events: pd.DataFrame,
    reasons: list[str],
    keys: list[str],
    cutoff: float | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Move event rows, missing values, identical copies and early samples to exclusions."""
    missing = kin["value"].isna() & ~kin["blq"]
    kin, lost = kin.loc[~missing], kin.loc[missing]
    copies = check_duplicates(ctx, kin, keys)
    excluded = [exclusions_frame(events, reasons), copies,
                exclusions_frame(lost, [MISSING_REASON] * len(lost))]  # fmt: skip
    kin = kin.drop(index=copies["source_row"])
    if cutoff is not None:
        early = kin["time"] < cutoff
        why = f"before exclude_before={cutoff:g} d"
        excluded.append(exclusions_frame(kin.loc[early], [why] * int(early.sum())))
        kin = kin.loc[~early]
    exclusions = pd.concat(excluded).sort_values("source_row", kind="stable")
    if kin.empty:
        first = exclusions.iloc[0]
        raise ctx.error(
            f"no sample rows remain: all {len(exclusions)} rows were excluded (row "
            f"{first['source_row']}: {first['reason']}). Check EVID/MDV and `exclude_before`."
        )
    return kin, exclusions


def _finite(number: Any) -> float:
    if isinstance(number, bool) or not isinstance(number, Real) or not math.isfinite(number):
        raise OptionError(f"`exclude_before` must be a finite number of days, got {number!r}")
    return float(number)


def _sorted(kin: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Stable sort: subject (first appearance), assay (qpcr, flow, others A–Z), tissue, time."""
    order = [kin["time"].to_numpy()]
    if "tissue" in keys:
        codes = pd.factorize(kin["tissue"], sort=True)[0]
        order.append(np.where(codes < 0, codes.max() + 1, codes))
    order += [
        kin["assay"].map(assay_codes(kin["assay"])).to_numpy(),
        pd.factorize(kin["subject"])[0],
    ]
    return kin.iloc[np.lexsort(order)]


# ------------------------------------------------------------------------ table-level checks


def check_duplicates(ctx: Context, kin: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Raise on conflicting duplicates; return identical copies as exclusions (with a warning)."""
    keys = [*keys, "time"]
    content = [*keys, "value", "lloq", "blq", "unit"]
    same_key = kin.duplicated(keys, keep=False)
    conflict = same_key & ~kin.duplicated(content, keep=False)
    if conflict.any():
        row = conflict.index[conflict.to_numpy()][0]
        group = kin.loc[(kin[keys] == kin.loc[row, keys]).all(axis=1)]
        rows = ", ".join(str(r) for r in group.index)
        values = ", ".join(show(v) for v in group["value"])
        raise ctx.error(
            f"subject {show(kin.at[row, 'subject'])}, assay {show(kin.at[row, 'assay'])}, time "
            f"{kin.at[row, 'time']:g}: rows {rows} are duplicate samples with different "
            f"value/lloq/blq/unit (values {values}); {int(conflict.sum())} rows conflict. Keep "
            "one sample per subject, assay and time: average replicates, or fix the time."
        )
    copies = kin.duplicated(content, keep="first")
    if not copies.any():
        return exclusions_frame(kin.iloc[:0], [])
    rows = pd.Series(kin.index, index=kin.index)
    original = rows.groupby([kin[k] for k in keys], sort=False, dropna=False).transform("first")
    first = copies.index[copies.to_numpy()][0]
    warnings.warn(
        f"{ctx.label}: {int(copies.sum())} sample row(s) repeat an earlier row exactly (first "
        f"row {first}, a copy of row {original[first]}); the copies were moved to the "
        "exclusions table.",
        DataWarning,
        stacklevel=4,
    )
    reasons = [f"identical duplicate of row {original[r]}" for r in copies.index[copies]]
    return exclusions_frame(kin.loc[copies], reasons)


def exclusions_frame(kin: pd.DataFrame, reasons: list[str]) -> pd.DataFrame:
    """The exclusions table of the rows of `kin` (indexed by source row), one reason each."""
    return pd.DataFrame(
        {
            "source_row": kin.index.to_numpy(dtype=np.int64),
            "subject": kin["subject"].to_numpy(),
            "time": kin["time"].to_numpy(dtype=float),
            "reason": np.asarray(reasons, dtype=object),
        }
    )


def kinetics_summary(kinetics: pd.DataFrame) -> pd.DataFrame:
    """Samples by assay and unit: subjects, samples, % BLQ, LLOQ range, first/last day, max.

    Parameters
    ----------
    kinetics : pandas.DataFrame
        A validated kinetics table (:func:`read_kinetics`).

    Returns
    -------
    pandas.DataFrame
        One row per assay × unit (sorted): ``assay, unit, subjects, samples, blq_pct`` (% of
        samples below the LLOQ, one decimal), ``lloq_min, lloq_max, first_day, last_day,
        max_value`` (the largest quantified level).

    Examples
    --------
    >>> from cellkin.datasets import load_example
    >>> kinetics_summary(load_example().kinetics)[["assay", "unit", "subjects"]]
      assay       unit  subjects
    0  flow   cells/uL        27
    1  qpcr  copies/ug        27
    """
    grouped = kinetics.groupby(["assay", "unit"], sort=True)
    return pd.DataFrame(
        {
            "subjects": grouped["subject"].nunique(),
            "samples": grouped.size(),
            "blq_pct": grouped["blq"].mean().mul(100).round(1),
            "lloq_min": grouped["lloq"].min(),
            "lloq_max": grouped["lloq"].max(),
            "first_day": grouped["time"].min(),
            "last_day": grouped["time"].max(),
            "max_value": grouped["value"].max(),
        }
    ).reset_index()
