"""Run the cellkin benchmark suite and write one Markdown results table.

    python benchmarks/run.py                         # every benchmarks/bench_*.py, full size
    python benchmarks/run.py --smoke                 # CI-sized (what the test suite runs)
    python benchmarks/run.py --only nca simulation   # some of them (bench_ prefix optional)
    python benchmarks/run.py --output results.md --records results.json

Each script ``benchmarks/bench_NAME.py`` runs in its own process as
``python benchmarks/bench_NAME.py [--smoke] --json TMPFILE`` and writes a JSON list of
records, one per measured row, with the keys of :data:`REQUIRED` (extra keys are kept):
``cellkin_s`` is cellkin's median wall time, ``peer_s`` the peer's time for the same work
measured in the same run (or extrapolated from a subset, which ``peer`` says), ``ratio``
= ``peer_s / cellkin_s``, ``throughput`` in ``throughput_unit``, ``goal``/``met`` the
project's goal and whether this row meets it (None: no goal for this row).

The table's header gives the machine, library versions, date and git commit. A script that
fails (non-zero exit, timeout, missing or malformed records) is a FAILED row with the last
line of its error output, never dropped, and makes this runner exit with status 1.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REQUIRED = (
    "benchmark", "workload", "n", "cores", "cellkin_s", "peer", "peer_s", "ratio",
    "throughput", "throughput_unit", "goal", "met", "repeats", "notes",
)  # fmt: skip
VERSIONS = (
    "cellkin", "numpy", "numba", "scipy", "lmfit", "pandas", "pynca", "distributed", "numpyro",
    "jax",
)  # fmt: skip
SMOKE_TIMEOUT_S = 300.0


@dataclass
class Outcome:
    """What one script produced: its records, or why it failed."""

    script: Path
    seconds: float
    records: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    stdout: str = ""
    stderr: str = ""

    @property
    def name(self) -> str:
        """The benchmark's name: the script's stem without ``bench_``."""
        return self.script.stem.removeprefix("bench_")


# ----------------------------------------------------------------------------- environment


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return math.nan


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        if package == "cellkin" and (ROOT / "cellkin").is_dir():
            return "checkout (not installed)"
        return "not installed"


def _git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()  # fmt: skip

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return f"{commit} + uncommitted changes" if dirty else commit


def environment() -> dict[str, Any]:
    """Machine, versions, date and commit: the header of the results."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "ram_gib": round(_ram_gib(), 1),
        "load_average": round(load, 2),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {package: _version(package) for package in VERSIONS},
        "numba_threads": os.environ.get("NUMBA_NUM_THREADS", "default (all cores)"),
        "git_commit": _git_commit(),
    }


# ----------------------------------------------------------------------------- running


def discover(only: Sequence[str] | None) -> list[Path]:
    """The ``bench_*.py`` scripts beside this file, sorted; ``only`` selects by name."""
    scripts = sorted(HERE.glob("bench_*.py"))
    if not only:
        return scripts
    names = {script.stem.removeprefix("bench_"): script for script in scripts}
    wanted = [name.removesuffix(".py").removeprefix("bench_") for name in only]
    unknown = [name for name in wanted if name not in names]
    if unknown:
        known = ", ".join(names)
        raise ValueError(f"no benchmark named {', '.join(unknown)}; known: {known}")
    return [names[name] for name in dict.fromkeys(wanted)]


def _child_environment() -> dict[str, str]:
    """The scripts import the installed cellkin, or this checkout's when none is installed."""
    env = dict(os.environ)
    if importlib.util.find_spec("cellkin") is None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _text(output: str | bytes | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no error output)"


def check_records(records: object) -> str | None:
    """Why ``records`` is not a list of well-formed records, or None."""
    if not isinstance(records, list) or not records:
        return "the script wrote no records"
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            return f"record {i} is not a JSON object"
        missing = [key for key in REQUIRED if key not in record]
        if missing:
            return f"record {i} lacks {', '.join(missing)}"
        seconds = record["cellkin_s"]
        if not isinstance(seconds, int | float) or not math.isfinite(seconds) or seconds <= 0:
            return f"record {i}: cellkin_s must be a finite positive number, got {seconds!r}"
    return None


def run_script(script: Path, smoke: bool, timeout: float | None) -> Outcome:
    """Run one script in its own process and collect its records."""
    with tempfile.TemporaryDirectory(prefix="cellkin-bench-") as folder:
        output = Path(folder) / "records.json"
        command = [sys.executable, str(script), *(["--smoke"] if smoke else []),
                   "--json", str(output)]  # fmt: skip
        start = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=ROOT, env=_child_environment(),
                                  capture_output=True, text=True, timeout=timeout)  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            text = [_text(exc.stdout), _text(exc.stderr)]
            return Outcome(script, time.perf_counter() - start,
                           error=f"timed out after {timeout:.0f} s", stdout=text[0],
                           stderr=text[1])  # fmt: skip
        seconds = time.perf_counter() - start
        printed = {"stdout": done.stdout, "stderr": done.stderr}
        if done.returncode != 0:
            error = f"exit status {done.returncode}: {_last_line(done.stderr)}"
            return Outcome(script, seconds, error=error, **printed)
        try:
            records = json.loads(output.read_text())
        except (OSError, ValueError) as exc:
            return Outcome(script, seconds, error=f"no readable records ({exc})", **printed)
    problem = check_records(records)
    if problem:
        return Outcome(script, seconds, error=problem, **printed)
    for record in records:
        record.setdefault("script", script.name)
    return Outcome(script, seconds, records=records, **printed)


# ----------------------------------------------------------------------------- the table


def _cell(value: Any) -> str:
    """A table cell: numbers to 3 significant digits, None as blank, pipes escaped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _row(record: dict[str, Any]) -> str:
    ratio = record["ratio"]
    cells = [
        record["benchmark"], record["workload"], record["n"], record["cores"],
        record["cellkin_s"], record["peer"], record["peer_s"],
        None if ratio is None else f"{_cell(float(ratio))}×",
        None if record["throughput"] is None
        else f"{_cell(float(record['throughput']))} {record['throughput_unit']}",
        record["goal"], record["met"], record["repeats"], record["notes"],
    ]  # fmt: skip
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def markdown(env: dict[str, Any], outcomes: Sequence[Outcome], smoke: bool) -> str:
    """The results: a header on the run, then one table of every record and failure."""
    versions = ", ".join(f"{name} {version}" for name, version in env["versions"].items())
    usable = f" ({env['cores_usable']} usable)" if env["cores_usable"] != env["cores"] else ""
    lines = [
        f"## cellkin benchmarks{' (smoke mode: CI sizes, not for quoting)' if smoke else ''}",
        "",
        f"- date: {env['date']}; git commit: {env['git_commit']}",
        f"- machine: {env['cpu']}, {env['cores']} cores{usable}, {env['ram_gib']} GiB RAM; "
        f"load average {env['load_average']} at the start; {env['platform']}",
        f"- Python {env['python']}; {versions}; numba threads: {env['numba_threads']}",
        "- times are medians of `repeats` runs (wall clock); ratio = peer time / cellkin "
        "time for the same work (peers on a subset are extrapolated per patient, as named)",
        "",
        "| benchmark | workload | n | cores | cellkin (s) | peer | peer (s) | ratio "
        "| throughput | goal | met | repeats | notes |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---|---|---:|---|",
    ]
    for outcome in outcomes:
        lines += [_row(record) for record in outcome.records]
        if outcome.error is not None:
            failed = {key: None for key in REQUIRED}
            failed.update(benchmark=outcome.name, workload=f"FAILED: {outcome.script.name}",
                          notes=outcome.error)  # fmt: skip
            lines.append(_row(failed))
    return "\n".join(lines) + "\n"


def details(outcomes: Sequence[Outcome]) -> str:
    """Each script's own printed output, folded, after the table."""
    parts = ["", "## Output of each script", ""]
    for outcome in outcomes:
        status = "ok" if outcome.error is None else f"FAILED ({outcome.error})"
        parts += [f"### {outcome.script.name}: {status}, {outcome.seconds:.1f} s", "",
                  "<details><summary>output</summary>", "", outcome.stdout.strip() or "(none)",
                  "", "</details>", ""]  # fmt: skip
        if outcome.error is not None and outcome.stderr.strip():
            tail = "\n".join(outcome.stderr.strip().splitlines()[-30:])
            parts += ["Error output (last 30 lines):", "", "```text", tail, "```", ""]
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="CI-sized run of every script")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    parser.add_argument("--output", metavar="FILE", help="write the Markdown results here")
    parser.add_argument("--records", metavar="FILE", help="write every record (JSON) here")
    parser.add_argument("--timeout", type=float, metavar="S",
                        help=f"seconds per script (default: {SMOKE_TIMEOUT_S:.0f} with "
                        "--smoke, none otherwise)")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        scripts = discover(args.only)
    except ValueError as exc:
        parser.error(str(exc))
    timeout = args.timeout or (SMOKE_TIMEOUT_S if args.smoke else None)
    env = environment()
    outcomes = []
    for script in scripts:
        print(f"run.py: {script.name} ...", file=sys.stderr, flush=True)
        outcome = run_script(script, args.smoke, timeout)
        state = f"{len(outcome.records)} records" if outcome.error is None else outcome.error
        print(f"run.py: {script.name}: {state} ({outcome.seconds:.1f} s)", file=sys.stderr)
        outcomes.append(outcome)
    table = markdown(env, outcomes, args.smoke)
    print(table)
    if args.output:
        Path(args.output).write_text(table + details(outcomes))
    if args.records:
        records = [r for outcome in outcomes for r in outcome.records]
        failures = [{"script": o.script.name, "error": o.error} for o in outcomes if o.error]
        Path(args.records).write_text(json.dumps(
            {"environment": env, "records": records, "failures": failures}, indent=1))  # fmt: skip
    return 1 if any(outcome.error is not None for outcome in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
