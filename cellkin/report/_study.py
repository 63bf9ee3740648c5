"""The study report: run the analysis, draw the figures, write ``report.html`` and the CSVs."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cellkin._display import Summary
from cellkin.io import kinetics_summary
from cellkin.report._analysis import StudyAnalysis, analyse_study
from cellkin.report._figures import RenderedFigure, render_figures
from cellkin.report._html import render_html, table_html
from cellkin.report._inputs import StudyInputs
from cellkin.report._overview import endpoint_overview

__all__ = ["StudyReport", "study_report"]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


@dataclass(frozen=True, eq=False)
class StudyReport:
    """A whole-study report (from :func:`study_report`).

    Attributes
    ----------
    analysis : StudyAnalysis
        Tables, result objects, options, versions and failures of the analysis.
    figures : dict
        Name → :class:`~cellkin.report._figures.RenderedFigure` (PNG bytes).
    tables : dict
        Name → DataFrame: the analysis tables plus ``overview`` (every endpoint by dose
        level), ``input_files`` (paths and SHA-256), ``kinetics_summary``,
        ``kinetics_exclusions`` and ``failures`` (steps, subjects and figures left out, with
        the reason).
    html : str
        The self-contained page.
    """

    analysis: StudyAnalysis
    figures: dict[str, RenderedFigure]
    tables: dict[str, pd.DataFrame]
    html: str = field(repr=False)

    @property
    def failures(self) -> pd.DataFrame:
        """``step, subject, reason`` of everything not in the report."""
        return self.tables["failures"]

    def to_frame(self) -> pd.DataFrame:
        """The endpoint overview: one row per dose level (and all subjects)."""
        return self.tables["overview"].copy()

    def summary(self) -> Summary:
        """Endpoints at a glance, with the failures."""
        notes = [f"{len(self.failures)} failure/exclusion row(s); see .failures"]
        return Summary("cellkin study report", (("Endpoints", self.to_frame()),), tuple(notes))

    def _repr_html_(self) -> str:
        return (
            "<h4>cellkin study report</h4>" + table_html(self.to_frame())
            + f"<p>{len(self.figures)} figures, {len(self.tables)} tables, "
            f"{len(self.failures)} failure/exclusion row(s).</p>"
        )  # fmt: skip

    def write(self, directory: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``report.html`` and ``tables/<name>.csv`` for every table; return the paths."""
        folder = Path(directory)
        (folder / "tables").mkdir(parents=True, exist_ok=True)
        paths = {"report": folder / "report.html"}
        for name, table in self.tables.items():
            path = folder / "tables" / f"{_slug(name)}.csv"
            table.to_csv(path, index=False)
            paths[name] = path
        paths["report"].write_text(self.html, encoding="utf-8")
        return paths


def study_report(
    inputs: StudyInputs,
    *,
    title: str = "CAR-T cellular kinetics study report",
    command: str = "",
    dpi: int = 90,
    **options: Any,
) -> StudyReport:
    """Analyse a study and build its report (see :mod:`cellkin.report`).

    Parameters
    ----------
    inputs : StudyInputs
        From :func:`~cellkin.report.load_inputs` or :func:`~cellkin.report.load_example_inputs`.
    title : str
        Page title.
    command : str
        The command line that made the report, shown in its header.
    dpi : int, default 90
        Resolution of the embedded figures.
    **options
        Passed to :func:`~cellkin.report.analyse_study` (``model``, ``auc_method``,
        ``nca_blq``, ``baseline``, ``fit_blq``, ``error``, ``n_starts``, ``seed``,
        ``n_jobs``, ``executor``, ``progress``).

    Returns
    -------
    StudyReport
        Call :meth:`StudyReport.write` to save it.
    """
    analysis = analyse_study(inputs, **options)
    figures, figure_problems = render_figures(analysis, dpi=dpi)
    failures = pd.concat(
        [analysis.failures, pd.DataFrame(figure_problems, columns=analysis.failures.columns)],
        ignore_index=True,
    )
    exclusions = inputs.exclusions
    if len(exclusions):
        failures = pd.concat(
            [failures, pd.DataFrame({
                "step": "kinetics: excluded row",
                "subject": exclusions["subject"].astype(str),
                "reason": exclusions["reason"].astype(str) + " (source row "
                          + exclusions["source_row"].astype(str) + ")",
            })],
            ignore_index=True,
        )  # fmt: skip
    tables: dict[str, pd.DataFrame] = {
        "overview": endpoint_overview(analysis),
        "input_files": inputs.files,
        "kinetics_summary": kinetics_summary(inputs.kinetics),
        "kinetics_exclusions": exclusions,
        **analysis.tables,
        "failures": failures,
    }
    csv_names = {name: f"tables/{_slug(name)}.csv" for name in tables}
    page = render_html(analysis, figures, tables, csv_names, title=title, command=command)
    return StudyReport(analysis=analysis, figures=figures, tables=tables, html=page)
