"""Read, validate and write CAR-T kinetics and clinical tables.

Readers accept a path (``.csv``, ``.tsv``, ``.xlsx``/``.xls``, ``.parquet``/``.pq``; CSV may be
compressed) or a :class:`pandas.DataFrame`, which is copied and never modified. Every problem
raises :class:`~cellkin.errors.DataError` naming the file (or ``DataFrame input``), the column,
the first offending row or subject, how many rows are affected and how to fix it.
`KNOWN_UNITS` maps every accepted unit spelling to its canonical unit.

Row numbers are 1-based *data* rows: row 1 is the first row below the header (line 2 of a CSV,
row 2 of a spreadsheet); for a DataFrame, row ``k`` is the ``k``-th row, and its index label is
shown too when the index is not the default ``0..n-1``. Rows whose cells are all empty hold no
data and are skipped, but row numbers still count them (a blank line in a CSV is not a row).

Kinetics tables come in three conventions, recognised from their column names (any case):

* canonical: ``subject time value assay unit lloq [blq]`` (DESIGN §2.1);
* NONMEM: ``ID TIME DV [MDV EVID AMT] CMT|DVID|ASSAY CENS|BLQ LLOQ [UNIT USUBJID]``;
* CDISC ADPC/ADPPK: ``USUBJID AFRLT|ARELTM AVAL AVALU PARAMCD LLOQ|ALLOQ [BLQFL|BLQFN]``.

A table that matches more than one is refused with "ambiguous column mapping"; say which one
you mean with ``mapping={"convention": "nonmem"}`` or rename columns with ``mapping``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import partial
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cellkin._conventions import (
    KINETICS_COLUMNS,
    KNOWN_UNITS,
    OPTIONAL_COLUMNS,
    SUBJECT_FIX,
    check_duplicates,
    check_units,
    exclusions_frame,
    plan_columns,
    read_events,
    read_samples,
    read_subject_ids,
    read_time,
)
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
from cellkin.errors import DataError

__all__ = [
    "KNOWN_UNITS",
    "MISSING_REASON",
    "read_adverse_events",
    "read_kinetics",
    "read_lesions",
    "read_subjects",
    "write_nonmem",
]

_CMT_CODES = {"qpcr": 1, "flow": 2}
#: Columns read as text from CSV files so that identifiers such as "001" keep their zeros.
_TEXT_COLUMNS = frozenset({"subject", "id", "usubjid", "subjid", "lesion_id", "visit"})
_READERS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".xlsx": "excel"}
_READERS.update({".xlsm": "excel", ".xls": "excel", ".parquet": "parquet", ".pq": "parquet"})
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst")


# --------------------------------------------------------------------------------- reading


def _read_source(source: Any, sheet_name: int | str = 0) -> tuple[pd.DataFrame, Context]:
    """Read a path or copy a DataFrame; index the rows 1..n and check the table is not empty.

    Column names are stripped of surrounding blanks; rows with every cell empty are dropped
    (they hold no data). The caller's DataFrame is never modified.
    """
    if isinstance(source, pd.DataFrame):
        frame = source.copy(deep=True)
        labels = tuple(source.index)
        default = isinstance(source.index, pd.RangeIndex) and source.index.equals(
            pd.RangeIndex(len(source))
        )
        ctx = Context("DataFrame input", None if default else labels)
    elif isinstance(source, (str, os.PathLike)):
        ctx = Context(os.fspath(source))
        frame = _read_file(ctx, Path(source), sheet_name)
    else:
        raise TypeError(
            f"source must be a file path or a pandas DataFrame, not {type(source).__name__}"
        )
    columns = [str(col).strip() for col in frame.columns]
    repeated = sorted({col for col in columns if columns.count(col) > 1})
    if repeated:
        raise ctx.error(
            f"column name(s) {', '.join(f'`{c}`' for c in repeated)} appear more than once; "
            "give every column a distinct name."
        )
    frame.columns = columns
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    frame = frame.loc[~frame.isna().all(axis=1)]
    if frame.empty:
        raise ctx.error(
            "the table has no data rows (only a header, or every row is empty). "
            "Check that you passed the right file and sheet."
        )
    return frame, ctx


def _read_file(ctx: Context, path: Path, sheet_name: int | str) -> pd.DataFrame:
    """Read one file by its extension, turning reader exceptions into DataError."""
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if len(suffixes) == 2 and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:1]
    kind = _READERS.get(suffixes[-1] if suffixes else "")
    if kind is None:
        known = ", ".join(sorted(_READERS))
        raise ctx.error(
            f"unsupported file extension {path.suffix or '(none)'!r}; cellkin reads {known} "
            "(CSV may be compressed, e.g. .csv.gz). For SAS XPT, read it with "
            "pandas.read_sas() and pass the DataFrame."
        )
    if not path.is_file():
        where = "is a folder, not a file" if path.is_dir() else "not found"
        raise ctx.error(f"file {where} (looked for {path.resolve()}); check the path.")
    try:
        if kind == "excel":
            return _read_excel(ctx, path, sheet_name)
        if kind == "parquet":
            return pd.read_parquet(path)
        return _read_text(ctx, path, "\t" if kind == "tsv" else ",")
    except DataError:
        raise
    except ImportError as exc:
        raise ctx.error(f"reading this file needs an optional package: {exc}") from exc
    except pd.errors.EmptyDataError as exc:
        raise ctx.error("the file is empty (no header and no rows).") from exc
    except Exception as exc:  # any failure of the parser means the file is unreadable
        raise ctx.error(
            f"cannot read the file as {kind} ({type(exc).__name__}: {exc}). Check that it is a "
            f"valid {kind} file (not truncated or renamed) by opening it in its usual program."
        ) from exc


def _read_text(ctx: Context, path: Path, sep: str) -> pd.DataFrame:
    """Read CSV/TSV: identifiers as text, '.' as missing (NONMEM), UTF-8 or Windows-1252."""
    with open(path, "rb") as handle:
        head = handle.read(65536)
    if b"\x00" in head:
        raise ctx.error(
            "the file contains binary data (NUL bytes), so it is not a text CSV. If it is an "
            "Excel or parquet file, give it the matching extension."
        )
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            header = pd.read_csv(path, sep=sep, nrows=0, encoding=encoding).columns
            text = {col: str for col in header if str(col).strip().casefold() in _TEXT_COLUMNS}
            return pd.read_csv(path, sep=sep, encoding=encoding, dtype=text, na_values=["."])
        except UnicodeDecodeError:
            continue
    raise ctx.error("the file is neither UTF-8 nor Windows-1252 text; save it as UTF-8 CSV.")


def _read_excel(ctx: Context, path: Path, sheet_name: int | str) -> pd.DataFrame:
    """Read one sheet, naming the sheets there are when the requested one is absent."""
    with pd.ExcelFile(path) as book:
        names = book.sheet_names
        ok = (
            sheet_name in names
            if isinstance(sheet_name, str)
            else isinstance(sheet_name, int) and 0 <= sheet_name < len(names)
        )
        if not ok:
            raise ctx.error(
                f"no sheet {sheet_name!r}; the workbook has sheets "
                f"{', '.join(repr(n) for n in names)}. Pass `sheet_name=` with one of them "
                "(a name or a 0-based position)."
            )
        return book.parse(sheet_name, na_values=["."])


def _sorted(kin: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Stable sort: subject (first appearance), assay (qpcr, flow, others A–Z), tissue, time."""
    others = sorted(set(kin["assay"]) - set(_CMT_CODES))
    rank = {**_CMT_CODES, **{a: i + 3 for i, a in enumerate(others)}}
    order = [kin["time"].to_numpy()]
    if "tissue" in keys:
        codes = pd.factorize(kin["tissue"], sort=True)[0]
        order.append(np.where(codes < 0, codes.max() + 1, codes))
    order += [kin["assay"].map(rank).to_numpy(), pd.factorize(kin["subject"])[0]]
    return kin.iloc[np.lexsort(order)]


# ------------------------------------------------------------------------------- readers


def read_kinetics(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    mapping: Mapping[str, Any] | None = None,
    sheet_name: int | str = 0,
    exclude_before: float | None = None,
    return_exclusions: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Read and validate a kinetics table (one row per qPCR or flow sample).

    Parameters
    ----------
    source : str, os.PathLike or pandas.DataFrame
        A ``.csv``/``.tsv`` (optionally compressed), ``.xlsx``/``.xls`` or
        ``.parquet``/``.pq`` file, or a DataFrame (copied, never modified). In CSV files
        ``.`` and empty cells are missing values, and ids keep leading zeros.
    mapping : dict, optional
        Column renames ``{"PatientID": "subject", "Day": "time", ...}`` (targets are canonical
        names or NONMEM/CDISC names such as ``"DV"``) and reading options:

        - ``"convention"``: ``"canonical"``, ``"nonmem"`` or ``"cdisc"`` (resolves ambiguity);
        - ``"time_unit"``: unit of the time column, e.g. ``"h"`` (converted to days);
        - ``"assay"``: one assay for the whole table, e.g. ``"qpcr"``;
        - ``"cmt"`` / ``"dvid"``: NONMEM codes to assays, e.g. ``{1: "qpcr", 2: "flow"}``;
        - ``"paramcd"``: CDISC PARAMCD to assay, overriding the built-in rule;
        - ``"unit"`` / ``"lloq"``: one value, or a dict per assay, when there is no column.
    sheet_name : int or str, default 0
        Excel sheet (0-based position or name).
    exclude_before : float, optional
        Samples with ``time < exclude_before`` (days; e.g. before lymphodepletion) are moved
        to the exclusions table.
    return_exclusions : bool, default False
        Also return the exclusions table.

    Returns
    -------
    kinetics : pandas.DataFrame
        Columns ``subject`` (str), ``time`` (float, days since infusion), ``value`` (float, NaN
        only on BLQ rows), ``assay`` (str, lower case), ``unit`` (canonical spelling, see
        `KNOWN_UNITS`), ``lloq`` (float), ``blq`` (bool), then ``dose``, ``dose_unit``,
        ``dose_level``, ``visit``, ``tissue`` when present (no ``tissue`` means blood), then the
        other columns of the input. Rows are sorted stably by subject (order of first
        appearance), assay (qpcr, flow, then A–Z), tissue and time, with a fresh index.
        ``kinetics.attrs["cellkin"]`` records the source, convention and unit conversions.
    exclusions : pandas.DataFrame
        Only with ``return_exclusions=True``: ``source_row`` (1-based data row), ``subject``,
        ``time`` (days) and ``reason`` of every input row that is not in `kinetics` (dose and
        other event records, MDV=1 rows, missing values not flagged BLQ, identical duplicate
        samples, samples before `exclude_before`). Empty, with these columns, when nothing was
        excluded.

    Raises
    ------
    DataError
        On any invalid input; the message names the file, column, row or subject and the fix.

    Warns
    -----
    DataWarning
        When samples repeat an earlier row exactly; the copies go to the exclusions table.

    Notes
    -----
    ``blq`` is derived as ``value < lloq`` when no flag is given (or a flag is empty). A
    **missing value is not BLQ**: a row with no value and no BLQ flag is read as not sampled
    (or sample lost) and moved to the exclusions table (reason `MISSING_REASON`); only an
    explicit BLQ flag makes an empty value BLQ. A given flag must agree: BLQ rows need
    ``value < lloq`` or no value; other rows need ``value >= lloq``. In NONMEM tables
    ``CENS=1`` (or ``BLQ=1``) rows hold the LLOQ in DV (M3 convention), so their value is
    NaN; MDV=1 rows are samples only when flagged BLQ.
    NONMEM ``TIME`` is read as days unless ``time_unit`` says otherwise; CDISC times need a
    unit (an ``AFRLTU``/``RRLTU`` column or ``time_unit``). NONMEM assays come from ``ASSAY``,
    or from ``DVID``/``CMT`` names, numeric codes needing ``mapping={"cmt": {...}}``; with a
    ``USUBJID`` column, it is the subject id. CDISC ``PARAMCD`` containing QPCR, TRANSGEN,
    COPIES or VCN is ``qpcr``; FLOW, CAR+, CARPOS or FACS is ``flow``; others are lower-cased.
    """
    cutoff = None if exclude_before is None else _finite(exclude_before)
    frame, ctx = _read_source(source, sheet_name)
    plan = plan_columns(ctx, list(frame.columns), mapping)
    frame = frame.rename(columns=plan.renames)
    subject = read_subject_ids(ctx, frame, plan)
    time, notes = read_time(ctx, frame, plan)
    flag, reason = read_events(ctx, frame, plan)
    event = reason != ""
    kin = read_samples(ctx, frame.loc[~event], plan, flag)
    kin.insert(0, "subject", subject.loc[kin.index])
    kin.insert(1, "time", time.loc[kin.index])
    keys = ["subject", "assay", *(["tissue"] if "tissue" in kin else [])]
    check_units(ctx, kin, keys)
    events = pd.DataFrame({"subject": subject, "time": time})[event]
    missing = kin["value"].isna() & ~kin["blq"]
    kin, lost = kin.loc[~missing], kin.loc[missing]
    copies = check_duplicates(ctx, kin, keys)
    excluded = [exclusions_frame(events, list(reason[event])), copies,
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
    order = [*KINETICS_COLUMNS, *(c for c in kin.columns if c not in KINETICS_COLUMNS)]
    kin = _sorted(kin[order], keys).reset_index(drop=True)
    kin.attrs["cellkin"] = {
        "source": ctx.label,
        "convention": plan.convention,
        "conversions": notes,
    }
    if return_exclusions:
        return kin, exclusions.reset_index(drop=True)
    return kin


#: Exclusion reason of a sample row with neither a value nor a BLQ flag (DESIGN §5.1).
MISSING_REASON = (
    "missing value, not flagged BLQ: read as not sampled or sample lost (set the BLQ flag if "
    "the sample was below the LLOQ)"
)


def _finite(number: Any) -> float:
    if isinstance(number, bool) or not isinstance(number, Real) or not np.isfinite(number):
        raise ValueError(f"exclude_before must be a finite number of days, not {number!r}")
    return float(number)


# ----------------------------------------------------------------------- clinical tables

_SUBJECT_COLUMNS = (
    "subject", "dose", "dose_unit", "dose_level", "cohort", "age", "sex", "tumour_type",
    "baseline_sld_mm", "bor", "responder", "crs_grade", "icans_grade", "dlt", "pfs_days",
    "pfs_event", "os_days", "os_event",
)  # fmt: skip
_OUTCOME_COLUMNS = frozenset(_SUBJECT_COLUMNS[9:])
_BOR = {code.casefold(): code for code in ("CR", "PR", "SD", "PD", "NE")}
_LESION_COLUMNS = tuple("subject day lesion_id kind organ nodal diameter_mm status".split())
_KINDS = {"target": "target", "nontarget": "nontarget", "non_target": "nontarget", "new": "new"}
_STATUS = {
    "present": "present", "absent": "absent", "unequivocal_progression":
    "unequivocal_progression", "not_assessed": "not_assessed", "ne": "not_assessed",
}  # fmt: skip
_AE_COLUMNS = tuple("subject term soc grade onset_day end_day serious related dlt".split())


def _clinical_table(
    source: Any, sheet_name: int | str, known: tuple[str, ...], required: tuple[str, ...]
) -> tuple[pd.DataFrame, Context]:
    """Read a clinical table, renaming known columns written in another case."""
    frame, ctx = _read_source(source, sheet_name)
    renames = {}
    for name in known:
        hits = match_columns(ctx, list(frame.columns), {name})
        if hits and hits[0] != name:
            renames[hits[0]] = name
    frame = frame.rename(columns=renames)
    require_columns(ctx, list(frame.columns), required)
    return frame, ctx


def read_subjects(
    source: str | os.PathLike[str] | pd.DataFrame, *, sheet_name: int | str = 0
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
    frame, ctx = _clinical_table(source, sheet_name, _SUBJECT_COLUMNS, ("subject", "dose"))
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
    fix = "Give each subject one row (merge the rows, or fix the id)."
    check_unique(ctx, out, ["subject"], fix)
    return out.reset_index(drop=True)


def read_lesions(
    source: str | os.PathLike[str] | pd.DataFrame, *, sheet_name: int | str = 0
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
    frame, ctx = _clinical_table(source, sheet_name, _LESION_COLUMNS, required)
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
    return out.reset_index(drop=True)


def read_adverse_events(
    source: str | os.PathLike[str] | pd.DataFrame, *, sheet_name: int | str = 0
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
    frame, ctx = _clinical_table(source, sheet_name, _AE_COLUMNS, required)
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
    return out.reset_index(drop=True)


# ------------------------------------------------------------------------------ writing

_NONMEM_COLUMNS = tuple("ID TIME DV MDV EVID AMT CMT CENS LLOQ ASSAY UNIT USUBJID".split())


def _observation_records(kin: pd.DataFrame) -> pd.DataFrame:
    """One NONMEM record per sample (M3: BLQ rows have CENS=1 and DV=LLOQ)."""
    others = sorted(set(kin["assay"]) - set(_CMT_CODES))
    cmt = {**_CMT_CODES, **{a: i + 3 for i, a in enumerate(others)}}
    records = pd.DataFrame(
        {
            "ID": pd.factorize(kin["subject"])[0] + 1,
            "TIME": kin["time"],
            "DV": kin["value"].mask(kin["blq"], kin["lloq"]),
            "MDV": 0,
            "EVID": 0,
            "AMT": np.nan,
            "CMT": kin["assay"].map(cmt),
            "CENS": kin["blq"].astype(int),
            "LLOQ": kin["lloq"],
            "ASSAY": kin["assay"],
            "UNIT": kin["unit"],
            "USUBJID": kin["subject"],
        }
    )
    for column in OPTIONAL_COLUMNS:
        if column in kin:
            records[column.upper()] = kin[column]
    return records


def _dose_records(obs: pd.DataFrame, subjects: pd.DataFrame) -> pd.DataFrame:
    """One dose record (EVID=1, AMT=dose, TIME=0) per subject with samples."""
    first = obs.drop_duplicates("ID")
    missing = sorted(set(first["USUBJID"]) - set(subjects["subject"]))
    if missing:
        raise DataError(
            f"write_nonmem: {len(missing)} subject(s) with samples have no row in `subjects`, "
            f"first {missing[0]!r}. Add them to the subject table (with their dose)."
        )
    dose = subjects.set_index("subject")["dose"]
    return pd.DataFrame(
        {
            "ID": first["ID"],
            "TIME": 0.0,
            "DV": np.nan,
            "MDV": 1,
            "EVID": 1,
            "AMT": first["USUBJID"].map(dose),
            "CMT": first["CMT"],
            "CENS": 0,
            "LLOQ": np.nan,
            "ASSAY": np.nan,
            "UNIT": np.nan,
            "USUBJID": first["USUBJID"],
        }
    )


def _add_covariates(table: pd.DataFrame, subjects: pd.DataFrame) -> pd.DataFrame:
    """Carry the subjects' baseline columns (not outcomes) as upper-case covariates."""
    by_subject = subjects.set_index("subject")
    covariates = {}
    for column in by_subject.columns:
        name = column.upper()
        if name in _NONMEM_COLUMNS:
            raise DataError(
                f"write_nonmem: subjects column `{column}` would overwrite the NONMEM column "
                f"{name}; rename it."
            )
        if column in _OUTCOME_COLUMNS or name in table.columns:
            continue  # outcomes are not covariates; kinetics columns win
        values = by_subject[column]
        if pd.api.types.is_bool_dtype(values):
            values = values.astype("Int64")
        covariates[name] = table["USUBJID"].map(values)
    return table.assign(**covariates)


def write_nonmem(
    kinetics: pd.DataFrame | str | os.PathLike[str],
    path: str | os.PathLike[str],
    subjects: pd.DataFrame | str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Write a NONMEM/Monolix-ready CSV dataset with M3 censoring flags.

    Parameters
    ----------
    kinetics : pandas.DataFrame, str or os.PathLike
        Kinetics table (anything `read_kinetics` reads; it is validated again).
    path : str or os.PathLike
        CSV file to write (overwritten).
    subjects : pandas.DataFrame, str or os.PathLike, optional
        Subject table (see `read_subjects`). When given, each subject with samples gets a dose
        record and its baseline columns (all but the outcome columns) as covariates.

    Returns
    -------
    pandas.DataFrame
        The table written, with NaN where the file has ``.``.

    Notes
    -----
    Columns: ``ID`` (1..n in the order of `kinetics`), ``TIME`` (days), ``DV``, ``MDV``,
    ``EVID``, ``AMT``, ``CMT`` (1 = qpcr, 2 = flow, other assays 3, 4, ... in alphabetical
    order), ``CENS`` (1 on BLQ rows, whose ``DV`` is the LLOQ and ``MDV`` 0), ``LLOQ``,
    ``ASSAY``, ``UNIT``, ``USUBJID`` (the original id), then the optional kinetics columns
    and covariates in upper case. A value below the LLOQ reported on a BLQ row is not
    written (M3 uses only the limit). Dose records have ``EVID=1, MDV=1, AMT=dose, TIME=0``,
    ``CMT`` of the subject's first assay, and come before observations at time 0. Text
    columns (``ASSAY``, ``UNIT``, ``USUBJID``) must be dropped in NONMEM's ``$INPUT``.
    `read_kinetics` reads the file back to the same kinetics (dose rows go to exclusions).
    """
    kin = read_kinetics(kinetics)
    table = _observation_records(kin)
    if subjects is not None:
        subject_table = read_subjects(subjects)
        table = pd.concat([_dose_records(table, subject_table), table], ignore_index=True)
        order = np.lexsort((-table["EVID"].to_numpy(), table["TIME"].to_numpy(), table["ID"]))
        table = _add_covariates(table.iloc[order], subject_table)
    table = table.reset_index(drop=True)
    table.to_csv(path, index=False, na_rep=".")
    return table
