"""Batch fits on a Dask cluster: ``cellkin fit --scheduler`` end to end, and a worker killed
(SIGKILL) mid-run loses no subject: Dask reruns its task, or the subject is a ``worker``
failure row when the cluster allows no retry.

The tests share one ``LocalCluster`` (2 worker processes, 1 thread each; the nanny restarts a
killed worker). The workers are instrumented through ``client.run(exec, _SPY, names)``:
every fit appends ``subject pid`` to a log file (so a test sees where subjects were fitted),
and the first attempt of one chosen subject writes its pid to a marker file and then sleeps,
so that the test SIGKILLs exactly the worker that holds it, while its task is in flight.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from cellkin.cli import main
from cellkin.fit import BatchFit, fit_all
from cellkin.simulate import sample_trial, virtual_population

RICH = [-1, 1, 2, 4, 7, 9, 11, 14, 17, 21, 28, 35, 42, 56, 70, 84, 112, 140, 180]
OPTIONS = {"n_starts": 1, "seed": 3}
SLOW = "VP002"


def _kinetics() -> pd.DataFrame:
    population = virtual_population("stein2019", 4, seed=21)
    kinetics = sample_trial("stein2019", population, RICH, lloq=50, seed=22)
    first = kinetics[kinetics["subject"] == "VP001"]
    all_blq = first.assign(subject="ALLBLQ", value=float("nan"), blq=True)
    return pd.concat([kinetics, all_blq], ignore_index=True)


KINETICS = _kinetics()
SUBJECTS = list(dict.fromkeys(KINETICS["subject"]))

# Run in each worker by `client.run(exec, _SPY, names)`; `names` holds LOG, SLOW and MARKER.
_SPY = """
import importlib, os, time
batch = importlib.import_module("cellkin.fit._outcome")
real = getattr(batch, "_unspied_fit_table", batch.fit_table)
batch._unspied_fit_table = real

def spy(*args, **kwargs):
    subject = kwargs["subject"]
    with open(LOG, "a") as handle:
        handle.write(f"{subject} {os.getpid()}\\n")
    if subject == SLOW:
        try:
            marker = open(MARKER, "x")  # the first attempt only
        except FileExistsError:
            pass
        else:
            with marker:
                marker.write(str(os.getpid()))
            time.sleep(120)  # killed long before
    return real(*args, **kwargs)

batch.fit_table = spy
"""


@pytest.fixture(scope="module")
def reference() -> BatchFit:
    return fit_all(KINETICS, n_jobs=1, progress=False, **OPTIONS)


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[object, object]]:
    """One 2-process LocalCluster and a client for the module (start-up is the slow part)."""
    distributed = pytest.importorskip("distributed")
    loggers = [logging.getLogger(name) for name in ("distributed", "tornado")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:  # expected noise: "worker died", "task marked as failed", ...
        logger.setLevel(logging.CRITICAL)
    try:
        with (
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=":0") as local,
            distributed.Client(local) as client,
        ):  # fmt: skip
            yield local, client
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@pytest.fixture
def client(cluster: tuple[object, object]) -> object:
    """The module's client, once both workers run (a killed one is restarted by its nanny)."""
    cluster[1].wait_for_workers(2, timeout=120)
    return cluster[1]


def _spy(client: object, folder: Path, slow: str | None = None) -> tuple[Path, Path]:
    """Log every fit in the workers; with ``slow``, hold its first attempt (see `_SPY`)."""
    log, marker = folder / "fits.log", folder / "slow.pid"
    client.run(exec, _SPY, {"LOG": str(log), "SLOW": slow, "MARKER": str(marker)})
    return log, marker


def _fitted_where(log: Path) -> dict[str, set[int]]:
    where: dict[str, set[int]] = {}
    for line in log.read_text().splitlines():
        subject, pid = line.split()
        where.setdefault(subject, set()).add(int(pid))
    return where


def _kill_slow_worker(marker: Path, running: cf.Future) -> int:
    """Wait until a worker holds the slow subject, SIGKILL that worker; returns its pid."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not running.done():
        text = marker.read_text() if marker.exists() else ""
        if text:
            pid = int(text)
            os.kill(pid, signal.SIGKILL)
            return pid
        time.sleep(0.02)
    running.result(timeout=0)  # fit_all ended or raised first: show why
    raise AssertionError("no worker started the slow subject within 60 s")


def _fit_and_kill(client: object, folder: Path) -> tuple[BatchFit, dict[str, set[int]], int]:
    log, marker = _spy(client, folder, slow=SLOW)
    with cf.ThreadPoolExecutor(1) as runner:
        running = runner.submit(fit_all, KINETICS, executor=client.get_executor(), n_jobs=2,
                                chunk_size=1, progress=False, **OPTIONS)  # fmt: skip
        killed = _kill_slow_worker(marker, running)
        batch = running.result(timeout=120)
    return batch, _fitted_where(log), killed


def _assert_every_subject_accounted_for(batch: BatchFit) -> None:
    fitted, failed = set(batch.params["subject"]), set(batch.failures["subject"])
    assert fitted | failed == set(SUBJECTS)
    assert batch.subjects == tuple(SUBJECTS)


# ----------------------------------------------------------------------------- tests


@pytest.mark.slow
def test_cli_fits_on_a_dask_scheduler_like_in_process(cluster, client, tmp_path, capsys):
    data = tmp_path / "kinetics.csv"
    KINETICS.to_csv(data, index=False)
    quick = ["--starts", "1", "--seed", "3", "--no-progress"]
    assert main(["fit", str(data), "-o", str(tmp_path / "local"), "--jobs", "1", *quick]) == 0
    log, _ = _spy(client, tmp_path)
    workers = set(client.run(os.getpid).values())
    scheduler = cluster[0].scheduler
    argv = ["fit", str(data), "-o", str(tmp_path / "dask"), "--scheduler",
            scheduler.address, *quick]  # fmt: skip
    clients = set(scheduler.clients)
    assert main(argv) == 0
    deadline = time.monotonic() + 10  # the scheduler drops a closed client asynchronously
    while set(scheduler.clients) != clients and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(scheduler.clients) == clients  # the CLI closed its client
    out = capsys.readouterr().out
    assert "Batch fit of 5 subjects: stein2019" in out
    where = _fitted_where(log)
    assert set(where) == set(SUBJECTS)  # every subject was fitted in a worker
    assert set().union(*where.values()) <= workers
    for name in ("params", "statistics", "failures"):
        local = (tmp_path / "local" / f"{name}.csv").read_text()
        assert (tmp_path / "dask" / f"{name}.csv").read_text() == local, name


@pytest.mark.slow
def test_killing_a_worker_mid_run_loses_no_subject_dask_reruns_its_task(
    reference, client, tmp_path
):
    batch, where, killed = _fit_and_kill(client, tmp_path)
    _assert_every_subject_accounted_for(batch)
    # The killed attempt never returned, yet the subject is fitted: Dask reran its task (in
    # the other worker or the restarted one, which the spy does not instrument).
    assert killed in where[SLOW]
    for name in ("params", "statistics", "failures"):
        pd.testing.assert_frame_equal(getattr(batch, name), getattr(reference, name),
                                      check_exact=True, obj=name)  # fmt: skip


@pytest.mark.slow
def test_killing_a_worker_without_retries_records_worker_failures(
    reference, cluster, client, tmp_path, monkeypatch
):
    # As `distributed.scheduler.allowed-failures: 0` would configure a new scheduler.
    monkeypatch.setattr(cluster[0].scheduler, "allowed_failures", 0)
    batch, where, killed = _fit_and_kill(client, tmp_path)
    _assert_every_subject_accounted_for(batch)
    assert where[SLOW] == {killed}
    worker = batch.failures[batch.failures["stage"] == "worker"]
    assert SLOW in set(worker["subject"]) and SLOW not in set(batch.params["subject"])
    assert worker["reason"].str.startswith("KilledWorker").all()
    # Any other subject queued on the killed worker fails the same way; the rest are fitted
    # exactly as in-process, and the checkpoint (not used here) would retry worker failures.
    lost = set(worker["subject"])
    assert len(lost) <= 2
    expected = reference.params[~reference.params["subject"].isin(lost)].reset_index(drop=True)
    pd.testing.assert_frame_equal(batch.params, expected, check_exact=True)
    rest = batch.failures[batch.failures["stage"] != "worker"].reset_index(drop=True)
    expected = reference.failures[~reference.failures["subject"].isin(lost)]
    pd.testing.assert_frame_equal(rest, expected.reset_index(drop=True), check_exact=True)


def _fit_argv(tmp_path: Path) -> list[str]:
    data = tmp_path / "kinetics.csv"
    KINETICS[KINETICS["subject"] == "VP001"].to_csv(data, index=False)
    return ["fit", str(data), "-o", str(tmp_path / "out"), "--no-progress", "--scheduler"]


def test_cli_unreachable_scheduler_is_one_line_with_a_fix(tmp_path, capsys):
    dask = pytest.importorskip("dask")
    argv = _fit_argv(tmp_path)
    with dask.config.set({"distributed.comm.timeouts.connect": "0.5s"}):
        assert main([*argv, "tcp://127.0.0.1:1"]) == 1  # a failure (FitError), not bad input
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in err[0]
    assert "dask scheduler" in err[0]
    assert main([*argv, "no-such-protocol://x"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach the Dask scheduler" in err[0]
    assert not (tmp_path / "out").exists()


def test_cli_scheduler_without_dask_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # as if not installed
    assert main([*_fit_argv(tmp_path), "tcp://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['cellkin: error: --scheduler needs dask.distributed, which is not '
                   'installed: pip install "cellkin[dask]"']  # fmt: skip
    assert not (tmp_path / "out").exists()
