"""Study tables that agree with each other: subject ids across tables, clinical consistency.

:func:`check_study` returns every problem it finds, in one pass, as a table (never printed,
never raised: the caller decides; ``cellkin validate`` prints it and exits 2 on errors). The
checks and their severity:

=====================================================  =========  ==========================
check                                                  severity   why
=====================================================  =========  ==========================
ids that differ only in case or surrounding blanks     error      ``S01``/``s01`` are one
across or within tables (``normalise_ids=True``:                  subject written twice
note, and :func:`harmonise_ids` rewrites them)
kinetics subjects absent from the subject table        warning    the report groups them as
(and subject-table subjects without samples)                      "unknown dose"
lesion / AE subjects absent from the subject table     warning    they are left out of
                                                                  efficacy / safety
OS shorter than PFS                                    error      progression-free time ends
                                                                  at death at the latest
death (OS event) at the PFS time without a PFS event   error      death is a PFS event
responder with BOR SD/PD/NE, or BOR CR not responder   error      RECIST 1.1 definitions
BOR PR not responder                                   warning    a study may require a
                                                                  confirmed or durable PR
a dose nearer another dose level's than its own        error      the subject is counted in
                                                                  the wrong level
subject ``dlt`` False with an AE flagged DLT           error      the two tables disagree
AE onset before the infusion (day < 0)                 note       not treatment-emergent;
                                                                  lymphodepletion AEs are
                                                                  legitimately recorded
AE, scan or sample after the subject's death           warning    usually a date error
=====================================================  =========  ==========================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from cellkin.io._notes import Note

__all__ = ["PROBLEM_COLUMNS", "check_study", "harmonise_ids"]

#: Columns of the table :func:`check_study` returns.
PROBLEM_COLUMNS = ("severity", "table", "subject", "columns", "message")
_TABLES = ("kinetics", "subjects", "lesions", "adverse_events")


def _ids(table: pd.DataFrame | None) -> list[str]:
    return [] if table is None else [str(s) for s in pd.unique(table["subject"])]


def _spellings(name: str, table: pd.DataFrame | None) -> dict[str, set[str]]:
    """Folded id -> the spellings of the id in one table (with blanks when written so)."""
    found: dict[str, set[str]] = {}
    if table is None:
        return found
    padded = table.attrs.get("cellkin", {}).get("id_spellings", {})
    for subject in _ids(table):
        for written in [subject, *padded.get(subject, [])]:
            found.setdefault(subject.strip().casefold(), set()).add(written)
    return found


def _id_problems(tables: Mapping[str, pd.DataFrame | None], normalise: bool) -> list[dict]:
    seen: dict[str, dict[str, set[str]]] = {}
    for name in _TABLES:
        for folded, spellings in _spellings(name, tables.get(name)).items():
            seen.setdefault(folded, {})[name] = spellings
    rows = []
    for by_table in seen.values():
        distinct = {s for spellings in by_table.values() for s in spellings}
        if len(distinct) < 2:
            continue
        listed = "; ".join(
            f"{', '.join(repr(s) for s in sorted(spellings))} ({name})"
            for name, spellings in by_table.items()
        )
        what = "treated as one subject (normalise_ids=True)" if normalise else (
            "fix the ids, or pass normalise_ids=True (CLI --normalise-ids) to treat them as one"
        )  # fmt: skip
        rows.append(_row("note" if normalise else "error", ", ".join(by_table), sorted(distinct)[0],
                         "subject", f"ids differ only in case or surrounding blanks: {listed}; "
                         f"{what}"))  # fmt: skip
    return rows


def _row(severity: str, table: str, subject: Any, columns: str, message: str) -> dict:
    return {"severity": severity, "table": table, "subject": "" if subject is None else
            str(subject), "columns": columns, "message": message}  # fmt: skip


def _membership(tables: Mapping[str, pd.DataFrame | None]) -> list[dict]:
    subjects = tables.get("subjects")
    if subjects is None:
        return []
    known = {s.strip().casefold() for s in _ids(subjects)}
    rows = []
    consequence = {"kinetics": "the report groups them as 'unknown dose'",
                   "lesions": "they are left out of efficacy", "adverse_events":
                   "they are left out of safety"}  # fmt: skip
    for name in ("kinetics", "lesions", "adverse_events"):
        absent = [s for s in _ids(tables.get(name)) if s.strip().casefold() not in known]
        if absent:
            shown = ", ".join(map(repr, absent[:10])) + (" ..." if len(absent) > 10 else "")
            rows.append(
                _row(
                    "warning",
                    name,
                    absent[0],
                    "subject",
                    f"{len(absent)} subject(s) "
                    f"not in the subject table: {shown}; {consequence[name]}",
                )
            )
    kinetics = tables.get("kinetics")
    if kinetics is not None:
        sampled = {s.strip().casefold() for s in _ids(kinetics)}
        unsampled = [s for s in _ids(subjects) if s.strip().casefold() not in sampled]
        if unsampled:
            rows.append(_row("warning", "subjects", unsampled[0], "subject", f"{len(unsampled)} "
                             f"subject(s) without kinetics samples: "
                             f"{', '.join(map(repr, unsampled[:10]))}"))  # fmt: skip
    return rows


def _survival(subjects: pd.DataFrame) -> list[dict]:
    rows = []
    if {"pfs_days", "os_days"} <= set(subjects.columns):
        bad = subjects["os_days"] < subjects["pfs_days"]
        for _, r in subjects[bad.fillna(False)].iterrows():
            rows.append(
                _row(
                    "error",
                    "subjects",
                    r["subject"],
                    "pfs_days, os_days",
                    f"OS ({r['os_days']:g} d) is shorter than PFS ({r['pfs_days']:g} "
                    "d); progression-free survival ends at death at the latest",
                )
            )
        if {"os_event", "pfs_event"} <= set(subjects.columns):
            death = subjects["os_event"].astype("boolean").fillna(False).astype(bool)
            no_pfs = ~subjects["pfs_event"].astype("boolean").fillna(True).astype(bool)
            bad = death & no_pfs & (subjects["pfs_days"] >= subjects["os_days"]).fillna(False)
            for _, r in subjects[bad].iterrows():
                rows.append(_row("error", "subjects", r["subject"], "pfs_event, os_event",
                                 "died (os_event) at the PFS time without a PFS event; death "
                                 "is a PFS event"))  # fmt: skip
    return rows


def _response(subjects: pd.DataFrame) -> list[dict]:
    if not {"bor", "responder"} <= set(subjects.columns):
        return []
    rows = []
    responder = subjects["responder"].astype("boolean")
    for _, r in subjects[responder.notna() & subjects["bor"].notna()].iterrows():
        said, bor = bool(r["responder"]), r["bor"]
        if said and bor in ("SD", "PD", "NE"):
            rows.append(
                _row(
                    "error",
                    "subjects",
                    r["subject"],
                    "bor, responder",
                    f"responder is True but the best overall response is {bor}",
                )
            )
        elif not said and bor == "CR":
            rows.append(
                _row(
                    "error",
                    "subjects",
                    r["subject"],
                    "bor, responder",
                    "best overall response CR but responder is False",
                )
            )
        elif not said and bor == "PR":
            rows.append(_row("warning", "subjects", r["subject"], "bor, responder",
                             "best overall response PR but responder is False (allowed when "
                             "the study requires a confirmed or durable PR)"))  # fmt: skip
    return rows


def _dose_levels(subjects: pd.DataFrame) -> list[dict]:
    """A dose nearer (log scale) another level's median dose than its own level's (the
    median of the level's other subjects)."""
    if not {"dose", "dose_level"} <= set(subjects.columns):
        return []
    table = subjects[subjects["dose"].gt(0) & subjects["dose_level"].notna()]
    if table["dose_level"].nunique() < 2:
        return []
    logs = np.log(table["dose"].astype(float))
    levels = table["dose_level"].astype(str)
    medians = logs.groupby(levels).median()
    rows = []
    for index in table.index:
        own = levels[index]
        others = logs[(levels == own) & (logs.index != index)]
        if others.empty:
            continue
        distance = abs(logs[index] - others.median())
        rival = (medians.drop(own) - logs[index]).abs()
        if rival.min() < distance and rival.min() < np.log(1.5):
            nearest = rival.idxmin()
            rows.append(
                _row(
                    "error",
                    "subjects",
                    subjects.at[index, "subject"],
                    "dose, dose_level",
                    f"dose {subjects.at[index, 'dose']:g} is that "
                    f"of dose level {nearest!r} (median {np.exp(medians[nearest]):g}), "
                    f"but dose_level is {own!r} (median {np.exp(others.median()):g})",
                )
            )
    return rows


def _events(tables: Mapping[str, pd.DataFrame | None], subjects: pd.DataFrame) -> list[dict]:
    rows = []
    events = tables.get("adverse_events")
    if events is not None:
        early = events[events["onset_day"] < 0]
        if len(early):
            first = early.iloc[0]
            rows.append(_row("note", "adverse_events", first["subject"], "onset_day",
                             f"{len(early)} adverse event(s) start before the infusion (first "
                             f"{first['term']!r} on day {first['onset_day']:g}): not "
                             "treatment-emergent (e.g. during lymphodepletion)"))  # fmt: skip
        if "dlt" in events and "dlt" in subjects:
            flagged = set(events.loc[events["dlt"].astype("boolean").fillna(False).astype(bool),
                                     "subject"])  # fmt: skip
            said = subjects.set_index("subject")["dlt"].astype("boolean")
            for subject in sorted(flagged):
                if subject in said.index and said[subject] is False:
                    rows.append(_row("error", "subjects, adverse_events", subject, "dlt",
                                     "an adverse event is flagged DLT but the subject's dlt is "
                                     "False"))  # fmt: skip
    if {"os_days", "os_event"} <= set(subjects.columns):
        dead = subjects[subjects["os_event"].astype("boolean").fillna(False).astype(bool)]
        death = dict(zip(dead["subject"], dead["os_days"], strict=True))
        for name, column in (("adverse_events", "onset_day"), ("lesions", "day"),
                             ("kinetics", "time")):  # fmt: skip
            table = tables.get(name)
            if table is None or not death:
                continue
            after = table["subject"].map(death) < table[column]
            for subject in pd.unique(table.loc[after.fillna(False), "subject"]):
                rows.append(_row("warning", name, subject, column, f"{name} record(s) after "
                                 f"the subject's death (day {death[subject]:g})"))  # fmt: skip
    return rows


def check_study(
    kinetics: pd.DataFrame | None = None,
    subjects: pd.DataFrame | None = None,
    lesions: pd.DataFrame | None = None,
    adverse_events: pd.DataFrame | None = None,
    *,
    normalise_ids: bool = False,
) -> pd.DataFrame:
    """Cross-check validated study tables; return every problem found (see the module doc).

    Parameters
    ----------
    kinetics, subjects, lesions, adverse_events : pandas.DataFrame, optional
        Tables read by :func:`read_kinetics`, :func:`read_subjects`, :func:`read_lesions`,
        :func:`read_adverse_events` (None for a table the study does not have).
    normalise_ids : bool, default False
        Report ids that differ only in case or surrounding blanks as notes instead of errors
        (rewrite them with :func:`harmonise_ids`).

    Returns
    -------
    pandas.DataFrame
        ``severity`` (``error``, ``warning`` or ``note``), ``table``, ``subject``,
        ``columns`` and ``message``, one row per problem, errors first; empty (with these
        columns) when the tables agree.
    """
    tables = {"kinetics": kinetics, "subjects": subjects, "lesions": lesions,
              "adverse_events": adverse_events}  # fmt: skip
    rows = _id_problems(tables, normalise_ids) + _membership(tables)
    if subjects is not None:
        rows += _survival(subjects) + _response(subjects) + _dose_levels(subjects)
        rows += _events(tables, subjects)
    order = {"error": 0, "warning": 1, "note": 2}
    frame = pd.DataFrame(rows, columns=list(PROBLEM_COLUMNS))
    return frame.sort_values("severity", key=lambda s: s.map(order), kind="stable").reset_index(
        drop=True
    )


def harmonise_ids(tables: Mapping[str, pd.DataFrame | None]) -> dict[str, pd.DataFrame | None]:
    """Rewrite ids that differ only in case or surrounding blanks to one spelling.

    The spelling kept is the subject table's, else the kinetics table's, else the first
    table's (in the order kinetics, subjects, lesions, adverse_events). Each rewritten table
    is a copy with a reading note counting the rows changed.
    """
    canonical: dict[str, str] = {}
    for name in ("subjects", "kinetics", "lesions", "adverse_events"):
        for subject in _ids(tables.get(name)):
            canonical.setdefault(subject.strip().casefold(), subject.strip())
    out: dict[str, pd.DataFrame | None] = {}
    for name, table in tables.items():
        if table is None:
            out[name] = None
            continue
        ids = table["subject"].astype(str)
        new = ids.map(lambda s: canonical.get(s.strip().casefold(), s))
        changed = int((new != ids).sum())
        copy = table.assign(subject=new)
        if changed:
            info = dict(copy.attrs.get("cellkin", {}))
            note = Note("ids", "subject", changed, f"{changed} subject id(s) rewritten to the "
                        "spelling of the other tables (normalise_ids=True)")  # fmt: skip
            info["conversions"] = [*info.get("conversions", []), note.__dict__.copy()]
            copy.attrs["cellkin"] = info
        out[name] = copy
    return out
