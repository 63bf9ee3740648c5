"""The study a report is built from: its tables, where they came from and their checksums.

A report names every input file with its SHA-256 (:func:`cellkin.io.sha256`) so that a
reviewer can tell which data it describes. Files given without saying which table they hold
are recognised by their columns (:func:`cellkin.io.identify_table`); the rules are
deliberately strict, and an unrecognised file is an error that says which option to use
instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cellkin.datasets import load_example
from cellkin.errors import DataError, OptionError
from cellkin.io import (
    STUDY_TABLES,
    identify_table,
    read_kinetics_with_exclusions,
    read_study,
    sha256,
)

__all__ = ["StudyInputs", "load_example_inputs", "load_inputs"]


@dataclass(frozen=True, eq=False)
class StudyInputs:
    """Validated study tables with their provenance.

    Attributes
    ----------
    kinetics : pandas.DataFrame
        The kinetics table (:func:`cellkin.io.read_kinetics`).
    subjects, lesions, adverse_events : pandas.DataFrame or None
        The clinical tables, None when not given (the report then says so and leaves out the
        endpoints that need them).
    files : pandas.DataFrame
        ``table, path, sha256, rows, subjects`` for every input.
    exclusions : pandas.DataFrame
        Kinetics rows not analysed, with the reason (``source_row, subject, time, reason``).
    label : str
        Short description of the study (the example study says it is synthetic).
    synthetic : bool
        True for the bundled example study.
    problems : pandas.DataFrame
        Warnings and notes of the cross-table checks (:func:`cellkin.io.check_study`).
    """

    kinetics: pd.DataFrame
    subjects: pd.DataFrame | None = None
    lesions: pd.DataFrame | None = None
    adverse_events: pd.DataFrame | None = None
    files: pd.DataFrame = field(default_factory=pd.DataFrame)
    exclusions: pd.DataFrame = field(default_factory=pd.DataFrame)
    label: str = ""
    synthetic: bool = False
    problems: pd.DataFrame = field(default_factory=pd.DataFrame)

    def table(self, name: str) -> pd.DataFrame | None:
        """The table called `name` (one of :data:`cellkin.io.STUDY_TABLES`), or None."""
        return getattr(self, name)


def _file_row(name: str, path: Path, table: pd.DataFrame) -> dict[str, object]:
    return {
        "table": name,
        "path": str(path),
        "sha256": sha256(path),
        "rows": len(table),
        "subjects": int(table["subject"].nunique()),
    }


def load_example_inputs() -> StudyInputs:
    """The bundled synthetic example study as :class:`StudyInputs` (files checksummed)."""
    study = load_example()
    rows = [
        _file_row(name, study.source / f"{name}.csv", getattr(study, name)) for name in STUDY_TABLES
    ]
    _, exclusions = read_kinetics_with_exclusions(study.source / "kinetics.csv")
    return StudyInputs(
        kinetics=study.kinetics,
        subjects=study.subjects,
        lesions=study.lesions,
        adverse_events=study.adverse_events,
        files=pd.DataFrame(rows),
        exclusions=exclusions,
        label="cellkin example study (SYNTHETIC data shaped like the KD-025 phase 1)",
        synthetic=True,
    )


def load_inputs(
    files: Sequence[str | os.PathLike[str]] = (),
    *,
    tables: Mapping[str, str | os.PathLike[str] | None] | None = None,
    exclude_before: float | None = None,
    label: str = "",
    mapping: Any = None,
    normalise_ids: bool = False,
) -> StudyInputs:
    """Read and validate a study from files.

    Parameters
    ----------
    files : sequence of path
        Files whose table is recognised from the columns (:func:`cellkin.io.identify_table`).
    tables : mapping, optional
        ``{"kinetics": path, "subjects": path, ...}``: files named explicitly.
    exclude_before : float, optional
        Kinetics samples before this day are excluded (and listed).
    label : str, optional
        Study name shown in the report (default: the kinetics file name).
    mapping : dict or path of a TOML file, optional
        How to read the kinetics file (see :func:`cellkin.io.read_kinetics`).
    normalise_ids : bool, default False
        Treat subject ids that differ only in case or surrounding blanks as one subject.

    Raises
    ------
    DataError
        If a table is given twice, no kinetics table is given, a table is invalid, or the
        tables contradict each other (:func:`cellkin.io.check_study` errors; its warnings,
        such as subjects missing from the subject table, are listed in the report).
    OptionError
        If `tables` names a table that is not one of :data:`cellkin.io.STUDY_TABLES`.
    """
    paths: dict[str, Path] = {}
    for name, path in (tables or {}).items():
        if name not in STUDY_TABLES:
            raise OptionError(
                f"`tables` names an unknown study table {name!r}; expected one of "
                f"{', '.join(STUDY_TABLES)}"
            )
        if path is not None:
            paths[name] = Path(path)
    for path in map(Path, files):
        name = identify_table(path, mapping=mapping)
        if name in paths:
            raise DataError(
                f"{path}: looks like a second {name} table (the first is {paths[name]}); give "
                f"one file per table, or name them with --{name.replace('_', '-')}"
            )
        paths[name] = path
    if "kinetics" not in paths:
        raise DataError("no kinetics table: give a kinetics FILE (or --kinetics FILE)")
    for path in paths.values():
        if not path.is_file():
            raise DataError(f"{path}: no such file")
    study = read_study(
        paths, mapping=mapping, exclude_before=exclude_before, normalise_ids=normalise_ids
    )
    if len(study.errors):
        first = study.errors.iloc[0]
        raise DataError(
            f"{len(study.errors)} error(s) in the study tables (run `cellkin validate` on the "
            f"same files to list them all); the first, in {first['table']}: {first['message']}"
        )
    read = {name: table for name, table in study.tables.items() if table is not None}
    exclusions = study.exclusions
    return StudyInputs(
        **read,
        files=pd.DataFrame([_file_row(name, paths[name], read[name]) for name in paths]),
        exclusions=exclusions,
        label=label or paths["kinetics"].stem,
        problems=study.problems,
    )
