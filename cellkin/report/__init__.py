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
"""

from __future__ import annotations

from cellkin.report.analysis import (
    StudyAnalysis,
    analyse_study,
    endpoint_overview,
    kinetic_endpoints,
)
from cellkin.report.inputs import StudyInputs, identify_table, load_example_inputs, load_inputs
from cellkin.report.study import StudyReport, study_report

__all__ = [
    "StudyAnalysis",
    "StudyInputs",
    "StudyReport",
    "analyse_study",
    "endpoint_overview",
    "identify_table",
    "kinetic_endpoints",
    "load_example_inputs",
    "load_inputs",
    "study_report",
]
