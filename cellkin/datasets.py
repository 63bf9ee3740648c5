"""The bundled example study: a **synthetic** phase 1 NKG2D CAR-T trial shaped like KD-025.

:func:`load_example` returns the study's four tables, each read through the validating
readers of :mod:`cellkin.io`, so they are in canonical form and ready for every analysis in
cellkin. The data were simulated by ``data/make_example_study.py`` (seeded, reproducible); no
patient's data were used. ``data/README.md`` documents the design, the model and its parameter
values, the link functions from exposure to outcomes, and the column dictionary; the same
dictionary (role, unit, description of every column) ships beside the tables as
``columns.json``.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from cellkin.io import read_adverse_events, read_kinetics, read_lesions, read_subjects

__all__ = ["ExampleStudy", "load_example"]

_PACKAGE_DATA = "_example_data"
_TABLES = {
    "kinetics": ("kinetics.csv", read_kinetics),
    "subjects": ("subjects.csv", read_subjects),
    "lesions": ("lesions.csv", read_lesions),
    "adverse_events": ("adverse_events.csv", read_adverse_events),
}


@dataclass(frozen=True, eq=False)
class ExampleStudy:
    """The four tables of the bundled synthetic study, with their description.

    Attributes
    ----------
    kinetics : pandas.DataFrame
        One row per qPCR (``copies/ug``) or flow (``cells/uL``) sample, as returned by
        :func:`cellkin.io.read_kinetics`, with the extra columns ``visit`` and
        ``nominal_time`` (protocol day).
    subjects : pandas.DataFrame
        One row per subject: dose, cohort, demographics and outcomes
        (:func:`cellkin.io.read_subjects`).
    lesions : pandas.DataFrame
        RECIST 1.1 measurements per lesion and assessment (:func:`cellkin.io.read_lesions`).
    adverse_events : pandas.DataFrame
        One row per adverse event (:func:`cellkin.io.read_adverse_events`).
    description : str
        What the study is, how it was made and that it is synthetic.
    source : pathlib.Path
        Folder holding the CSV files and ``columns.json``.
    columns : dict
        Column dictionary: ``columns[table][column]`` is a dict with ``role``, ``unit`` and
        ``description``.
    """

    kinetics: pd.DataFrame
    subjects: pd.DataFrame
    lesions: pd.DataFrame
    adverse_events: pd.DataFrame
    description: str
    source: Path
    columns: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict, repr=False)

    def _assay_rows(self) -> list[tuple[str, str, int, float]]:
        grouped = self.kinetics.groupby(["assay", "unit"], sort=False)["blq"]
        return [
            (assay, unit, int(blq.size), 100.0 * float(blq.mean()))
            for (assay, unit), blq in grouped
        ]

    def __repr__(self) -> str:
        assays = ", ".join(
            f"{assay} {n} samples ({blq:.0f}% BLQ)" for assay, _, n, blq in self._assay_rows()
        )
        return (
            f"ExampleStudy(synthetic; {self.subjects['subject'].nunique()} subjects; "
            f"kinetics: {assays}; lesions: {len(self.lesions)} rows; adverse_events: "
            f"{len(self.adverse_events)} rows; source={str(self.source)!r})"
        )

    def _repr_html_(self) -> str:
        rows = [
            f"<tr><td>kinetics ({html.escape(assay)}, {html.escape(unit)})</td><td>{n}</td>"
            f"<td>{blq:.1f}% BLQ</td></tr>"
            for assay, unit, n, blq in self._assay_rows()
        ]
        rows += [
            f"<tr><td>{name}</td><td>{len(getattr(self, name))}</td><td></td></tr>"
            for name in ("subjects", "lesions", "adverse_events")
        ]
        return (
            "<div><strong>cellkin example study</strong> (synthetic data, "
            f"{self.subjects['subject'].nunique()} subjects)<table>"
            "<thead><tr><th>table</th><th>rows</th><th></th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
            f"<p>{html.escape(self.description)}</p></div>"
        )


def load_example() -> ExampleStudy:
    """Load the bundled example study (synthetic data shaped like the KD-025 phase 1).

    A single-arm phase 1 trial of an NKG2D CAR-T product in NKG2DL+ solid tumours:
    lymphodepletion, one infusion at 1, 3 or 10 × 10^6 CAR+ cells/kg chosen by 3+3
    escalation, then an expansion cohort at the highest tolerated level; follow-up to one
    year. CAR transgene by qPCR (copies/µg gDNA, LLOQ 50) and CAR+ T cells by flow cytometry
    (cells/µL, LLOQ 0.5), RECIST 1.1 lesion measurements, survival, CRS/ICANS grades, DLTs
    and adverse events.

    The data are **synthetic**: simulated by ``data/make_example_study.py`` from the Stein
    2019 kinetic model (doi:10.1002/psp4.12388) with typical values lowered for an NKG2D
    product and outcomes drawn from exposure through documented link functions. They are for
    learning and testing cellkin, not for clinical or scientific conclusions.

    Returns
    -------
    ExampleStudy
        Frozen dataclass with the validated tables ``kinetics``, ``subjects``, ``lesions``
        and ``adverse_events`` (see :class:`ExampleStudy`), plus ``description``, ``source``
        (folder of the files) and ``columns``.

    Notes
    -----
    The column dictionary (role, unit and description of every column) is in
    ``columns.json`` beside the tables (``study.columns``) and in ``data/README.md``, which
    also gives the parameter values, their sources and the link functions.

    Examples
    --------
    >>> from cellkin.datasets import load_example
    >>> study = load_example()
    >>> sorted(study.kinetics["assay"].unique())
    ['flow', 'qpcr']
    >>> bool(study.kinetics["subject"].isin(study.subjects["subject"]).all())
    True
    """
    root = resources.files("cellkin").joinpath(_PACKAGE_DATA)
    with resources.as_file(root) as folder:
        folder = Path(folder)
        tables = {name: reader(folder / file) for name, (file, reader) in _TABLES.items()}
        meta = json.loads((folder / "columns.json").read_text(encoding="utf-8"))
    columns = {name: table_meta["columns"] for name, table_meta in meta.get("tables", {}).items()}
    description = "\n\n".join(
        part for part in (meta.get("title"), meta.get("synthetic"), meta.get("description")) if part
    )
    return ExampleStudy(
        **tables,
        description=description,
        source=folder,
        columns=columns,
    )
