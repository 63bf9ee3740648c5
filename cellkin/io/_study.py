"""A whole study read at once, with every problem found listed rather than the first raised.

:func:`read_study` reads the subject table first (its infusion dates turn dated samples into
days), then the kinetics, lesion and adverse-event tables, and cross-checks them
(:func:`~cellkin.io.check_study`). A table that cannot be read becomes one ``error`` row of
``problems`` (its :class:`~cellkin.errors.DataError` message, naming file, column and row) and
the other tables are still read and checked; within a table, every row-level problem (each bad
column) is recorded and reading goes on, so that ``cellkin validate`` reports every problem in
one pass.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from cellkin._validation import collecting
from cellkin.errors import DataError
from cellkin.io._clinical import read_adverse_events, read_lesions, read_subjects
from cellkin.io._crosscheck import PROBLEM_COLUMNS, check_study, harmonise_ids
from cellkin.io._kinetics import read_kinetics_with_exclusions
from cellkin.io._notes import reading_notes

__all__ = ["StudyTables", "read_study"]

Path = str | os.PathLike[str]


@dataclass(frozen=True, eq=False)
class StudyTables:
    """The tables of a study as read, and every problem found in them.

    Attributes
    ----------
    tables : dict
        ``kinetics``, ``subjects``, ``lesions``, ``adverse_events``: the validated table, or
        None when it was not given or could not be read.
    exclusions : pandas.DataFrame
        Kinetics rows left out, with the reason (see ``read_kinetics_with_exclusions``).
    problems : pandas.DataFrame
        ``severity, table, subject, columns, message`` (see :func:`check_study`), including one
        error per table that could not be read.
    """

    tables: dict[str, pd.DataFrame | None]
    exclusions: pd.DataFrame = field(default_factory=pd.DataFrame)
    problems: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(PROBLEM_COLUMNS))
    )

    @property
    def errors(self) -> pd.DataFrame:
        """The problems of severity ``error``."""
        return self.problems[self.problems["severity"] == "error"]

    def notes(self) -> pd.DataFrame:
        """What every reader recognised and converted: ``table`` then the reading notes."""
        frames = [
            reading_notes(table).assign(table=name)
            for name, table in self.tables.items()
            if table is not None
        ]
        columns = ["table", "step", "column", "rows", "note"]
        return (
            pd.concat(frames, ignore_index=True)[columns]
            if frames
            else pd.DataFrame(columns=columns)
        )


def _failed(name: str, exc: DataError) -> dict[str, str]:
    return {"severity": "error", "table": name, "subject": "", "columns": "",
            "message": str(exc)}  # fmt: skip


def _read_all(reader: Callable[..., Any], source: Any, **options: Any) -> tuple[Any, list]:
    """The reader's result and no problem, or None and every row-level problem it found.

    The reader runs with :func:`cellkin._validation.collecting`: a row-level problem is
    recorded and reading goes on, so that one pass finds them all. A structural problem (a
    missing column, an unreadable file) still stops it. An exception after a recorded problem
    is a consequence of that problem (the table is invalid either way) and is not reported.
    """
    with collecting() as found:
        try:
            result = reader(source, **options)
        except DataError as exc:
            found.append(exc)
        except Exception:  # a consequence of a recorded problem, or a bug: re-raised then
            if not found:
                raise
    unique = list({str(exc): exc for exc in found}.values())
    return (None, unique) if unique else (result, [])


def read_study(
    paths: Mapping[str, Path | pd.DataFrame | None],
    *,
    mapping: Any = None,
    exclude_before: float | None = None,
    normalise_ids: bool = False,
) -> StudyTables:
    """Read the tables of a study, collecting every problem instead of stopping at the first.

    Parameters
    ----------
    paths : mapping
        ``{"kinetics": path, "subjects": path, "lesions": path, "adverse_events": path}``
        (files or DataFrames; a table may be absent or None).
    mapping : dict or path of a TOML file, optional
        How to read the kinetics table (see :func:`read_kinetics`).
    exclude_before : float, optional
        Kinetics samples before this day are excluded (and listed).
    normalise_ids : bool, default False
        Treat ids that differ only in case or surrounding blanks as one subject (rewritten to
        the subject table's spelling, with a note) instead of reporting an error.

    Returns
    -------
    StudyTables
    """
    tables: dict[str, pd.DataFrame | None] = dict.fromkeys(
        ("kinetics", "subjects", "lesions", "adverse_events")
    )
    failed: list[dict[str, str]] = []
    readers = {"subjects": read_subjects, "lesions": read_lesions,
               "adverse_events": read_adverse_events}  # fmt: skip
    for name, reader in readers.items():
        if paths.get(name) is not None:
            tables[name], problems = _read_all(reader, paths[name])
            failed += [_failed(name, exc) for exc in problems]
    exclusions = pd.DataFrame(columns=["source_row", "subject", "time", "reason"])
    if paths.get("kinetics") is not None:
        subjects = tables["subjects"]
        infusion = subjects if subjects is not None and "infusion_date" in subjects else None
        read, problems = _read_all(
            read_kinetics_with_exclusions,
            paths["kinetics"],
            mapping=mapping,
            exclude_before=exclude_before,
            infusion_dates=infusion,
        )
        failed += [_failed("kinetics", exc) for exc in problems]
        if read is not None:
            tables["kinetics"], exclusions = read
    if normalise_ids:
        tables = harmonise_ids(tables)
    checked = check_study(**tables, normalise_ids=normalise_ids)
    if failed:
        failed_rows = pd.DataFrame(failed, columns=list(PROBLEM_COLUMNS))
        checked = pd.concat([failed_rows, checked], ignore_index=True) if len(checked) else (
            failed_rows
        )  # fmt: skip
    return StudyTables(tables, exclusions, checked)
