"""The example notebook runs top to bottom on a real Jupyter kernel and shows what it should.

``examples/quickstart.ipynb`` is executed with nbclient on the ``python3`` kernel (ipykernel,
from the ``[test]`` extra), in a temporary working directory, with the cellkin under test first
on the kernel's ``PYTHONPATH``. A last cell, added here and never saved, reports the kernel's
own objects (the ORR table, the batch fit) so that the checks do not parse HTML. The stored
notebook must carry the outputs of a full run (``python examples/_execute.py``).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"
CELL_TIMEOUT_S = 600  # generous: the batch fit is the slow cell (seconds on an idle laptop)
MAX_BYTES = 2_000_000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Read by the extra cell from the notebook's own variables (names as in the notebook).
PROBE = """
import json
print(json.dumps({
    "orr_groups": [str(g) for g in orr["group"]],
    "dose_levels": sorted(str(d) for d in study.subjects["dose_level"].unique()),
    "batch_counts": batch.counts,
    "batch_subjects": len(batch.subjects),
    "nca_subjects": int(nca_table["subject"].nunique()),
    "fit_subject": result.subject,
    "fit_assays": list(result.assays),
    "fit_success": bool(result.success),
    "er_pairs": sorted(er.table[["outcome", "exposure"]].values.tolist()),
    "pfs_landmark_days": sorted({float(d) for d in pfs.landmarks()["time"]}),
    "population_subjects": pop.n_subjects,
    "population_metrics": int(pop_metrics["cmax"].notna().sum()),
    "population_source": pop_metrics.attrs["cellkin"]["source"],
}))
"""


def _by_tag(notebook: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    return {tag: cell for cell in notebook.cells for tag in cell.metadata.get("tags", [])}


def _kernel_env() -> dict[str, str]:
    """The test process's environment, with the tested cellkin's folder first on PYTHONPATH."""
    spec = importlib.util.find_spec("cellkin")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("cellkin is not importable; install it with `pip install '.[test]'`")
    root = str(Path(next(iter(spec.submodule_search_locations))).parent)
    entries = [root, os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(e for e in entries if e)}


def _require_kernel() -> None:
    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        pytest.fail(
            "no 'python3' Jupyter kernel: install ipykernel in this environment "
            "(`pip install '.[test]'`) to run the example notebook"
        )


def _html(cell: nbformat.NotebookNode) -> str:
    return "".join(
        "".join(out.get("data", {}).get("text/html", ""))
        for out in cell.outputs
        if out.output_type in ("execute_result", "display_data")
    )


def _pngs(cell: nbformat.NotebookNode) -> list[bytes]:
    return [
        base64.b64decode(out["data"]["image/png"])
        for out in cell.outputs
        if out.output_type == "display_data" and "image/png" in out.get("data", {})
    ]


def _stderr(cell: nbformat.NotebookNode) -> str:
    return "".join(
        out.text for out in cell.outputs if out.output_type == "stream" and out.name == "stderr"
    )


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> tuple[nbformat.NotebookNode, dict]:
    """The notebook run top to bottom (plus the probe cell) and the probe's report."""
    _require_kernel()
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(PROBE))
    workdir = tmp_path_factory.mktemp("notebook")
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute(env=_kernel_env())  # raises CellExecutionError on the first failing cell
    probe = notebook.cells.pop()
    lines = [out.text for out in probe.outputs if out.output_type == "stream"]
    return notebook, json.loads("".join(lines))


@pytest.mark.slow
def test_every_cell_runs_without_error_or_warning(executed):
    notebook, _ = executed
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count is not None for cell in code)
    errors = [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert errors == []
    noisy = {cell.source.splitlines()[0]: _stderr(cell) for cell in code if _stderr(cell)}
    assert noisy == {}, "cells wrote to stderr (warnings?)"


@pytest.mark.slow
def test_key_results_are_rendered(executed):
    notebook, _ = executed
    cells = _by_tag(notebook)
    assert "Fit of subject KD025-126 (qpcr, flow)" in _html(cells["fit-summary"])
    assert "<table" in _html(cells["fit-summary"])
    assert "Batch fit of 27 subjects: stein2019" in _html(cells["batch"])
    assert "Exposure-response (qpcr)" in _html(cells["exposure-response"])
    assert "Kaplan-Meier: OS" in _html(cells["os"])
    for tag in ("nca", "nca-summary", "side-by-side", "orr", "pfs-landmarks", "dlt"):
        assert "<table" in _html(cells[tag]), tag
    assert "Population fit: stein2019, 27 subjects" in _html(cells["population"])
    for tag in ("population-fixed", "population-metrics"):
        assert "<table" in _html(cells[tag]), tag
    for tag in ("fit-plot", "agreement-plot", "exposure-response-plot", "km-plot", "waterfall",
                "population-plot", "population-agreement-plot"):  # fmt: skip
        images = _pngs(cells[tag])
        assert len(images) == 1 and images[0].startswith(PNG_MAGIC), tag


@pytest.mark.slow
def test_kernel_objects_cover_the_study(executed):
    _, report = executed
    levels = report["dose_levels"]
    assert levels == ["DL1", "DL2", "DL3"]
    assert report["orr_groups"] == [*levels, "all"]  # one row per dose level, then pooled
    counts = report["batch_counts"]
    assert report["batch_subjects"] == counts["subjects"] == report["nca_subjects"] == 27
    # issue 15: 14 of the example's subjects have fewer quantified samples than free parameters
    assert counts["fitted"] + counts["failed"] == 27 and counts["fitted"] >= 10
    assert report["fit_subject"] == "KD025-126" and report["fit_assays"] == ["qpcr", "flow"]
    assert report["fit_success"]
    assert report["er_pairs"] == [
        ["crs>=2", "auc_0_28"],
        ["crs>=2", "cmax"],
        ["responder", "auc_0_28"],
        ["responder", "cmax"],
    ]
    assert report["pfs_landmark_days"] == [30.0, 61.0, 91.0, 183.0, 365.0]
    # issue 18: the population model gives metrics to every subject with a qPCR sample
    assert report["population_subjects"] == report["population_metrics"] == 27
    assert report["population_source"] == "population (conditional)"


def test_stored_notebook_carries_the_outputs_of_a_full_run():
    """The committed file shows results: re-run `python examples/_execute.py` after edits."""
    assert NOTEBOOK.stat().st_size < MAX_BYTES
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    assert all(out.output_type != "error" for cell in code for out in cell.outputs)
    without_output = [cell.source.splitlines()[0] for cell in code if not cell.outputs]
    assert without_output == []
    cells = _by_tag(notebook)
    assert "Fit of subject KD025-126" in _html(cells["fit-summary"])
    assert _pngs(cells["km-plot"])
