"""Argument types of the command line: every numeric option is checked by the parser.

Each factory returns an ``argparse`` type that accepts only a finite number in its range and
otherwise raises :class:`argparse.ArgumentTypeError` with what was given and what is allowed,
so that a bad value is one line (``cellkin: error: argument --seed: expected an integer >= 0,
got '-1'``) before any work starts. The limits on options that size work are here too.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = [
    "MAX_CHUNK_SIZE",
    "MAX_JOBS",
    "MAX_PATIENTS",
    "MAX_STARTS",
    "integer",
    "number",
]

#: Starts per subject: each costs a full local optimisation; 1000 already takes minutes per
#: subject, and the multi-start stops as soon as three starts agree.
MAX_STARTS = 1000
#: Worker processes (each holds its own interpreter, 100-200 MB).
MAX_JOBS = 1024
#: Virtual patients of one simulation (the streamed summary's counters are 32-bit).
MAX_PATIENTS = 2**31 - 1
#: Patients per compiled chunk (memory is checked against the machine as well).
MAX_CHUNK_SIZE = 10**8


def _show(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _range_text(low: float | None, high: float | None, *, above: bool = False) -> str:
    if low is not None and high is not None:
        if above:
            return f"> {_show(low)} and <= {_show(high)}"
        return f"from {_show(low)} to {_show(high)}"
    if low is not None:
        return f"> {_show(low)}" if above else f">= {_show(low)}"
    if high is not None:
        return f"<= {_show(high)}"
    return ""


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer type in ``[low, high]``."""
    allowed = f"an integer {_range_text(low, high)}".strip()

    def parse(text: str) -> int:
        try:
            value = int(text.strip().replace("_", ""))
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


def number(
    low: float | None = None, high: float | None = None, *, above: bool = False
) -> Callable[[str], float]:
    """A finite number in ``[low, high]`` (``(low, high]`` with ``above``)."""
    allowed = f"a finite number {_range_text(low, high, above=above)}".strip()

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        bad = not math.isfinite(value)
        bad = bad or (low is not None and (value <= low if above else value < low))
        bad = bad or (high is not None and value > high)
        if bad:
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse
