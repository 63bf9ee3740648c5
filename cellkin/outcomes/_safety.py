"""Safety tables: treatment-emergent adverse events, CRS/ICANS grades and DLT rates.

* :func:`teae_table` — treatment-emergent AE (TEAE) incidence by system organ class (SOC) and
  term, counting each subject once at their worst grade;
* :func:`grade_distribution` — subjects by worst CRS or ICANS grade (ASTCT consensus grading
  [1]_) per dose level;
* :func:`dlt_table` — dose-limiting toxicity rate per dose level with the exact
  Clopper–Pearson interval [2]_ (the 3+3 escalation decisions are in
  :func:`cellkin.outcomes.three_plus_three`).

Percentages (``pct_*``) are 0–100 % of the subjects in the group (the safety population: every
infused subject in the subject table); rates (``*_rate``) are proportions.

References
----------
.. [1] Lee, D. W. et al. (2019). ASTCT consensus grading for cytokine release syndrome and
   neurologic toxicity associated with immune effector cells. Biol Blood Marrow Transplant
   25(4), 625–638. doi:10.1016/j.bbmt.2018.12.758
.. [2] Clopper, C. J. & Pearson, E. S. (1934). Biometrika 26(4), 404–413.
   doi:10.1093/biomet/26.4.404
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from cellkin._display import Summary
from cellkin._stats import check_confidence, clopper_pearson
from cellkin._tables import first_subject, require
from cellkin._validation import show
from cellkin.errors import DataError, DataWarning, OptionError
from cellkin.io import read_adverse_events
from cellkin.outcomes._groups import OVERALL, group_labels, ordered_groups

__all__ = ["TEAETable", "dlt_table", "grade_distribution", "subject_dlt", "teae_table"]

#: Default 3-month TEAE window (days after infusion; 3 × 365.25/12 rounded).
TEAE_WINDOW_DAYS = 91
#: Terms (case-insensitive) that identify CRS and ICANS in an adverse-event table.
EVENT_TERMS = {
    "crs": ("cytokine release syndrome", "crs"),
    "icans": ("immune effector cell-associated neurotoxicity syndrome", "icans"),
}
_NO_SOC = "(SOC not coded)"
_GRADES = range(1, 6)


def _population(subjects: pd.DataFrame, by: str | None) -> pd.DataFrame:
    """subject → group for the safety population (every row of `subjects`)."""
    require(subjects, ["subject"], "subjects")
    if subjects["subject"].duplicated().any():
        dup = subjects["subject"].duplicated()
        raise DataError(
            f"`subjects` lists {first_subject(subjects, dup)} more than once; give each subject "
            "one row."
        )
    groups = group_labels(subjects, by, "subjects")
    return pd.DataFrame({"subject": subjects["subject"].astype(str), "group": groups.to_numpy()})


def _adverse_events(adverse_events: pd.DataFrame, population: pd.DataFrame) -> pd.DataFrame:
    """Validated AE table (cellkin.io) restricted to known subjects, with SOC filled in."""
    events = read_adverse_events(adverse_events)
    events["subject"] = events["subject"].astype(str)
    unknown = ~events["subject"].isin(population["subject"])
    if unknown.any():
        raise DataError(
            f"`adverse_events` has events for {first_subject(events, unknown)} who is not in "
            "`subjects` (the safety population). Add the subject or drop the events."
        )
    soc = events["soc"] if "soc" in events.columns else pd.Series(np.nan, index=events.index)
    events["soc"] = soc.fillna(_NO_SOC).astype(str)
    events["grade"] = events["grade"].astype(int)
    return events


def _worst_counts(worst: pd.Series, n_population: int) -> dict[str, Any]:
    """Counts from one worst grade per subject (a Series indexed by subject)."""
    row: dict[str, Any] = {"n_population": n_population, "n_any": int(worst.size)}
    row["pct_any"] = 100.0 * worst.size / n_population if n_population else np.nan
    row["n_grade_3plus"] = int((worst >= 3).sum())
    row["pct_grade_3plus"] = 100.0 * row["n_grade_3plus"] / n_population if n_population else np.nan
    row.update({f"worst_grade_{g}": int((worst == g).sum()) for g in _GRADES})
    return row


def _incidence(events: pd.DataFrame, group: Any, n_population: int) -> list[dict]:
    """Incidence rows of one group: any TEAE, then each SOC followed by its terms."""
    rows = [{"group": group, "level": "any", "soc": "Any TEAE", "term": ""}]
    rows[0].update(_worst_counts(events.groupby("subject")["grade"].max(), n_population))
    by_soc = events.groupby(["soc", "subject"])["grade"].max()
    soc_order = sorted(by_soc.index.unique(0), key=lambda s: (-by_soc[s].size, s))
    for soc in soc_order:
        rows.append({"group": group, "level": "soc", "soc": soc, "term": ""})
        rows[-1].update(_worst_counts(by_soc[soc], n_population))
        mine = events[events["soc"] == soc]
        by_term = mine.groupby(["term", "subject"])["grade"].max()
        for term in sorted(by_term.index.unique(0), key=lambda t: (-by_term[t].size, t)):
            rows.append({"group": group, "level": "term", "soc": soc, "term": term})
            rows[-1].update(_worst_counts(by_term[term], n_population))
    return rows


@dataclass(frozen=True, eq=False)
class TEAETable:
    """Treatment-emergent adverse events: flags, incidence and the grade ≥ 3 table (frozen).

    Attributes
    ----------
    window_days : float or None
        TEAE window: onset on or after day 0 and on or before this day (None = no limit).
    events : pandas.DataFrame
        The validated adverse events with a ``teae`` (bool) column.
    incidence : pandas.DataFrame
        One row per group × level (``any``, ``soc``, ``term``), ordered as a report is (any
        TEAE; then each SOC by decreasing frequency, followed by its terms). Columns ``group,
        level, soc, term, n_population`` (subjects in the group), ``n_any, pct_any`` (subjects
        with at least one such TEAE), ``n_grade_3plus, pct_grade_3plus`` (subjects whose worst
        grade is ≥ 3) and ``worst_grade_1`` … ``worst_grade_5`` (subjects by worst grade).
    grade3 : pandas.DataFrame
        The rows of `incidence` with at least one grade ≥ 3 subject, with the grade 3–5 counts.
    """

    window_days: float | None
    events: pd.DataFrame
    incidence: pd.DataFrame
    grade3: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """The incidence table (a copy)."""
        return self.incidence.copy()

    def summary(self) -> Summary:
        """Incidence by SOC/term and the grade ≥ 3 table, for people."""
        window = "no upper limit" if self.window_days is None else f"days 0–{self.window_days:g}"
        cols = ["group", "soc", "term", "n_any", "pct_any", "n_grade_3plus", "pct_grade_3plus"]
        tables = (("TEAE incidence", self.incidence[cols]), ("Grade >= 3 TEAEs", self.grade3))
        note = f"TEAE: onset {window} after infusion; each subject counted once, at worst grade."
        return Summary("Treatment-emergent adverse events", tables, (note,))

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


def teae_table(
    adverse_events: pd.DataFrame,
    subjects: pd.DataFrame,
    *,
    window_days: float | None = TEAE_WINDOW_DAYS,
    by: str | None = None,
) -> TEAETable:
    """Treatment-emergent adverse event incidence by SOC and term, at worst grade per subject.

    An AE is treatment-emergent when its onset is on or after the infusion (day 0) and on or
    before `window_days` (the study's 3 months by default). Each subject counts once per row
    (any TEAE, SOC or term), at the worst grade of the TEAEs in that row.

    Parameters
    ----------
    adverse_events : pandas.DataFrame
        Canonical AE table (:func:`cellkin.io.read_adverse_events`; validated again here):
        ``subject, term, grade`` (CTCAE/ASTCT 1–5), ``onset_day`` and optionally ``soc``
        (missing SOC is shown as "(SOC not coded)").
    subjects : pandas.DataFrame
        The safety population: one row per infused subject (``subject``, and `by`).
    window_days : float or None, default 91
        Last onset day counted (inclusive); None for no limit.
    by : str, optional
        Column of `subjects` to group by (e.g. ``"dose_level"``); the pooled group ``"all"``
        is always included.

    Returns
    -------
    TEAETable
        With ``.incidence``, ``.grade3``, ``.events`` (``teae`` flag), ``.to_frame()``,
        ``.summary()``.

    Raises
    ------
    DataError
        If an AE belongs to a subject not in `subjects`, or a table is invalid.
    """
    if window_days is not None and not window_days >= 0:
        raise OptionError(f"`window_days` must be >= 0 or None, got {window_days!r}")
    population = _population(subjects, by)
    events = _adverse_events(adverse_events, population)
    upper = np.inf if window_days is None else float(window_days)
    events["teae"] = (events["onset_day"] >= 0) & (events["onset_day"] <= upper)
    teae = events[events["teae"]].merge(population, on="subject")
    rows: list[dict] = []
    groups = ordered_groups(population["group"]) if by is not None else []
    for group in [*groups, OVERALL]:
        mine = teae if group == OVERALL else teae[teae["group"] == group]
        n = len(population) if group == OVERALL else int((population["group"] == group).sum())
        rows += _incidence(mine, group, n)
    incidence = pd.DataFrame(rows)
    grade_cols = ["worst_grade_3", "worst_grade_4", "worst_grade_5"]
    keep = ["group", "level", "soc", "term", "n_population", *grade_cols]
    grade3 = incidence.loc[incidence["n_grade_3plus"] > 0, [*keep, "n_grade_3plus"]]
    grade3 = grade3.assign(pct_grade_3plus=incidence["pct_grade_3plus"]).reset_index(drop=True)
    return TEAETable(window_days=window_days, events=events, incidence=incidence, grade3=grade3)


# ---------------------------------------------------------------------------- CRS and ICANS


def _worst_event_grade(
    data: pd.DataFrame, event: str, subjects: pd.DataFrame | None, terms: Sequence[str] | None
) -> tuple[pd.DataFrame, pd.Series]:
    """(subject table, worst grade per subject row) from a subject or an AE table."""
    column = f"{event}_grade"
    if column in data.columns:
        grades = pd.to_numeric(data[column], errors="coerce")
        bad = grades.isna() | ~grades.isin(range(6))
        if bad.any():
            raise DataError(
                f"`{column}` must be a whole grade 0–5 (0 = no {event.upper()}) for every "
                f"subject; {first_subject(data, bad)} has {show(data[column][bad].iloc[0])}."
            )
        return data, grades.astype(int)
    require(data, ["term"], "data", f"Pass a subject table with `{column}` or an AE table.")
    if subjects is None:
        raise DataError(
            f"from an adverse-event table the subjects without {event.upper()} are unknown; "
            "pass `subjects=` (the safety population) so that they count as grade 0."
        )
    population = _population(subjects, None)
    events = _adverse_events(data, population)
    wanted = {t.casefold() for t in (terms or EVENT_TERMS[event])}
    hits = events[events["term"].str.casefold().isin(wanted)]
    worst = hits.groupby("subject")["grade"].max()
    return subjects, population["subject"].map(worst).fillna(0).astype(int)


def grade_distribution(
    data: pd.DataFrame,
    event: Literal["crs", "icans"] = "crs",
    *,
    subjects: pd.DataFrame | None = None,
    by: str | None = "dose_level",
    terms: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Subjects by worst CRS or ICANS grade (ASTCT), per dose level and overall.

    Parameters
    ----------
    data : pandas.DataFrame
        A subject table with ``crs_grade`` / ``icans_grade`` (0 = none, 1–4 ASTCT, 5 = fatal),
        or an AE table whose ``term`` names the event (see `terms`); the worst grade per
        subject is used, over all events in the table.
    event : {"crs", "icans"}, default "crs"
        Cytokine release syndrome or immune effector cell-associated neurotoxicity syndrome.
    subjects : pandas.DataFrame, optional
        The safety population (required with an AE table: subjects without the event are
        grade 0). Also where `by` is looked up for AE input.
    by : str or None, default "dose_level"
        Grouping column; None for the pooled row only.
    terms : sequence of str, optional
        AE terms that identify the event (case-insensitive). Default: the MedDRA preferred term
        and its abbreviation (:data:`EVENT_TERMS`).

    Returns
    -------
    pandas.DataFrame
        One row per group, then ``"all"``: ``group, n, grade_0 … grade_5`` (subjects by worst
        grade), ``n_any, pct_any`` (grade ≥ 1) and ``n_grade_3plus, pct_grade_3plus`` (%).
    """
    if event not in EVENT_TERMS:
        raise OptionError(f"`event` must be 'crs' or 'icans', got {event!r}")
    table, worst = _worst_event_grade(data, event, subjects, terms)
    labels = group_labels(table, by, "subjects").to_numpy()
    worst = pd.Series(worst.to_numpy(), index=range(len(labels)))
    rows = []
    groups = ordered_groups(pd.Series(labels)) if by is not None else []
    for group in [*groups, OVERALL]:
        grades = worst if group == OVERALL else worst[labels == group]
        n = int(grades.size)
        row: dict[str, Any] = {"group": group, "n": n}
        row.update({f"grade_{g}": int((grades == g).sum()) for g in range(6)})
        for name, hit in (("any", grades >= 1), ("grade_3plus", grades >= 3)):
            row[f"n_{name}"] = int(hit.sum())
            row[f"pct_{name}"] = 100.0 * hit.sum() / n if n else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------ DLT


def subject_dlt(
    subjects: pd.DataFrame, adverse_events: pd.DataFrame | None, window_days: float | None
) -> pd.Series:
    """DLT per row of `subjects`: True/False, or NA when not evaluable."""
    require(subjects, ["subject"], "subjects")
    ids = subjects["subject"].astype(str).to_numpy()
    if adverse_events is None:
        require(subjects, ["dlt"], "subjects", "Give `dlt` per subject or pass adverse_events=.")
        dlt = subjects["dlt"].astype("boolean")
    else:
        events = _adverse_events(adverse_events, _population(subjects, None))
        require(events, ["dlt"], "adverse_events", "Flag the dose-limiting events in `dlt`.")
        upper = np.inf if window_days is None else float(window_days)
        hit = events["dlt"].fillna(False).astype(bool)
        hit &= (events["onset_day"] >= 0) & (events["onset_day"] <= upper)
        with_dlt = set(events.loc[hit, "subject"])
        dlt = pd.Series([s in with_dlt for s in ids], index=subjects.index, dtype="boolean")
        if "dlt" in subjects.columns:
            given = subjects["dlt"].astype("boolean")
            differ = given.notna() & (given != dlt)
            if differ.any():
                warnings.warn(
                    f"`subjects.dlt` disagrees with the DLT-flagged adverse events for "
                    f"{first_subject(subjects, differ.to_numpy())}; using the adverse events.",
                    DataWarning,
                    stacklevel=3,
                )
    if "dlt_evaluable" in subjects.columns:
        dlt = dlt.mask(~subjects["dlt_evaluable"].fillna(False).astype(bool))
    return dlt


def dlt_table(
    subjects: pd.DataFrame,
    adverse_events: pd.DataFrame | None = None,
    by: str | None = "dose_level",
    *,
    confidence: float = 0.95,
    window_days: float | None = None,
) -> pd.DataFrame:
    """DLT rate per dose level with the exact Clopper–Pearson interval.

    Parameters
    ----------
    subjects : pandas.DataFrame
        One row per infused subject with ``subject``, `by` and — unless `adverse_events` is
        given — ``dlt`` (True/False; empty = not evaluable). An optional ``dlt_evaluable``
        column (False = not evaluable) is respected.
    adverse_events : pandas.DataFrame, optional
        AE table with a ``dlt`` flag: a subject had a DLT when any flagged event starts on or
        after day 0 (and on or before `window_days`). When `subjects` also has ``dlt`` and the
        two disagree, a :class:`~cellkin.errors.DataWarning` is emitted and the AEs are used.
    by : str or None, default "dose_level"
        Grouping column; None for the pooled row only.
    confidence : float, default 0.95
        Level of the exact interval.
    window_days : float, optional
        DLT window end (days after infusion) for AE-derived DLTs; None counts every flagged
        event (the flag itself encodes the protocol's window).

    Returns
    -------
    pandas.DataFrame
        One row per group, then ``"all"``: ``group, n_subjects, n_evaluable, n_dlt, dlt_rate``
        (proportion of evaluable subjects), ``dlt_ci_lower, dlt_ci_upper``.
    """
    level = check_confidence(confidence)
    dlt = subject_dlt(subjects, adverse_events, window_days)
    labels = group_labels(subjects, by, "subjects")
    rows = []
    groups = ordered_groups(labels) if by is not None else []
    for group in [*groups, OVERALL]:
        mine = dlt if group == OVERALL else dlt[labels == group]
        n, k = int(mine.notna().sum()), int(mine.fillna(False).sum())
        lower, upper = clopper_pearson(k, n, level)
        rows.append(
            {"group": group, "n_subjects": int(mine.size), "n_evaluable": n, "n_dlt": k,
             "dlt_rate": k / n if n else np.nan, "dlt_ci_lower": lower, "dlt_ci_upper": upper}
        )  # fmt: skip
    return pd.DataFrame(rows)
