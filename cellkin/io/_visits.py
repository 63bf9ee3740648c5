"""Visit labels as protocols write them, read as a nominal day since infusion.

``Day 7``, ``D7``, ``Day7``, ``day +7``, ``D-7``, ``Week 4``, ``W4``, ``Wk 4``, ``Month 3``,
``M3``, ``Year 1``, ``Hour 4``, ``H4``, ``4h``, ``Screening``, ``Baseline``, ``Day 0
pre-infusion``, ``Day 1 (post)`` ... are read, in any case, by :func:`nominal_day`:

* ``Day n`` is day n; ``Hour n`` is n/24; ``Week n`` is 7·n days; ``Month n`` is n·365.25/12
  days (30.44, as the report's landmark months); ``Year n`` is 365.25·n days;
* labels meaning *before the infusion* are negative: ``Day 0 pre-infusion``, ``Pre-infusion``,
  ``Pre-dose``, ``Baseline`` are day −1/24 (one hour before the infusion, :data:`PRE_INFUSION`);
  ``Screening`` and ``Pre-lymphodepletion`` are day −14 (:data:`SCREENING`), a documented
  convention: give a protocol's own days with ``mapping={"visits": {"Screening": -28}}``;
* ``Unscheduled``, ``End of study`` and other labels have no nominal day (NaN).

The nominal day is kept as ``nominal_time`` (the visit-binned figures use it) and is the
sample's time when the table gives neither a time nor a date (with a note). cellkin parses
the labels itself: no library reads clinical visit names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from cellkin._validation import map_unique

__all__ = ["PRE_INFUSION", "SCREENING", "UNITS_IN_DAYS", "nominal_day", "nominal_days"]

#: Nominal day of a sample taken just before the infusion (Day 0 pre-infusion, baseline).
PRE_INFUSION = -1 / 24
#: Nominal day of a screening (or pre-lymphodepletion) sample.
SCREENING = -14.0
#: Days per visit-label unit.
UNITS_IN_DAYS = {"hour": 1 / 24, "day": 1.0, "week": 7.0, "month": 365.25 / 12, "year": 365.25}
_UNIT_WORDS = {
    "h": "hour", "hr": "hour", "hrs": "hour", "hour": "hour", "hours": "hour",
    "d": "day", "day": "day", "days": "day", "j": "day", "tag": "day",
    "w": "week", "wk": "week", "wks": "week", "week": "week", "weeks": "week",
    "m": "month", "mo": "month", "mon": "month", "month": "month", "months": "month",
    "y": "year", "yr": "year", "year": "year", "years": "year",
}  # fmt: skip
_PRE = re.compile(r"\b(pre|before|prior)\b[ -]?(infusion|dose|dosing|inf|car[ -]?t)?")
_SCREENING = re.compile(r"\b(screen(ing)?|pre[ -]?(ld|lymphodepletion|conditioning)|scr)\b")
_BASELINE = re.compile(r"^(baseline|bl|pre[ -]?(infusion|dose|dosing|treatment)|predose)$")
_LABEL = re.compile(
    r"^(?:visit\s*)?(?P<unit>[a-z]+)\.?\s*(?P<sign>[-+]?)\s*(?P<n>\d+(?:[.,]\d+)?)\b"
    r"|^(?P<n2>[-+]?\d+(?:[.,]\d+)?)\s*(?P<unit2>[a-z]+)\b"
)


def nominal_day(label: Any, overrides: Mapping[str, float] | None = None) -> float:
    """The nominal day of a visit label (see the module docstring), NaN when it has none.

    Examples
    --------
    >>> [nominal_day(x) for x in ("Day 7", "D-7", "Week 4", "Month 3", "4h")]
    [7.0, -7.0, 28.0, 91.3125, 0.16666666666666666]
    >>> nominal_day("Day 0 pre-infusion") < 0 < nominal_day("Day 1")
    True
    """
    if label is None or (isinstance(label, float) and np.isnan(label)):
        return np.nan
    text = " ".join(str(label).strip().casefold().split())
    if overrides:
        folded = {" ".join(str(k).casefold().split()): float(v) for k, v in overrides.items()}
        if text in folded:
            return folded[text]
    if _SCREENING.search(text):
        return SCREENING
    if _BASELINE.match(text):
        return PRE_INFUSION
    match = _LABEL.match(text)
    if match is None:
        return np.nan
    unit = _UNIT_WORDS.get(match.group("unit") or match.group("unit2") or "")
    if unit is None:
        return np.nan
    number = float((match.group("n") or match.group("n2")).replace(",", "."))
    if match.group("sign") == "-":
        number = -number
    day = number * UNITS_IN_DAYS[unit]
    if day == 0 and _PRE.search(text[match.end() :]):
        return PRE_INFUSION
    return day


def nominal_days(labels: pd.Series, overrides: Mapping[str, float] | None = None) -> pd.Series:
    """:func:`nominal_day` of every label (float Series; NaN for labels with no day)."""
    days = map_unique(labels, lambda label: nominal_day(label, overrides))
    return days.astype(float)
