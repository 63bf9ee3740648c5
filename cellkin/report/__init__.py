"""The whole-study report: every endpoint of a CAR-T study from its tables, in one HTML file.

:func:`study_report` validates the inputs, runs the observed (NCA) metrics, fits a kinetic
model to every subject (Stein 2019 by default), derives the model-based metrics, the safety,
efficacy and exposure–response endpoints by dose level, draws the figures and renders one
self-contained ``report.html`` (figures embedded, methods, options, software versions, input
checksums, exclusions and failures) plus the CSV table behind every number.

>>> from cellkin.report import load_example_inputs, study_report
>>> report = study_report(load_example_inputs(), n_jobs=2)  # doctest: +SKIP
>>> report.write("kd025_report")  # doctest: +SKIP

The command line does the same: ``cellkin report --example -o kd025_report``.

Inputs
    :func:`load_inputs` (study files, recognised by their columns with
    :func:`cellkin.io.identify_table` and checksummed with :func:`cellkin.io.sha256`),
    :func:`load_example_inputs` → :class:`StudyInputs`.
Analysis
    :func:`analyse_study` → :class:`StudyAnalysis` (every endpoint as a table; a step that
    cannot run becomes a failure row), :func:`kinetic_endpoints`, :func:`endpoint_overview`;
    the study windows :data:`LANDMARK_MONTHS`, :data:`SAFETY_WINDOW_DAYS` and
    :data:`TBB_HORIZON_DAYS`.
Report
    :func:`study_report` → :class:`StudyReport` (``write(folder)``: ``report.html`` and
    ``tables/*.csv``).
"""

from __future__ import annotations

from cellkin.report._analysis import (
    LANDMARK_MONTHS,
    SAFETY_WINDOW_DAYS,
    TBB_HORIZON_DAYS,
    StudyAnalysis,
    analyse_study,
    kinetic_endpoints,
)
from cellkin.report._inputs import StudyInputs, load_example_inputs, load_inputs
from cellkin.report._overview import endpoint_overview
from cellkin.report._study import StudyReport, study_report

__all__ = [
    "LANDMARK_MONTHS",
    "SAFETY_WINDOW_DAYS",
    "TBB_HORIZON_DAYS",
    "StudyAnalysis",
    "StudyInputs",
    "StudyReport",
    "analyse_study",
    "endpoint_overview",
    "kinetic_endpoints",
    "load_example_inputs",
    "load_inputs",
    "study_report",
]
