"""The benchmark suite's smoke mode runs in CI, so that no benchmark rots.

``python benchmarks/run.py --smoke`` runs every ``benchmarks/bench_*.py`` at CI size; each
must exit cleanly and write well-formed records with finite positive times, and the results
table must be written. No timing is asserted (CI machines are shared and noisy).
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
REQUIRED = (
    "benchmark", "workload", "n", "cores", "cellkin_s", "peer", "peer_s", "ratio",
    "throughput", "throughput_unit", "goal", "met", "repeats", "notes",
)  # fmt: skip

pytestmark = pytest.mark.skipif(
    not (BENCHMARKS / "run.py").is_file(), reason="benchmarks/ is not part of this install"
)


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_smoke_suite_runs_every_benchmark(tmp_path):
    output, records_file = tmp_path / "results.md", tmp_path / "records.json"
    command = [sys.executable, "benchmarks/run.py", "--smoke", "--output", str(output),
               "--records", str(records_file)]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]

    saved = json.loads(records_file.read_text())
    assert saved["failures"] == []
    assert {"cpu", "cores", "ram_gib", "python", "versions", "date", "git_commit"} <= set(
        saved["environment"]
    )
    scripts = sorted(path.name for path in BENCHMARKS.glob("bench_*.py"))
    assert sorted({r["script"] for r in saved["records"]}) == scripts  # every script reported
    for record in saved["records"]:
        assert set(REQUIRED) <= set(record), record
        assert _positive(record["cellkin_s"]) and _positive(record["n"]), record
        assert record["peer_s"] is None or _positive(record["peer_s"]), record
        assert record["ratio"] is None or _positive(record["ratio"]), record
        assert record["throughput"] is None or _positive(record["throughput"]), record

    table = output.read_text()
    assert "| benchmark | workload | n | cores | cellkin (s) |" in table
    assert "git commit:" in table and "machine:" in table and "FAILED" not in table
    summary = table.split("## Output of each script")[0]
    rows = [line for line in summary.splitlines() if line.startswith("| ") and "--" not in line]
    assert len(rows) == 1 + len(saved["records"])  # the header, then one row per record
    assert table.count("### bench_") == len(scripts)  # each script's own output follows


def test_a_failing_script_is_a_failed_row_and_a_non_zero_exit(tmp_path, monkeypatch):
    """The runner's own contract, on stand-in scripts (fast; no cellkin import)."""
    spec = importlib.util.spec_from_file_location("cellkin_bench_run", BENCHMARKS / "run.py")
    run = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, run)  # dataclasses look their module up
    spec.loader.exec_module(run)
    good, bad = tmp_path / "bench_good.py", tmp_path / "bench_bad.py"
    record = dict.fromkeys(REQUIRED) | {"benchmark": "good", "n": 3, "cellkin_s": 0.5}
    good.write_text(
        "import json, sys\n"
        f"json.dump([{record!r}], open(sys.argv[sys.argv.index('--json') + 1], 'w'))\n"
    )
    bad.write_text("raise SystemExit('bench_bad: something broke')\n")
    monkeypatch.setattr(run, "HERE", tmp_path)  # discover the stand-ins
    output = tmp_path / "results.md"
    assert run.main(["--smoke", "--output", str(output)]) == 1
    table = output.read_text()
    assert "| good |  | 3 |  | 0.5 |" in table
    assert "| bad | FAILED: bench_bad.py |" in table
    assert "exit status 1: bench_bad: something broke |" in table
    assert run.main(["--only", "good", "--output", str(output)]) == 0
    assert "FAILED" not in output.read_text()
    assert run.check_records([record | {"cellkin_s": float("nan")}]).startswith("record 0")
    assert run.check_records([]) == "the script wrote no records"
