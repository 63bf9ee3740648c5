"""Reading the rows of a kinetics table: subject ids, events, assays and units.

Times are read by :mod:`cellkin.io._timing`, values, LLOQs and BLQ flags by
:mod:`cellkin.io._levels`.

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
    to_float,
    to_int,
    to_label,
)
from cellkin.io._conventions import KINETICS_COLUMNS, OPTIONAL_COLUMNS, SUBJECT_FIX, ColumnPlan
from cellkin.io._levels import read_levels
from cellkin.io._notes import Notes
from cellkin.io._units import canonical_unit, known_units_text
from cellkin.io._values import parse_qualifier

__all__ = ["read_events", "read_samples", "read_subject_ids"]

_PARAMCD_RULES = (
    ("qpcr", ("QPCR", "TRANSGEN", "COPIES", "VCN")),
    ("flow", ("FLOW", "CAR+", "CARPOS", "FACS")),
)
# ----------------------------------------------------------------------- row-level reading


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
        flag = parse_qualifier(ctx, raw, plan.name("blq"))
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
    ctx: Context,
    frame: pd.DataFrame,
    plan: ColumnPlan,
    key: str,
    assay: pd.Series,
    optional: bool = False,
) -> tuple[pd.Series, str] | None:
    """Raw values of `key` from its column, or from mapping[key] (a scalar or per-assay dict);
    None when neither exists and `optional`."""
    if key not in plan.options:
        if key not in plan.cols and optional:
            return None
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


def _read_units(
    ctx: Context, frame: pd.DataFrame, plan: ColumnPlan, assay: pd.Series, notes: Notes
) -> pd.Series:
    raw, name = _column_or_option(ctx, frame, plan, "unit", assay)  # type: ignore[misc]
    units = to_label(ctx, raw, name, fix="Every sample needs the unit of its value.")
    canonical = map_unique(units, canonical_unit)
    fix = (
        f"Known units (with accepted spellings): {known_units_text()}. Convert the values to "
        "one of them."
    )
    check_rows(ctx, canonical.isna(), raw, name, "unknown unit{s}", fix)
    respelled = units != canonical
    if respelled.any():
        pairs = sorted({f"{u!r} as {c}" for u, c in zip(units[respelled], canonical[respelled],
                                                         strict=True)})  # fmt: skip
        column = plan.original("unit") if "unit" in plan.cols else "unit"
        notes.add("units", column, int(respelled.sum()),
                  f"unit spellings read: {', '.join(pairs[:5])}")  # fmt: skip
    return canonical


def read_samples(
    ctx: Context,
    frame: pd.DataFrame,
    plan: ColumnPlan,
    flag: pd.Series,
    decimal: str,
    notes: Notes,
) -> pd.DataFrame:
    """Build the canonical columns (plus optional and extra columns) of the sample rows."""
    assay = _read_assay(ctx, frame, plan)
    lloq_source = _column_or_option(ctx, frame, plan, "lloq", assay, optional=True)
    value, lloq, blq = read_levels(
        ctx, frame, plan, flag.loc[frame.index], lloq_source, assay, decimal, notes
    )
    kin = pd.DataFrame(
        {
            "value": value,
            "assay": assay,
            "unit": _read_units(ctx, frame, plan, assay, notes),
            "lloq": lloq,
            "blq": blq,
        }
    )
    for key in (*OPTIONAL_COLUMNS, "cd3_count"):
        if key in plan.cols and key != "nominal_time":
            kin[key] = frame[plan.cols[key]]
    if "dose" in kin:
        fix = "Doses must be non-negative numbers."
        kin["dose"] = to_float(ctx, kin["dose"], plan.name("dose"), fix=fix, minimum=0)
    if "cd3_count" in kin:
        fix = "CD3+ counts are numbers of cells/uL."
        kin["cd3_count"] = to_float(ctx, kin["cd3_count"], plan.name("cd3_count"), fix=fix,
                                    minimum=0)  # fmt: skip
    if "tissue" in kin:  # part of the sample key, so it cannot be empty
        fix = "Name the tissue of every sample (e.g. blood), or drop the column if all are blood."
        kin["tissue"] = to_label(ctx, kin["tissue"], plan.name("tissue"), fix=fix)
    used = set(plan.cols.values())
    extras = [col for col in frame.columns if col not in used]
    clash = [col for col in extras if col in KINETICS_COLUMNS + OPTIONAL_COLUMNS]
    if clash:
        raise ctx.error(f"column `{clash[0]}` is not read as `{clash[0]}`; rename or drop it.")
    return pd.concat([kin, frame[extras]], axis=1)
