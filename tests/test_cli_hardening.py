"""A hardened command line (issue 20): one line and a documented exit status for every error
(2 bad input or usage, 1 failure, 130 interrupted), numeric options checked by the parser,
outputs checked before any work, warnings as one line, outputs cellkin itself reads."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cellkin
from cellkin.cli import main
from cellkin.errors import FitError

EXAMPLE = cellkin.load_example()
QUICK = ["--jobs", "1", "--starts", "1", "--no-progress"]


@pytest.fixture(scope="module")
def kinetics_file(tmp_path_factory) -> Path:
    subset = EXAMPLE.kinetics[EXAMPLE.kinetics["subject"].isin(["KD025-101", "KD025-109"])]
    path = tmp_path_factory.mktemp("in") / "kinetics.csv"
    subset.to_csv(path, index=False)
    return path


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("cellkin: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fit", "k.csv", "--seed", "-1"], "argument --seed: expected an integer >= 0, got '-1'"),
        (["fit", "k.csv", "--starts", "1000000000"], "--starts: expected an integer from 1 to"),
        (["fit", "k.csv", "--starts", "0"], "--starts: expected an integer from 1 to 1000"),
        (["fit", "k.csv", "--jobs", "1e9"], "--jobs: expected an integer from 1 to 1024"),
        (["validate", "k.csv", "--exclude-before", "nan"], "expected a finite number, got 'nan'"),
        (["validate", "k.csv", "--exclude-before", "inf"], "expected a finite number, got 'inf'"),
        (["report", "--example", "--exclude-before=-inf"], "expected a finite number"),
        (["simulate", "--seed", "-1"], "--seed: expected an integer >= 0"),
        (["simulate", "--seed", "1", "--n", "0"], "--n: expected an integer from 1 to"),
        (["simulate", "--seed", "1", "--n", "3000000000"], "--n: expected an integer from 1 to"),
        (["simulate", "--seed", "1", "--lloq", "0"], "--lloq: expected a finite number > 0"),
        (["simulate", "--seed", "1", "--sigma", "nan"], "--sigma: expected a finite number"),
        (["simulate", "--seed", "1", "--chunk-size", "-5"], "--chunk-size: expected an integer"),
        (["simulate", "--seed", "1", "--omega", "cmax=inf"], "--omega: 'cmax=inf'"),
        (["nca", "--example", "--intervals", "0-inf"], "START-END days with START < END"),
        (["nca", "--example", "--intervals", "28-0"], "START-END days with START < END"),
        (["fit", "k.csv", "--no-such-option"], "unrecognized arguments: --no-such-option"),
    ],
)
def test_bad_values_are_one_line_and_exit_2_before_any_work(argv, message, capsys, monkeypatch):
    _forbid_work(monkeypatch)
    assert main(argv) == 2
    assert message in _one_error_line(capsys)


def _no_work(*_, **__):
    raise AssertionError("work started before the options were checked")


_WORK = ("read_kinetics", "load_example", "load_inputs", "load_example_inputs", "fit_all",
         "virtual_population", "simulate_population")  # fmt: skip


def _forbid_work(monkeypatch) -> None:
    """Make every command fail loudly if it starts reading or computing."""
    for command in ("_validate", "_nca", "_simulate", "_fit", "_report"):
        module = importlib.import_module(f"cellkin.cli.{command}")
        for name in _WORK:
            if hasattr(module, name):
                monkeypatch.setattr(module, name, _no_work)


def test_output_naming_an_existing_file_is_refused_before_fitting(
    kinetics_file, tmp_path, capsys, monkeypatch
):
    existing = tmp_path / "results.csv"
    existing.write_text("keep me\n")
    _forbid_work(monkeypatch)
    assert main(["fit", str(kinetics_file), "-o", str(existing), *QUICK]) == 2
    assert "is an existing file, not a folder" in _one_error_line(capsys)
    nca_out = tmp_path / "nca.csv"
    nca_out.write_text("keep me\n")
    assert main(["nca", "--example", "-o", str(nca_out)]) == 2
    assert "nca.csv already exists; give another name, or --overwrite" in _one_error_line(capsys)
    assert main(["simulate", "--seed", "1", "-o", str(nca_out)]) == 2
    assert "already exists" in _one_error_line(capsys)
    assert main(["simulate", "--seed", "1", "-o", str(tmp_path / "a.csv"), "--params-output",
                 str(tmp_path / "a.csv")]) == 2  # fmt: skip
    assert "also given to -o/--output" in _one_error_line(capsys)
    assert existing.read_text() == nca_out.read_text() == "keep me\n"


def test_a_non_empty_report_folder_is_refused_and_overwrite_replaces_only_its_files(
    kinetics_file, tmp_path, capsys
):
    out = tmp_path / "report"
    argv = ["report", "--kinetics", str(kinetics_file), "-o", str(out), *QUICK]
    assert main(argv) == 0
    first = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
    assert Path("cellkin-manifest.json") in first and Path("tables/nca.csv") in first
    (out / "tables" / "stale_from_another_study.csv").write_text("x\n1\n")
    manifest = json.loads((out / "cellkin-manifest.json").read_text())
    manifest["files"].append({"path": "tables/stale_from_another_study.csv", "rows": 1})
    (out / "cellkin-manifest.json").write_text(json.dumps(manifest))
    (out / "my_notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(argv) == 2
    assert "is not empty" in _one_error_line(capsys)
    assert main([*argv, "--overwrite"]) == 0
    now = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
    assert now == first | {Path("my_notes.txt")}  # the stale table is gone, the notes stay
    stdout = capsys.readouterr().out
    assert "see .failures" not in stdout and "failures.csv" in stdout


def test_outputs_into_missing_folders_are_created(kinetics_file, tmp_path):
    deep = tmp_path / "a" / "b"
    assert main(["nca", str(kinetics_file), "-o", str(deep / "nca.csv")]) == 0
    assert main(["simulate", "--seed", "1", "--n", "3", "-o", str(deep / "sim" / "s.csv")]) == 0
    checkpoint = deep / "ck" / "fits.jsonl"
    argv = ["fit", str(kinetics_file), "-o", str(deep / "fit"), "--checkpoint", str(checkpoint)]
    assert main([*argv, *QUICK]) == 0
    assert (deep / "nca.csv").is_file() and (deep / "sim" / "s.csv").is_file()
    assert checkpoint.is_file() and not Path(f"{checkpoint}.lock").exists()
    assert (deep / "fit" / "params.csv").is_file()
    assert (deep / "nca.csv.manifest.json").is_file()


def test_a_checkpoint_that_is_a_folder_or_cannot_be_written_is_one_line(
    kinetics_file, tmp_path, capsys, monkeypatch
):
    argv = ["fit", str(kinetics_file), "-o", str(tmp_path / "out"), *QUICK, "--checkpoint"]
    assert main([*argv, str(tmp_path)]) == 2
    assert "is a folder; give a file name" in _one_error_line(capsys)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.geteuid() == 0:  # root may write anywhere: make the lock file fail as it would
        lock_module = importlib.import_module("cellkin._lock")

        def refuse(self):
            raise PermissionError(13, "Permission denied", str(self.path))

        monkeypatch.setattr(lock_module.HolderLock, "acquire", refuse)
    assert main([*argv, str(locked / "fits.jsonl")]) == 2
    assert "cannot write" in _one_error_line(capsys)


def test_failures_are_exit_1_with_one_line(monkeypatch, capsys, kinetics_file, tmp_path):
    fit_module = importlib.import_module("cellkin.cli._fit")
    argv = ["fit", str(kinetics_file), "-o", str(tmp_path / "x"), *QUICK]
    for error, expected in [
        (MemoryError(), "out of memory; use a smaller input or option"),
        (OSError(28, "No space left on device", "params.csv"), "No space left on device: params"),
        (FitError("the scheduler went away"), "the scheduler went away"),
        (ZeroDivisionError("boom"), "unexpected ZeroDivisionError: boom (rerun with --debug"),
    ]:

        def fail(*_, problem=error, **__):
            raise problem

        monkeypatch.setattr(fit_module, "fit_all", fail)
        assert main(argv) == 1
        assert expected in _one_error_line(capsys)
    assert main([*argv, "--debug"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_simulate_memory_is_estimated_before_allocation(capsys, monkeypatch, tmp_path):
    """Issue 20: ``simulate --n 20000000`` under a memory limit died with a numpy
    ``_ArrayMemoryError`` traceback. The long table is now estimated first."""
    memory = importlib.import_module("cellkin._memory")
    monkeypatch.setattr(memory, "available_bytes", lambda: 2 * 2**30)
    _forbid_work(monkeypatch)
    assert main(["simulate", "--n", "20000000", "--seed", "1", "-o", str(tmp_path / "s.csv")]) == 2
    line = _one_error_line(capsys)
    assert "--n 20000000 with 11 times as one table (220,000,000 rows) needs about" in line
    assert "2.0 GB is available; lower --n, or write a .parquet output" in line
    assert not list(tmp_path.iterdir())


@pytest.mark.filterwarnings("default")
def test_warnings_are_one_line_each(tmp_path, capsys):
    path = tmp_path / "dup.csv"
    table = EXAMPLE.kinetics[EXAMPLE.kinetics["subject"] == "KD025-101"]
    pd.concat([table, table.iloc[:2]]).to_csv(path, index=False)
    assert main(["validate", "--kinetics", str(path)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cellkin: warning: "), err
    assert "dup.csv: 2 sample row(s) repeat an earlier row exactly" in err[0]


def test_simulate_times_are_sorted_and_unique_and_the_table_reads_back(tmp_path, capsys):
    out = tmp_path / "sim.csv"
    assert main(["simulate", "--n", "4", "--seed", "3", "--times", "7,1,7", "--lloq", "50",
                 "-o", str(out)]) == 0  # fmt: skip
    assert "cellkin: note: --times sorted, each day once: 1,7" in capsys.readouterr().err
    kinetics = cellkin.read_kinetics(out)  # used to fail: duplicate samples
    assert kinetics.groupby("subject")["time"].apply(list).tolist() == [[1.0, 7.0]] * 4


def test_every_table_the_cli_writes_reads_back(tmp_path, kinetics_file):
    """Round trip: each table a command writes is read back (with cellkin's reader where it
    has one) and has the rows its manifest lists."""
    outputs = []
    runs = [
        ["nca", str(kinetics_file), "-o", str(tmp_path / "nca.parquet")],
        ["nca", str(kinetics_file), "--long", "-o", str(tmp_path / "long.csv")],
        ["simulate", "--n", "5", "--seed", "2", "--lloq", "50", "-o", str(tmp_path / "t.csv"),
         "--params-output", str(tmp_path / "p.csv")],
        ["simulate", "--n", "50", "--seed", "2", "-o", str(tmp_path / "pop.parquet"),
         "--summary", str(tmp_path / "summary.csv"), "--no-progress"],
    ]  # fmt: skip
    for argv in runs:
        assert main(argv) == 0
        outputs.append(Path(argv[argv.index("-o") + 1]))
    assert main(["fit", str(kinetics_file), "-o", str(tmp_path / "fit"), *QUICK]) == 0
    cellkin.read_kinetics(tmp_path / "t.csv")
    manifests = [Path(f"{p}.manifest.json") for p in outputs]
    manifests.append(tmp_path / "fit" / "cellkin-manifest.json")
    checked = 0
    for manifest in manifests:
        document = json.loads(manifest.read_text())
        assert document["command"].startswith("cellkin ")
        for entry in document["files"]:
            path = manifest.parent / entry["path"]
            table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
            assert len(table) == entry["rows"], entry["path"]
            checked += 1
    assert checked == 10  # nca, long; t.csv, p.csv; pop.parquet, summary.csv; 4 fit tables
    assert importlib.import_module("cellkin._output").verify_manifest(manifests[-1]) == []


def test_fit_output_has_no_dict_reprs(kinetics_file, tmp_path, capsys):
    assert main(["fit", str(kinetics_file), "-o", str(tmp_path / "f"), *QUICK]) == 0
    out = capsys.readouterr().out
    assert "{" not in out and "see .failures" not in out
    assert "options: blq m3, error log-additive, n_starts 1, seed 0" in out


_INTERRUPT = """
import importlib, os, sys, time
outcome = importlib.import_module("cellkin.fit._outcome")
real = outcome.fit_table
def slow_fit(*args, **kwargs):  # top level: the pool's workers import this script too
    time.sleep(0.3)
    return real(*args, **kwargs)
outcome.fit_table = slow_fit
if __name__ == "__main__":
    from cellkin.cli import main
    sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_ctrl_c_is_one_line_exit_130_and_the_same_command_resumes(tmp_path):
    """Issue 20: Ctrl-C printed a 24-line KeyboardInterrupt traceback. SIGINT goes to the
    whole process group, as a terminal sends it (pool workers included)."""
    script = tmp_path / "run.py"
    script.write_text(_INTERRUPT)
    out = tmp_path / "out"
    checkpoint = out / "fits.jsonl"  # in the output folder: the rerun must still be accepted
    argv = ["fit", "--example", "-o", str(out), "--checkpoint", str(checkpoint), "--jobs", "2",
            "--starts", "1", "--no-progress"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(cellkin.__file__).parents[1])}
    command = [sys.executable, str(script), *argv]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if checkpoint.exists() and checkpoint.read_bytes().count(b"\n") >= 3:
            break
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err.strip().splitlines() == [
        f"cellkin: interrupted; finished subjects are kept in {checkpoint}: rerun the same "
        "command to resume"
    ], err
    done = checkpoint.read_bytes().count(b"\n") - 1
    assert 2 <= done < 27
    assert sorted(p.name for p in out.iterdir()) == ["fits.jsonl"]  # lock released, no tables
    assert main(argv) == 0  # the same command resumes
    fitted = set(pd.read_csv(out / "statistics.csv")["subject"])
    failed = set(pd.read_csv(out / "failures.csv")["subject"])
    assert len(fitted | failed) == 27  # every subject accounted for


def test_no_tqdm_warning_in_a_notebook_without_ipywidgets():
    """Issue 20: in Jupyter without ipywidgets, the progress bar fell back to text after a
    ``TqdmWarning``; now it falls back silently."""
    code = """
import sys, types, warnings
warnings.simplefilter("always")
sys.modules["ipykernel.zmqshell"] = types.ModuleType("ipykernel.zmqshell")
import IPython
class ZMQInteractiveShell:  # what get_ipython() returns in a notebook
    pass
IPython.get_ipython = lambda: ZMQInteractiveShell()
sys.modules["ipywidgets"] = None  # not installed
import importlib
bar = importlib.import_module("cellkin._progress").progress_bar(True, total=3, desc="x")
bar.update(3)
bar.close()
print(*sorted({kind.__module__ for kind in type(bar).__mro__}))
"""
    env = {**os.environ, "PYTHONPATH": str(Path(cellkin.__file__).parents[1])}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "tqdm.std" in result.stdout.split() and "tqdm.notebook" not in result.stdout
    assert "Warning" not in result.stderr and "3/3" in result.stderr


def test_numeric_draws_are_seeded_lazily():
    starts = importlib.import_module("cellkin.fit._starts")
    points = starts.multistart(np.zeros(3), np.ones(3, bool), -np.ones(3), np.ones(3), 10**9, 0)
    first, second = next(points), next(points)  # a billion starts cost nothing until drawn
    assert first.tolist() == [0.0, 0.0, 0.0] and np.abs(second).max() < 1


def test_a_ctrl_c_inside_a_c_callback_still_interrupts_the_command(capsys):
    """Attack 27 of issue 20, its timing-dependent variant: a Ctrl-C that arrives while C code
    calls back into Python through ctypes (numba loading a kernel from its cache) was printed
    as "Exception ignored on calling ctypes callback function" plus a traceback, and
    swallowed. Under the CLI it is delivered again to the main thread as a KeyboardInterrupt."""
    import ctypes

    from cellkin.cli._main import _interrupts_delivered

    def interrupted() -> int:
        raise KeyboardInterrupt

    callback = ctypes.CFUNCTYPE(ctypes.c_int)(interrupted)
    with pytest.raises(KeyboardInterrupt), _interrupts_delivered():
        callback()  # the exception cannot cross the C frame: CPython reports it as unraisable
        for _ in range(1000):  # the re-delivered interrupt arrives at the next bytecode
            time.sleep(0.001)
    assert "Exception ignored" not in capsys.readouterr().err


def test_a_worker_stopped_inside_a_c_callback_still_exits_quietly(tmp_path):
    """The same attack seen from a pool worker: the SIGTERM that stops it after a Ctrl-C can
    arrive while numba loads a kernel from its cache (llvmlite's ctypes callbacks), where the
    worker's ``SystemExit`` cannot leave the callback; CPython printed 8 lines under the
    user's one-line message and the worker went on. Its hook sends SIGTERM again."""
    script = tmp_path / "worker.py"
    script.write_text(
        "import ctypes, signal, sys, time\n"
        "from cellkin.fit import _execution\n"
        "signal.signal(signal.SIGTERM, _execution._exit_on_sigterm)\n"
        "_execution._WORKER['ready'] = True\n"
        "sys.unraisablehook = _execution._exit_again\n"
        "def loading():\n"
        "    _execution._exit_on_sigterm(signal.SIGTERM, None)\n"
        "    return 0\n"
        "ctypes.CFUNCTYPE(ctypes.c_int)(loading)()\n"
        "time.sleep(10)\n"
        "sys.exit(0)\n"
    )
    path = {"PYTHONPATH": str(Path(cellkin.__file__).parents[1])}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **path})  # fmt: skip
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert "Exception ignored" not in done.stderr
