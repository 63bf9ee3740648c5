"""The study a report is built from: its tables, where they came from and their checksums.

A report names every input file with its SHA-256 so that a reviewer can tell which data it
describes. Files given without saying which table they hold are recognised by their columns
(:func:`identify_table`); the rules are deliberately strict, and an unrecognised file is an
error that says which option to use instead.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cellkin import io
from cellkin.errors import DataError

__all__ = ["TABLES", "StudyInputs", "identify_table", "kinetics_summary", "load_inputs", "sha256"]

#: The tables a study report reads, in report order.
TABLES = ("kinetics", "subjects", "lesions", "adverse_events")

_READERS = {
    "subjects": io.read_subjects,
    "lesions": io.read_lesions,
    "adverse_events": io.read_adverse_events,
}


def sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _columns(path: Path) -> set[str]:
    suffix = "".join(path.suffixes[-2:]).lower()
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
        elif path.suffix.lower() in (".xlsx", ".xls"):
            names = pd.read_excel(path, nrows=0).columns
        else:
            sep = "\t" if ".tsv" in suffix else ","
            names = pd.read_csv(path, nrows=0, sep=sep).columns
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the header ({exc})") from None
    return {str(name).strip().lower() for name in names}


def identify_table(path: str | os.PathLike[str]) -> str:
    """Which study table a file holds, from its column names.

    Rules, first match wins: ``lesion_id`` or ``diameter_mm`` → lesions; ``term`` and
    ``grade`` → adverse events; a concentration column (``value``, ``dv``, ``aval``) with a
    time column (``time``, ``day``, ``ady``, ``atpt``, ``afrlt``) → kinetics; ``subject`` or
    ``usubjid`` with ``dose`` or ``dose_level`` → subjects.

    Raises
    ------
    DataError
        If no rule matches; the message names the options that say it explicitly.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    names = _columns(path)
    if names & {"lesion_id", "diameter_mm"}:
        return "lesions"
    if {"term", "grade"} <= names:
        return "adverse_events"
    if names & {"value", "dv", "aval"} and names & {"time", "day", "ady", "atpt", "afrlt"}:
        return "kinetics"
    if names & {"subject", "usubjid"} and names & {"dose", "dose_level"}:
        return "subjects"
    raise DataError(
        f"{path}: cannot tell which study table this is from its columns "
        f"({', '.join(sorted(names)[:8])}…); name it with --kinetics, --subjects, --lesions "
        "or --adverse-events"
    )


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
    """

    kinetics: pd.DataFrame
    subjects: pd.DataFrame | None = None
    lesions: pd.DataFrame | None = None
    adverse_events: pd.DataFrame | None = None
    files: pd.DataFrame = field(default_factory=pd.DataFrame)
    exclusions: pd.DataFrame = field(default_factory=pd.DataFrame)
    label: str = ""
    synthetic: bool = False

    def table(self, name: str) -> pd.DataFrame | None:
        """The table called `name` (one of :data:`TABLES`), or None."""
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
    from cellkin.datasets import load_example

    study = load_example()
    rows = [_file_row(name, study.source / f"{name}.csv", getattr(study, name)) for name in TABLES]
    _, exclusions = io.read_kinetics(study.source / "kinetics.csv", return_exclusions=True)
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
) -> StudyInputs:
    """Read and validate a study from files.

    Parameters
    ----------
    files : sequence of path
        Files whose table is recognised from the columns (:func:`identify_table`).
    tables : mapping, optional
        ``{"kinetics": path, "subjects": path, ...}``: files named explicitly.
    exclude_before : float, optional
        Kinetics samples before this day are excluded (and listed).
    label : str, optional
        Study name shown in the report (default: the kinetics file name).

    Raises
    ------
    DataError
        If a table is given twice, no kinetics table is given, or a table is invalid.
    """
    paths: dict[str, Path] = {}
    for name, path in (tables or {}).items():
        if name not in TABLES:
            raise DataError(f"unknown study table {name!r}; expected one of {', '.join(TABLES)}")
        if path is not None:
            paths[name] = Path(path)
    for path in map(Path, files):
        name = identify_table(path)
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
    kinetics, exclusions = io.read_kinetics(
        paths["kinetics"], exclude_before=exclude_before, return_exclusions=True
    )
    read = {"kinetics": kinetics}
    read.update({name: _READERS[name](path) for name, path in paths.items() if name != "kinetics"})
    return StudyInputs(
        **read,
        files=pd.DataFrame([_file_row(name, paths[name], read[name]) for name in paths]),
        exclusions=exclusions,
        label=label or paths["kinetics"].stem,
    )


def kinetics_summary(kinetics: pd.DataFrame) -> pd.DataFrame:
    """Samples by assay: subjects, samples, % BLQ, LLOQ range, first/last day, max value."""
    grouped = kinetics.groupby(["assay", "unit"], sort=True)
    return pd.DataFrame(
        {
            "subjects": grouped["subject"].nunique(),
            "samples": grouped.size(),
            "blq_pct": grouped["blq"].mean().mul(100).round(1),
            "lloq_min": grouped["lloq"].min(),
            "lloq_max": grouped["lloq"].max(),
            "first_day": grouped["time"].min(),
            "last_day": grouped["time"].max(),
            "max_value": grouped["value"].max(),
        }
    ).reset_index()
