"""Kinetics table conventions: which column gives which canonical field.

Three conventions are recognised from the column names (any case): canonical (DESIGN §2.1),
NONMEM (``ID TIME DV ...``) and CDISC ADPC/ADPPK (``USUBJID AFRLT|ARELTM AVAL ...``).
:func:`plan_columns` applies the user's ``mapping`` (column renames and reading options),
chooses the one convention the table matches (refusing ambiguous tables) and returns a
:class:`ColumnPlan` that the row readers of :mod:`cellkin.io._samples` follow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cellkin._validation import Context, match_columns, require_columns
from cellkin.errors import DataError, OptionError
from cellkin.io._mapping import recognise_synonyms
from cellkin.io._notes import Notes

__all__ = [
    "CMT_CODES",
    "EXCLUSION_COLUMNS",
    "KINETICS_COLUMNS",
    "LAYOUT_OPTIONS",
    "OPTIONAL_COLUMNS",
    "SUBJECT_FIX",
    "TIME_SOURCES",
    "ColumnPlan",
    "assay_codes",
    "plan_columns",
    "split_mapping",
]

#: The canonical kinetics columns, in order (DESIGN §2.1).
KINETICS_COLUMNS = ("subject", "time", "value", "assay", "unit", "lloq", "blq")
#: Optional canonical columns, kept after the canonical ones when present.
OPTIONAL_COLUMNS = ("dose", "dose_unit", "dose_level", "visit", "nominal_time", "tissue")
#: Columns that give the time of a sample another way (converted to ``time``).
TIME_SOURCES = ("time_hours", "date", "infusion_date", "cd3_count")
#: Columns of the exclusions table.
EXCLUSION_COLUMNS = ("source_row", "subject", "time", "reason")
#: NONMEM compartment numbers of the two standard assays (others get 3, 4, ... A–Z).
CMT_CODES = {"qpcr": 1, "flow": 2}

_CONVENTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "canonical": {"subject": ("subject",), "time": ("time",), "value": ("value",),
                  "assay": ("assay",), "unit": ("unit",), "lloq": ("lloq",), "blq": ("blq",)},
    "nonmem": {"subject": ("id",), "time": ("time",), "value": ("dv",), "label": ("usubjid",),
               "assay": ("assay",), "unit": ("unit",), "lloq": ("lloq",),
               "blq": ("cens", "blq"), "cmt": ("cmt",), "dvid": ("dvid",), "amt": ("amt",)},
    "cdisc": {"subject": ("usubjid",), "time": ("afrlt", "areltm"), "value": ("aval",),
              "assay": ("paramcd",), "unit": ("avalu",), "lloq": ("alloq", "lloq", "pclloq"),
              "blq": ("blqfl", "blqfn")},
}  # fmt: skip
_SHARED = {
    "evid": ("evid",),
    "mdv": ("mdv",),
    **{c: (c,) for c in OPTIONAL_COLUMNS},
    **{c: (c,) for c in TIME_SOURCES},
}
_CORE = ("subject", "time", "value")
_REQUIRED = {
    "canonical": _CORE,
    "nonmem": ("ID", "TIME", "DV"),
    "cdisc": ("USUBJID", "AFRLT", "AVAL"),
}
_SIGNATURES = (
    "canonical (subject, time, value), NONMEM (ID, TIME, DV), "
    "CDISC (USUBJID, AFRLT or ARELTM, AVAL)"
)
_RENAME_HINT = (
    "Rename columns in the file or with mapping={'YourColumn': 'subject', ...}. "
    f"Recognised conventions: {_SIGNATURES}."
)
_OPTIONS = (
    "convention",
    "time_unit",
    "assay",
    "unit",
    "lloq",
    "cmt",
    "dvid",
    "paramcd",
    "date_format",
    "visits",
)
#: Mapping keys that describe the file's layout (read by :mod:`cellkin.io._source`).
LAYOUT_OPTIONS = ("sep", "decimal", "thousands", "skiprows", "sheet")
#: Other ways a canonical table can give the time of its samples.
_TIMELESS = frozenset({"time_hours", "date", "visit", "nominal_time"})
_TARGETS = frozenset(
    {*KINETICS_COLUMNS, *OPTIONAL_COLUMNS, *_SHARED}
    | {alias for fields in _CONVENTIONS.values() for names in fields.values() for alias in names}
)
SUBJECT_FIX = "Every row needs a subject id; fill it in or delete rows that are not samples."


def assay_codes(assays: Any) -> dict[str, int]:
    """Compartment number of each assay: qpcr 1, flow 2, the others 3, 4, ... (A–Z)."""
    others = sorted(set(assays) - set(CMT_CODES))
    return {**CMT_CODES, **{a: i + 3 for i, a in enumerate(others)}}


@dataclass(frozen=True)
class ColumnPlan:
    """How the columns of one kinetics table are read (after renaming).

    Attributes
    ----------
    convention : str
        ``"canonical"``, ``"nonmem"`` or ``"cdisc"``.
    renames : dict
        Column renames taken from ``mapping`` (applied before planning).
    options : dict
        Reading options taken from ``mapping`` (``time_unit``, ``assay``, ``cmt``, ...).
    cols : dict
        Canonical field -> the column of the (renamed) table that gives it.
    recognised : dict
        Renames of columns recognised by their common names (:mod:`cellkin.io._mapping`).
    """

    convention: str
    renames: dict[str, str]
    options: dict[str, Any]
    cols: dict[str, str] = field(default_factory=dict)
    recognised: dict[str, str] = field(default_factory=dict)

    def original(self, key: str) -> str:
        """The name the column that gives `key` has in the file (before any rename)."""
        col = self.cols[key]
        for renames in (self.recognised, self.renames):
            col = next((old for old, new in renames.items() if new == col), col)
        return col

    def name(self, key: str) -> str:
        """The column as cited in messages, e.g. ```AFRLT` (read as `time`)``."""
        col = self.original(key)
        return f"`{col}`" if col.casefold() == key else f"`{col}` (read as `{key}`)"


def split_mapping(ctx: Context, columns: list[str], mapping: Any) -> tuple[dict, dict]:
    """Split `mapping` into column renames and reading options, checking both."""
    if mapping is None:
        return {}, {}
    if not isinstance(mapping, Mapping):
        raise TypeError(f"mapping must be a dict, not {type(mapping).__name__}")
    renames, options = {}, {}
    for key, target in mapping.items():
        if key in columns and isinstance(target, str) and target.casefold() in _TARGETS:
            renames[key] = target
        elif key in _OPTIONS or key in LAYOUT_OPTIONS:
            options[key] = target
        elif key in columns:
            raise ctx.error(
                f"mapping renames column `{key}` to {target!r}, which cellkin does not read; "
                f"use one of {', '.join(KINETICS_COLUMNS + OPTIONAL_COLUMNS)}."
            )
        else:
            raise ctx.error(
                f"mapping key {key!r} is neither a column of the table nor an option "
                f"({', '.join(_OPTIONS + LAYOUT_OPTIONS)}). Columns: {', '.join(columns)}."
            )
    clash = [(old, new) for old, new in renames.items() if new in columns and new != old]
    if clash:
        raise ctx.error(
            f"mapping renames `{clash[0][0]}` to `{clash[0][1]}`, but the table already has a "
            f"column `{clash[0][1]}`; drop or rename that column first."
        )
    if "convention" in options:
        options["convention"] = str(options["convention"]).strip().casefold()
    if options.get("convention", "canonical") not in _CONVENTIONS:
        raise OptionError(
            f"{ctx.label}: mapping['convention'] must be one of {', '.join(_CONVENTIONS)}, "
            f"got {mapping['convention']!r}."
        )
    return renames, options


def _ambiguous(ctx: Context, what: str) -> DataError:
    return ctx.error(
        f"ambiguous column mapping: {what}. Pass mapping={{'convention': 'canonical'|'nonmem'|"
        "'cdisc'}, or rename columns with mapping={'YourColumn': 'subject', ...}."
    )


def _choose_convention(ctx: Context, columns: list[str], options: dict) -> str:
    """Return the one convention whose subject/time/value columns the table has."""
    found = {
        conv: {f: match_columns(ctx, columns, set(fields[f])) for f in _CORE}
        for conv, fields in _CONVENTIONS.items()
    }
    if "convention" in options:
        return options["convention"]
    timeless = bool(match_columns(ctx, columns, _TIMELESS))
    complete = [
        conv
        for conv, hits in found.items()
        if hits["subject"]
        and hits["value"]
        and (hits["time"] or (conv == "canonical" and timeless))
    ]
    if len(complete) > 1:
        listed = "; ".join(
            f"{conv} ({', '.join(cols[0] for cols in found[conv].values())})" for conv in complete
        )
        raise _ambiguous(ctx, f"the table matches several conventions: {listed}")
    if not complete:
        best = max(_CONVENTIONS, key=lambda conv: sum(map(bool, found[conv].values())))
        required = _REQUIRED[best][::2] if best == "canonical" and timeless else _REQUIRED[best]
        require_columns(ctx, columns, required, _RENAME_HINT)
    chosen = complete[0]
    for key in _CORE:
        rivals = {
            col
            for fields in _CONVENTIONS.values()
            for col in match_columns(ctx, columns, set(fields[key]))
        }
        if chosen == "nonmem" and key == "subject":
            rivals -= set(match_columns(ctx, columns, {"usubjid"}))
        if len(rivals) > 1:
            listed = " and ".join(f"`{c}`" for c in sorted(rivals))
            raise _ambiguous(ctx, f"columns {listed} could each be `{key}`")
    return chosen


def _standard(ctx: Context, columns: list[str]) -> bool:
    """Whether the table is a complete NONMEM or CDISC table (then no synonym is used)."""
    for conv in ("nonmem", "cdisc"):
        fields = _CONVENTIONS[conv]
        if all(match_columns(ctx, columns, set(fields[key])) for key in _CORE):
            return True
    return False


def plan_columns(
    ctx: Context,
    columns: list[str],
    renames: dict[str, str],
    options: dict[str, Any],
    notes: Notes,
    n_rows: int,
) -> ColumnPlan:
    """Decide which column gives which canonical field (after the mapping's renames).

    Columns named as labs name them (``Patient ID``, ``Result``, ``Units``, ...) are recognised
    when the table is not a complete NONMEM or CDISC table (:mod:`cellkin.io._mapping`).

    Raises
    ------
    DataError
        When a required column is missing, a rename clashes or the table is ambiguous.
    OptionError
        When ``mapping['convention']`` is not a known convention.
    """
    recognised = {}
    if options.get("convention", "canonical") == "canonical" and not _standard(ctx, columns):
        taken = {c.casefold() for c in columns} | {
            key for key in ("assay", "unit", "lloq", "time") if key in options
        }
        if "time_unit" in options:
            taken.add("time_hours")
        recognised = recognise_synonyms(ctx, columns, taken, notes, n_rows)
        columns = [recognised.get(col, col) for col in columns]
    plan = ColumnPlan(_choose_convention(ctx, columns, options), renames, options)
    plan.recognised.update(recognised)
    for key, aliases in {**_CONVENTIONS[plan.convention], **_SHARED}.items():
        hits = match_columns(ctx, columns, set(aliases))
        if len(hits) > 1 and key != "time":
            raise _ambiguous(ctx, f"columns {' and '.join(hits)} could each be `{key}`")
        if hits:
            plan.cols[key] = min(hits, key=lambda col: aliases.index(col.casefold()))
    core = ("subject", "value") if plan.convention == "canonical" else _CORE
    missing = [
        name
        for key, name in zip(_CORE, _REQUIRED[plan.convention], strict=True)
        if key in core and key not in plan.cols
    ]
    require_columns(ctx, columns, missing, _RENAME_HINT)
    if "time" in plan.cols:
        paired = f"{plan.cols['time']}u".casefold()
        hits = match_columns(ctx, columns, {paired, "rrltu", "time_unit", "timeu"})
        if hits:
            plan.cols["time_unit"] = min(hits, key=lambda col: col.casefold() != paired)
    return plan
