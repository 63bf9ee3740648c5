"""Injection-safe CSV (private core): every CSV cellkin writes passes through :func:`neutralise`.

A spreadsheet (Excel, LibreOffice Calc, Google Sheets) that opens a CSV file evaluates a
cell whose text starts with ``=``, ``+``, ``-`` or ``@`` as a formula — ``=HYPERLINK(...)``
sends data away, ``+cmd|' /C calc'!A0`` runs a program through DDE — and a leading tab or
carriage return can hide such a prefix from a person or a filter. Subject ids, visit labels
and adverse-event terms come from users' files, so cellkin applies OWASP's CSV-injection
rule [1]_ when it writes:

* a text cell whose first character is ``=``, ``+``, ``-``, ``@``, a tab or a carriage
  return is written with a leading apostrophe (``=SUM(A1)`` → ``'=SUM(A1)``), which
  spreadsheets show as text and do not evaluate;
* numbers are untouched: numeric and boolean columns are never changed, and a text cell that
  is a plain number (``-1.5``, ``+3e-2``) keeps its form;
* column names follow the same rule; quoting of separators and quotes is the CSV writer's
  (pandas, minimal quoting).

Reading a file back, cellkin's readers keep the apostrophe: a subject written as
``'=SUM(A1)`` is read as the id ``'=SUM(A1)``, a valid id that no spreadsheet will run.

The rule is a few lines over a DataFrame; the library that implements it, defusedcsv, replaces
the standard library's ``csv`` module, which pandas imports and drives itself, so it cannot be
plugged into :meth:`pandas.DataFrame.to_csv`.

References
----------
.. [1] OWASP Foundation, "CSV Injection",
   https://owasp.org/www-community/attacks/CSV_Injection
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

__all__ = ["FORMULA_TRIGGERS", "neutralise", "neutralise_cell"]

#: First characters that make a spreadsheet treat a cell as a formula (OWASP).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def neutralise_cell(value: Any) -> Any:
    """`value` with a leading apostrophe when it is text a spreadsheet would run as a formula.

    >>> neutralise_cell("=SUM(A1)"), neutralise_cell("-1.5"), neutralise_cell(-1.5)
    ("'=SUM(A1)", '-1.5', -1.5)
    """
    if (
        isinstance(value, str)
        and value[:1] in FORMULA_TRIGGERS
        and not _PLAIN_NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value


def _text_like(series: pd.Series) -> bool:
    dtype = series.dtype
    return (
        pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
    )


def _distinct(column: pd.Series) -> Any:
    """The distinct values of a text column (ids repeat once per sample: check each once)."""
    try:
        return pd.unique(column.to_numpy())
    except TypeError:  # unhashable cells (lists): check them all
        return column.to_numpy()


def neutralise(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with every text cell and column name made safe for spreadsheets.

    Returns `frame` itself when nothing needs changing, else a copy; numeric and boolean
    columns are never touched (see the module docstring for the rule).
    """
    changed: dict[Any, pd.Series] = {}
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        if not _text_like(column):
            continue
        if isinstance(column.dtype, pd.CategoricalDtype):
            categories = column.cat.categories
            safe = [neutralise_cell(c) for c in categories]
            if safe != list(categories):
                changed[position] = column.cat.rename_categories(safe)
            continue
        if any(neutralise_cell(value) is not value for value in _distinct(column)):
            changed[position] = column.map(neutralise_cell, na_action="ignore")
    names = [neutralise_cell(name) for name in frame.columns]
    if not changed and names == list(frame.columns):
        return frame
    safe = frame.copy()
    for position, column in changed.items():
        safe.isetitem(position, column)
    safe.columns = names
    return safe
