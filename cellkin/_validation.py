"""Private helpers that check tables for :mod:`cellkin.io`.

Generic column converters in the style of the ``*_like`` helpers of
``statsmodels/tools/validation/validation.py``: each takes a :class:`Context` (what the table is
called and how to cite a row) and raises :class:`~cellkin.errors.DataError` with a message that
names the file, the column, the first offending row, how many rows are affected and how to fix
the problem. The readers of :mod:`cellkin.io` apply them to every study table.

Row numbers are 1-based data rows: row 1 is the first row below the header, so in a spreadsheet
it is the row numbered 2. Helpers expect Series whose index holds these row numbers (the reader
sets the index once, right after reading, so that filtering and sorting never lose them).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cellkin.errors import DataError

__all__ = [
    "Context",
    "apply_converters",
    "check_rows",
    "check_unique",
    "collecting",
    "map_unique",
    "match_columns",
    "pair",
    "require_columns",
    "show",
    "to_bool",
    "to_choice",
    "to_float",
    "to_int",
    "to_label",
]

_TRUE = frozenset({"true", "yes", "y", "1", "1.0"})
_FALSE = frozenset({"false", "no", "n", "0", "0.0"})


@dataclass(frozen=True)
class Context:
    """Where a table came from, used to word error messages.

    Parameters
    ----------
    label : str
        The file path as the user gave it, or ``"DataFrame input"``.
    index_labels : tuple or None
        The caller's DataFrame index labels, when they are not the default ``0..n-1``; row
        ``k`` then also shows label ``index_labels[k - 1]``.
    """

    label: str
    index_labels: tuple[Any, ...] | None = None

    def where(self, row: int) -> str:
        """Return ``"row 17"`` (with the DataFrame index label when it helps)."""
        text = f"row {row}"
        if self.index_labels is not None:
            text += f" (index {show(self.index_labels[row - 1])})"
        return text

    def error(self, message: str) -> DataError:
        """Return a :class:`DataError` whose message starts with the table's name."""
        return DataError(f"{self.label}: {message}")


def show(value: Any) -> str:
    """Quote one cell for a message: ``'D7'``, ``-3.0`` or ``(empty)``."""
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return "(empty)"
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def check_rows(
    ctx: Context,
    bad: pd.Series,
    values: pd.Series | Callable[[Any], str],
    name: str,
    problem: str,
    fix: str,
) -> None:
    """Raise if any entry of the boolean Series `bad` is True.

    `problem` is a noun phrase with a ``{s}`` placeholder for the plural, e.g.
    ``"non-numeric value{s}"``; `name` is the column as shown (with backticks). The message
    quotes the first offending entry of `values`, or, when `values` is a callable, what it
    returns for that row (so that details are only formatted when there is an error).
    """
    if not bad.any():
        return
    rows = bad.index[bad.to_numpy(dtype=bool)]
    count = len(rows)
    first = "at" if count == 1 else "first at"
    what = problem.format(s="" if count == 1 else "s")
    detail = values(rows[0]) if callable(values) else show(values.loc[rows[0]])
    error = ctx.error(
        f"column {name} has {count} {what}, {first} {ctx.where(rows[0])}: {detail}. {fix}"
    )
    found = _COLLECTED.get()
    if found is None:
        raise error
    found.append(error)


#: Problems found by :func:`check_rows` while :func:`collecting` (None: raise at once).
_COLLECTED: ContextVar[list[DataError] | None] = ContextVar("cellkin_collected", default=None)


@contextmanager
def collecting() -> Iterator[list[DataError]]:
    """Within the block, :func:`check_rows` records its problems instead of raising.

    Used to report every row-level problem of a table in one pass (``cellkin validate``): the
    reader goes on after a problem, so what it returns is not valid, and a later step may fail
    because of an earlier problem; the caller reports the recorded problems and drops the
    result. Thread- and task-local (a :class:`contextvars.ContextVar`).
    """
    found: list[DataError] = []
    token = _COLLECTED.set(found)
    try:
        yield found
    finally:
        _COLLECTED.reset(token)


def map_unique(values: pd.Series, func: Callable[[Any], Any], missing: Any = np.nan) -> pd.Series:
    """Apply `func` once per distinct non-missing value; missing values become `missing`.

    Returns an object Series. Much faster than ``Series.map`` on long columns of few values.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.empty(len(uniques) + 1, dtype=object)
    for i, value in enumerate(uniques):
        mapped[i] = func(value)
    mapped[-1] = missing  # code -1 marks missing values
    return pd.Series(mapped[codes], index=values.index, dtype=object)


def pair(first: pd.Series, second: pd.Series, labels: tuple[str, str]) -> Callable[[Any], str]:
    """Describe a row by two values, e.g. ``value 50.0, lloq 10.0`` (for `check_rows`)."""
    return lambda row: f"{labels[0]} {show(first[row])}, {labels[1]} {show(second[row])}"


def require_columns(
    ctx: Context, columns: Sequence[str], required: Sequence[str], hint: str = ""
) -> None:
    """Raise if a required column is missing, suggesting close matches (difflib)."""
    present = {str(col).casefold() for col in columns}
    missing = [name for name in required if name.casefold() not in present]
    if not missing:
        return
    folded = {str(col).casefold(): str(col) for col in columns}
    parts = []
    for name in missing:
        close = difflib.get_close_matches(name.casefold(), list(folded), n=2, cutoff=0.6)
        guess = " or ".join(f"`{folded[c]}`" for c in close)
        parts.append(f"`{name}`" + (f" (did you mean {guess}?)" if guess else ""))
    found = ", ".join(f"`{c}`" for c in columns) or "none"
    noun = "column" if len(missing) == 1 else "columns"
    hint = hint or "Add or rename the column in the file (names are matched in any case)."
    raise ctx.error(f"missing required {noun} {', '.join(parts)}. Columns found: {found}. {hint}")


def _strip_text(values: pd.Series) -> pd.Series:
    """Strip blanks from strings; empty strings and NONMEM's '.' become missing."""
    if values.dtype != object:
        return values
    stripped = map_unique(values, lambda v: v.strip() if isinstance(v, str) else v)
    return stripped.mask(stripped.isin(["", "."]))


def to_float(
    ctx: Context,
    values: pd.Series,
    name: str,
    *,
    fix: str,
    required: bool = False,
    minimum: float | None = None,
    minimum_fix: str = "",
) -> pd.Series:
    """Convert to float64, raising on text, infinities, missing (when `required`) or < `minimum`.

    Text is never guessed at: ``'D7'`` or ``'<LLOQ'`` are errors, not NaN.
    """
    kind = {"M": "dates", "m": "durations", "b": "true/false values"}.get(values.dtype.kind)
    if kind:
        raise ctx.error(f"column {name} holds {kind}, not numbers. {fix}")
    text = _strip_text(values)
    numbers = pd.Series(
        pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan),
        index=values.index,
    )
    check_rows(ctx, text.notna() & numbers.isna(), values, name, "non-numeric value{s}", fix)
    check_rows(ctx, np.isinf(numbers), values, name, "infinite value{s}", fix)
    if required:
        check_rows(ctx, text.isna(), values, name, "missing value{s}", fix)
    if minimum is not None:
        low = numbers < minimum
        check_rows(ctx, low, values, name, f"value{{s}} below {minimum:g}", minimum_fix or fix)
    return numbers


def to_int(
    ctx: Context,
    values: pd.Series,
    name: str,
    low: int,
    high: int,
    *,
    fix: str,
    required: bool = False,
) -> pd.Series:
    """Convert to nullable ``Int64``; values must be whole numbers in ``[low, high]``."""
    numbers = to_float(ctx, values, name, fix=fix, required=required)
    bad = numbers.notna() & ((numbers % 1 != 0) | (numbers < low) | (numbers > high))
    check_rows(ctx, bad, values, name, f"value{{s}} outside the whole numbers {low}–{high}", fix)
    return numbers.astype("Int64")


def to_label(ctx: Context, values: pd.Series, name: str, *, fix: str) -> pd.Series:
    """Convert identifiers to non-empty strings (``1.0`` read from Excel becomes ``'1'``)."""

    def label(value: Any) -> Any:
        if pd.api.types.is_scalar(value) and pd.isna(value):
            return np.nan
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value).strip() or np.nan

    labels = map_unique(values, label)
    check_rows(ctx, labels.isna(), values, name, "empty value{s}", fix)
    return labels


def _parse_bool(value: Any) -> Any:
    """Return True/False/None (missing) or the sentinel ``...`` for an invalid spelling."""
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    key = str(value.item() if isinstance(value, np.generic) else value).strip().casefold()
    if key == "":
        return None
    return True if key in _TRUE else False if key in _FALSE else ...


def to_bool(
    ctx: Context, values: pd.Series, name: str, *, fix: str, required: bool = False
) -> pd.Series:
    """Convert Y/N, yes/no, 1/0, true/false (any case) to bool.

    Returns ``bool`` when no entry is missing and pandas' nullable ``boolean`` otherwise.
    """
    parsed = map_unique(values, _parse_bool)
    spelled = "; use one of Y/N, yes/no, 1/0, true/false."
    check_rows(ctx, parsed.eq(...), values, name, "invalid flag{s}", fix + spelled)
    parsed = parsed.mask(parsed.eq(...), None)  # only when collecting problems
    missing = parsed.isna()
    if required:
        check_rows(ctx, missing, values, name, "missing flag{s}", fix)
    if missing.any():
        return parsed.astype("boolean")
    return parsed.astype(bool)


def _choice(choices: Mapping[str, str], value: Any) -> Any:
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return np.nan
    key = str(value).casefold().replace(" ", "_").replace("-", "_")
    return choices.get(key, np.nan)


def to_choice(
    ctx: Context,
    values: pd.Series,
    name: str,
    choices: Mapping[str, str],
    *,
    fix: str,
    required: bool = False,
) -> pd.Series:
    """Map spellings to canonical codes; `choices` maps a folded spelling to its code.

    Spellings are compared after case folding, with spaces and hyphens read as underscores.
    """
    text = _strip_text(values)
    codes = map_unique(text, lambda v: _choice(choices, v))
    allowed = ", ".join(sorted(set(choices.values())))
    message = f"{fix} Allowed: {allowed}."
    check_rows(ctx, text.notna() & codes.isna(), values, name, "unknown code{s}", message)
    if required:
        check_rows(ctx, text.isna(), values, name, "missing value{s}", message)
    return codes.astype(object)


def check_unique(ctx: Context, frame: pd.DataFrame, keys: list[str], fix: str) -> None:
    """Raise if two rows share the same `keys`, citing the rows of the first repeat."""
    dup = frame.duplicated(keys, keep=False)
    if not dup.any():
        return
    first = frame.index[dup.to_numpy()][0]
    key = tuple(frame.loc[first, keys])
    same = frame.index[dup.to_numpy() & (frame[keys] == key).all(axis=1).to_numpy()]
    rows = ", ".join(str(r) for r in same[:5])
    columns = ", ".join(f"`{k}`" for k in keys)
    described = ", ".join(f"{k} {show(v)}" for k, v in zip(keys, key, strict=True))
    raise ctx.error(
        f"{'column' if len(keys) == 1 else 'columns'} {columns} must identify one row, but "
        f"{described} is on rows {rows} ({int(dup.sum())} rows affected). {fix}"
    )


def match_columns(ctx: Context, columns: Sequence[str], names: Collection[str]) -> list[str]:
    """Return the columns whose case-folded name is in `names` (raise on case twins)."""
    found = [col for col in columns if col.casefold() in names]
    folded = [col.casefold() for col in found]
    twins = [col for col in found if folded.count(col.casefold()) > 1]
    if twins:
        listed = " and ".join(f"`{c}`" for c in twins)
        raise ctx.error(
            f"ambiguous column mapping: columns {listed} differ only in case. Rename or drop "
            "one of them, or pass `mapping=` to say which column is which."
        )
    return found


def apply_converters(
    frame: pd.DataFrame, converters: Mapping[str, Callable[[pd.Series, str], pd.Series]]
) -> pd.DataFrame:
    """Replace each column named in `converters` that is present by its converted values."""
    out = frame.copy()
    for column, convert in converters.items():
        if column in out.columns:
            out[column] = convert(out[column], f"`{column}`")
    return out
