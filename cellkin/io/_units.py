"""Units of levels and times: spellings, checks and conversions (built on pint).

Units are metadata (DESIGN §2.4) and are never pooled: a reader maps each spelling to one
canonical unit (`KNOWN_UNITS`), and when one assay holds several units it converts them to one
(:func:`conversion_factor`, with a note) or refuses the table when they are not convertible
(copies/ug and cells/uL). Quantities cellkin handles:

* qPCR per mass of DNA: ``copies/ug`` (= copies/µg gDNA), ``copies/ng``, ``copies/100ng``;
* qPCR per volume of blood: ``copies/uL``, ``copies/mL``;
* cell counts per volume: ``cells/uL`` (= cells/mm³), ``cells/mL``, ``cells/L``, ``10^9/L``
  (10⁹ cells/L = 1000 cells/µL), ``10^3/uL``;
* fractions of a parent population: ``%CD3``, ``%CD8``, ``%lymphocytes`` (never converted into
  each other; ``%CD3`` with the absolute CD3+ count of the sample becomes CAR+ cells/µL).

Conversion factors come from pint's unit registry (``copies`` and ``cells`` are defined as
counting units of their own, so copies never convert into cells); pint is imported on the first
conversion only, as importing it and building the registry is slow. A spelling that is
not in `KNOWN_UNITS` is accepted when pint reads it as one of the quantities above (for
example ``copies/mg``). Times are converted to days, the only time unit cellkin computes in.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = [
    "KNOWN_UNITS",
    "STANDARD_UNITS",
    "TIME_UNITS",
    "canonical_unit",
    "conversion_factor",
    "dimension",
    "known_units_text",
    "time_unit",
]

# canonical unit: (pint expression, or None for a fraction of a parent population; spellings)
_UNITS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "copies/ug": ("copies / microgram", (
        "copies/µg", "copies/μg", "copies/ug gDNA", "copies/µg gDNA", "copies/μg gDNA",
        "copies/ug DNA", "copies/µg DNA", "copies/ug genomic DNA", "copies/µg genomic DNA",
        "copies per ug", "copies per µg", "copies/mcg", "cp/ug", "cp/µg", "copies/1ug")),
    "copies/ng": ("copies / nanogram", ("copies/ng gDNA", "copies/ng DNA", "cp/ng")),
    "copies/100ng": ("copies / (100 nanogram)", ("copies/100 ng", "copies/100ng gDNA",
                                                 "copies/100 ng gDNA", "copies/100 ng DNA")),
    "copies/uL": ("copies / microliter", ("copies/µL", "copies/μL", "copies/ul blood",
                                          "copies/µL blood")),
    "copies/mL": ("copies / milliliter", ("copies/ml blood",)),
    "cells/uL": ("cells / microliter", ("cells/µL", "cells/μL", "CAR+ cells/uL",
                                        "CAR+ cells/µL", "cells/mm3", "cells/mm³", "/uL", "/µL",
                                        "/mm3", "cells per uL", "cells per µL")),
    "cells/mL": ("cells / milliliter", ("CAR+ cells/mL", "/mL", "cells per mL")),
    "cells/L": ("cells / liter", ("CAR+ cells/L", "/L")),
    "10^9/L": ("1e9 cells / liter", ("10^9 cells/L", "x10^9/L", "x 10^9/L", "10E9/L", "G/L",
                                     "10*9/L", "10^9/l", "×10^9/L", "10⁹/L", "giga/L")),
    "10^3/uL": ("1e3 cells / microliter", ("10^3/µL", "x10^3/uL", "K/uL", "K/µL", "10*3/uL")),
    "%CD3": (None, ("% CD3", "%CD3+", "% of CD3", "% of CD3+", "% CD3+", "%CAR+ of CD3+",
                    "% CAR+ of CD3+")),
    "%CD8": (None, ("% CD8", "%CD8+", "% of CD8", "% of CD8+")),
    "%lymphocytes": (None, ("% lymphocytes", "% of lymphocytes", "%lymph")),
}  # fmt: skip
#: The unit each convertible quantity is converted to when one assay mixes units.
STANDARD_UNITS = MappingProxyType(
    {"copies/mass": "copies/ug", "copies/volume": "copies/uL", "cells/volume": "cells/uL"}
)

#: Unit spellings cellkin reads (alias -> canonical unit); matching ignores case and blanks.
KNOWN_UNITS: Mapping[str, str] = MappingProxyType(
    {alias: unit for unit, (_, aliases) in _UNITS.items() for alias in (unit, *aliases)}
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
_DIMENSIONS = {
    "[copies] / [mass]": "copies/mass",
    "[copies] / [length] ** 3": "copies/volume",
    "[cells] / [length] ** 3": "cells/volume",
}


@functools.cache
def _registry() -> Any:
    """pint's unit registry with ``copies`` and ``cells`` as counting units (built once)."""
    import pint

    registry: Any = pint.UnitRegistry(cache_folder=None)
    registry.define("copies = [copies] = copy = cp")
    registry.define("cells = [cells] = cell")
    return registry


def _pint_text(spelling: str) -> str:
    """A unit spelling as pint reads it: µ as u, DNA/CAR+ qualifiers dropped."""
    text = spelling.replace("µ", "u").replace("μ", "u").replace("^", "**")
    text = re.sub(r"(?i)\b(genomic\s+)?g?DNA\b|CAR\+\s*|\bblood\b", "", text)
    return text.replace("ul", "uL").replace("ml", "mL").strip()


@functools.cache
def _quantity(unit: str) -> Any:
    """The pint quantity of one canonical (or pint-readable) unit, or None."""
    expression = _UNITS[unit][0] if unit in _UNITS else _pint_text(unit)
    if expression is None:
        return None
    try:
        return _registry().Quantity(expression)
    except Exception:  # pint raises several error types for text it cannot read
        return None


def dimension(unit: str) -> str | None:
    """``copies/mass``, ``copies/volume``, ``cells/volume`` or None (a fraction, or unknown)."""
    if unit in _UNITS and _UNITS[unit][0] is None:
        return None
    quantity = _quantity(unit)
    return None if quantity is None else _DIMENSIONS.get(str(quantity.dimensionality))


def conversion_factor(source: str, target: str) -> float | None:
    """The factor that turns a level in `source` into one in `target`, None if impossible.

    Examples
    --------
    >>> conversion_factor("cells/mL", "cells/uL")
    0.001
    >>> conversion_factor("10^9/L", "cells/uL")
    1000.0
    >>> conversion_factor("copies/ug", "cells/uL") is None
    True
    """
    if source == target:
        return 1.0
    kind = dimension(source)
    if kind is None or kind != dimension(target):
        return None
    ratio = (_quantity(source) / _quantity(target)).to("dimensionless").magnitude
    return float(f"{ratio:.12g}")


def canonical_unit(spelling: object) -> str | None:
    """The canonical unit of a spelling (case and blanks ignored), or None if unknown.

    A spelling outside `KNOWN_UNITS` is kept (as written, without blanks) when pint reads it
    as copies per mass or volume or cells per volume.
    """
    text = str(spelling)
    known = _UNIT_LOOKUP.get("".join(text.casefold().split()))
    if known is not None:
        return known
    if any(c.isdigit() for c in text) and "/" not in text:
        return None
    return "".join(text.split()) if dimension("".join(text.split())) is not None else None


def time_unit(spelling: object) -> tuple[str, float] | None:
    """``(name, divisor to days)`` of a time-unit spelling (any case), or None if unknown."""
    return TIME_UNITS.get(str(spelling).strip().casefold())


def known_units_text() -> str:
    """Every canonical unit with its main spellings, for error messages."""
    return "; ".join(f"{u} ({', '.join(a[:3])})" for u, (_, a) in _UNITS.items())
