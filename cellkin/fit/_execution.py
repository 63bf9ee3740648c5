"""Running a batch's tasks: in-process, on a process pool or any executor, with progress and
checkpointing (private; see :func:`cellkin.fit_all`)."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from cellkin.fit._checkpoint import append, encode
from cellkin.fit._outcome import Outcome, reason, run_chunk

__all__ = ["Execution", "available_cpus", "execute", "run"]

_MAX_AUTO_CHUNK = 32


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


def _worker_failures(chunk: Sequence[str], why: str) -> list[Outcome]:
    return [Outcome(s, failures=(("worker", why),)) for s in chunk]


def _collect(future: cf.Future, chunk: tuple[str, ...]) -> list[Outcome]:
    try:
        outcomes = list(future.result())
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # BrokenProcessPool, KilledWorker, CancelledError, ...
        return _worker_failures(chunk, reason(exc))
    returned = {o.subject: o for o in outcomes if isinstance(o, Outcome)}
    missing = [s for s in chunk if s not in returned]
    return [returned[s] for s in chunk if s in returned] + _worker_failures(
        missing, "the worker returned no result for this subject"
    )


def execute(
    tasks: list[tuple[tuple[str, ...], pd.DataFrame]],
    arguments: tuple,
    executor: cf.Executor | None,
    workers: int,
) -> Iterator[list[Outcome]]:
    """Yield each task's outcomes as it completes (in-process when ``workers == 1``).

    The first empty yield marks that every task was submitted, so that a progress bar (and
    its monitor thread) starts only after a fork-based executor has forked its workers.
    """
    if executor is None and workers == 1:
        yield []
        for chunk, rows in tasks:
            yield run_chunk(chunk, rows, *arguments)
        return
    owned = executor is None
    pool = _default_pool(min(workers, len(tasks))) if owned else executor
    futures: dict[cf.Future, tuple[str, ...]] = {}
    try:
        for chunk, rows in tasks:
            try:
                futures[pool.submit(run_chunk, chunk, rows, *arguments)] = chunk
            except Exception as exc:  # a broken or shut-down executor
                yield _worker_failures(chunk, reason(exc))
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
        context.set_forkserver_preload(["__main__", "cellkin.fit._outcome"])
    else:  # pragma: no cover - Windows
        context = multiprocessing.get_context("spawn")
    return cf.ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker)


def available_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)  # pragma: no cover - platforms without affinity


def _auto_chunk_size(n_subjects: int, workers: int, in_process: bool) -> int:
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
class Execution:
    """How to run the tasks: where, how many subjects per task, with or without a bar."""

    workers: int
    executor: cf.Executor | None
    chunk_size: int | None
    progress: bool


def run(
    todo: Sequence[str],
    kinetics: pd.DataFrame,
    arguments: tuple,
    execution: Execution,
    checkpoint: tuple[BinaryIO, Mapping[str, str]] | None,
    outcomes: dict[str, Outcome],
) -> None:
    """Fit ``todo``, adding outcomes as tasks complete (checkpointed, with progress)."""
    if not todo:
        return
    workers, executor = execution.workers, execution.executor
    in_process = executor is None and workers == 1
    size = execution.chunk_size or _auto_chunk_size(len(todo), workers, in_process)
    tasks = _tasks(todo, kinetics, size)
    done, bar = len(outcomes), None
    failed = sum(1 for o in outcomes.values() if o.result is None)
    try:
        for batch in execute(tasks, arguments, executor, workers):
            if bar is None:
                bar = _progress_bar(execution.progress, done + len(todo), done, arguments[0].name)
            outcomes.update((o.subject, o) for o in batch)
            if checkpoint is not None:
                handle, digests = checkpoint
                append(handle, [encode(o, digests[o.subject]) for o in batch if o.final])
            failed += sum(1 for o in batch if o.result is None)
            if failed:
                bar.set_postfix(failed=failed, refresh=False)
            bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
