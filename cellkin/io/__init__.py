"""Read, validate, recognise and write CAR-T kinetics and clinical tables (the data layer).

Readers accept a path (``.csv``, ``.tsv``, ``.xlsx``/``.xls``, ``.parquet``/``.pq``; CSV may be
compressed) or a :class:`pandas.DataFrame`, which is copied and never modified. Every problem
raises :class:`~cellkin.errors.DataError` naming the file (or ``DataFrame input``), the column,
the first offending row or subject, how many rows are affected and how to fix it; an option
with a value it cannot take raises :class:`~cellkin.errors.OptionError`.
`KNOWN_UNITS` maps every accepted unit spelling to its canonical unit.

Row numbers are 1-based *data* rows: row 1 is the first row below the header (line 2 of a CSV,
row 2 of a spreadsheet); for a DataFrame, row ``k`` is the ``k``-th row, and its index label is
shown too when the index is not the default ``0..n-1``. Rows whose cells are all empty hold no
data and are skipped, but row numbers still count them (a blank line in a CSV is not a row).

Kinetics tables come in three conventions, recognised from their column names (any case):

* canonical: ``subject time value assay unit lloq [blq]`` (DESIGN §2.1, `KINETICS_COLUMNS`);
* NONMEM: ``ID TIME DV [MDV EVID AMT] CMT|DVID|ASSAY CENS|BLQ LLOQ [UNIT USUBJID]``;
* CDISC ADPC/ADPPK: ``USUBJID AFRLT|ARELTM AVAL AVALU PARAMCD LLOQ|ALLOQ [BLQFL|BLQFN]``.

A table that matches more than one is refused with "ambiguous column mapping"; say which one
you mean with ``mapping={"convention": "nonmem"}`` or rename columns with ``mapping``.

Kinetics
    :func:`read_kinetics`, :func:`read_kinetics_with_exclusions` (also the rows left out,
    with the reason), :func:`kinetics_summary` (samples by assay), :func:`reading_notes`
    (what a reader recognised and converted: BLQ text, dates, visit labels, units, ...).
Clinical tables
    :func:`read_subjects`, :func:`read_lesions`, :func:`read_adverse_events`.
Tables that agree with each other
    :func:`check_study` (every cross-table and consistency problem, as a table: ids that
    differ only in case, subjects missing from the subject table, OS < PFS, BOR vs responder,
    dose vs dose level, ...) and :func:`harmonise_ids` (one spelling per subject id);
    :func:`read_study` reads all of a study's tables and lists every problem in one pass.
Writing
    :func:`write_nonmem` (NONMEM/Monolix dataset with M3 censoring flags).
Study files
    :func:`identify_table` (which of `STUDY_TABLES` a file holds, from its columns) and
    :func:`sha256` (the checksum a report records for each input file).
"""

from __future__ import annotations

from cellkin.io._clinical import read_adverse_events, read_lesions, read_subjects
from cellkin.io._conventions import KINETICS_COLUMNS
from cellkin.io._crosscheck import check_study, harmonise_ids
from cellkin.io._kinetics import (
    MISSING_REASON,
    kinetics_summary,
    read_kinetics,
    read_kinetics_with_exclusions,
)
from cellkin.io._nonmem import write_nonmem
from cellkin.io._notes import reading_notes
from cellkin.io._recognition import STUDY_TABLES, identify_table
from cellkin.io._source import sha256
from cellkin.io._study import StudyTables, read_study
from cellkin.io._units import KNOWN_UNITS

__all__ = [
    "KINETICS_COLUMNS",
    "KNOWN_UNITS",
    "MISSING_REASON",
    "STUDY_TABLES",
    "StudyTables",
    "check_study",
    "harmonise_ids",
    "identify_table",
    "kinetics_summary",
    "read_adverse_events",
    "read_kinetics",
    "read_kinetics_with_exclusions",
    "read_lesions",
    "read_study",
    "read_subjects",
    "reading_notes",
    "sha256",
    "write_nonmem",
]
