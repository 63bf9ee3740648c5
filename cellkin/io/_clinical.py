"""The clinical-table readers: subjects, RECIST lesions and adverse events (DESIGN §2.2–2.3).

Each reader matches the known column names in any case, converts every known column with the
checks of :mod:`cellkin._validation` (a :class:`~cellkin.errors.DataError` names the file,
column, first offending row and the fix), cross-checks the rows (unique subjects, a diameter
for every measured target lesion, events that do not end before they start) and keeps the
table's own row and column order.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from cellkin._validation import (
    Context,
    apply_converters,
    check_rows,
    check_unique,
    match_columns,
    pair,
    require_columns,
    to_bool,
    to_choice,
    to_float,
    to_int,
    to_label,
)
from cellkin.io._conventions import LAYOUT_OPTIONS, SUBJECT_FIX
from cellkin.io._dates import parse_dates
from cellkin.io._ids import id_notes, id_spellings
from cellkin.io._mapping import SYNONYMS, load_mapping, normal_name
from cellkin.io._notes import Notes
from cellkin.io._source import read_source

__all__ = ["OUTCOME_COLUMNS", "read_adverse_events", "read_lesions", "read_subjects"]

_SUBJECT_COLUMNS = (
    "subject", "dose", "dose_unit", "dose_level", "cohort", "age", "sex", "tumour_type",
    "baseline_sld_mm", "infusion_date", "bor", "responder", "crs_grade", "icans_grade", "dlt",
    "pfs_days", "pfs_event", "os_days", "os_event",
)  # fmt: skip
#: Outcome columns of the subject table (not covariates: the NONMEM writer leaves them out).
OUTCOME_COLUMNS = frozenset(_SUBJECT_COLUMNS[10:])
_BOR = {code.casefold(): code for code in ("CR", "PR", "SD", "PD", "NE")}
_LESION_COLUMNS = tuple("subject day lesion_id kind organ nodal diameter_mm status".split())
_KINDS = {"target": "target", "nontarget": "nontarget", "non_target": "nontarget", "new": "new"}
_STATUS = {
    "present": "present", "absent": "absent", "unequivocal_progression":
    "unequivocal_progression", "not_assessed": "not_assessed", "ne": "not_assessed",
}  # fmt: skip
_AE_COLUMNS = tuple("subject term soc grade onset_day end_day serious related dlt".split())


_CLINICAL_SYNONYMS = {"subject": SYNONYMS["subject"], "infusion_date": SYNONYMS["infusion_date"]}


def _clinical_table(
    source: Any,
    sheet_name: int | str,
    known: tuple[str, ...],
    required: tuple[str, ...],
    mapping: Any = None,
) -> tuple[pd.DataFrame, Context, Notes]:
    """Read a clinical table: the mapping's renames, known columns in another case, and
    subject-id columns named as labs name them (``Patient ID``, ``USUBJID``)."""
    mapping = load_mapping(mapping) or {}
    layout = {k: mapping.pop(k) for k in LAYOUT_OPTIONS if k in mapping}
    read = read_source(source, sheet_name, layout)
    frame, ctx, notes = read.frame, read.ctx, read.notes
    unknown = [k for k in mapping if k not in frame.columns]
    if unknown:
        raise ctx.error(
            f"mapping renames column `{unknown[0]}`, which the table does not have. Columns: "
            f"{', '.join(map(str, frame.columns))}."
        )
    frame = frame.rename(columns={k: str(v) for k, v in mapping.items()})
    for old, new in mapping.items():
        notes.add("columns", old, len(frame), f"column `{old}` read as `{new}` (mapping)")
    renames = {}
    for name in known:
        hits = match_columns(ctx, list(frame.columns), {name})
        if hits and hits[0] != name:
            renames[hits[0]] = name
    frame = frame.rename(columns=renames)
    present = {str(c).casefold() for c in frame.columns}
    for target, names in _CLINICAL_SYNONYMS.items():
        hits = [c for c in frame.columns if normal_name(c) in names or (normal_name(c) == "usubjid"
                and target == "subject")]  # fmt: skip
        if target not in present and len(hits) == 1:
            frame = frame.rename(columns={hits[0]: target})
            notes.add("columns", hits[0], len(frame), f"column `{hits[0]}` read as `{target}`")
    require_columns(ctx, list(frame.columns), required)
    notes.extend(id_notes(frame["subject"], "subject"))
    return frame, ctx, notes


def _finish(out: pd.DataFrame, raw_ids: pd.Series, ctx: Context, notes: Notes) -> pd.DataFrame:
    """Fresh index; the notes and id spellings in ``attrs["cellkin"]``."""
    out = out.reset_index(drop=True)
    out.attrs["cellkin"] = {
        "source": ctx.label,
        "conversions": notes.records(),
        "id_spellings": id_spellings(raw_ids),
    }
    return out


def read_subjects(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    sheet_name: int | str = 0,
    mapping: Mapping[str, str] | str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Read and validate the subject table (one row per infused subject, DESIGN §2.2).

    Parameters
    ----------
    source : str, os.PathLike or pandas.DataFrame
        File (as for `read_kinetics`) or DataFrame with columns ``subject`` and ``dose``
        (required) and optionally ``dose_unit, dose_level, cohort, age, sex, tumour_type,
        baseline_sld_mm, bor, responder, crs_grade, icans_grade, dlt, pfs_days, pfs_event,
        os_days, os_event``; names are matched in any case and other columns are kept.
    sheet_name : int or str, default 0
        Excel sheet.
    mapping : dict or path of a TOML file, optional
        Column renames ``{"Patient ID": "subject", ...}`` and layout options (``sep``,
        ``decimal``, ``skiprows``, ``sheet``), as for :func:`read_kinetics`. Without one,
        ``Patient ID``, ``USUBJID`` and similar names are read as ``subject``.

    Returns
    -------
    pandas.DataFrame
        The table in its original row and column order with ``subject`` as text, ``dose``
        (non-negative, no missing values), ``age``, ``baseline_sld_mm``, ``pfs_days`` and
        ``os_days`` (non-negative) as float, ``bor`` as CR/PR/SD/PD/NE, grades as ``Int64``
        in 0–5, and ``responder``, ``dlt`` and the event columns as bool (pandas ``boolean``
        when some are missing). Event columns take 1/0, Y/N, yes/no or true/false.

    Raises
    ------
    DataError
        On a missing column, an empty or repeated subject id, or an invalid value.
    """
    frame, ctx, notes = _clinical_table(
        source, sheet_name, _SUBJECT_COLUMNS, ("subject", "dose"), mapping
    )
    days = partial(to_float, ctx, fix="Times are days since infusion.", minimum=0)
    age = partial(to_float, ctx, fix="Ages are numbers of years.", minimum=0)
    sld = partial(to_float, ctx, fix="Sums of diameters are numbers in mm.", minimum=0)
    grade = partial(to_int, ctx, low=0, high=5, fix="Grades are whole numbers 0–5 (0 = none).")
    flag = partial(to_bool, ctx, fix="This column is a yes/no flag (events: 1 = event).")
    out = apply_converters(
        frame,
        {
            "subject": partial(to_label, ctx, fix=SUBJECT_FIX),
            "dose": partial(
                to_float,
                ctx,
                fix="Give every infused subject's dose as a number.",
                required=True,
                minimum=0,
            ),
            "age": age,
            "baseline_sld_mm": sld,
            "pfs_days": days,
            "os_days": days,
            "crs_grade": grade,
            "icans_grade": grade,
            "responder": flag,
            "dlt": flag,
            "pfs_event": flag,
            "os_event": flag,
            "bor": partial(to_choice, ctx, choices=_BOR, fix="BOR is a RECIST 1.1 code."),
        },
    )
    if "infusion_date" in out:
        out["infusion_date"], _ = parse_dates(ctx, out["infusion_date"], "`infusion_date`")
    fix = "Give each subject one row (merge the rows, or fix the id)."
    check_unique(ctx, out, ["subject"], fix)
    return _finish(out, frame["subject"], ctx, notes)


def read_lesions(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    sheet_name: int | str = 0,
    mapping: Mapping[str, str] | str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Read and validate RECIST lesion measurements (one row per lesion and scan, §2.3).

    Parameters
    ----------
    source : str, os.PathLike or pandas.DataFrame
        Columns ``subject, day, lesion_id, kind`` (required) and ``organ, nodal, diameter_mm,
        status``. ``kind`` is target, nontarget (or non-target) or new; ``status`` is present,
        absent, unequivocal_progression or not_assessed (NE), in any case, with spaces or
        hyphens for underscores.
    sheet_name : int or str, default 0
        Excel sheet.
    mapping : dict or path of a TOML file, optional
        Column renames ``{"Patient ID": "subject", ...}`` and layout options (``sep``,
        ``decimal``, ``skiprows``, ``sheet``), as for :func:`read_kinetics`. Without one,
        ``Patient ID``, ``USUBJID`` and similar names are read as ``subject``.

    Returns
    -------
    pandas.DataFrame
        The table in its original order, ``day`` and ``diameter_mm`` as float, ``nodal`` as
        bool, ``kind`` and ``status`` as canonical codes.

    Raises
    ------
    DataError
        If a diameter is negative, a target lesion has no diameter (unless not_assessed), a
        non-target lesion has no status, a code is unknown, or (subject, day, lesion_id) repeats.
    """
    required = ("subject", "day", "lesion_id", "kind")
    frame, ctx, notes = _clinical_table(source, sheet_name, _LESION_COLUMNS, required, mapping)
    out = apply_converters(
        frame,
        {
            "subject": partial(to_label, ctx, fix=SUBJECT_FIX),
            "day": partial(to_float, ctx, fix="Scan days are days since infusion.", required=True),
            "lesion_id": partial(to_label, ctx, fix="Every lesion needs an id."),
            "kind": partial(
                to_choice,
                ctx,
                choices=_KINDS,
                required=True,
                fix="Lesions are target, nontarget or new.",
            ),
            "nodal": partial(to_bool, ctx, fix="`nodal` says whether the lesion is a lymph node."),
            "diameter_mm": partial(to_float, ctx, fix="Diameters are numbers in mm.", minimum=0),
            "status": partial(to_choice, ctx, choices=_STATUS, fix="Unknown lesion status."),
        },
    )
    status = out["status"] if "status" in out else pd.Series(np.nan, index=out.index)
    target, nontarget = out["kind"] == "target", out["kind"] == "nontarget"
    if target.any():
        require_columns(ctx, list(out.columns), ["diameter_mm"], "Target lesions need a diameter.")
        fix = "Measure every target lesion, or set its status to not_assessed."
        bad = target & out["diameter_mm"].isna() & (status != "not_assessed")
        check_rows(
            ctx, bad, out["diameter_mm"], "`diameter_mm`", "target lesion{s} with no diameter", fix
        )
    if nontarget.any():
        require_columns(ctx, list(out.columns), ["status"], "Non-target lesions need a status.")
        fix = "Non-target lesions are present, absent, unequivocal_progression or not_assessed."
        check_rows(
            ctx,
            nontarget & status.isna(),
            status,
            "`status`",
            "non-target lesion{s} with no status",
            fix,
        )
    fix = "Each lesion is measured once per scan; fix the day or the lesion id."
    check_unique(ctx, out, ["subject", "day", "lesion_id"], fix)
    return _finish(out, frame["subject"], ctx, notes)


def read_adverse_events(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    sheet_name: int | str = 0,
    mapping: Mapping[str, str] | str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Read and validate adverse events (one row per event, §2.3).

    Parameters
    ----------
    source : str, os.PathLike or pandas.DataFrame
        Columns ``subject, term, grade, onset_day`` (required) and ``soc, end_day, serious,
        related, dlt``. ``grade`` is the CTCAE (or ASTCT) grade 1–5; ``end_day`` empty means
        ongoing; flags take Y/N, yes/no, 1/0 or true/false in any case.
    sheet_name : int or str, default 0
        Excel sheet.
    mapping : dict or path of a TOML file, optional
        Column renames ``{"Patient ID": "subject", ...}`` and layout options (``sep``,
        ``decimal``, ``skiprows``, ``sheet``), as for :func:`read_kinetics`. Without one,
        ``Patient ID``, ``USUBJID`` and similar names are read as ``subject``.

    Returns
    -------
    pandas.DataFrame
        The table in its original order with ``grade`` as ``Int64``, days as float and flags as
        bool (``boolean`` when some are missing).

    Raises
    ------
    DataError
        If a grade is not 1–5, a day is not a number, an event ends before its onset or a flag
        is not yes/no.
    """
    required = ("subject", "term", "grade", "onset_day")
    frame, ctx, notes = _clinical_table(source, sheet_name, _AE_COLUMNS, required, mapping)
    flag = partial(to_bool, ctx, fix="This column is a yes/no flag.")
    out = apply_converters(
        frame,
        {
            "subject": partial(to_label, ctx, fix=SUBJECT_FIX),
            "term": partial(to_label, ctx, fix="Every event needs its term (e.g. MedDRA PT)."),
            "grade": partial(
                to_int, ctx, low=1, high=5, required=True, fix="CTCAE grades are whole numbers 1–5."
            ),
            "onset_day": partial(to_float, ctx, fix="Days are days since infusion.", required=True),
            "end_day": partial(to_float, ctx, fix="Days are days since infusion; empty = ongoing."),
            "serious": flag,
            "related": flag,
            "dlt": flag,
        },
    )
    if "end_day" in out:
        shown = pair(out["onset_day"], out["end_day"], ("onset", "end"))
        fix = "Check the two days (swapped, or a typo); leave end_day empty if ongoing."
        check_rows(
            ctx,
            out["end_day"] < out["onset_day"],
            shown,
            "`end_day`",
            "event{s} ending before onset",
            fix,
        )
    return _finish(out, frame["subject"], ctx, notes)
