"""One report of the bundled example study, shared by the report tests (it fits 27 subjects)."""

from __future__ import annotations

import pytest

from cellkin.report import load_example_inputs, study_report


@pytest.fixture(scope="session")
def example_report():
    """The example study's report, built once (one start per subject, in-process)."""
    return study_report(load_example_inputs(), n_jobs=1, n_starts=1, progress=False)


@pytest.fixture(scope="session")
def example_report_dir(example_report, tmp_path_factory):
    """Folder holding the written example report (``report.html`` and ``tables/``)."""
    folder = tmp_path_factory.mktemp("example_report")
    example_report.write(folder)
    return folder
