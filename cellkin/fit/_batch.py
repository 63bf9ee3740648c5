"""Fit every subject of a study: :func:`fit_all` returns a :class:`BatchFit`.

Each subject is fitted by :func:`cellkin.fit` in a worker (a process pool by default, any
:class:`concurrent.futures.Executor` on request, or in-process with ``n_jobs=1``). A subject
that cannot be fitted becomes a row of ``BatchFit.failures`` with its stage and reason; no input
subject is ever lost. With ``checkpoint=``, finished subjects are appended to a JSON-lines file
as they complete, and a rerun resumes where an interrupted one (even ``kill -9``) stopped.

Checkpoint format (one JSON object per line, UTF-8):

1. a header ``{"format": "cellkin-fit-checkpoint", "version": 3, "settings": {...}}`` with the
   cellkin version, the model and every fit option (defaults filled in);
2. one record per finished subject: ``{"subject", "input_sha256", "payload_sha256",
   "payload"}``, where ``payload`` is the base64 pickle of the subject's outcome (its
   :class:`~cellkin.fit.FitResult` and warnings, or its failure rows) and ``input_sha256``
   hashes the subject's validated samples. (Version 2 payloads also held the subject's
   metric rows: metrics are now computed from the results by the metrics layer.)

Records are written with one ``write`` per completed task, then flushed and fsynced. On resume
a torn last line (no newline, bad JSON or a digest mismatch) is ignored and cut off before new
records are appended. Checkpoints hold pickles: resume only from files you wrote.
"""

from __future__ import annotations

import concurrent.futures as cf
import inspect
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cellkin import models
from cellkin._version import __version__
from cellkin.errors import OptionError
from cellkin.fit._batch_result import FAILURE_STAGES, BatchFit, assemble
from cellkin.fit._checkpoint import input_digest, normalise, open_checkpoint, restore
from cellkin.fit._data import validated
from cellkin.fit._execution import Execution, available_cpus, run
from cellkin.fit._outcome import Outcome
from cellkin.fit._subject import fit_table
from cellkin.models.base import Model

__all__ = ["FAILURE_STAGES", "BatchFit", "fit_all"]

_NOT_OPTIONS = ("kinetics", "model", "subject")
_FIT_SIGNATURE = inspect.signature(fit_table)


def _fit_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Every option of :func:`fit` (defaults filled in), checked by name."""
    signature = _FIT_SIGNATURE
    allowed = [n for n in signature.parameters if n not in _NOT_OPTIONS]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        hint = " (use `subjects=` to choose subjects)" if "subject" in unknown else ""
        raise TypeError(
            f"fit_all() got unknown fit option(s) {unknown}{hint}; "
            f"options of cellkin.fit.fit are {allowed}"
        )
    return {n: options.get(n, signature.parameters[n].default) for n in allowed}


def _subject_order(kinetics: pd.DataFrame, subjects: Sequence[str] | str | None) -> list[str]:
    if subjects is None:
        return [str(s) for s in kinetics["subject"].unique()]
    if isinstance(subjects, str):
        subjects = [subjects]
    return list(dict.fromkeys(str(s) for s in subjects))


def _chunk_size(chunk_size: int | None) -> int | None:
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise OptionError(f"`chunk_size` must be a positive integer or None, got {chunk_size!r}")
    return chunk_size


def _workers(n_jobs: int | None) -> int:
    if n_jobs is None:
        return available_cpus()
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int | np.integer) or n_jobs < 1:
        raise OptionError(f"`n_jobs` must be a positive integer or None, got {n_jobs!r}")
    return int(n_jobs)


def fit_all(
    kinetics: str | os.PathLike[str] | pd.DataFrame,
    model: str | Model = "stein2019",
    *,
    subjects: Sequence[str] | str | None = None,
    n_jobs: int | None = None,
    executor: cf.Executor | None = None,
    progress: bool = True,
    checkpoint: str | os.PathLike[str] | None = None,
    chunk_size: int | None = None,
    **fit_options: Any,
) -> BatchFit:
    """Fit a kinetic model to every subject of a kinetics table.

    Parameters
    ----------
    kinetics : str, os.PathLike or DataFrame
        Kinetics table or file, validated once with :func:`cellkin.read_kinetics` (a table
        that function returned is only re-checked, as in :func:`cellkin.fit.fit`).
    model : str or Model
        Registered model name or instance (default ``"stein2019"``).
    subjects : sequence of str, optional
        Subjects to fit, in this order (default: all, in table order). A subject that is not
        in the table becomes a ``validate`` failure row.
    n_jobs : int, optional
        Worker processes of the default :class:`~concurrent.futures.ProcessPoolExecutor`
        (default: the CPUs available); ``n_jobs=1`` fits in-process, without a pool (for
        debugging). With ``executor``, only sizes the tasks.
    executor : concurrent.futures.Executor, optional
        Any executor, used as given and not shut down: e.g. a process pool with a chosen
        start method, or a Dask cluster through ``client.get_executor()`` (see Examples).
        Workers must be able to import cellkin (and the model's class).
    progress : bool
        Show a tqdm progress bar (``tqdm.auto``: terminal or notebook); ``False``: no output.
    checkpoint : str or os.PathLike, optional
        JSON-lines file to which each finished subject (result or failure, except ``worker``
        failures) is appended as it completes. Rerunning with the same file skips finished
        subjects and gives the same tables as an uninterrupted run. The file records the
        cellkin version, model and options; resuming with others raises :class:`DataError`,
        as does a subject whose samples changed. See the module docstring for the format.
    chunk_size : int, optional
        Subjects per task. Default: 1 in-process; otherwise ``n // (8 × workers)`` within
        [1, 32]: a task costs a few milliseconds of transfer and scheduling (rows out,
        results back), as much as a Stein fit itself, which matters for large batches,
        while small chunks keep the workers evenly loaded at the end of the batch (eight
        tasks per worker at least).
    **fit_options
        Options of :func:`cellkin.fit.fit` (``assays``, ``error``, ``blq``, ``fixed``,
        ``bounds``, ``initial``, ``n_starts``, ``seed``), the same for every subject.

    Returns
    -------
    BatchFit
        ``params``, ``statistics``, ``failures``, ``results`` (model-based metrics:
        :meth:`BatchFit.metrics`); subjects in
        input order whatever the completion order. Fits are deterministic for given options
        and seed, so the tables do not depend on ``n_jobs``, the executor or ``chunk_size``.

    Raises
    ------
    DataError
        The table as a whole is invalid, or the checkpoint does not match this run.
    ModelError
        Unknown model.
    TypeError, OptionError
        Unknown fit option; bad ``n_jobs`` or ``chunk_size``.

    Notes
    -----
    A subject's errors never stop the batch; they become ``failures`` rows (stages in
    :data:`FAILURE_STAGES`, described in :class:`BatchFit`). A fit with ``success=False`` is
    kept in the tables with ``success`` False and also listed as a ``convergence`` failure.
    Warnings raised while fitting a subject are recorded in its ``statistics.warnings`` cell,
    whatever the executor, instead of reaching the caller's warning filters.

    The default pool forks its workers from a clean fork server (``spawn`` where there is
    none, e.g. on Windows; plain ``fork`` is unsafe once numba's OpenMP threads run in the
    parent), each with one numba thread; a script that calls :func:`fit_all` needs the usual
    ``if __name__ == "__main__":`` guard. The first call in a process starts the fork
    server, which imports cellkin (2–3 s); later calls start their workers in a fraction of
    a second. A Stein fit costs a few milliseconds, so ``n_jobs=1`` is as fast
    for a few dozen subjects. Threads give no speed-up (fits hold the GIL).

    Examples
    --------
    Two simulated subjects and one with every sample below the LLOQ:

    >>> from cellkin.simulate import sample_trial, virtual_population
    >>> population = virtual_population("stein2019", 2, seed=1)
    >>> kinetics = sample_trial("stein2019", population, [1, 4, 7, 10, 14, 21, 28, 56, 84],
    ...                         lloq=50, seed=2)
    >>> blq = kinetics[kinetics["subject"] == "VP001"].assign(subject="BLQ", value=float("nan"),
    ...                                                     blq=True)
    >>> batch = fit_all(pd.concat([kinetics, blq]), n_jobs=1, progress=False, n_starts=1)
    >>> batch.params.groupby("subject", sort=False).size().to_dict()
    {'VP001': 7, 'VP002': 7}
    >>> batch.failures[["subject", "stage"]].to_dict("records")
    [{'subject': 'BLQ', 'stage': 'fit'}]

    A large study, on every CPU, resumable: ``fit_all("kinetics.csv", checkpoint="fits.jsonl")``
    then ``batch.to_csv("fits/")``. On a Dask cluster (``pip install "cellkin[dask]"``)::

        from dask.distributed import Client, LocalCluster

        with LocalCluster(n_workers=8, threads_per_worker=1) as cluster, Client(cluster) as client:
            batch = fit_all(kinetics, executor=client.get_executor(), n_jobs=8)

    (``n_jobs`` then only sizes the tasks; with a remote cluster, cellkin must be installed on
    the workers.)
    """
    model = models.get(model)
    execution = Execution(_workers(n_jobs), executor, _chunk_size(chunk_size), bool(progress))
    options = _fit_options(fit_options)
    settings = normalise({"cellkin_version": __version__, "model": model.name,
                          "solver": model.solver_settings, "fit_options": options})  # fmt: skip
    kinetics = validated(kinetics)
    order = _subject_order(kinetics, subjects)
    present = set(kinetics["subject"])
    absent = ("validate", "not in the kinetics table")
    outcomes = {s: Outcome(s, failures=(absent,)) for s in order if s not in present}
    arguments, restored = (model, options), {}
    if checkpoint is None:
        todo = [s for s in order if s not in outcomes]
        run(todo, kinetics, arguments, execution, None, outcomes)
    else:
        groups = kinetics.groupby("subject", sort=False)
        wanted = set(order)
        digests = {str(s): input_digest(rows) for s, rows in groups if str(s) in wanted}
        handle, records = open_checkpoint(Path(checkpoint), settings)
        with handle:
            restored = restore(records, digests, Path(checkpoint))
            outcomes.update(restored)
            todo = [s for s in order if s not in outcomes]
            run(todo, kinetics, arguments, execution, (handle, digests), outcomes)
    stored = {"path": None if checkpoint is None else str(checkpoint), "restored": len(restored)}
    return assemble(order, outcomes, {**settings, "checkpoint": stored})
