"""How a table is laid out in its file: separator, decimal mark, thousands separator, header row.

Exports from European LIMS are often ``;``-separated with decimal commas (``1.234,5``), and
spreadsheets often carry title rows above the header. :func:`sniff_text` finds the separator
(the one among ``, ; TAB |`` that splits the lines into the most consistent number of fields,
Python's :class:`csv.Sniffer` idea made strict), the decimal mark and thousands separator (from
the numbers written in the file), and the header row (:func:`header_row`). A decimal mark that
the numbers cannot tell (every comma number has exactly three digits after the comma, as
``1,234`` does both ways) is refused with the fix (``mapping={"decimal": ","}``) rather than
guessed. Each option can be given instead (``sep``, ``decimal``, ``thousands``, ``skiprows``).
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cellkin._validation import Context

__all__ = ["TextLayout", "header_row", "sniff_text"]

_SEPARATORS = (",", ";", "\t", "|")
_SEP_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_NUMBER = re.compile(r"^[-+]?\d+(?:[.,]\d+)?(?:[eE][-+]?\d+)?$")
_COMMA_DECIMAL = re.compile(r"^[-+]?\d+,\d+$")
_DOT_DECIMAL = re.compile(r"^[-+]?\d+\.\d+$")
_DOT_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(?:\.\d{3})+(?:,\d+)?$")
_COMMA_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_BLANK_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?:[.,]\d+)?$")
_LOOK = 40  # lines examined


@dataclass(frozen=True)
class TextLayout:
    """The layout of a text table: what ``pandas.read_csv`` needs to read it."""

    sep: str
    decimal: str
    thousands: str | None
    skiprows: int

    def describe(self) -> str:
        """In words, for the reading notes."""
        text = f"{_SEP_NAMES.get(self.sep, repr(self.sep))}-separated"
        if self.decimal != ".":
            text += f", decimal {self.decimal!r}"
        if self.thousands:
            text += f", thousands separator {self.thousands!r}"
        if self.skiprows:
            text += f", header on line {self.skiprows + 1} ({self.skiprows} title line(s) skipped)"
        return text


def _is_text(cell: Any) -> bool:
    text = str(cell).strip()
    return bool(text) and text.casefold() != "nan" and not _NUMBER.match(text.replace(" ", ""))


def header_row(rows: Sequence[Sequence[Any]]) -> int:
    """Index of the header among the first rows of a table: the first row whose cells are all
    text and fill at least as many columns as (80% of) the widest of the rows below it."""
    counts = [sum(1 for c in row if str(c).strip() and str(c) != "nan") for row in rows]
    for k, row in enumerate(rows[:20]):
        below = counts[k + 1 : k + 11]
        width = max(below, default=counts[k])
        filled = [c for c in row if str(c).strip() and str(c) != "nan"]
        if len(filled) >= 2 and len(filled) >= 0.8 * width and all(map(_is_text, filled)):
            return k
    return 0


def _split(lines: list[str], sep: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO("\n".join(lines)), delimiter=sep))


def _separator(lines: list[str]) -> str:
    """The separator giving the most lines with the same (largest) number of fields > 1."""
    best, score = ",", (0, 0)
    for sep in _SEPARATORS:
        counts = Counter(len(row) for row in _split(lines, sep) if row)
        width, lines_with = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
        if width > 1 and (lines_with, width) > score:
            best, score = sep, (lines_with, width)
    return best


def _decimal(ctx: Context, rows: list[list[str]], sep: str) -> tuple[str, str | None]:
    """Decimal mark and thousands separator from the numbers in `rows` (header first)."""
    cells = [c.strip() for row in rows[1:] for c in row if c.strip()]
    comma = [c for c in cells if _COMMA_DECIMAL.match(c)]
    dotted = [c for c in cells if _DOT_THOUSANDS.match(c) and "," in c]
    blank = any(_BLANK_THOUSANDS.match(c) for c in cells)
    if sep != "," and (dotted or any(len(c.split(",")[1]) != 3 for c in comma)):
        thousands = "." if any(_DOT_THOUSANDS.match(c) for c in cells) else None
        return ",", " " if blank and thousands is None else thousands
    if sep != "," and comma:
        if any(_DOT_DECIMAL.match(c) for c in cells):
            return ".", ","
        k, j = next((k, j) for k, row in enumerate(rows[1:], 1) for j, c in enumerate(row)
                    if c.strip() == comma[0])  # fmt: skip
        column = rows[0][j] if j < len(rows[0]) else f"column {j + 1}"
        raise ctx.error(
            f"column `{column}`, row {k}: cannot tell the decimal mark: numbers such as "
            f"{comma[0]!r} read as "
            f"{comma[0].replace(',', '.')} with a decimal comma and as "
            f"{comma[0].replace(',', '')} with a thousands comma. Say which with "
            "mapping={'decimal': ','} (or '.')."
        )
    if any(_COMMA_THOUSANDS.match(c) for c in cells):
        return ".", ","
    return ".", " " if blank else None


def sniff_text(ctx: Context, text: str, given: Mapping[str, Any]) -> TextLayout:
    """The layout of a text table from its first lines; `given` options win over detection."""
    lines = [line for line in text.splitlines()[:_LOOK]]
    if len(text.splitlines()) > _LOOK:
        lines = lines[:-1]  # the last line read may be cut
    sep = given.get("sep") or _separator(lines)
    rows = _split(lines, sep)
    skip = given.get("skiprows")
    skip = header_row(rows) if skip is None else int(skip)
    if given.get("decimal"):
        decimal, thousands = given["decimal"], given.get("thousands")
    else:
        decimal, thousands = _decimal(ctx, rows[skip:], sep)
        thousands = given.get("thousands", thousands)
    if thousands == decimal:
        thousands = None
    return TextLayout(sep, decimal, thousands, skip)
