"""Which fits the report's model-based numbers use, and what it says about the others (private).

The model-based tables and figures of the report use the *reliable* fits by default
(:attr:`cellkin.fit.FitResult.reliable`): a fit that converged on numbers its data cannot
support must not pass into a dose-level summary unmarked. The others are not hidden: they are
listed with their reasons (:func:`reliability_tables`) and drawn marked in the figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from cellkin.errors import OptionError
from cellkin.fit import ISSUE_CODES

__all__ = ["MODEL_FITS", "check_model_fits", "reliability_tables", "selected_subjects"]

#: Which fits model-based summaries use: reliable ones (default), every converged one, or all.
MODEL_FITS = ("reliable", "converged", "all")


def check_model_fits(model_fits: str) -> str:
    """``model_fits`` itself when it is one of :data:`MODEL_FITS`; OptionError otherwise."""
    if model_fits not in MODEL_FITS:
        raise OptionError(f"`model_fits` must be one of {MODEL_FITS}, got {model_fits!r}")
    return model_fits


def selected_subjects(batch: Any, model_fits: str) -> list[str]:
    """Subjects whose fits enter the model-based summaries, in batch order."""
    results = batch.results
    keep = {
        "reliable": lambda r: r.reliable,
        "converged": lambda r: r.success,
        "all": lambda r: True,
    }[check_model_fits(model_fits)]
    return [s for s in batch.subjects if s in results and keep(results[s])]


def _groups(batch: Any, subjects: pd.DataFrame | None, by: str | None) -> list[tuple[Any, list]]:
    """``(group, subjects of the batch in it)`` for each group and ``"all"``."""
    order = list(batch.subjects)
    groups: list[tuple[Any, list]] = []
    if by is not None and subjects is not None and by in subjects:
        labels = subjects.drop_duplicates("subject").set_index("subject")[by]
        labelled = pd.Series([labels.get(s) for s in order], index=order)
        groups += [(key, list(part.index)) for key, part in labelled.groupby(labelled)]
    groups.append(("all", order))
    return groups


def _reasons(batch: Any, members: Sequence[str]) -> str:
    """``"code: k; …; not fitted: m"`` over ``members``' fits ("" when every fit is reliable)."""
    counts = dict.fromkeys(ISSUE_CODES, 0)
    for subject in members:
        result = batch.results.get(subject)
        for code in () if result is None else result.issue_codes:
            counts[code] += 1
    parts = [f"{code}: {k}" for code, k in counts.items() if k]
    missing = sum(subject not in batch.results for subject in members)
    if missing:
        parts.append(f"not fitted: {missing}")
    return "; ".join(parts)


def reliability_tables(
    batch: Any, subjects: pd.DataFrame | None, by: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reliability of a batch fit, by group, and the subjects without a reliable fit.

    Returns
    -------
    by_group : pandas.DataFrame
        ``group, n_subjects, n_fitted, n_reliable, reliable (text "k of n"),
        fewer_than_half, reasons`` — one row per group and ``"all"``; ``reasons`` counts
        the fits with each issue code and the subjects not fitted.
    unreliable : pandas.DataFrame
        ``subject, group, fitted, success, issues, detail`` — every subject without a
        reliable fit: its issue codes and messages, or why it was not fitted.
    """
    rows = []
    for key, members in _groups(batch, subjects, by):
        fitted = [s for s in members if s in batch.results]
        reliable = sum(batch.results[s].reliable for s in fitted)
        rows.append({
            "group": key, "n_subjects": len(members), "n_fitted": len(fitted),
            "n_reliable": reliable, "reliable": f"{reliable} of {len(members)}",
            "fewer_than_half": 2 * reliable < len(members), "reasons": _reasons(batch, members),
        })  # fmt: skip
    labels = {s: key for key, members in _groups(batch, subjects, by)[:-1] for s in members}
    failures = batch.failures.groupby("subject", sort=False)["reason"].agg("; ".join)
    listed = []
    for subject in batch.subjects:
        result = batch.results.get(subject)
        if result is not None and result.reliable:
            continue
        listed.append({
            "subject": subject, "group": labels.get(subject, "all"),
            "fitted": result is not None, "success": bool(result is not None and result.success),
            "issues": "not fitted" if result is None else ", ".join(result.issue_codes),
            "detail": failures.get(subject, "") if result is None else
                      "; ".join(issue.message for issue in result.issues),
        })  # fmt: skip
    columns = ["subject", "group", "fitted", "success", "issues", "detail"]
    return pd.DataFrame(rows), pd.DataFrame(listed, columns=columns)
