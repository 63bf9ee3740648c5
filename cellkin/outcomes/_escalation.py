"""3+3 dose escalation: the decision rule, and the decisions and MTD of an observed trial.

* :func:`three_plus_three_decision` — the 3+3 rule on one dose level's counts (the only copy
  of the rule in cellkin; the trial simulator calls it too);
* :func:`three_plus_three` — the decision per cohort and dose level of an observed trial and
  the maximum tolerated dose (MTD) [1]_, as a :class:`ThreePlusThreeResult`.

References
----------
.. [1] Storer, B. E. (1989). Design and analysis of phase I clinical trials. Biometrics 45(3),
   925–937. doi:10.2307/2531693
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from cellkin._display import Summary
from cellkin._tables import require
from cellkin.errors import DataError, OptionError
from cellkin.outcomes._groups import ordered_groups
from cellkin.outcomes._safety import subject_dlt

__all__ = ["ThreePlusThreeResult", "three_plus_three", "three_plus_three_decision"]


_NOT_JUDGED = "beyond 3+3 (not judged)"
Decision = Literal["escalate", "expand", "stop", "incomplete"]


def three_plus_three_decision(n_evaluable: int, n_dlt: int) -> Decision:
    """The 3+3 rule: what to do at a dose level after ``n_dlt`` DLTs in ``n_evaluable`` subjects.

    The one implementation of the rule [1]_, used to judge observed cohorts
    (:func:`three_plus_three`) and to run simulated escalations
    (:func:`cellkin.simulate.virtual_trial` with ``design="3+3"``).

    Parameters
    ----------
    n_evaluable : int
        Evaluable subjects treated so far at the dose level (the first six count).
    n_dlt : int
        Those of them with a dose-limiting toxicity.

    Returns
    -------
    {"escalate", "expand", "stop", "incomplete"}
        ``"stop"`` when ≥ 2 DLTs (≥ 2/3 or ≥ 2/6: the level exceeds the MTD, de-escalate);
        otherwise ``"incomplete"`` with fewer than 3 evaluable subjects, ``"escalate"`` at
        0/3, ``"expand"`` at 1/3 (treat 3 more at this level) and ``"escalate"`` at ≤ 1/6.

    Examples
    --------
    >>> [three_plus_three_decision(3, k) for k in (0, 1, 2)]
    ['escalate', 'expand', 'stop']
    >>> three_plus_three_decision(6, 1), three_plus_three_decision(2, 0)
    ('escalate', 'incomplete')
    """
    n, dlts = int(n_evaluable), int(n_dlt)
    if not 0 <= dlts <= n:
        raise OptionError(
            f"need 0 <= n_dlt <= n_evaluable, got n_dlt={n_dlt!r}, n_evaluable={n_evaluable!r}"
        )
    if dlts >= 2:
        return "stop"
    if n < 3:
        return "incomplete"
    if n < 6:
        return "escalate" if dlts == 0 else "expand"
    return "escalate"


def _dose_order(subjects: pd.DataFrame, column: str, order: Sequence[Any] | None) -> list:
    levels = list(pd.unique(subjects[column]))
    if order is not None:
        missing = [level for level in levels if level not in list(order)]
        if missing:
            raise DataError(f"dose level {missing[0]!r} is not in `dose_order`; add it.")
        return [level for level in order if level in levels]
    if "dose" in subjects.columns:
        dose = pd.to_numeric(subjects["dose"], errors="coerce").groupby(subjects[column]).median()
        if dose.notna().all():
            return sorted(levels, key=lambda level: (dose[level], str(level)))
    return ordered_groups(subjects[column])


def _level_cohorts(level: Any, ids: np.ndarray, dlt: np.ndarray, size: int) -> list[dict]:
    """Cohorts of one dose level in enrolment order; those past 6 subjects are not judged."""
    rows, cum_n, cum_dlt = [], 0, 0
    for number, start in enumerate(range(0, len(ids), size), start=1):
        chunk = slice(start, start + size)
        n, k = len(ids[chunk]), int(dlt[chunk].sum())
        used = cum_n < 6
        if used:
            cum_n, cum_dlt = cum_n + n, cum_dlt + k
        decision = three_plus_three_decision(cum_n, cum_dlt) if used else _NOT_JUDGED
        rows.append(
            {"dose_level": level, "cohort": number, "subjects": ", ".join(ids[chunk]), "n": n,
             "n_dlt": k, "cum_n": cum_n, "cum_dlt": cum_dlt, "decision": decision}
        )  # fmt: skip
    return rows


@dataclass(frozen=True, eq=False)
class ThreePlusThreeResult:
    """3+3 dose-escalation decisions and the MTD (frozen).

    Attributes
    ----------
    cohorts : pandas.DataFrame
        One row per cohort (consecutive evaluable subjects at a dose level, in enrolment
        order): ``dose_level, cohort, subjects, n, n_dlt, cum_n, cum_dlt, decision`` with the
        decision after that cohort: ``escalate`` (0/3 or ≤ 1/6), ``expand`` (1/3: treat 3 more
        at this level), ``stop`` (≥ 2/3 or ≥ 2/6: the level exceeds the MTD, de-escalate) or
        ``incomplete`` (fewer than 3 evaluable).
    dose_levels : pandas.DataFrame
        One row per dose level (lowest first): ``dose_level, n_evaluable, n_dlt`` (the first
        six evaluable subjects), ``decision`` (after its last judged cohort), ``n_beyond``
        (evaluable subjects past six, not judged), ``n_excluded`` (not evaluable or excluded
        cohorts) and ``is_mtd``.
    mtd : object or None
        The MTD: the highest dose level below the lowest ``stop`` level with ≥ 6 evaluable
        subjects and ≤ 1 DLT; None when there is none.
    mtd_exceeded : bool
        Whether some dose level was stopped (when False, the MTD is the highest level tested
        with ≤ 1/6 and the true MTD may be higher).
    """

    cohorts: pd.DataFrame
    dose_levels: pd.DataFrame
    mtd: Any
    mtd_exceeded: bool

    def to_frame(self) -> pd.DataFrame:
        """The per-dose-level table (a copy)."""
        return self.dose_levels.copy()

    def summary(self) -> Summary:
        """Decisions per cohort and dose level, and the MTD, for people."""
        mtd = "not determined" if self.mtd is None else repr(self.mtd)
        note = f"MTD: {mtd}" + ("" if self.mtd_exceeded else " (no dose level exceeded it)")
        tables = (("Dose levels", self.dose_levels), ("Cohorts", self.cohorts))
        return Summary("3+3 dose escalation", tables, (note,))

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


def three_plus_three(
    subjects: pd.DataFrame,
    adverse_events: pd.DataFrame | None = None,
    *,
    dose_column: str = "dose_level",
    dose_order: Sequence[Any] | None = None,
    cohort_size: int = 3,
    exclude_cohorts: Sequence[str] = ("expansion",),
    window_days: float | None = None,
) -> ThreePlusThreeResult:
    """The 3+3 dose-escalation decision per cohort and dose level, and the MTD.

    Subjects are taken in the row order of `subjects` (enrolment order) and, per dose level,
    grouped into cohorts of `cohort_size` evaluable subjects. After each cohort the cumulative
    count at that level decides: 0/3 → escalate; 1/3 → expand (3 more); ≤ 1/6 → escalate;
    ≥ 2/3 or ≥ 2/6 → stop (the level exceeds the MTD; de-escalate) [1]_. Subjects past the first
    six at a level are listed but not judged. The MTD is the highest dose level below the
    lowest stopped level that has ≥ 6 evaluable subjects with ≤ 1 DLT.

    Parameters
    ----------
    subjects : pandas.DataFrame
        One row per subject in enrolment order with ``subject``, `dose_column` and ``dlt``
        (unless `adverse_events` is given; see :func:`dlt_table`). Subjects with unknown DLT
        status are not evaluable and are skipped.
    adverse_events : pandas.DataFrame, optional
        AE table with a ``dlt`` flag, as for :func:`dlt_table`.
    dose_column : str, default "dose_level"
        Dose level of each subject.
    dose_order : sequence, optional
        Dose levels from lowest to highest. Default: by the median ``dose`` of each level when
        a numeric ``dose`` column exists, else sorted labels.
    cohort_size : int, default 3
        Subjects per cohort.
    exclude_cohorts : sequence of str, default ("expansion",)
        Rows whose ``cohort`` column (when present) has one of these labels (case-insensitive)
        are not part of the escalation.
    window_days : float, optional
        DLT window for AE-derived DLTs (see :func:`dlt_table`).

    Returns
    -------
    ThreePlusThreeResult
        ``.cohorts``, ``.dose_levels``, ``.mtd``, ``.mtd_exceeded``, ``.summary()``.

    References
    ----------
    .. [1] Storer (1989), Biometrics 45:925–937, doi:10.2307/2531693
    """
    if int(cohort_size) < 1:
        raise OptionError(f"`cohort_size` must be a positive whole number, got {cohort_size!r}")
    require(subjects, ["subject", dose_column], "subjects", "Pass `dose_column=`.")
    dlt = subject_dlt(subjects, adverse_events, window_days)
    used = dlt.notna().to_numpy()
    if "cohort" in subjects.columns:
        skip = {label.casefold() for label in exclude_cohorts}
        used &= ~subjects["cohort"].astype(str).str.casefold().isin(skip).to_numpy()
    ids = subjects["subject"].astype(str).to_numpy()
    cohorts, levels = [], []
    for level in _dose_order(subjects, dose_column, dose_order):
        here = used & (subjects[dose_column] == level).to_numpy()
        rows = _level_cohorts(level, ids[here], dlt.to_numpy()[here].astype(bool), cohort_size)
        cohorts += rows
        judged = [row for row in rows if row["decision"] != _NOT_JUDGED]
        last: dict[str, Any] = (
            judged[-1] if judged else {"cum_n": 0, "cum_dlt": 0, "decision": "not treated"}
        )
        levels.append(
            {"dose_level": level, "n_evaluable": last["cum_n"], "n_dlt": last["cum_dlt"],
             "decision": last["decision"], "n_beyond": int(here.sum()) - last["cum_n"],
             "n_excluded": int((subjects[dose_column] == level).sum() - here.sum())}
        )  # fmt: skip
    table = pd.DataFrame(levels)
    stopped = np.flatnonzero(table["decision"] == "stop")
    top = stopped[0] if stopped.size else len(table)
    ok = (table["n_evaluable"] >= 6) & (table["n_dlt"] <= 1) & (np.arange(len(table)) < top)
    mtd = table["dose_level"][ok].iloc[-1] if ok.any() else None
    mtd = mtd.item() if isinstance(mtd, np.generic) else mtd
    table["is_mtd"] = ok & (table["dose_level"] == mtd)
    return ThreePlusThreeResult(
        cohorts=pd.DataFrame(cohorts),
        dose_levels=table,
        mtd=mtd,
        mtd_exceeded=bool(stopped.size),
    )
