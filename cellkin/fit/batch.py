"""Fit every subject of a study: :func:`fit_all` returns a :class:`BatchFit`.

Each subject is fitted by :func:`cellkin.fit.fit` in a worker (a process pool by default, any
:class:`concurrent.futures.Executor` on request, or in-process with ``n_jobs=1``). A subject
that cannot be fitted becomes a row of ``BatchFit.failures`` with its stage and reason; no input
subject is ever lost. With ``checkpoint=``, finished subjects are appended to a JSON-lines file
as they complete, and a rerun resumes where an interrupted one (even ``kill -9``) stopped.

Checkpoint format (one JSON object per line, UTF-8):

1. a header ``{"format": "cellkin-fit-checkpoint", "version": 2, "settings": {...}}`` with the
   cellkin version, the model and every fit and metric option (defaults filled in);
2. one record per finished subject: ``{"subject", "input_sha256", "payload_sha256",
   "payload"}``, where ``payload`` is the base64 pickle of the subject's outcome (its
   :class:`~cellkin.fit.FitResult`, metric rows and warnings, or its failure rows) and
   ``input_sha256`` hashes the subject's validated samples. (Version 1 payloads also held
   the subject's parameter and statistics rows, now built once per batch from the results.)

Records are written with one ``write`` per completed task, then flushed and fsynced. On resume
a torn last line (no newline, bad JSON or a digest mismatch) is ignored and cut off before new
records are appended. Checkpoints hold pickles: resume only from files you wrote.
"""

from __future__ import annotations

import concurrent.futures as cf
import inspect
import multiprocessing
import os
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from cellkin import models
from cellkin._display import Summary
from cellkin._version import __version__
from cellkin.errors import CellkinError, DataError
from cellkin.fit._checkpoint import (
    _append,
    _encode,
    _input_digest,
    _normalise,
    _open_checkpoint,
    _restore,
)
from cellkin.fit.result import FitResult
from cellkin.fit.subject import _validated, fit_validated
from cellkin.metrics.model import _metric_frame, _metric_rows
from cellkin.models.base import Model

__all__ = ["FAILURE_STAGES", "BatchFit", "fit_all"]

#: Stages of a failure row, in the order a subject meets them.
FAILURE_STAGES = ("validate", "fit", "convergence", "metrics", "worker")

_FAILURE_COLUMNS = ["subject", "stage", "reason"]
_PARAM_COLUMNS = (
    "subject parameter kind estimate se rse_pct ci_lower ci_upper unit scale fixed description "
    "success"
).split()
_STATISTIC_COLUMNS = (
    "subject model error blq minus2ll aic bic n_obs n_censored n_free success message at_bounds "
    "warnings"
).split()
_METRIC_COLUMNS = ["subject", "assay", "success"]
_NOT_OPTIONS = ("kinetics", "model", "subject")
_MAX_AUTO_CHUNK = 32
_FIT_SIGNATURE = inspect.signature(fit_validated)
# ``warnings.catch_warnings`` swaps process-global state: one recording block at a time.
_WARNINGS_LOCK = threading.Lock()


# ----------------------------------------------------------------------------- one subject


@dataclass(frozen=True, eq=False)
class _Outcome:
    """What one subject produced: its result, metric rows and the warnings its fit emitted,
    and/or its failure rows. The ``params``, ``metrics`` and ``statistics`` tables are built
    once for the whole batch (:func:`_assemble`), not as small tables per subject."""

    subject: str
    result: FitResult | None = None
    metrics: list[dict[str, Any]] | None = None  # rows of FitResult.metrics(), as dicts
    warnings: str = ""
    failures: tuple[tuple[str, str], ...] = ()

    @property
    def final(self) -> bool:
        """Whether the outcome is stored in a checkpoint (worker failures are retried)."""
        return all(stage != "worker" for stage, _ in self.failures)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, CellkinError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _fit_steps(
    subject: str, rows: pd.DataFrame, model: Model, options: dict, metrics: dict | None
) -> tuple[FitResult | None, list[dict[str, Any]] | None, list[tuple[str, str]]]:
    try:
        result = fit_validated(rows, model, subject=subject, **options)
    except DataError as exc:
        return None, None, [("validate", _reason(exc))]
    except Exception as exc:  # any error of one subject is a failure row, never a crash
        return None, None, [("fit", _reason(exc))]
    failures = [] if result.success else [("convergence", result.message or "not converged")]
    table = None
    if metrics is not None:
        try:
            table = _metric_rows(result, **metrics)
        except Exception as exc:  # the fit stays in params; its metrics are a failure row
            failures.append(("metrics", _reason(exc)))
    return result, table, failures


def _fit_subject(
    subject: str, rows: pd.DataFrame, model: Model, options: dict, metrics: dict | None
) -> _Outcome:
    """Fit one subject; warnings are recorded in its statistics row, never lost or raised."""
    if rows.empty:
        return _Outcome(subject, failures=(("validate", "no samples in the kinetics table"),))
    with _WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result, table, failures = _fit_steps(subject, rows, model, options, metrics)
    if result is None:
        return _Outcome(subject, failures=tuple(failures))
    noted = dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught)
    for row in table or ():
        row["success"] = result.success
    return _Outcome(
        subject,
        result=result,
        metrics=table,
        warnings="; ".join(noted),
        failures=tuple(failures),
    )


def _run_chunk(
    subjects: tuple[str, ...],
    rows: pd.DataFrame,
    model: Model,
    options: dict,
    metrics: dict | None,
) -> list[_Outcome]:
    """Fit a few subjects from their own rows (the task a worker runs; picklable by name)."""
    ids = rows["subject"].to_numpy()
    outcomes = []
    for subject in subjects:
        mine = ids == subject
        own = rows if mine.all() else rows.iloc[np.flatnonzero(mine)]
        outcomes.append(_fit_subject(subject, own, model, options, metrics))
    return outcomes


# ----------------------------------------------------------------------------- execution


class _NoBar:
    """Stands in for tqdm when progress is off (no output, no monitor thread)."""

    def update(self, n: int = 1) -> None:
        """Do nothing."""

    def set_postfix(self, *_: Any, **__: Any) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""


def _progress_bar(enabled: bool, total: int, initial: int, label: str) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=f"fit {label}", unit="subject")


def _worker_failures(chunk: Sequence[str], reason: str) -> list[_Outcome]:
    return [_Outcome(s, failures=(("worker", reason),)) for s in chunk]


def _collect(future: cf.Future, chunk: tuple[str, ...]) -> list[_Outcome]:
    try:
        outcomes = list(future.result())
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # BrokenProcessPool, KilledWorker, CancelledError, ...
        return _worker_failures(chunk, _reason(exc))
    returned = {o.subject: o for o in outcomes if isinstance(o, _Outcome)}
    missing = [s for s in chunk if s not in returned]
    return [returned[s] for s in chunk if s in returned] + _worker_failures(
        missing, "the worker returned no result for this subject"
    )


def _execute(
    tasks: list[tuple[tuple[str, ...], pd.DataFrame]],
    arguments: tuple,
    executor: cf.Executor | None,
    workers: int,
) -> Iterator[list[_Outcome]]:
    """Yield each task's outcomes as it completes (in-process when ``workers == 1``).

    The first empty yield marks that every task was submitted, so that a progress bar (and
    its monitor thread) starts only after a fork-based executor has forked its workers.
    """
    if executor is None and workers == 1:
        yield []
        for chunk, rows in tasks:
            yield _run_chunk(chunk, rows, *arguments)
        return
    owned = executor is None
    pool = _default_pool(min(workers, len(tasks))) if owned else executor
    futures: dict[cf.Future, tuple[str, ...]] = {}
    try:
        for chunk, rows in tasks:
            try:
                futures[pool.submit(_run_chunk, chunk, rows, *arguments)] = chunk
            except Exception as exc:  # a broken or shut-down executor
                yield _worker_failures(chunk, _reason(exc))
        yield []
        for future in cf.as_completed(futures):
            yield _collect(future, futures[future])
    finally:
        for future in futures:
            future.cancel()
        if owned:
            pool.shutdown(wait=True, cancel_futures=True)


def _init_worker() -> None:
    """Worker of the default pool: one numba thread, as the pool already uses every CPU; the
    objects of the imports moved out of the garbage collector's sight (``gc.freeze``), as
    they live as long as the worker and a full collection would scan them all again."""
    import gc

    import numba

    numba.set_num_threads(1)
    gc.freeze()


def _default_pool(workers: int) -> cf.ProcessPoolExecutor:
    """Process pool whose workers start clean, whatever the parent did: ``forkserver`` where
    the platform has it (POSIX), else ``spawn``.

    ``fork`` is unsafe here: a parent that ran a numba ``parallel=True`` kernel (e.g.
    ``simulate_many`` on a population) holds GNU OpenMP, and a forked child that enters a
    parallel region is terminated ("fork() called from a process already using GNU OpenMP").
    The fork server is a fresh interpreter that imports cellkin (and the parent's main
    module, as ``spawn`` would) once, runs no kernel, and forks the workers: the ~2–3 s of
    imports are paid once per parent process instead of by every worker of every call, which
    is most of the cost of a small batch. ``spawn`` workers import everything themselves.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["__main__", "cellkin.fit.batch"])
    else:  # pragma: no cover - Windows
        context = multiprocessing.get_context("spawn")
    return cf.ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker)


def _available_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)  # pragma: no cover - platforms without affinity


def _auto_chunksize(n_subjects: int, workers: int, in_process: bool) -> int:
    if in_process:
        return 1
    return max(1, min(_MAX_AUTO_CHUNK, n_subjects // (8 * workers)))


def _tasks(
    todo: Sequence[str], kinetics: pd.DataFrame, size: int
) -> list[tuple[tuple[str, ...], pd.DataFrame]]:
    """Split the subjects into tasks, each with only its own subjects' rows."""
    positions = kinetics.groupby("subject", sort=False).indices
    tasks = []
    for start in range(0, len(todo), size):
        chunk = tuple(todo[start : start + size])
        rows = kinetics.iloc[np.concatenate([positions[s] for s in chunk])]
        tasks.append((chunk, rows))
    return tasks


@dataclass(frozen=True)
class _Execution:
    """How to run the tasks: where, how many subjects per task, with or without a bar."""

    workers: int
    executor: cf.Executor | None
    chunksize: int | None
    progress: bool


def _run(
    todo: Sequence[str],
    kinetics: pd.DataFrame,
    arguments: tuple,
    execution: _Execution,
    checkpoint: tuple[BinaryIO, Mapping[str, str]] | None,
    outcomes: dict[str, _Outcome],
) -> None:
    """Fit ``todo``, adding outcomes as tasks complete (checkpointed, with progress)."""
    if not todo:
        return
    workers, executor = execution.workers, execution.executor
    in_process = executor is None and workers == 1
    size = execution.chunksize or _auto_chunksize(len(todo), workers, in_process)
    tasks = _tasks(todo, kinetics, size)
    done, bar = len(outcomes), None
    failed = sum(1 for o in outcomes.values() if o.result is None)
    try:
        for batch in _execute(tasks, arguments, executor, workers):
            if bar is None:
                bar = _progress_bar(execution.progress, done + len(todo), done, arguments[0].name)
            outcomes.update((o.subject, o) for o in batch)
            if checkpoint is not None:
                handle, digests = checkpoint
                _append(handle, [_encode(o, digests[o.subject]) for o in batch if o.final])
            failed += sum(1 for o in batch if o.result is None)
            if failed:
                bar.set_postfix(failed=failed, refresh=False)
            bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()


# ----------------------------------------------------------------------------- the result


def _concat(frames: Sequence[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame(columns=list(columns))
    return pd.concat(frames, ignore_index=True)


def _params_table(fitted: Sequence[_Outcome]) -> pd.DataFrame:
    """The long parameter table of the fitted subjects: their parameter tables stacked."""
    if not fitted:
        return pd.DataFrame(columns=_PARAM_COLUMNS)
    frames = [o.result.params for o in fitted]  # type: ignore[union-attr]
    sizes = [len(frame) for frame in frames]
    table = pd.concat(frames, ignore_index=True)
    table.insert(
        0, "subject", np.repeat(np.array([o.subject for o in fitted], dtype=object), sizes)
    )
    success = np.array([o.result.success for o in fitted], dtype=bool)  # type: ignore[union-attr]
    table["success"] = np.repeat(success, sizes)
    return table


def _statistics_table(fitted: Sequence[_Outcome]) -> pd.DataFrame:
    """One row per fitted subject (:meth:`FitResult.fit_statistics` plus ``warnings``)."""
    if not fitted:
        return pd.DataFrame(columns=_STATISTIC_COLUMNS)
    results = [o.result for o in fitted]
    columns: dict[str, np.ndarray] = {
        "subject": np.array([o.subject for o in fitted], dtype=object),
        "model": np.array([r.model.name for r in results], dtype=object),  # type: ignore[union-attr]
    }
    for name, kind in (("error", object), ("blq", object), ("minus2ll", float), ("aic", float),
                       ("bic", float), ("n_obs", np.int64), ("n_censored", np.int64),
                       ("n_free", np.int64), ("success", bool), ("message", object)):  # fmt: skip
        columns[name] = np.array([getattr(r, name) for r in results], dtype=kind)
    columns["at_bounds"] = np.array([", ".join(r.at_bounds) for r in results], dtype=object)  # type: ignore[union-attr]
    columns["warnings"] = np.array([o.warnings for o in fitted], dtype=object)
    return pd.DataFrame(columns)


def _assemble(
    order: Sequence[str], outcomes: Mapping[str, _Outcome], settings: dict[str, Any]
) -> BatchFit:
    fitted = [outcomes[s] for s in order if outcomes[s].result is not None]
    metrics, failures = [], []
    for subject in order:
        outcome = outcomes[subject]
        metrics += outcome.metrics or []
        failures += [(subject, stage, reason) for stage, reason in outcome.failures]
    return BatchFit(
        params=_params_table(fitted),
        metrics=_metric_frame(metrics) if metrics else _concat([], _METRIC_COLUMNS),
        statistics=_statistics_table(fitted),
        failures=pd.DataFrame(failures, columns=_FAILURE_COLUMNS),
        results={o.subject: o.result for o in fitted},  # type: ignore[misc]
        subjects=tuple(order),
        settings=settings,
    )


@dataclass(frozen=True, eq=False, repr=False)
class BatchFit:
    """Fits of many subjects (from :func:`fit_all`): tidy tables plus each subject's result.

    Every input subject is in ``params`` (fitted, converged or not) or in ``failures`` (no
    fit), or both (a fit that did not converge, or whose metrics failed).

    Attributes
    ----------
    params : DataFrame
        One row per subject × parameter: ``subject, parameter, kind, estimate, se, rse_pct,
        ci_lower, ci_upper, unit, scale, fixed, description, success`` (natural scale, 95% CI;
        ``success`` is the subject's convergence flag).
    metrics : DataFrame
        One row per subject × fitted assay: model-based metrics with ``<metric>_ci_lower`` and
        ``<metric>_ci_upper`` (see :meth:`cellkin.fit.FitResult.metrics`), plus ``success``.
    statistics : DataFrame
        One row per fitted subject: ``subject, model, error, blq, minus2ll, aic, bic, n_obs,
        n_censored, n_free, success, message, at_bounds, warnings`` (``at_bounds``: the
        parameters estimated on a bound, see :attr:`cellkin.fit.FitResult.at_bounds`;
        ``warnings``: the warnings its fit and metrics emitted, ``"; "``-joined; both empty
        when none).
    failures : DataFrame
        ``subject, stage, reason``, one row per problem, stages in :data:`FAILURE_STAGES`:
        ``validate`` (the subject's samples are invalid or absent), ``fit`` (the fit raised,
        e.g. fewer than 3 quantifiable samples), ``convergence`` (fitted with
        ``success=False``: kept in ``params``/``metrics``/``statistics`` and listed here),
        ``metrics`` (fitted, but its metrics failed) and ``worker`` (the task died with its
        worker, e.g. ``BrokenProcessPool``; not checkpointed, so a rerun retries it).
    results : dict
        Subject → :class:`~cellkin.fit.FitResult` for every fitted subject (restored from the
        checkpoint, too, for subjects finished by an earlier run).
    subjects : tuple of str
        The input subjects, in the order of every table.
    settings : dict
        cellkin version, model, every fit and metric option, and the checkpoint used.
    """

    params: pd.DataFrame
    metrics: pd.DataFrame
    statistics: pd.DataFrame
    failures: pd.DataFrame
    results: Mapping[str, FitResult]
    subjects: tuple[str, ...]
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        """Numbers of subjects: input, fitted, converged, not converged, failed (no fit),
        with failed metrics, and fitted with a parameter estimated on a bound
        (:attr:`cellkin.fit.FitResult.at_bounds`)."""
        fitted = set(self.statistics["subject"])
        converged = int(self.statistics["success"].astype(bool).sum())
        stages = self.failures.groupby("stage")["subject"].nunique()
        return {
            "subjects": len(self.subjects),
            "fitted": len(fitted),
            "converged": converged,
            "not_converged": len(fitted) - converged,
            "failed": len(set(self.failures["subject"]) - fitted),
            "metrics_failed": int(stages.get("metrics", 0)),
            "on_bound": int((self.statistics["at_bounds"].astype(str) != "").sum()),
        }

    def to_frame(self) -> pd.DataFrame:
        """The long parameter table (one row per subject × parameter), a copy."""
        return self.params.copy()

    def to_csv(self, directory: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``params.csv``, ``metrics.csv``, ``statistics.csv`` and ``failures.csv``.

        The directory is created when missing; returns the path of each file by table name.
        """
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name in ("params", "metrics", "statistics", "failures"):
            paths[name] = folder / f"{name}.csv"
            getattr(self, name).to_csv(paths[name], index=False)
        return paths

    def parameter_summary(self) -> pd.DataFrame:
        """Per estimated parameter over converged fits: n, median estimate, median RSE%."""
        rows = self.params[self.params["success"].astype(bool) & ~self.params["fixed"].astype(bool)]
        grouped = rows.groupby("parameter", sort=False)
        return pd.DataFrame(
            {
                "n": grouped.size(),
                "median_estimate": grouped["estimate"].median(),
                "median_rse_pct": grouped["rse_pct"].median(),
                "unit": grouped["unit"].first(),
            }
        ).reset_index()

    def summary(self) -> Summary:
        """People-facing summary: counts, parameters (median RSE%) and failures by stage."""
        counts = pd.DataFrame([self.counts])
        stages = self.failures.groupby("stage", sort=False).size().rename("subjects")
        notes = [
            f"cellkin {self.settings.get('cellkin_version', __version__)}; options "
            f"{self.settings.get('fit_options', {})}"
        ]
        title = f"Batch fit of {counts.at[0, 'subjects']} subjects: {self.settings.get('model')}"
        tables = [("Subjects", counts), ("Parameters (converged fits)", self.parameter_summary())]
        if len(stages):
            tables.append(("Failures by stage", stages.reset_index()))
        return Summary(title, tuple(tables), tuple(notes))

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.counts.items())
        return f"BatchFit(model={self.settings.get('model')!r}, {counts})"

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


# ----------------------------------------------------------------------------- fit_all


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


def _chunksize(chunksize: int | None) -> int | None:
    if chunksize is not None and (not isinstance(chunksize, int) or chunksize < 1):
        raise ValueError(f"`chunksize` must be a positive integer or None, got {chunksize!r}")
    return chunksize


def _workers(n_jobs: int | None) -> int:
    if n_jobs is None:
        return _available_cpus()
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int | np.integer) or n_jobs < 1:
        raise ValueError(f"`n_jobs` must be a positive integer or None, got {n_jobs!r}")
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
    chunksize: int | None = None,
    metrics: bool | Mapping[str, Any] = True,
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
    chunksize : int, optional
        Subjects per task. Default: 1 in-process; otherwise ``n // (8 × workers)`` within
        [1, 32]: a task costs a few milliseconds of transfer and scheduling (rows out,
        results back), as much as a Stein fit itself, which matters for large batches,
        while small chunks keep the workers evenly loaded at the end of the batch (eight
        tasks per worker at least).
    metrics : bool or mapping
        Compute model-based metrics (:meth:`FitResult.metrics`); a mapping gives its options;
        ``False`` skips them (faster, e.g. for model comparison).
    **fit_options
        Options of :func:`cellkin.fit.fit` (``assays``, ``error``, ``blq``, ``fixed``,
        ``bounds``, ``initial``, ``n_starts``, ``seed``), the same for every subject.

    Returns
    -------
    BatchFit
        ``params``, ``metrics``, ``statistics``, ``failures``, ``results``; subjects in
        input order whatever the completion order. Fits are deterministic for given options
        and seed, so the tables do not depend on ``n_jobs``, the executor or ``chunksize``.

    Raises
    ------
    DataError
        The table as a whole is invalid, or the checkpoint does not match this run.
    ModelError
        Unknown model.
    TypeError, ValueError
        Unknown fit option; bad ``n_jobs`` or ``chunksize``.

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
    a second. A Stein fit with metrics costs a few milliseconds, so ``n_jobs=1`` is as fast
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
    execution = _Execution(_workers(n_jobs), executor, _chunksize(chunksize), bool(progress))
    metric_options = None if metrics is False else dict({} if metrics is True else metrics)
    options = _fit_options(fit_options)
    settings = _normalise(
        {
            "cellkin_version": __version__,
            "model": model.name,
            "fit_options": options,
            "metrics": metric_options,
        }
    )
    kinetics = _validated(kinetics)
    order = _subject_order(kinetics, subjects)
    present = set(kinetics["subject"])
    absent = ("validate", "not in the kinetics table")
    outcomes = {s: _Outcome(s, failures=(absent,)) for s in order if s not in present}
    arguments, restored = (model, options, metric_options), {}
    if checkpoint is None:
        todo = [s for s in order if s not in outcomes]
        _run(todo, kinetics, arguments, execution, None, outcomes)
    else:
        groups = kinetics.groupby("subject", sort=False)
        wanted = set(order)
        digests = {str(s): _input_digest(rows) for s, rows in groups if str(s) in wanted}
        handle, records = _open_checkpoint(Path(checkpoint), settings)
        with handle:
            restored = _restore(records, digests, Path(checkpoint))
            outcomes.update(restored)
            todo = [s for s in order if s not in outcomes]
            _run(todo, kinetics, arguments, execution, (handle, digests), outcomes)
    stored = {"path": None if checkpoint is None else str(checkpoint), "restored": len(restored)}
    return _assemble(order, outcomes, {**settings, "checkpoint": stored})
