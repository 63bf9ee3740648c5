"""Column mappings: a dict or a TOML file, and the column names labs commonly use.

A *mapping* tells a reader how to read one laboratory's files. It is a dict, or the path of a
TOML file holding the same keys (read with the standard library's :mod:`tomllib`)::

    # kinetics_lab.toml: the central lab's qPCR export
    "Patient ID" = "subject"      # column renames: file column = cellkin column
    "Collection Date" = "date"
    "Result" = "value"
    "Result Qualifier" = "blq"
    assay = "qpcr"                # constants for columns the file lacks
    unit = "copies/ug"
    lloq = 50
    date_format = "%d.%m.%Y"      # reading options
    sep = ";"
    decimal = ","

Without a mapping, the column names below (:data:`SYNONYMS`) are recognised when the table
has no column of that name already, and each recognition is reported. Names are compared
after case folding with every run of non-letters/digits read as one blank, so ``PATIENT_ID``,
``Patient ID`` and ``patient-id`` are the same name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cellkin._validation import Context
from cellkin.errors import DataError
from cellkin.io._notes import Notes

__all__ = ["SYNONYMS", "load_mapping", "normal_name", "recognise_synonyms"]

#: cellkin column -> column names labs use for it (compared by :func:`normal_name`).
SYNONYMS: Mapping[str, tuple[str, ...]] = {
    "subject": ("patient id", "patient", "patient number", "patient no", "subject id",
                "subject number", "subjid", "subject no", "participant id", "participant",
                "pt id", "id"),
    "time": ("study day", "day", "days", "time d", "time days", "days post infusion",
             "day post infusion", "days since infusion", "time since infusion d",
             "time post infusion d", "relative day", "dpi"),
    "time_hours": ("time h", "time hours", "time hr", "hours", "hours post infusion",
                   "hours since infusion", "time post infusion h"),
    "value": ("result", "result value", "reported result", "numeric result", "value",
              "concentration", "conc", "level", "result numeric", "orres", "stresn"),
    "assay": ("analyte", "test", "test name", "test code", "assay name", "parameter",
              "method", "analyte name", "testcd", "lbtestcd"),
    "unit": ("units", "unit", "result unit", "result units", "unit of measure", "uom",
             "stresu", "orresu"),
    "lloq": ("loq", "lower limit of quantification", "lower limit of quantitation",
             "lower limit", "llq", "lloq value", "reporting limit", "quantification limit"),
    "blq": ("qualifier", "result qualifier", "modifier", "result modifier", "operator",
            "blq flag", "below lloq", "blqfl", "censored"),
    "date": ("sample date", "collection date", "date", "draw date", "sample collection date",
             "collection datetime", "date of collection", "sampling date", "date time",
             "datetime", "pcdtc", "lbdtc", "collection date time"),
    "visit": ("visit", "visit name", "timepoint", "time point", "visit label",
              "nominal timepoint", "planned time point", "pctpt", "avisit", "visit day"),
    "infusion_date": ("infusion date", "date of infusion", "car t infusion date",
                      "infusion dt", "exstdtc", "dose date"),
    "cd3_count": ("cd3 count", "cd3 absolute count", "absolute cd3", "cd3 abs",
                  "cd3 cells ul", "cd3 per ul", "abs cd3"),
}  # fmt: skip
_LOOKUP = {name: target for target, names in SYNONYMS.items() for name in names}


def normal_name(name: object) -> str:
    """Case-folded name with every run of non-alphanumerics as one blank (``"patient id"``)."""
    return " ".join(re.sub(r"[^0-9a-zµ]+", " ", str(name).casefold()).split())


def load_mapping(mapping: Any) -> dict[str, Any] | None:
    """The mapping as a dict: a dict as it is, or a TOML file read into one.

    Raises
    ------
    DataError
        If the TOML file does not exist or is not valid TOML (with the line it stopped at).
    TypeError
        If `mapping` is neither a mapping, a path nor None.
    """
    if mapping is None or isinstance(mapping, Mapping):
        return None if mapping is None else dict(mapping)
    if not isinstance(mapping, (str, os.PathLike)):
        raise TypeError(
            f"mapping must be a dict or the path of a TOML file, not {type(mapping).__name__}"
        )
    import tomllib

    path = Path(mapping)
    if not path.is_file():
        raise DataError(f"{path}: mapping file not found; give the path of a .toml file.")
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise DataError(
            f"{path}: not a valid TOML mapping ({exc}). Write one `key = value` per line, "
            'quoting names with blanks: "Patient ID" = "subject".'
        ) from None


def recognise_synonyms(
    ctx: Context, columns: list[str], taken: set[str], notes: Notes, n_rows: int
) -> dict[str, str]:
    """Renames ``{column: cellkin name}`` for columns named as labs name them.

    A synonym is used only when no column already gives that cellkin name (`taken`, in
    lower case) and exactly one column of the table is a synonym of it; ``time_hours`` becomes
    ``time`` with the time unit ``h``. Each rename is recorded in `notes`.
    """
    found: dict[str, list[str]] = {}
    for column in columns:
        target = _LOOKUP.get(normal_name(column))
        if target is not None and normal_name(column) != target:
            found.setdefault(target, []).append(column)
    if "time" in found or "time" in taken:
        found.pop("time_hours", None)
    renames: dict[str, str] = {}
    for target, hits in found.items():
        name = "time" if target == "time_hours" else target
        if name in taken or len(hits) != 1 or name in renames.values():
            continue
        renames[hits[0]] = "time_hours" if target == "time_hours" else name
        unit = " (in hours)" if target == "time_hours" else ""
        notes.add("columns", hits[0], n_rows, f"column `{hits[0]}` read as `{name}`{unit}")
    return renames
