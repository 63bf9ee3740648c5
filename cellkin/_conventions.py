"""Kinetics table conventions (private): which column gives which canonical field
(canonical, NONMEM or CDISC ADPC names), reading the rows and checking the samples.

Built on the generic converters of :mod:`cellkin._validation`; used by :mod:`cellkin.io`.
Row numbers are 1-based data rows, as there.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from cellkin._validation import (
    Context,
    check_rows,
    map_unique,
    match_columns,
    pair,
    require_columns,
    show,
    to_bool,
    to_float,
    to_int,
    to_label,
)
from cellkin.errors import DataError, DataWarning

__all__ = [
    "KINETICS_COLUMNS",
    "KNOWN_UNITS",
    "OPTIONAL_COLUMNS",
    "SUBJECT_FIX",
    "check_duplicates",
    "check_units",
    "exclusions_frame",
    "plan_columns",
    "read_events",
    "read_samples",
    "read_subject_ids",
    "read_time",
]


# ------------------------------------------------------------------- kinetics conventions

KINETICS_COLUMNS = ("subject", "time", "value", "assay", "unit", "lloq", "blq")
OPTIONAL_COLUMNS = ("dose", "dose_unit", "dose_level", "visit", "tissue")
EXCLUSION_COLUMNS = ("source_row", "subject", "time", "reason")

_UNIT_ALIASES = {
    "copies/ug": ("copies/µg", "copies/μg", "copies/ug gDNA", "copies/µg gDNA", "copies/μg gDNA",
                  "copies/ug DNA", "copies/µg DNA", "copies/ug genomic DNA",
                  "copies/µg genomic DNA"),
    "cells/uL": ("cells/µL", "cells/μL", "CAR+ cells/uL", "CAR+ cells/µL", "cells/mm3",
                 "cells/mm³"),
    "copies/uL": ("copies/µL", "copies/μL"),
    "cells/mL": ("CAR+ cells/mL",),
    "%CD3": ("% CD3", "%CD3+", "% of CD3", "% of CD3+"),
    "%CD8": ("% CD8", "%CD8+", "% of CD8", "% of CD8+"),
    "%lymphocytes": ("% lymphocytes", "% of lymphocytes", "%lymph"),
}  # fmt: skip
#: Unit spellings cellkin reads (alias -> canonical unit); matching ignores case and blanks.
KNOWN_UNITS: Mapping[str, str] = MappingProxyType(
    {alias: unit for unit, aliases in _UNIT_ALIASES.items() for alias in (unit, *aliases)}
)
_UNIT_LOOKUP = {"".join(a.casefold().split()): u for a, u in KNOWN_UNITS.items()}
_TIME_UNITS = {
    spelling: (name, divisor)
    for name, divisor, spellings in (
        ("days", 1.0, ("d", "day", "days")),
        ("hours", 24.0, ("h", "hr", "hrs", "hour", "hours")),
        ("minutes", 1440.0, ("min", "minutes")),
        ("weeks", 1 / 7, ("w", "wk", "week", "weeks")),
    )
    for spelling in spellings
}
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
_SHARED = {"evid": ("evid",), "mdv": ("mdv",), **{c: (c,) for c in OPTIONAL_COLUMNS}}
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
_OPTIONS = ("convention", "time_unit", "assay", "unit", "lloq", "cmt", "dvid", "paramcd")
_TARGETS = frozenset(
    {*KINETICS_COLUMNS, *OPTIONAL_COLUMNS, *_SHARED}
    | {alias for fields in _CONVENTIONS.values() for names in fields.values() for alias in names}
)
_PARAMCD_RULES = (
    ("qpcr", ("QPCR", "TRANSGEN", "COPIES", "VCN")),
    ("flow", ("FLOW", "CAR+", "CARPOS", "FACS")),
)
SUBJECT_FIX = "Every row needs a subject id; fill it in or delete rows that are not samples."
_TIME_FIX = (
    "Times must be numbers of days since infusion (day 0, negative before it); convert visit "
    "labels such as 'D7' or dates to days."
)
_VALUE_FIX = (
    "Values must be numbers; for a sample below the LLOQ leave the value empty and set the BLQ "
    "flag (text such as '<LLOQ' is not read)."
)
_LLOQ_FIX = (
    "Every sample needs the lower limit of quantification of its assay, as a number in the "
    "unit of the value; take it from the assay validation report."
)


@dataclass(frozen=True)
class _Plan:
    """How the columns of one kinetics table are read (after renaming)."""

    convention: str
    renames: dict[str, str]
    options: dict[str, Any]
    cols: dict[str, str] = field(default_factory=dict)

    def name(self, key: str) -> str:
        """The column as cited in messages, e.g. ```AFRLT` (read as `time`)``."""
        col = self.cols[key]
        return f"`{col}`" if col.casefold() == key else f"`{col}` (read as `{key}`)"


# ------------------------------------------------------------------------ column mapping


def _split_mapping(ctx: Context, columns: list[str], mapping: Any) -> tuple[dict, dict]:
    """Split `mapping` into column renames and reading options, checking both."""
    if mapping is None:
        return {}, {}
    if not isinstance(mapping, Mapping):
        raise TypeError(f"mapping must be a dict, not {type(mapping).__name__}")
    renames, options = {}, {}
    for key, target in mapping.items():
        if key in columns and isinstance(target, str) and target.casefold() in _TARGETS:
            renames[key] = target
        elif key in _OPTIONS:
            options[key] = target
        elif key in columns:
            raise ctx.error(
                f"mapping renames column `{key}` to {target!r}, which cellkin does not read; "
                f"use one of {', '.join(KINETICS_COLUMNS + OPTIONAL_COLUMNS)}."
            )
        else:
            raise ctx.error(
                f"mapping key {key!r} is neither a column of the table nor an option "
                f"({', '.join(_OPTIONS)}). Columns: {', '.join(columns)}."
            )
    if "convention" in options:
        options["convention"] = str(options["convention"]).strip().casefold()
    if options.get("convention", "canonical") not in _CONVENTIONS:
        raise ctx.error(f"mapping['convention'] must be one of {', '.join(_CONVENTIONS)}.")
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
    complete = [conv for conv, hits in found.items() if all(hits.values())]
    if len(complete) > 1:
        listed = "; ".join(
            f"{conv} ({', '.join(cols[0] for cols in found[conv].values())})" for conv in complete
        )
        raise _ambiguous(ctx, f"the table matches several conventions: {listed}")
    if not complete:
        best = max(_CONVENTIONS, key=lambda conv: sum(map(bool, found[conv].values())))
        require_columns(ctx, columns, _REQUIRED[best], _RENAME_HINT)
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


def plan_columns(ctx: Context, columns: list[str], mapping: Any) -> _Plan:
    """Decide which column gives which canonical field."""
    renames, options = _split_mapping(ctx, columns, mapping)
    clash = [(old, new) for old, new in renames.items() if new in columns and new != old]
    if clash:
        raise ctx.error(
            f"mapping renames `{clash[0][0]}` to `{clash[0][1]}`, but the table already has a "
            f"column `{clash[0][1]}`; drop or rename that column first."
        )
    columns = [renames.get(col, col) for col in columns]
    plan = _Plan(_choose_convention(ctx, columns, options), renames, options)
    for key, aliases in {**_CONVENTIONS[plan.convention], **_SHARED}.items():
        hits = match_columns(ctx, columns, set(aliases))
        if len(hits) > 1 and key != "time":
            raise _ambiguous(ctx, f"columns {' and '.join(hits)} could each be `{key}`")
        if hits:
            plan.cols[key] = min(hits, key=lambda col: aliases.index(col.casefold()))
    missing = [
        name
        for key, name in zip(_CORE, _REQUIRED[plan.convention], strict=True)
        if key not in plan.cols
    ]
    require_columns(ctx, columns, missing, _RENAME_HINT)
    paired = f"{plan.cols['time']}u".casefold()
    hits = match_columns(ctx, columns, {paired, "rrltu", "time_unit", "timeu"})
    if hits:
        plan.cols["time_unit"] = min(hits, key=lambda col: col.casefold() != paired)
    return plan


# ----------------------------------------------------------------------- row-level reading


def read_time(ctx: Context, frame: pd.DataFrame, plan: _Plan) -> tuple[pd.Series, list[str]]:
    """Return times in days and a note for each unit conversion made."""
    time = to_float(ctx, frame[plan.cols["time"]], plan.name("time"), fix=_TIME_FIX, required=True)
    known = ", ".join(_TIME_UNITS)
    if "time_unit" in plan.options:
        if "time_unit" in plan.cols:
            raise ctx.error(
                f"time unit given twice: column `{plan.cols['time_unit']}` and "
                "mapping['time_unit']; drop one."
            )
        unit = _TIME_UNITS.get(str(plan.options["time_unit"]).strip().casefold())
        if unit is None:
            raise ctx.error(f"mapping['time_unit'] must be one of {known}.")
        units = pd.Series([unit] * len(frame), index=frame.index)
        source = "mapping['time_unit']"
    elif "time_unit" in plan.cols:
        name = f"`{plan.cols['time_unit']}`"
        raw = frame[plan.cols["time_unit"]]
        units = to_label(ctx, raw, name, fix="Every row needs the unit of its time.")
        units = map_unique(units, lambda u: _TIME_UNITS.get(u.casefold()))
        check_rows(ctx, units.isna(), raw, name, "unknown time unit{s}", f"Use one of {known}.")
        source = f"column {name}"
    elif plan.convention == "cdisc":
        raise ctx.error(
            f"the unit of column {plan.name('time')} is unknown; ADaM relative times are usually "
            f"in hours. Add an `{plan.cols['time']}U` column or pass mapping={{'time_unit': 'h'}} "
            "(or 'd' for days)."
        )
    else:
        return time, []
    divisor = map_unique(units, lambda u: u[1]).astype(float)
    notes = [
        f"`{plan.cols['time']}` converted from {u} to days (divided by {d:g}; unit from {source})"
        for u, d in sorted({u for u in units if u[0] != "days"})
    ]
    return time / divisor, notes


def read_subject_ids(ctx: Context, frame: pd.DataFrame, plan: _Plan) -> pd.Series:
    """Subject ids; for NONMEM, USUBJID (when present) gives the id of each ID."""
    ids = to_label(ctx, frame[plan.cols["subject"]], plan.name("subject"), fix=SUBJECT_FIX)
    if plan.convention != "nonmem" or "label" not in plan.cols:
        return ids
    name = f"`{plan.cols['label']}`"
    labels = to_label(ctx, frame[plan.cols["label"]], name, fix=SUBJECT_FIX)
    pairs = pd.DataFrame({"id": ids, "label": labels})
    bad = (labels != pairs.groupby("id")["label"].transform("first")) | (
        ids != pairs.groupby("label")["id"].transform("first")
    )
    shown = pair(ids, labels, ("ID", "USUBJID"))
    fix = "Each ID must carry one USUBJID and each USUBJID one ID."
    check_rows(ctx, bad, shown, name, "row{s} whose ID and USUBJID disagree", fix)
    return labels


_EVENT_REASONS = {0: "", 1: "dose record (EVID=1)", 2: "other-type event (EVID=2)",
                  3: "reset event (EVID=3)", 4: "reset and dose (EVID=4)"}  # fmt: skip


def read_events(ctx: Context, frame: pd.DataFrame, plan: _Plan) -> tuple[pd.Series, pd.Series]:
    """Return the BLQ flag (nullable) and the exclusion reason of non-sample rows ('' if kept)."""
    flag = pd.Series(pd.NA, index=frame.index, dtype="boolean")
    if "blq" in plan.cols:
        raw = frame[plan.cols["blq"]]
        minus = map_unique(raw, lambda v: _code_key(v) == -1, missing=False).astype(bool)
        check_rows(
            ctx,
            minus,
            raw,
            plan.name("blq"),
            "right-censored row{s} (-1)",
            "cellkin has no upper limit of quantification: enter the diluted re-assay "
            "value instead, or remove the row.",
        )
        fix = "The BLQ flag says whether a sample is below the LLOQ."
        flag = to_bool(ctx, raw, plan.name("blq"), fix=fix).astype("boolean")
    evid = pd.Series(0, index=frame.index)
    if "evid" in plan.cols:
        fix = "EVID is 0 (observation), 1 (dose), 2 (other), 3 (reset) or 4 (reset and dose)."
        evid = to_int(
            ctx, frame[plan.cols["evid"]], plan.name("evid"), 0, 4, fix=fix, required=True
        )
    mdv = (evid != 0).astype(int)
    if "mdv" in plan.cols:
        fix = "MDV is 1 when the row has no observation and 0 otherwise."
        mdv = to_int(ctx, frame[plan.cols["mdv"]], plan.name("mdv"), 0, 1, fix=fix, required=True)
    reason = evid.map(_EVENT_REASONS).astype(object)
    no_obs = (evid == 0) & (mdv == 1) & ~flag.fillna(False)
    return flag, reason.mask(no_obs.astype(bool), "no observation (MDV=1)")


# --------------------------------------------------------------------- sample-level reading


def _code_key(code: Any) -> Any:
    try:
        return float(code)
    except (TypeError, ValueError):
        return str(code).strip().casefold()


def _coded_assay(ctx: Context, values: pd.Series, name: str, codes: Mapping | None) -> pd.Series:
    """Assay from a CMT/DVID column: names as they are, numbers through `codes`."""
    labels = to_label(ctx, values, name, fix="Every sample row needs its compartment/endpoint.")
    keys = map_unique(labels, _code_key)
    if codes is None:
        numeric = map_unique(keys, lambda k: isinstance(k, float), missing=False).astype(bool)
        fix = (
            "Say which assay each number is, e.g. mapping={'cmt': {1: 'qpcr', 2: 'flow'}} "
            "(or {'dvid': ...}), or add an ASSAY column with the assay names."
        )
        check_rows(ctx, numeric, values, name, "numeric code{s} with no assay mapping", fix)
        return map_unique(labels, str.casefold)
    lookup = {_code_key(k): str(v).strip().casefold() for k, v in codes.items()}
    assay = keys.map(lookup)
    fix = f"Add the missing codes to the mapping (it has {', '.join(map(repr, codes))})."
    check_rows(ctx, assay.isna(), values, name, "code{s} missing from the mapping", fix)
    return assay


def _read_assay(ctx: Context, frame: pd.DataFrame, plan: _Plan) -> pd.Series:
    """Assay names (lower case) from the column or option each convention uses."""
    opts, cols = plan.options, plan.cols
    coded = [key for key in ("dvid", "cmt") if key in opts]
    if "assay" in opts or coded:
        given = "assay" if "assay" in opts else coded[0]
        if "assay" in cols or len(coded) + ("assay" in opts) > 1:
            raise ctx.error(f"mapping['{given}'] conflicts with another assay source; keep one.")
        if given == "assay":
            return pd.Series(str(opts["assay"]).strip().casefold(), index=frame.index)
        if given not in cols:
            raise ctx.error(f"mapping['{given}'] is given but the table has no {given.upper()}.")
        return _coded_assay(ctx, frame[cols[given]], plan.name(given), opts[given])
    if "assay" in cols:
        labels = to_label(ctx, frame[cols["assay"]], plan.name("assay"), fix="Name the assay.")
        if plan.convention == "cdisc":
            return map_unique(labels, partial(_paramcd_assay, opts.get("paramcd", {})))
        return map_unique(labels, str.casefold)
    coded = [key for key in ("dvid", "cmt") if key in cols]
    if not coded:  # no source of assay names at all: this raises
        wanted = {"canonical": "assay", "nonmem": "ASSAY", "cdisc": "PARAMCD"}[plan.convention]
        hint = "Add the column, or for a single-assay table pass mapping={'assay': 'qpcr'}."
        require_columns(ctx, list(frame.columns), [wanted], hint)
    return _coded_assay(ctx, frame[cols[coded[0]]], plan.name(coded[0]), None)


def _paramcd_assay(overrides: Mapping[str, str], code: str) -> str:
    """Map a PARAMCD to an assay: QPCR/TRANSGEN/COPIES -> qpcr, FLOW/CAR+ -> flow."""
    folded = {str(k).casefold(): str(v).casefold() for k, v in overrides.items()}
    if code.casefold() in folded:
        return folded[code.casefold()]
    for assay, needles in _PARAMCD_RULES:
        if any(needle in code.upper() for needle in needles):
            return assay
    return code.casefold()


def _column_or_option(ctx: Context, frame: pd.DataFrame, plan: _Plan, key: str, assay: pd.Series):
    """Raw values of `key` from its column, or from mapping[key] (a scalar or per-assay dict)."""
    if key not in plan.options:
        if key not in plan.cols:
            wanted = key if plan.convention == "canonical" else key.upper()
            wanted = "AVALU" if (plan.convention, key) == ("cdisc", "unit") else wanted
            hint = f"Add the column, or pass mapping={{'{key}': ...}} (a value, or one per assay)."
            require_columns(ctx, list(frame.columns), [wanted], hint)
        return frame[plan.cols[key]], plan.name(key)
    if key in plan.cols:
        raise ctx.error(
            f"`{key}` given twice: column `{plan.cols[key]}` and mapping['{key}']; drop one."
        )
    given = plan.options[key]
    if not isinstance(given, Mapping):
        return pd.Series([given] * len(frame), index=frame.index, dtype=object), f"mapping['{key}']"
    per_assay = {str(k).casefold(): v for k, v in given.items()}
    values = assay.map(lambda a: per_assay.get(a, np.nan))
    problem = f"value{{s}} missing from mapping['{key}']"
    check_rows(ctx, values.isna(), assay, "`assay`", problem, "Add every assay to the mapping.")
    return values, f"mapping['{key}']"


def _read_units(ctx: Context, frame: pd.DataFrame, plan: _Plan, assay: pd.Series) -> pd.Series:
    raw, name = _column_or_option(ctx, frame, plan, "unit", assay)
    units = to_label(ctx, raw, name, fix="Every sample needs the unit of its value.")
    canonical = map_unique(units, lambda u: _UNIT_LOOKUP.get("".join(str(u).casefold().split())))
    listed = "; ".join(f"{u} ({', '.join(a)})" for u, a in _UNIT_ALIASES.items())
    fix = f"Known units (with accepted spellings): {listed}. Convert the values to one of them."
    check_rows(ctx, canonical.isna(), raw, name, "unknown unit{s}", fix)
    return canonical


def _read_levels(ctx: Context, frame: pd.DataFrame, plan: _Plan, assay: pd.Series, flag):
    """Return value, lloq and blq, checking that the BLQ flag agrees with value and LLOQ."""
    value = to_float(
        ctx,
        frame[plan.cols["value"]],
        plan.name("value"),
        fix=_VALUE_FIX,
        minimum=0,
        minimum_fix="Levels cannot be negative; check the sign.",
    )
    raw, name = _column_or_option(ctx, frame, plan, "lloq", assay)
    lloq = to_float(ctx, raw, name, fix=_LLOQ_FIX, required=True, minimum=0)
    below = value < lloq
    blq = flag.fillna(below).astype(bool)  # no value and no flag: missing, not BLQ (DESIGN 5.1)
    flag_name = plan.name("blq") if "blq" in plan.cols else "`blq`"
    shown = pair(value, lloq, ("value", "lloq"))
    if plan.convention == "nonmem":
        fix = "On a censored row DV holds the LLOQ (or less); check CENS/BLQ and DV."
        check_rows(
            ctx,
            blq & (value > lloq),
            shown,
            flag_name,
            "censored row{s} with DV > LLOQ",
            fix,
        )
        value = value.mask(blq)
    fix = "Correct the flag, the value or the LLOQ so that BLQ means value < LLOQ."
    check_rows(
        ctx,
        blq & (value >= lloq),
        shown,
        flag_name,
        "row{s} flagged BLQ with value ≥ LLOQ",
        fix + " If the value holds the LLOQ on BLQ rows, leave it empty.",
    )
    check_rows(
        ctx,
        ~blq & below,
        shown,
        flag_name,
        "row{s} not flagged BLQ with value < LLOQ",
        fix,
    )
    return value, lloq, blq


def read_samples(ctx: Context, frame: pd.DataFrame, plan: _Plan, flag: pd.Series):
    """Build the canonical columns (plus optional and extra columns) of the sample rows."""
    assay = _read_assay(ctx, frame, plan)
    value, lloq, blq = _read_levels(ctx, frame, plan, assay, flag.loc[frame.index])
    kin = pd.DataFrame(
        {
            "value": value,
            "assay": assay,
            "unit": _read_units(ctx, frame, plan, assay),
            "lloq": lloq,
            "blq": blq,
        }
    )
    for key in OPTIONAL_COLUMNS:
        if key in plan.cols:
            kin[key] = frame[plan.cols[key]]
    if "dose" in kin:
        fix = "Doses must be non-negative numbers."
        kin["dose"] = to_float(ctx, kin["dose"], plan.name("dose"), fix=fix, minimum=0)
    if "tissue" in kin:  # part of the sample key, so it cannot be empty
        fix = "Name the tissue of every sample (e.g. blood), or drop the column if all are blood."
        kin["tissue"] = to_label(ctx, kin["tissue"], plan.name("tissue"), fix=fix)
    used = set(plan.cols.values())
    extras = [col for col in frame.columns if col not in used]
    clash = [col for col in extras if col in KINETICS_COLUMNS + OPTIONAL_COLUMNS]
    if clash:
        raise ctx.error(f"column `{clash[0]}` is not read as `{clash[0]}`; rename or drop it.")
    return pd.concat([kin, frame[extras]], axis=1)


# ------------------------------------------------------------------------ table-level checks


def check_units(ctx: Context, kin: pd.DataFrame, keys: list[str]) -> None:
    """One unit per subject × assay (× tissue): units are metadata, never mixed."""
    first = kin.groupby(keys, sort=False, dropna=False)["unit"].transform("first")
    bad = kin["unit"] != first
    if not bad.any():
        return
    row = bad.index[bad.to_numpy()][0]
    same = (kin[keys] == kin.loc[row, keys]).all(axis=1)
    row0 = same.index[same.to_numpy()][0]
    raise ctx.error(
        f"subject {show(kin.at[row, 'subject'])}, assay {show(kin.at[row, 'assay'])}: column "
        f"`unit` mixes {show(kin.at[row0, 'unit'])} (row {row0}) and "
        f"{show(kin.at[row, 'unit'])} (row {row}); {int(bad.sum())} row(s) differ from the first "
        "unit. Use one unit per subject and assay: convert the values, or give the other "
        "measurement its own assay name."
    )


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
        stacklevel=3,
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
