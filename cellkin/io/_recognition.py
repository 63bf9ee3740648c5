"""Table recognition: which study table a file holds, from its column names alone.

A study arrives as a handful of files; :func:`identify_table` tells the kinetics, subject,
lesion and adverse-event tables apart by their header, without reading the rows, so that a
user can pass the files in any order. The rules are deliberately strict: a file that matches
none of them is an error that says how to name the table instead, never a guess.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cellkin.errors import DataError
from cellkin.io._mapping import SYNONYMS, load_mapping, normal_name
from cellkin.io._source import read_header
from cellkin.io._wide import visit_columns

__all__ = ["STUDY_TABLES", "identify_table"]

_LOOKUP = {name: target for target, names in SYNONYMS.items() for name in names}

#: The tables of a study, in the order reports list them (DESIGN §2).
STUDY_TABLES = ("kinetics", "subjects", "lesions", "adverse_events")

_CONCENTRATIONS = frozenset({"value", "dv", "aval"})
_TIMES = frozenset({"time", "day", "ady", "atpt", "afrlt", "date", "visit", "time_hours"})


def identify_table(path: str | os.PathLike[str], mapping: Any = None) -> str:
    """Which study table a file holds, from its column names.

    Column names are read as the kinetics reader reads them (``Patient ID`` is ``subject``,
    ``Result`` is ``value``, ``Sample Date`` is ``date``, ...; one column per visit is a
    wide kinetics table). Rules, first match wins (names compared in lower case):
    ``lesion_id`` or ``diameter_mm``
    → ``"lesions"``; ``term`` and ``grade`` → ``"adverse_events"``; a level column
    (``value``, ``dv``, ``aval``) with a time column (``time``, ``day``, ``ady``, ``atpt``,
    ``afrlt``) → ``"kinetics"``; ``subject`` or ``usubjid`` with ``dose`` or ``dose_level``
    → ``"subjects"``. Only the header is read (CSV/TSV, Excel or parquet, as the readers of
    :mod:`cellkin.io` read them).

    Parameters
    ----------
    path : str or os.PathLike
        The table file.
    mapping : dict or path of a TOML file, optional
        A kinetics mapping (:func:`read_kinetics`); its column renames apply first.

    Returns
    -------
    str
        One of :data:`STUDY_TABLES`: ``"kinetics"``, ``"subjects"``, ``"lesions"`` or
        ``"adverse_events"``. Read the file with the matching reader (:func:`read_kinetics`,
        :func:`read_subjects`, :func:`read_lesions`, :func:`read_adverse_events`).

    Raises
    ------
    DataError
        If the file does not exist, its header cannot be read, or no rule matches; the
        message names the options that say which table it is.

    Examples
    --------
    >>> from cellkin.datasets import load_example
    >>> identify_table(load_example().source / "lesions.csv")
    'lesions'
    """
    path = Path(path)
    header = read_header(path)
    renames = load_mapping(mapping) or {}
    header = [str(renames.get(name, name)) for name in header]
    names = {name.strip().lower() for name in header}
    names |= {_LOOKUP[normal_name(n)] for n in header if normal_name(n) in _LOOKUP}
    if visit_columns(header):
        return "kinetics"
    if names & {"lesion_id", "diameter_mm"}:
        return "lesions"
    if {"term", "grade"} <= names:
        return "adverse_events"
    if names & _CONCENTRATIONS and names & _TIMES:
        return "kinetics"
    if names & {"subject", "usubjid"} and names & {"dose", "dose_level"}:
        return "subjects"
    raise DataError(
        f"{path}: cannot tell which study table this is from its columns "
        f"({', '.join(sorted(names)[:8])}…); name it with --kinetics, --subjects, --lesions "
        "or --adverse-events"
    )
