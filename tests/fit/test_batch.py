"""Batch fits: every subject accounted for, executors, checkpoint/resume (kill -9), tables.

The reference is an uninterrupted in-process run; every other way of running the same batch
(process pool, threads, Dask, resumed after SIGKILL or a worker crash) must give identical
tables, because fits are deterministic given their options and seed.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import json
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cellkin
from cellkin.errors import DataError, FitError, ModelError, OptionError
from cellkin.fit import FAILURE_STAGES, ISSUE_CODES, BatchFit, FitResult, fit_all
from cellkin.simulate import sample_trial, virtual_population

RICH = [-1, 1, 2, 4, 7, 9, 11, 14, 17, 21, 28, 35, 42, 56, 70, 84, 112, 140, 180]
# The residual SD is fixed so that the 6 free kinetic parameters of SPARSE meet its 6 samples:
# a fit is made (it is not refused), but without a covariance (n = p), so it does not count
# as converged. (Issue 15 refuses fewer quantified samples than free parameters: with the SD
# free, SPARSE would be refused like REFUSED.)
OPTIONS = {"n_starts": 1, "seed": 3, "fixed": {"sigma_qpcr": 0.5}}
TABLES = ("params", "statistics", "failures")
BAD = ("FEW", "ALLBLQ")
REFUSED = "REFUSED"


def _population(n: int = 5, seed: int = 11) -> pd.DataFrame:
    """``n`` simulated subjects richly sampled; one with 2 quantifiable samples and one all
    BLQ in the middle (input order is tested); last, one with 6 samples for 6 free parameters
    (its fit cannot have a covariance, so it does not count as converged) and one with 5
    (refused: fewer quantified samples than free parameters)."""
    population = virtual_population("stein2019", n + 2, seed=seed)
    kinetics = sample_trial("stein2019", population[:n], RICH, lloq=50, seed=seed + 1)
    sparse = population[n : n + 1].assign(subject="SPARSE")
    sparse = sample_trial("stein2019", sparse, [3, 7, 10, 14, 28, 56], lloq=1, seed=seed + 4)
    refused = population[n + 1 :].assign(subject=REFUSED)
    refused = sample_trial("stein2019", refused, [4, 9, 14, 21, 28], lloq=1, seed=seed + 3)
    first = kinetics[kinetics["subject"] == kinetics["subject"].iloc[0]]
    few = first.assign(subject="FEW")
    quantified = few.index[~few["blq"]]
    few.loc[quantified[2:], ["value", "blq"]] = [np.nan, True]
    all_blq = first.assign(subject="ALLBLQ", value=np.nan, blq=True)
    cut = kinetics.index[kinetics["subject"] == kinetics["subject"].unique()[2]][0]
    parts = [kinetics.loc[: cut - 1], few, all_blq, kinetics.loc[cut:], sparse, refused]
    return pd.concat(parts, ignore_index=True)


KINETICS = _population()
SUBJECTS = list(dict.fromkeys(KINETICS["subject"]))


def assert_same_tables(batch: BatchFit, reference: BatchFit) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(
            getattr(batch, name), getattr(reference, name), check_exact=True, obj=name
        )
    assert list(batch.results) == list(reference.results)
    assert batch.subjects == reference.subjects


@pytest.fixture(scope="module")
def reference() -> BatchFit:
    return fit_all(KINETICS, n_jobs=1, progress=False, **OPTIONS)


def _records(path: Path) -> list[str]:
    """Subjects of the complete records of a checkpoint, in file order."""
    lines = path.read_bytes().split(b"\n")[1:-1]
    return [json.loads(line)["subject"] for line in lines]


# ----------------------------------------------------------------------------- accounting


def test_every_subject_ends_in_params_or_failures(reference):
    fitted = list(dict.fromkeys(reference.params["subject"]))
    failed = set(reference.failures["subject"])
    assert set(fitted) | failed == set(SUBJECTS)
    assert reference.subjects == tuple(SUBJECTS)
    unfitted = (*BAD, REFUSED)
    assert fitted == [s for s in SUBJECTS if s not in unfitted]  # input order, bad ones skipped
    assert list(reference.statistics["subject"]) == fitted
    assert set(reference.failures["stage"]) <= set(FAILURE_STAGES)
    for subject in BAD:
        (row,) = reference.failures[reference.failures["subject"] == subject].itertuples()
        assert row.stage == "fit" and "quantifiable" in row.reason
    (row,) = reference.failures[reference.failures["subject"] == REFUSED].itertuples()
    assert row.stage == "fit" and "5 quantified sample(s) for 6 free parameters" in row.reason
    assert reference.counts["failed"] == 3 and reference.counts["subjects"] == len(SUBJECTS)


def test_tables_have_the_documented_columns(reference):
    assert list(reference.params.columns[:8]) == [
        "subject", "parameter", "kind", "estimate", "se", "rse_pct", "ci_lower", "ci_upper",
    ]  # fmt: skip
    assert {"unit", "fixed", "success"} <= set(reference.params.columns)
    assert {"minus2ll", "aic", "bic", "success", "warnings"} <= set(reference.statistics.columns)
    assert list(reference.failures.columns) == ["subject", "stage", "reason"]
    metrics = reference.metrics()
    assert list(dict.fromkeys(metrics["subject"])) == list(reference.statistics["subject"])
    for metric in ("cmax", "tmax", "auc_0_28", "time_back_to_baseline"):
        assert {metric, f"{metric}_ci_lower", f"{metric}_ci_upper"} <= set(metrics.columns)


def test_reliability_verdicts_are_in_every_table_and_counted(reference):
    """``reliable`` and ``issues`` (codes) of each fit in params, statistics and the metrics
    table equal its FitResult; counts count reliable fits and each issue code."""
    results = reference.results
    expected = {s: (r.reliable, ", ".join(r.issue_codes)) for s, r in results.items()}
    assert not expected["SPARSE"][0] and "not_converged" in expected["SPARSE"][1]
    for table in (reference.params, reference.statistics, reference.metrics(n_draws=0)):
        found = dict(zip(table["subject"], zip(table["reliable"], table["issues"], strict=True),
                         strict=False))  # fmt: skip
        assert found == expected
    counts = reference.counts
    assert counts["reliable"] == sum(r.reliable for r in results.values())
    assert counts["reliable"] + counts["unreliable"] == counts["fitted"]
    for code in ISSUE_CODES:
        assert counts[code] == sum(code in r.issue_codes for r in results.values()), code


def test_not_converged_fits_stay_in_the_tables_and_are_listed(reference):
    flags = reference.statistics.set_index("subject")["success"]
    assert not flags["SPARSE"] and flags.drop("SPARSE").all()
    failures = reference.failures
    assert set(failures.loc[failures["stage"] == "convergence", "subject"]) == {"SPARSE"}
    assert not reference.params.loc[reference.params["subject"] == "SPARSE", "success"].any()
    assert reference.counts["not_converged"] == 1 and reference.counts["converged"] == 5


def test_subjects_argument_keeps_its_order_and_reports_unknown_ids():
    batch = fit_all(KINETICS, subjects=["ALLBLQ", "nobody", "FEW"], n_jobs=1, progress=False)
    assert batch.subjects == ("ALLBLQ", "nobody", "FEW")
    assert list(batch.failures["subject"]) == ["ALLBLQ", "nobody", "FEW"]
    assert batch.failures.set_index("subject").at["nobody", "stage"] == "validate"
    assert batch.params.empty and list(batch.params.columns)[:2] == ["subject", "parameter"]
    counts = batch.counts
    assert {k: counts[k] for k in ("subjects", "fitted", "converged", "not_converged", "failed",
                                   "on_bound", "reliable", "unreliable")} == {
        "subjects": 3, "fitted": 0, "converged": 0, "not_converged": 0, "failed": 3,
        "on_bound": 0, "reliable": 0, "unreliable": 0}  # fmt: skip
    assert all(counts[code] == 0 for code in ISSUE_CODES)
    assert "Batch fit of 3 subjects" in str(batch.summary())


# ----------------------------------------------------------------------------- executors


def test_process_pool_gives_the_in_process_tables(reference):
    assert_same_tables(fit_all(KINETICS, n_jobs=2, chunk_size=3, progress=False, **OPTIONS),
                       reference)  # fmt: skip


def test_any_executor_works(reference):
    subjects = ["VP001", "FEW", "VP002"]
    with cf.ThreadPoolExecutor(2) as executor:
        batch = fit_all(KINETICS, subjects=subjects, executor=executor, progress=False, **OPTIONS)
    for name in ("params", "statistics"):
        expected = getattr(reference, name)
        expected = expected[expected["subject"].isin(subjects)].reset_index(drop=True)
        pd.testing.assert_frame_equal(getattr(batch, name), expected, check_exact=True)
    assert list(batch.failures["subject"]) == ["FEW"]


def test_a_worker_crash_is_a_failure_row_and_is_retried_on_resume(reference, tmp_path):
    path, subjects = tmp_path / "fits.jsonl", ["VP001", "ALLBLQ", "VP003"]
    context = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(2, mp_context=context, initializer=os._exit, initargs=(1,)) as pool:
        crashed = fit_all(KINETICS, subjects=subjects, executor=pool, chunk_size=1,
                          checkpoint=path, progress=False, **OPTIONS)  # fmt: skip
    assert list(crashed.failures["subject"]) == subjects
    assert set(crashed.failures["stage"]) == {"worker"}
    assert crashed.failures["reason"].str.startswith("BrokenProcessPool").all()
    assert crashed.params.empty and _records(path) == []  # worker failures are not stored
    resumed = fit_all(KINETICS, subjects=subjects, n_jobs=1, checkpoint=path, progress=False,
                      **OPTIONS)  # fmt: skip
    assert sorted(_records(path)) == sorted(subjects)
    expected = reference.params[reference.params["subject"].isin(subjects)]
    pd.testing.assert_frame_equal(resumed.params, expected.reset_index(drop=True), check_exact=True)


@pytest.mark.slow
def test_dask_local_cluster_executor(reference):
    distributed = pytest.importorskip("distributed")
    subjects = ["VP001", "ALLBLQ", "VP003"]
    with warnings.catch_warnings():
        # Possible shutdown noise of distributed itself (unclosed sockets/comms; none seen
        # with distributed 2026.8), not of cellkin: only these two, only in this block.
        warnings.filterwarnings("ignore", category=ResourceWarning, module=r"distributed\.")
        warnings.filterwarnings("ignore", category=UserWarning, module=r"distributed\.")
        with (
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=":0") as cluster,
            distributed.Client(cluster) as client,
        ):  # fmt: skip
            batch = fit_all(KINETICS, subjects=subjects, executor=client.get_executor(),
                            n_jobs=2, chunk_size=1, progress=False, **OPTIONS)  # fmt: skip
    expected = reference.params[reference.params["subject"].isin(subjects)]
    pd.testing.assert_frame_equal(batch.params, expected.reset_index(drop=True), check_exact=True)
    assert list(batch.failures["subject"]) == ["ALLBLQ"]


# ----------------------------------------------------------------------------- checkpoint

_KILL_SCRIPT = """
import importlib, json, sys, time
import pandas as pd
batch = importlib.import_module("cellkin.fit._outcome")  # what a worker runs per subject

real = batch.fit_table
def slow_fit(*args, **kwargs):  # widen the window in which the kill lands
    time.sleep(0.2)
    return real(*args, **kwargs)
batch.fit_table = slow_fit
fit_all = importlib.import_module("cellkin.fit").fit_all
fit_all(pd.read_pickle(sys.argv[1]), n_jobs=1, progress=False, checkpoint=sys.argv[2],
        **json.loads(sys.argv[3]))
"""


def _run_and_kill(tmp_path: Path, path: Path, after: int) -> None:
    """Run fit_all in a subprocess and SIGKILL it once ``after`` records are on disk."""
    data = tmp_path / "kinetics.pkl"
    KINETICS.to_pickle(data)
    env = {**os.environ, "PYTHONPATH": str(Path(cellkin.__file__).parents[1])}
    command = [sys.executable, "-c", _KILL_SCRIPT, str(data), str(path), json.dumps(OPTIONS)]
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE) as process:
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            if path.exists() and path.read_bytes().count(b"\n") >= 1 + after:
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
        else:
            process.kill()
        errors = process.communicate(timeout=10)[1].decode()
    assert process.returncode == -signal.SIGKILL, errors[-2000:]


def test_resume_after_kill_9_skips_finished_subjects_and_gives_identical_tables(
    reference, tmp_path, monkeypatch
):
    path = tmp_path / "fits.jsonl"
    _run_and_kill(tmp_path, path, after=2)
    finished = _records(path)
    assert 2 <= len(finished) < len(SUBJECTS)
    with open(path, "ab") as handle:  # and a torn last line, as if killed mid-write
        handle.write(b'{"subject": "VP00')

    batch_module = importlib.import_module("cellkin.fit._outcome")
    calls: list[str] = []
    real = batch_module.fit_table

    def counting_fit(*args, **kwargs):
        calls.append(kwargs["subject"])
        return real(*args, **kwargs)

    monkeypatch.setattr(batch_module, "fit_table", counting_fit)
    resumed = fit_all(KINETICS, n_jobs=1, checkpoint=path, progress=False, **OPTIONS)
    assert_same_tables(resumed, reference)
    assert sorted(calls) == sorted(set(SUBJECTS) - set(finished))
    assert sorted(_records(path)) == sorted(SUBJECTS)  # one record each, torn line cut off
    assert resumed.settings["checkpoint"]["restored"] == len(finished)
    for subject, result in resumed.results.items():
        pd.testing.assert_frame_equal(result.params, reference.results[subject].params)
    calls.clear()
    assert_same_tables(fit_all(KINETICS, n_jobs=1, checkpoint=path, progress=False, **OPTIONS),
                       reference)  # fmt: skip
    assert calls == []


def test_checkpoint_refuses_other_options_model_data_or_files(tmp_path):
    path = tmp_path / "fits.jsonl"
    quick = {"subjects": ["ALLBLQ"], "n_jobs": 1, "progress": False, "checkpoint": path}
    fit_all(KINETICS, **quick, n_starts=1)
    assert _records(path) == ["ALLBLQ"]
    with pytest.raises(DataError, match=r"other settings \(fit_options.n_starts: 1 in the file"):
        fit_all(KINETICS, **quick, n_starts=2)
    with pytest.raises(DataError, match="model: 'stein2019' in the file, 'stein2019_lag' now"):
        fit_all(KINETICS, "stein2019_lag", **quick, n_starts=1)
    changed = KINETICS.assign(lloq=np.where(KINETICS["subject"] == "ALLBLQ", 60.0, 50.0))
    with pytest.raises(DataError, match="'ALLBLQ' has other samples"):
        fit_all(changed, **quick, n_starts=1)
    old = tmp_path / "version1.jsonl"  # outcomes of format 1 held per-subject tables
    old.write_text(json.dumps({"format": "cellkin-fit-checkpoint", "version": 1}) + "\n")
    with pytest.raises(DataError, match="format version 1 is not supported"):
        fit_all(KINETICS, **{**quick, "checkpoint": old})
    for text in ("my notes\n", "no newline"):
        other = tmp_path / "notes.txt"
        other.write_text(text)
        with pytest.raises(DataError, match="not a cellkin fit checkpoint"):
            fit_all(KINETICS, **{**quick, "checkpoint": other})
        assert other.read_text() == text


_HOLDER_SCRIPT = """
import importlib, sys, time
import pandas as pd
outcome = importlib.import_module("cellkin.fit._outcome")
real = outcome.fit_table
def slow_fit(*args, **kwargs):
    time.sleep(0.5)
    return real(*args, **kwargs)
outcome.fit_table = slow_fit
fit_all = importlib.import_module("cellkin.fit").fit_all
fit_all(pd.read_pickle(sys.argv[1]), subjects=sys.argv[3].split(","), n_jobs=1,
        progress=False, checkpoint=sys.argv[2], n_starts=1, seed=3, fixed={"sigma_qpcr": 0.5})
"""


def test_a_checkpoint_in_use_is_refused_naming_the_other_process(reference, tmp_path):
    """Issue 20: two processes writing one checkpoint (different halves of the subjects)
    silently lost most records. Now the second stops at once, naming the first."""
    path, data = tmp_path / "fits.jsonl", tmp_path / "kinetics.pkl"
    KINETICS.to_pickle(data)
    env = {**os.environ, "PYTHONPATH": str(Path(cellkin.__file__).parents[1])}
    first_half, second_half = SUBJECTS[:4], SUBJECTS[4:]
    command = [sys.executable, "-c", _HOLDER_SCRIPT, str(data), str(path), ",".join(first_half)]
    with subprocess.Popen(command, env=env) as holder:
        deadline = time.monotonic() + 60
        while not (path.exists() and path.read_bytes().count(b"\n") >= 2):
            assert time.monotonic() < deadline and holder.poll() is None
            time.sleep(0.02)
        in_use = rf"fits.jsonl: checkpoint in use by process {holder.pid} on .*, since .*: .*-c"
        with pytest.raises(FitError, match=in_use):
            fit_all(KINETICS, subjects=second_half, n_jobs=1, progress=False, checkpoint=path,
                    **OPTIONS)  # fmt: skip
        assert holder.wait(timeout=60) == 0
    assert sorted(_records(path)) == sorted(first_half)  # nothing lost, nothing interleaved
    assert not Path(f"{path}.lock").exists()
    resumed = fit_all(KINETICS, n_jobs=1, progress=False, checkpoint=path, **OPTIONS)
    assert_same_tables(resumed, reference)
    assert sorted(_records(path)) == sorted(SUBJECTS)


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    path = tmp_path / "fits.jsonl"
    _run_and_kill(tmp_path, path, after=1)
    assert Path(f"{path}.lock").exists()  # kill -9 leaves the file; the kernel freed the lock
    batch = fit_all(KINETICS, subjects=list(BAD), n_jobs=1, progress=False, checkpoint=path,
                    **OPTIONS)  # fmt: skip
    assert batch.counts["subjects"] == 2 and not Path(f"{path}.lock").exists()


_POOL_SCRIPT = """
import importlib, sys, time
import pandas as pd
outcome = importlib.import_module("cellkin.fit._outcome")
real = outcome.fit_table
def slow_fit(*args, **kwargs):  # top level: the workers import this script too
    time.sleep(120)
    return real(*args, **kwargs)
outcome.fit_table = slow_fit
if __name__ == "__main__":
    fit_all = importlib.import_module("cellkin.fit").fit_all
    fit_all(pd.read_pickle(sys.argv[1]), n_jobs=2, chunk_size=1, progress=False, n_starts=1)
"""


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    return children


def _descendants(pid: int) -> list[int]:
    children, found, todo = _children(), [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_no_pool_worker_survives_its_killed_parent(tmp_path):
    """Issue 20: 4 pool processes were still alive 90 s after the main process was killed.
    Kill -9 the main process while every worker is busy: all of them (and the fork server)
    are gone within 5 s."""
    data, script = tmp_path / "kinetics.pkl", tmp_path / "pool.py"
    KINETICS.to_pickle(data)
    script.write_text(_POOL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(cellkin.__file__).parents[1])}
    main = subprocess.Popen([sys.executable, str(script), str(data)], env=env)
    tree: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while True:  # the fork server and two workers below it
            assert time.monotonic() < deadline and main.poll() is None
            tree = _descendants(main.pid)
            workers = [p for p in tree if p not in _children().get(main.pid, [])]
            if len(workers) >= 2:
                break
            time.sleep(0.1)
        time.sleep(1.0)  # the workers are inside slow_fit
        main.send_signal(signal.SIGKILL)
        main.wait(timeout=10)
        killed = time.monotonic()
        while any(_running(p) for p in tree) and time.monotonic() - killed < 5:
            time.sleep(0.05)
        alive = [p for p in tree if _running(p)]
        assert alive == [], f"still running {time.monotonic() - killed:.1f} s after the kill"
    finally:
        main.kill()
        main.wait()
        for pid in tree:  # leave nothing behind if the test fails
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


_UNGUARDED = """
import importlib, sys
import pandas as pd
fit_all = importlib.import_module("cellkin.fit").fit_all
batch = fit_all(pd.read_pickle(sys.argv[1]), n_jobs=2, progress=False, n_starts=1)
print(batch.counts)
"""


@pytest.mark.slow
def test_a_script_without_a_main_guard_stops_at_once_with_the_fix(tmp_path):
    """Issue 15 item 7: ``fit_all`` from a script without ``if __name__ == "__main__":``
    turned every subject into a "worker" failure. Now it is one error that says what to add;
    the same script with the guard fits every subject."""
    data = tmp_path / "kinetics.pkl"
    KINETICS.to_pickle(data)
    env = {**os.environ, "PYTHONPATH": str(Path(cellkin.__file__).parents[1])}
    unguarded = tmp_path / "unguarded.py"
    unguarded.write_text(_UNGUARDED)
    result = subprocess.run([sys.executable, str(unguarded), str(data)], env=env,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 1 and result.stdout == ""
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("cellkin.errors.FitError: fit_all with worker processes was called "
                           f"from top-level code of {unguarded} (line 5)")  # fmt: skip
    assert 'Move the script\'s top-level code under `if __name__ == "__main__":`' in last
    assert result.stderr.count("Traceback") == 1  # no worker ever started
    guarded = tmp_path / "guarded.py"
    body = _UNGUARDED.strip().splitlines()
    guarded.write_text("\n".join([*body[:3], 'if __name__ == "__main__":',
                                  *(f"    {line}" for line in body[3:])]) + "\n")  # fmt: skip
    result = subprocess.run([sys.executable, str(guarded), str(data)], env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    reference = fit_all(KINETICS, n_jobs=1, progress=False, n_starts=1).counts
    assert f"'failed': {reference['failed']}" in result.stdout
    assert f"'fitted': {reference['fitted']}" in result.stdout


# ----------------------------------------------------------------------------- outputs


def test_to_csv_summary_and_pickling(reference, tmp_path):
    paths = reference.to_csv(tmp_path / "out")
    assert sorted(p.name for p in paths.values()) == sorted(f"{t}.csv" for t in TABLES)
    for name, path in paths.items():
        assert len(pd.read_csv(path)) == len(getattr(reference, name))
    text = str(reference.summary())
    assert "Failures by stage" in text and "median_rse_pct" in text
    assert "<table" in reference._repr_html_()
    assert repr(reference).startswith("BatchFit(model='stein2019', subjects=9, fitted=6")
    assert "fits reliable" in text and "Reliability" in text
    summary = reference.parameter_summary()
    assert list(summary["parameter"][:2]) == ["cmax", "tmax"]
    result = next(iter(reference.results.values()))
    assert isinstance(result, FitResult)
    copy = pickle.loads(pickle.dumps(result))
    pd.testing.assert_frame_equal(copy.params, result.params)
    assert_same_tables(pickle.loads(pickle.dumps(reference)), reference)
    assert reference.settings["fit_options"]["n_starts"] == 1
    assert reference.settings["cellkin_version"] == cellkin.__version__
    assert reference.settings["solver"] == {"method": "none", "rtol": None, "atol": None}
    assert "closed form (no ODE solver)" in text


def test_progress_bar_and_silence(capsys):
    fit_all(KINETICS, subjects=list(BAD), n_jobs=1, progress=False)
    assert capsys.readouterr() == ("", "")
    fit_all(KINETICS, subjects=list(BAD), n_jobs=1, progress=True)
    captured = capsys.readouterr()
    assert captured.out == "" and "2/2" in captured.err and "failed=2" in captured.err


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="n_jobs"):
        fit_all(KINETICS, n_jobs=0)
    with pytest.raises(OptionError, match="chunk_size"):
        fit_all(KINETICS, chunk_size=0)
    with pytest.raises(TypeError, match="use `subjects=`"):
        fit_all(KINETICS, subject="VP001")
    with pytest.raises(TypeError, match="n_start"):
        fit_all(KINETICS, n_start=2)
    with pytest.raises(ModelError, match="unknown model"):
        fit_all(KINETICS, "nope")
    with pytest.raises(DataError):
        fit_all(KINETICS.drop(columns="time"))


def test_statistics_and_counts_flag_estimates_on_a_bound():
    """``at_bounds`` in the statistics table equals each subject's FitResult.at_bounds, and
    ``counts["on_bound"]`` counts the subjects with any."""
    batch = fit_all(KINETICS, n_jobs=1, progress=False, bounds={"alpha": (0.25, 20.0)})
    flagged = {s: ", ".join(r.at_bounds) for s, r in batch.results.items()}
    assert (
        dict(zip(batch.statistics["subject"], batch.statistics["at_bounds"], strict=True))
        == flagged
    )
    assert batch.counts["on_bound"] == sum(bool(v) for v in flagged.values()) >= 1
