"""Inputs shared by the exposure analyses (private): metrics rows, outcomes, exclusions.

Used by :func:`cellkin.metrics.exposure_response`, :func:`~cellkin.metrics.exposure_survival`,
:func:`~cellkin.metrics.dose_exposure` and :func:`~cellkin.metrics.exposure_by_outcome`:

* :func:`select_metrics` — the metrics rows of one assay, one per subject, numeric columns;
* :func:`exposure_records` — ``subject, value, exclude_reason`` for every subject of the
  metrics or subject table ('' = usable on the log scale), so that exclusions are counted,
  never silent;
* :func:`outcome_events` — a binary outcome per subject from a 0/1 column, ``"responder"``
  (derived from ``bor``) or a threshold such as ``"crs>=2"``;
* :class:`ResultFaces` — the people-facing parts every exposure result shares.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cellkin._display import Summary
from cellkin._tables import first_subject, require
from cellkin._validation import show
from cellkin.errors import DataError, OptionError

__all__ = [
    "ResultFaces",
    "check_subjects",
    "exposure_records",
    "names",
    "outcome_events",
    "select_metrics",
    "summarise_exclusions",
]

_ALIASES = {"crs": "crs_grade", "icans": "icans_grade"}
_OPERATORS = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less,
              "==": np.equal}  # fmt: skip
_SPEC = re.compile(r"^\s*([A-Za-z_]\w*)\s*(>=|<=|==|>|<)\s*([-+]?\d+(?:\.\d*)?)\s*$")
_TRUE, _FALSE = {"true", "yes", "y", "1"}, {"false", "no", "n", "0"}
_FIX = "Pass the output of cellkin.nca(...) or of a fit's .metrics()."


# --------------------------------------------------------------------------------- inputs


def names(value: str | Sequence[str], argument: str) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else tuple(value)
    if not names or not all(isinstance(name, str) and name for name in names):
        raise OptionError(f"`{argument}` must be a name or a sequence of names, got {value!r}")
    return names


def select_metrics(
    metrics: pd.DataFrame, assay: str | None, columns: Sequence[str]
) -> pd.DataFrame:
    """The rows of one assay, one per subject, with numeric exposure columns."""
    require(metrics, ["subject", *columns], "metrics", _FIX)
    rows = metrics
    if "assay" in metrics.columns:
        found = sorted(map(str, metrics["assay"].dropna().unique()))
        if assay is None and len(found) > 1:
            raise DataError(f"`metrics` holds several assays {found}; pass `assay=` with one.")
        if assay is not None:
            rows = metrics[metrics["assay"] == assay]
            if rows.empty:
                raise DataError(
                    f"`metrics` has no rows for assay {assay!r} (assays found: {found}). Pass "
                    "`assay=` with one of them."
                )
    duplicated = rows["subject"].duplicated().to_numpy()
    if duplicated.any():
        raise DataError(
            f"`metrics` has more than one row for {first_subject(rows, duplicated)} "
            f"(assay {assay!r}); keep one row per subject and assay."
        )
    for column in columns:
        values = pd.to_numeric(rows[column], errors="coerce")
        bad = values.isna().to_numpy() & rows[column].notna().to_numpy()
        if bad.any():
            raise DataError(
                f"`metrics` column `{column}` must be numeric; {first_subject(rows, bad)} has "
                f"{show(rows[column].to_numpy()[np.flatnonzero(bad)[0]])}."
            )
    return rows


def check_subjects(subjects: pd.DataFrame) -> None:
    require(subjects, ["subject"], "subjects", "Read the table with cellkin.read_subjects.")
    duplicated = subjects["subject"].duplicated().to_numpy()
    if duplicated.any():
        where = first_subject(subjects, duplicated)
        raise DataError(f"`subjects` lists {where} more than once; keep one row per subject.")


def _metric_reason(row: pd.Series, column: str) -> str:
    """Why `column` is missing in a metrics row: its part of ``exclude_reason`` if there."""
    text = row.get("exclude_reason", "")
    text = "" if not isinstance(text, str) else text
    for part in re.split(r"; (?=\w+: )", text):
        if part.startswith(f"{column}: "):
            return part[len(column) + 2 :]
    return f"missing value ({text})" if text else "missing value"


def exposure_records(
    rows: pd.DataFrame, subjects: pd.DataFrame, column: str, assay: str | None
) -> pd.DataFrame:
    """``subject, value, exclude_reason`` for every subject of either table ('' = usable)."""
    indexed = rows.set_index("subject")
    known = set(subjects["subject"])
    order = list(subjects["subject"]) + [s for s in indexed.index if s not in known]
    values, reasons = [], []
    for subject in order:
        if subject not in indexed.index:
            value, reason = np.nan, f"no {assay} metrics row" if assay else "no metrics row"
        else:
            row = indexed.loc[subject]
            value = float(pd.to_numeric(pd.Series([row[column]]), errors="coerce").iloc[0])
            if "success" in row.index and pd.notna(row["success"]) and not bool(row["success"]):
                reason = "model fit did not converge"
            elif np.isnan(value):
                reason = _metric_reason(row, column)
            elif not np.isfinite(value) or value <= 0:
                reason = f"non-positive or infinite value {value:g} (log scale needs > 0)"
            else:
                reason = "" if subject in known else "not in `subjects`"
        values.append(value)
        reasons.append(reason)
    return pd.DataFrame({"subject": order, "value": values, "exclude_reason": reasons})


# -------------------------------------------------------------------------------- outcomes


def _binary(values: pd.Series, frame: pd.DataFrame, column: str) -> np.ndarray:
    """A 0/1/boolean column as floats (NaN = missing), raising on anything else."""

    def convert(value: Any) -> float:
        if pd.api.types.is_scalar(value) and pd.isna(value):
            return np.nan
        if isinstance(value, str):
            key = value.strip().lower()
            return 1.0 if key in _TRUE else 0.0 if key in _FALSE else -1.0
        try:
            number = float(value)
        except (TypeError, ValueError):
            return -1.0
        return number if number in (0.0, 1.0) else -1.0

    out = np.array([convert(value) for value in values], dtype=float)
    bad = out == -1.0
    if bad.any():
        raise DataError(
            f"`subjects` column `{column}` must be 0/1 or True/False; {first_subject(frame, bad)}"
            f" has {show(values.to_numpy()[np.flatnonzero(bad)[0]])}. For a grade, give a "
            f"threshold such as '{column}>=2'."
        )
    return out


def outcome_events(subjects: pd.DataFrame, spec: str) -> tuple[pd.Series, str]:
    """Outcome per subject (1/0, NaN missing) and the column it came from."""
    match = _SPEC.match(spec)
    if match is None:
        name = spec.strip()
        if name == "responder" and "responder" not in subjects and "bor" in subjects:
            codes = subjects["bor"].astype("string").str.strip().str.upper()
            event = codes.isin(["CR", "PR"]).astype(float).where(codes.notna())
            return pd.Series(event.to_numpy(float), index=subjects["subject"]), "bor"
        require(subjects, [name], "subjects", "Name a 0/1 column or a threshold like 'crs>=2'.")
        return pd.Series(_binary(subjects[name], subjects, name), index=subjects["subject"]), name
    name, operator, threshold = match.groups()
    if name not in subjects and name in _ALIASES:
        name = _ALIASES[name]
    require(subjects, [name], "subjects", "Name a column of `subjects` in the outcome.")
    values = pd.to_numeric(subjects[name].astype(object), errors="coerce").to_numpy(float)
    bad = np.isnan(values) & subjects[name].notna().to_numpy()
    if bad.any():
        raise DataError(f"`subjects` column `{name}` must be numeric for {spec!r}; "
                        f"{first_subject(subjects, bad)} is not.")  # fmt: skip
    with np.errstate(invalid="ignore"):
        event = _OPERATORS[operator](values, float(threshold)).astype(float)
    return pd.Series(np.where(np.isnan(values), np.nan, event), index=subjects["subject"]), name


# ------------------------------------------------------------------------------ exclusions


def summarise_exclusions(excluded: pd.DataFrame, shown: int = 5) -> str:
    """'A, B: reason; C: other reason' grouping subjects by the first clause of the reason."""
    if excluded.empty:
        return ""
    key = excluded["exclude_reason"].str.split("; ").str[0].str.replace(r"\s*\([^)]*\)", "",
                                                                          regex=True)  # fmt: skip
    parts = []
    for reason, ids in excluded.groupby(key, sort=False)["subject"]:
        names = [str(s) for s in ids]
        more = f" and {len(names) - shown} more" if len(names) > shown else ""
        parts.append(f"{', '.join(names[:shown])}{more}: {reason}")
    return "; ".join(parts)


class ResultFaces:
    """Shared people-facing pieces of the exposure results (``exclusions``, HTML)."""

    data: pd.DataFrame

    @property
    def exclusions(self) -> pd.DataFrame:
        """The excluded records of :attr:`data`, each with its ``exclude_reason``."""
        return self.data.loc[~self.data["included"]].reset_index(drop=True)

    def summary(self) -> Summary:  # pragma: no cover - overridden
        raise NotImplementedError

    def _excluded_table(self, keys: Sequence[str]) -> tuple[str, pd.DataFrame]:
        shown = self.exclusions[[*keys, "subject", "exclude_reason"]].drop_duplicates()
        return ("Excluded (not in the log-scale analyses)", shown)

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()
