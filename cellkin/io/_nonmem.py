"""The NONMEM/Monolix writer: a kinetics table as an event-record dataset with M3 flags.

Output follows the NM-TRAN conventions users bring to NLME tools (``ID TIME DV MDV EVID AMT
CMT CENS LLOQ``; ``.`` for missing; ``CENS=1`` with ``DV=LLOQ`` on BLQ rows, the M3
convention of Beal 2001, doi:10.1023/A:1012299115260), so that a validated study moves on to
NONMEM, Monolix or nlmixr2 without hand edits. The file reads back through
:func:`~cellkin.io.read_kinetics` to the same kinetics.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from cellkin._output import check_file, write_csv
from cellkin.errors import DataError
from cellkin.io._clinical import OUTCOME_COLUMNS, read_subjects
from cellkin.io._conventions import OPTIONAL_COLUMNS, assay_codes
from cellkin.io._kinetics import read_kinetics

__all__ = ["write_nonmem"]

_NONMEM_COLUMNS = tuple("ID TIME DV MDV EVID AMT CMT CENS LLOQ ASSAY UNIT USUBJID".split())


def _observation_records(kin: pd.DataFrame) -> pd.DataFrame:
    """One NONMEM record per sample (M3: BLQ rows have CENS=1 and DV=LLOQ)."""
    cmt = assay_codes(kin["assay"])
    records = pd.DataFrame(
        {
            "ID": pd.factorize(kin["subject"])[0] + 1,
            "TIME": kin["time"],
            "DV": kin["value"].mask(kin["blq"], kin["lloq"]),
            "MDV": 0,
            "EVID": 0,
            "AMT": np.nan,
            "CMT": kin["assay"].map(cmt),
            "CENS": kin["blq"].astype(int),
            "LLOQ": kin["lloq"],
            "ASSAY": kin["assay"],
            "UNIT": kin["unit"],
            "USUBJID": kin["subject"],
        }
    )
    for column in OPTIONAL_COLUMNS:
        if column in kin:
            records[column.upper()] = kin[column]
    return records


def _dose_records(obs: pd.DataFrame, subjects: pd.DataFrame) -> pd.DataFrame:
    """One dose record (EVID=1, AMT=dose, TIME=0) per subject with samples."""
    first = obs.drop_duplicates("ID")
    missing = sorted(set(first["USUBJID"]) - set(subjects["subject"]))
    if missing:
        raise DataError(
            f"write_nonmem: {len(missing)} subject(s) with samples have no row in `subjects`, "
            f"first {missing[0]!r}. Add them to the subject table (with their dose)."
        )
    dose = subjects.set_index("subject")["dose"]
    return pd.DataFrame(
        {
            "ID": first["ID"],
            "TIME": 0.0,
            "DV": np.nan,
            "MDV": 1,
            "EVID": 1,
            "AMT": first["USUBJID"].map(dose),
            "CMT": first["CMT"],
            "CENS": 0,
            "LLOQ": np.nan,
            "ASSAY": np.nan,
            "UNIT": np.nan,
            "USUBJID": first["USUBJID"],
        }
    )


def _add_covariates(table: pd.DataFrame, subjects: pd.DataFrame) -> pd.DataFrame:
    """Carry the subjects' baseline columns (not outcomes) as upper-case covariates."""
    by_subject = subjects.set_index("subject")
    covariates = {}
    for column in by_subject.columns:
        name = column.upper()
        if name in _NONMEM_COLUMNS:
            raise DataError(
                f"write_nonmem: subjects column `{column}` would overwrite the NONMEM column "
                f"{name}; rename it."
            )
        if column in OUTCOME_COLUMNS or name in table.columns:
            continue  # outcomes are not covariates; kinetics columns win
        values = by_subject[column]
        if pd.api.types.is_bool_dtype(values):
            values = values.astype("Int64")
        covariates[name] = table["USUBJID"].map(values)
    return table.assign(**covariates)


def write_nonmem(
    kinetics: pd.DataFrame | str | os.PathLike[str],
    path: str | os.PathLike[str],
    subjects: pd.DataFrame | str | os.PathLike[str] | None = None,
    *,
    overwrite: bool = False,
) -> pd.DataFrame:
    """Write a NONMEM/Monolix-ready CSV dataset with M3 censoring flags.

    Parameters
    ----------
    kinetics : pandas.DataFrame, str or os.PathLike
        Kinetics table (anything `read_kinetics` reads; it is validated again).
    path : str or os.PathLike
        CSV file to write (missing folders are created).
    subjects : pandas.DataFrame, str or os.PathLike, optional
        Subject table (see `read_subjects`). When given, each subject with samples gets a dose
        record and its baseline columns (all but the outcome columns) as covariates.
    overwrite : bool
        Replace an existing file at `path` (default: refuse it, before reading anything).

    Returns
    -------
    pandas.DataFrame
        The table written, with NaN where the file has ``.``.

    Notes
    -----
    Columns: ``ID`` (1..n in the order of `kinetics`), ``TIME`` (days), ``DV``, ``MDV``,
    ``EVID``, ``AMT``, ``CMT`` (1 = qpcr, 2 = flow, other assays 3, 4, ... in alphabetical
    order), ``CENS`` (1 on BLQ rows, whose ``DV`` is the LLOQ and ``MDV`` 0), ``LLOQ``,
    ``ASSAY``, ``UNIT``, ``USUBJID`` (the original id), then the optional kinetics columns
    and covariates in upper case. A value below the LLOQ reported on a BLQ row is not
    written (M3 uses only the limit). Dose records have ``EVID=1, MDV=1, AMT=dose, TIME=0``,
    ``CMT`` of the subject's first assay, and come before observations at time 0. Text
    columns (``ASSAY``, ``UNIT``, ``USUBJID``) must be dropped in NONMEM's ``$INPUT``.
    `read_kinetics` reads the file back to the same kinetics (dose rows go to exclusions).

    The file is written under a temporary name and renamed when complete. Text cells that
    start with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (a subject id such as
    ``=HYPERLINK(...)``) are written with a leading apostrophe, so that a spreadsheet shows
    them as text instead of running them (OWASP's CSV-injection rule; numbers are
    untouched); reading the file back gives those ids with the apostrophe.
    """
    target = check_file(path, overwrite=overwrite, argument="path")
    kin = read_kinetics(kinetics)
    table = _observation_records(kin)
    if subjects is not None:
        subject_table = read_subjects(subjects)
        table = pd.concat([_dose_records(table, subject_table), table], ignore_index=True)
        order = np.lexsort((-table["EVID"].to_numpy(), table["TIME"].to_numpy(), table["ID"]))
        table = _add_covariates(table.iloc[order], subject_table)
    table = table.reset_index(drop=True)
    write_csv(table, target, na_rep=".")
    return table
