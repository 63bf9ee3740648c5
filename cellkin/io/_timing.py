"""The time of each sample, in days since infusion, however the table gives it.

:func:`read_times` returns the sample times (days) and the nominal days of a kinetics table,
from the first of these that the table has:

1. a ``time`` column: days, or another unit from a ``time_unit`` column or
   ``mapping={"time_unit": "h"}`` (NONMEM ``TIME`` is days unless told otherwise; CDISC
   relative times need their unit); a ``time`` column holding dates is read as dates (3.);
2. a time column in hours (``Time (h)``, ``Hours post infusion``): divided by 24;
3. a sample ``date`` (date-time) column: minus the subject's infusion date
   (:mod:`cellkin.io._dates`);
4. visit labels (``visit``) or a ``nominal_time`` column: the nominal day is the time, with a
   note (a visit without a nominal day, such as "Unscheduled", is then an error).

The nominal day (from ``nominal_time``, or parsed from ``visit`` labels by
:mod:`cellkin.io._visits`) is kept as ``nominal_time`` whenever the table has visits, for the
visit-binned figures. Every conversion is recorded in the reading notes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cellkin._validation import Context, check_rows, map_unique, require_columns, to_float, to_label
from cellkin.errors import OptionError
from cellkin.io._conventions import ColumnPlan
from cellkin.io._dates import days_since_infusion, infusion_table, parse_dates
from cellkin.io._notes import Notes
from cellkin.io._units import TIME_UNITS, time_unit
from cellkin.io._visits import nominal_days

__all__ = ["read_times"]

_TIME_FIX = (
    "Times must be numbers of days since infusion (day 0, negative before it); for visit "
    "labels such as 'D7' use a `visit` column, for dates a `date` column."
)


def read_times(
    ctx: Context, frame: pd.DataFrame, plan: ColumnPlan, infusion: Any, notes: Notes
) -> tuple[pd.Series, pd.Series | None]:
    """Sample times in days and nominal days (None when the table has no visits)."""
    nominal = _nominal(ctx, frame, plan, notes)
    cols = plan.cols
    if "time" in cols and _holds_dates(frame[cols["time"]]):
        return _from_dates(ctx, frame, plan, "time", infusion, notes), nominal
    if "time" in cols:
        return _from_numbers(ctx, frame, plan, notes), nominal
    if "time_hours" in cols:
        raw = frame[cols["time_hours"]]
        hours = to_float(ctx, raw, plan.name("time_hours"), fix=_TIME_FIX, required=True)
        notes.add("time", plan.original("time_hours"), len(frame), "hours converted to days (÷ 24)")
        return hours / 24.0, nominal
    if "date" in cols:
        return _from_dates(ctx, frame, plan, "date", infusion, notes), nominal
    if nominal is None:
        require_columns(ctx, list(frame.columns), ["time"],
                        "Give sample times (days since infusion), sample dates or visit "
                        "labels.")  # fmt: skip
    key = "visit" if "visit" in plan.cols else "nominal_time"
    source = plan.cols[key]
    check_rows(ctx, nominal.isna(), frame[source], f"`{source}`",
               "visit{s} without a nominal day",
               "With no time or date column, every sample's time comes from its visit label "
               "(Day 7, Week 4, Month 3, ...). Add a time or date column, or give the visit's "
               "day with mapping={'visits': {'Unscheduled 1': 45}}.")  # fmt: skip
    text = "no time or date column: each sample's time is the nominal day of its visit"
    notes.add("time", plan.original(key), len(frame), text)
    return nominal.copy(), nominal


def _nominal(ctx: Context, frame: pd.DataFrame, plan: ColumnPlan, notes: Notes):
    """Nominal days from ``nominal_time`` or parsed ``visit`` labels (None without either)."""
    if "nominal_time" in plan.cols:
        fix = "Nominal times are the protocol days of the visits."
        return to_float(ctx, frame[plan.cols["nominal_time"]], plan.name("nominal_time"), fix=fix)
    if "visit" not in plan.cols:
        return None
    labels = frame[plan.cols["visit"]]
    days = nominal_days(labels, plan.options.get("visits"))
    read = int(days.notna().sum())
    unread = sorted({str(v) for v in labels[days.isna() & labels.notna()]})
    text = f"{read} visit label(s) read as nominal days (kept as `nominal_time`)"
    if unread:
        text += f"; no nominal day for {', '.join(map(repr, unread[:5]))}"
    notes.add("visits", plan.original("visit"), read, text)
    return days


def _holds_dates(values: pd.Series) -> bool:
    """Whether a time column holds dates (Excel dates, or text like 2024-03-05 / 05.03.2024)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    if values.dtype != object:
        return False
    text = values.dropna().astype(str).str.strip()
    return bool(len(text)) and bool(text.str.match(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}").all())


def _from_dates(
    ctx: Context, frame: pd.DataFrame, plan: ColumnPlan, key: str, infusion: Any, notes: Notes
) -> pd.Series:
    """Days since each subject's infusion date."""
    column = plan.cols[key]
    fmt = plan.options.get("date_format")
    dates, used = parse_dates(ctx, frame[column], plan.name(key), fmt)
    subjects = to_label(ctx, frame[plan.cols["subject"]], plan.name("subject"), fix="")
    if infusion is not None:
        start: Any = infusion_table(ctx, infusion)
        where = (
            "the subject table's `infusion_date`"
            if isinstance(infusion, pd.DataFrame)
            else "infusion_dates="
        )
    elif "infusion_date" in plan.cols:
        start, _ = parse_dates(ctx, frame[plan.cols["infusion_date"]], plan.name("infusion_date"),
                               fmt)  # fmt: skip
        where = f"column `{plan.cols['infusion_date']}`"
    else:
        start, where = {}, "none given"
    days = days_since_infusion(ctx, dates, subjects, start, plan.name(key))
    text = f"sample dates ({used}) converted to days since infusion (infusion dates from {where})"
    notes.add("time", plan.original(key), int(dates.notna().sum()), text)
    return days


def _from_numbers(ctx: Context, frame: pd.DataFrame, plan: ColumnPlan, notes: Notes):
    """Numeric times, converted to days from their unit."""
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
        return time
    divisor = map_unique(units, lambda u: u[1]).astype(float)
    for name, factor in sorted({u for u in units if u[0] != "days"}):
        count = int((divisor == factor).sum())
        notes.add("time", plan.original("time"), count, f"`{plan.cols['time']}` converted from "
                  f"{name} to days (divided by {factor:g}; unit from {source})")  # fmt: skip
    return time / divisor.where(np.isfinite(divisor), 1.0)
