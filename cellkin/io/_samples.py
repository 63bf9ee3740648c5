"""Reading the rows of a kinetics table: times, subject ids, events, assays, units and levels.

Each reader follows a :class:`~cellkin.io._conventions.ColumnPlan` and converts one field with
the generic converters of :mod:`cellkin._validation`, so that every problem raises a
:class:`~cellkin.errors.DataError` naming the column, the first offending row (1-based data
row) and the fix. :func:`read_samples` assembles the canonical columns of the sample rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from cellkin._validation import (
    Context,
    check_rows,
    map_unique,
    pair,
    require_columns,
    to_bool,
    to_float,
    to_int,
    to_label,
)
from cellkin.errors import OptionError
from cellkin.io._conventions import KINETICS_COLUMNS, OPTIONAL_COLUMNS, SUBJECT_FIX, ColumnPlan
from cellkin.io._units import TIME_UNITS, canonical_unit, known_units_text, time_unit

__all__ = ["read_events", "read_samples", "read_subject_ids", "read_time"]

_PARAMCD_RULES = (
    ("qpcr", ("QPCR", "TRANSGEN", "COPIES", "VCN")),
    ("flow", ("FLOW", "CAR+", "CARPOS", "FACS")),
)
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


# ----------------------------------------------------------------------- row-level reading


def read_time(ctx: Context, frame: pd.DataFrame, plan: ColumnPlan) -> tuple[pd.Series, list[str]]:
    """Return times in days and a note for each unit conversion made."""
    time = to_float(ctx, frame[plan.cols["time"]], plan.name("time"), fix=_TIME_FIX, required=True)
    known = ", ".join(TIME_UNITS)
    if "time_unit" in plan.options:
        if "time_unit" in plan.cols:
            raise ctx.error(
                f"time unit given twice: column `{plan.cols['time_unit']}` and "
                "mapping['time_unit']; drop one."
            )
        unit = time_unit(plan.options["time_unit"])
        if unit is None:
            raise OptionError(
                f"{ctx.label}: mapping['time_unit'] must be one of {known}, "
                f"got {plan.options['time_unit']!r}."
            )
        units = pd.Series([unit] * len(frame), index=frame.index)
        source = "mapping['time_unit']"
    elif "time_unit" in plan.cols:
        name = f"`{plan.cols['time_unit']}`"
        raw = frame[plan.cols["time_unit"]]
        units = to_label(ctx, raw, name, fix="Every row needs the unit of its time.")
        units = map_unique(units, time_unit)
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


def read_subject_ids(ctx: Context, frame: pd.DataFrame, plan: ColumnPlan) -> pd.Series:
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


def read_events(ctx: Context, frame: pd.DataFrame, plan: ColumnPlan) -> tuple[pd.Series, pd.Series]:
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


def _read_assay(ctx: Context, frame: pd.DataFrame, plan: ColumnPlan) -> pd.Series:
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


def _column_or_option(
    ctx: Context, frame: pd.DataFrame, plan: ColumnPlan, key: str, assay: pd.Series
):
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


def _read_units(ctx: Context, frame: pd.DataFrame, plan: ColumnPlan, assay: pd.Series) -> pd.Series:
    raw, name = _column_or_option(ctx, frame, plan, "unit", assay)
    units = to_label(ctx, raw, name, fix="Every sample needs the unit of its value.")
    canonical = map_unique(units, canonical_unit)
    fix = (
        f"Known units (with accepted spellings): {known_units_text()}. Convert the values to "
        "one of them."
    )
    check_rows(ctx, canonical.isna(), raw, name, "unknown unit{s}", fix)
    return canonical


def _read_levels(ctx: Context, frame: pd.DataFrame, plan: ColumnPlan, assay: pd.Series, flag):
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


def read_samples(ctx: Context, frame: pd.DataFrame, plan: ColumnPlan, flag: pd.Series):
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
