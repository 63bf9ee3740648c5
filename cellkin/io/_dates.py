"""Sample dates as laboratories write them, converted to days since the infusion.

:func:`parse_dates` reads a date (or date-time) column with an explicit format
(``date_format``, a :func:`datetime.strptime` pattern) or, without one, by trying the common
formats below and keeping those that read *every* date of the column. When two formats read
them all with different results (``03/04/2024``: 3 April or 4 March?) the column is refused as
ambiguous, naming a date that shows it, unless ``date_format`` says which: a file is never read
with a meaning its writer did not intend. Dates that Excel stored as dates are used as they
are. pandas does the parsing (:func:`pandas.to_datetime` with each format).

:func:`days_since_infusion` subtracts each subject's infusion date (from the subject table, a
column of the kinetics table, or ``infusion_dates=``): ``time = (date − infusion) / 1 day``,
fractional when the dates carry clock times.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from cellkin._validation import Context, check_rows, show

__all__ = ["DATE_FORMATS", "days_since_infusion", "infusion_table", "parse_dates"]

#: Formats tried, in order, when no ``date_format`` is given (with and without clock times).
DATE_FORMATS = (
    "%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S",
    "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%m-%d-%Y", "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M", "%d.%m.%Y %H:%M", "%d-%b-%Y", "%d %b %Y", "%d%b%Y", "%b %d, %Y",
    "%d-%b-%Y %H:%M", "%d%b%Y:%H:%M:%S", "%Y%m%d", "%d/%m/%y", "%m/%d/%y", "%d.%m.%y",
    "%d-%b-%y", "%B %d, %Y", "%d %B %Y", "%Y/%m/%d",
)  # fmt: skip
_FIX = (
    "Give the format with mapping={'date_format': '%d/%m/%Y'} (a Python strptime pattern), "
    "or write dates as YYYY-MM-DD."
)


def parse_dates(
    ctx: Context, raw: pd.Series, name: str, date_format: str | None = None
) -> tuple[pd.Series, str]:
    """Dates of a column as ``datetime64[ns]`` (NaT where empty) and the format used.

    Raises
    ------
    DataError
        If no format reads every date, or two formats read them all differently.
    """
    if pd.api.types.is_datetime64_any_dtype(raw):
        return raw.astype("datetime64[ns]"), "stored as dates"
    text = raw.map(lambda v: v if pd.isna(v) else str(v).strip()).replace("", np.nan)
    present = text.notna()
    if date_format is not None:
        dates = pd.to_datetime(text, format=date_format, errors="coerce")
        check_rows(ctx, present & dates.isna(), raw, name,
                   f"date{{s}} not in the format {date_format!r}", _FIX)  # fmt: skip
        return dates.astype("datetime64[ns]"), date_format
    unique = pd.Series(pd.unique(text[present]))
    readings = {}
    for fmt in DATE_FORMATS:
        parsed = pd.to_datetime(unique, format=fmt, errors="coerce")
        if parsed.notna().all():
            readings[fmt] = parsed
    if not readings:
        best = max(
            DATE_FORMATS,
            key=lambda f: pd.to_datetime(unique, format=f, errors="coerce").notna().sum(),
        )
        dates = pd.to_datetime(text, format=best, errors="coerce")
        check_rows(ctx, present & dates.isna(), raw, name, "date{s} in no known format",
                   _FIX)  # fmt: skip
    distinct: dict[tuple[Any, ...], str] = {}
    for fmt, parsed in readings.items():
        distinct.setdefault(tuple(parsed.to_numpy()), fmt)
    if len(distinct) > 1:
        formats = list(distinct.values())
        first, second = readings[formats[0]], readings[formats[1]]
        k = int(np.flatnonzero((first != second).to_numpy())[0])
        row = text.index[(text == unique.iloc[k]).to_numpy()][0]
        raise ctx.error(
            f"column {name}, {ctx.where(row)}: dates are ambiguous: {unique.iloc[k]!r} reads as "
            f"{first.iloc[k]:%Y-%m-%d} with format {formats[0]!r} and as "
            f"{second.iloc[k]:%Y-%m-%d} with {formats[1]!r}. {_FIX}"
        )
    fmt = next(iter(distinct.values()))
    lookup = dict(zip(unique, readings[fmt], strict=True))
    return text.map(lookup).astype("datetime64[ns]"), fmt


def infusion_table(ctx: Context, given: Any) -> dict[str, pd.Timestamp]:
    """Infusion date per subject from ``infusion_dates=``: a mapping, a Series indexed by
    subject, or a DataFrame with ``subject`` and ``infusion_date`` columns."""
    if isinstance(given, pd.DataFrame):
        if not {"subject", "infusion_date"} <= set(given.columns):
            raise ctx.error(
                "`infusion_dates` needs the columns `subject` and `infusion_date` (a subject "
                "table with infusion dates); columns found: "
                f"{', '.join(map(str, given.columns))}."
            )
        given = dict(zip(given["subject"].astype(str).str.strip(), given["infusion_date"],
                         strict=True))  # fmt: skip
    elif isinstance(given, pd.Series):
        given = dict(given.items())
    elif not isinstance(given, Mapping):
        raise TypeError(
            "infusion_dates must be a dict, a Series indexed by subject or a DataFrame with "
            f"subject and infusion_date, not {type(given).__name__}"
        )
    keys = pd.Series(list(given.keys()), dtype=object).astype(str).str.strip()
    values = pd.Series(list(given.values()), index=keys.index, dtype=object)
    dates, _ = parse_dates(ctx, values, "`infusion_date`")
    return {k: d for k, d in zip(keys, dates, strict=True) if pd.notna(d)}


def days_since_infusion(
    ctx: Context,
    dates: pd.Series,
    subjects: pd.Series,
    infusion: Mapping[str, pd.Timestamp] | pd.Series,
    name: str,
) -> pd.Series:
    """``(date − infusion date of the subject) / 1 day`` for every row.

    Raises
    ------
    DataError
        If a subject with dated samples has no infusion date.
    """
    if isinstance(infusion, pd.Series):
        start = infusion.astype("datetime64[ns]")
    else:
        start = subjects.map(dict(infusion)).astype("datetime64[ns]")
    lacking = dates.notna() & start.isna()
    if lacking.any():
        row = lacking.index[lacking.to_numpy()][0]
        count = int(subjects[lacking].nunique())
        raise ctx.error(
            f"column {name}: {count} subject(s) with dated samples have no infusion date, "
            f"first {show(subjects[row])} at {ctx.where(row)}. Give infusion dates in the "
            "subject table (`infusion_date`), in the kinetics table, or with "
            "infusion_dates={'S01': '2024-03-05', ...}."
        )
    return (dates - start) / pd.Timedelta(days=1)
