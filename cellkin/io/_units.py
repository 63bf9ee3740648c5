"""Units the kinetics readers accept: level units (with their spellings) and time units.

Units are metadata (DESIGN §2.4): a reader maps each accepted spelling to one canonical unit
and never converts levels between units. Times are converted to days, the only time unit
cellkin computes in.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["KNOWN_UNITS", "TIME_UNITS", "canonical_unit", "known_units_text", "time_unit"]

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

#: Time-unit spellings -> (name, divisor that turns a time in that unit into days).
TIME_UNITS: Mapping[str, tuple[str, float]] = MappingProxyType(
    {
        spelling: (name, divisor)
        for name, divisor, spellings in (
            ("days", 1.0, ("d", "day", "days")),
            ("hours", 24.0, ("h", "hr", "hrs", "hour", "hours")),
            ("minutes", 1440.0, ("min", "minutes")),
            ("weeks", 1 / 7, ("w", "wk", "week", "weeks")),
        )
        for spelling in spellings
    }
)


def canonical_unit(spelling: object) -> str | None:
    """The canonical unit of a spelling (case and blanks ignored), or None if unknown."""
    return _UNIT_LOOKUP.get("".join(str(spelling).casefold().split()))


def time_unit(spelling: object) -> tuple[str, float] | None:
    """``(name, divisor to days)`` of a time-unit spelling (any case), or None if unknown."""
    return TIME_UNITS.get(str(spelling).strip().casefold())


def known_units_text() -> str:
    """Every canonical unit with its accepted spellings, for error messages."""
    return "; ".join(f"{u} ({', '.join(a)})" for u, a in _UNIT_ALIASES.items())
