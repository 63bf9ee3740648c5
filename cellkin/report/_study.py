"""The study report: run the analysis, draw the figures, write ``report.html`` and the CSVs."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cellkin._display import Summary
from cellkin._output import OutputFolder
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
    command : str
        The command line (or call) that made the report, recorded in its manifest.
    """

    analysis: StudyAnalysis
    figures: dict[str, RenderedFigure]
    tables: dict[str, pd.DataFrame]
    html: str = field(repr=False)
    command: str = ""

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

    def write(
        self, directory: str | os.PathLike[str], *, overwrite: bool = False
    ) -> dict[str, Path]:
        """Write ``report.html``, ``tables/<name>.csv`` for every table and the manifest.

        Parameters
        ----------
        directory : str or os.PathLike
            The report folder, created when missing.
        overwrite : bool
            Write into a folder that is not empty, replacing the files a previous cellkin
            run wrote there (those its ``cellkin-manifest.json`` lists); other files are
            left alone. Default: refuse a non-empty folder before writing anything.

        Returns
        -------
        dict
            ``"report"`` and each table name → the path written.

        Notes
        -----
        Every file is written under a temporary name and renamed when complete, and
        ``cellkin-manifest.json`` (each file's rows, bytes and SHA-256, the cellkin version
        and the command) is written last, so a folder without it holds an interrupted run.
        CSV text cells that start with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
        (e.g. a subject id ``=HYPERLINK(...)``) get a leading apostrophe, so that a
        spreadsheet shows them as text instead of running them (OWASP's CSV-injection rule;
        numbers are untouched).
        """
        command = self.command or "cellkin.report.StudyReport.write"
        folder = OutputFolder(directory, overwrite=overwrite, argument="directory",
                              command=command)  # fmt: skip
        paths = {}
        for name, table in self.tables.items():
            paths[name] = folder.csv(f"tables/{_slug(name)}.csv", table)
        paths = {"report": folder.text("report.html", self.html), **paths}
        folder.finish()
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
        ``n_jobs``, ``executor``, ``model_fits``, ``population``, ``progress``).

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
    return StudyReport(analysis=analysis, figures=figures, tables=tables, html=page,
                       command=command)  # fmt: skip
