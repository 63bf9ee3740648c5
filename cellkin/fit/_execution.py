"""Running a batch's tasks: in-process, on a process pool or any executor, with progress and
checkpointing (private; see :func:`cellkin.fit_all`).

The default pool's workers exit with the process that started them: a watchdog thread in
each worker checks every half second that the main process still runs, so killing it — even
with ``kill -9`` — leaves no worker behind (the fork server and multiprocessing's resource
tracker then exit too, once the workers have closed their pipes). Workers ignore Ctrl-C (a
terminal sends it to the whole process group): the main process handles it, stops the
workers and leaves a resumable checkpoint.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cellkin._progress import progress_bar
from cellkin.fit._checkpoint import CheckpointFile, append, encode
from cellkin.fit._main_guard import check_main_guard
from cellkin.fit._outcome import Outcome, reason, run_chunk

__all__ = ["Execution", "available_cpus", "execute", "run"]

_MAX_AUTO_CHUNK = 32
#: Seconds between two checks of a worker's watchdog that its parent still runs.
WATCH_INTERVAL = 0.5


def _progress_bar(enabled: bool, total: int, initial: int, label: str) -> Any:
    return progress_bar(enabled, total=total, initial=initial, desc=f"fit {label}",
                        unit="subject")  # fmt: skip


def _worker_failures(chunk: Sequence[str], why: str) -> list[Outcome]:
    return [Outcome(s, failures=(("worker", why),)) for s in chunk]


def _collect(future: cf.Future, chunk: tuple[str, ...]) -> list[Outcome]:
    try:
        outcomes = list(future.result())
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # BrokenProcessPool, KilledWorker, CancelledError, a
        # worker's SystemExit (SIGTERM while fitting: see _exit_on_sigterm), ...
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
) -> Generator[list[Outcome], None, None]:
    """Yield each task's outcomes as it completes (in-process when ``workers == 1``).

    The first empty yield marks that every task was submitted, so that a progress bar (and
    its monitor thread) starts only after a fork-based executor has forked its workers. When
    the caller stops early (Ctrl-C, an error, or closing the generator) the default pool's
    workers are terminated instead of finishing their tasks.
    """
    if executor is None and workers == 1:
        yield []
        for chunk, rows in tasks:
            yield run_chunk(chunk, rows, *arguments)
        return
    owned = executor is None
    pool, futures, refused = None, {}, []
    try:
        # Ctrl-C waits until every task is submitted: a worker the fork server is still
        # starting when the pool is torn down would fail with a traceback of its own.
        with _interrupt_deferred() if owned else nullcontext():
            pool = _default_pool(min(workers, len(tasks))) if executor is None else executor
            for chunk, rows in tasks:
                try:
                    futures[pool.submit(run_chunk, chunk, rows, *arguments)] = chunk
                except Exception as exc:  # a broken or shut-down executor
                    refused.append(_worker_failures(chunk, reason(exc)))
        yield from refused
        yield []
        for future in cf.as_completed(futures):
            yield _collect(future, futures[future])
    except (KeyboardInterrupt, GeneratorExit):
        if owned and pool is not None:
            _terminate_workers(pool)
        raise
    finally:
        for future in futures:
            future.cancel()
        if owned and pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _interrupt_deferred() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) until the block has finished, then raise it (main thread only,
    where signal handlers live)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, _: received.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def _terminate_workers(pool: cf.Executor) -> None:
    """Stop the pool's workers now (their results would be thrown away)."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:  # pragma: no cover - newer Pythons
        terminate()
        return
    processes = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        process.terminate()


def _process_start(pid: int) -> str | None:
    """Linux: the start time of process `pid` (to tell it from a later process given the same
    id), "" where /proc is absent, None when `pid` has exited (zombies included)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None if Path("/proc/self/stat").exists() else ""
    except OSError:  # pragma: no cover - unreadable: assume alive
        return ""
    return None if fields[0] in ("Z", "X") else fields[19]


def _alive(pid: int, start: str | None) -> bool:
    """Whether process `pid`, started at `start` (see :func:`_process_start`), still runs."""
    now = _process_start(pid)
    if now is None or (start and now != start):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - alive, owned by someone else
        return True
    return True


def _watch(main: int) -> None:
    """Exit this worker once process `main` (the one that started the pool) has exited: a
    daemon thread that checks every :data:`WATCH_INTERVAL` seconds.

    The worker's parent is the fork server, not `main`, and the fork server only exits once
    every worker has closed the pipe it inherited from it, so watching the parent would wait
    forever; hence the watch on `main` itself (by process id and start time)."""
    import threading
    import time

    start = _process_start(main)

    def watch() -> None:
        while _alive(main, start):
            time.sleep(WATCH_INTERVAL)
        os._exit(1)  # now, even mid-fit: nobody will read the result

    threading.Thread(target=watch, name="cellkin-watchdog", daemon=True).start()


def _init_worker(main: int) -> None:
    """Worker of the default pool: exits once process `main` has (see :func:`_watch`) or on
    SIGTERM through ``SystemExit``, leaves Ctrl-C to the main process, runs one numba thread
    (the pool already uses every CPU), and moves the objects of the imports out of the
    garbage collector's sight (``gc.freeze``), as they live as long as the worker and a full
    collection would scan them all again."""
    import gc
    import signal
    import threading

    import numba

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    sys.unraisablehook = _exit_again
    _watch(main)
    numba.set_num_threads(1)
    gc.freeze()
    _WORKER["ready"] = True
    if _WORKER["terminate"]:  # asked to stop while starting: stop once this has returned
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGTERM)).start()


#: A worker's state: started, and whether SIGTERM arrived before that.
_WORKER = {"ready": False, "terminate": False}


def _exit_on_sigterm(number: int, _: Any) -> None:
    """SIGTERM (the pool torn down after Ctrl-C) raises ``SystemExit`` in a worker, so
    that multiprocessing's exit handlers release what the worker registered (numba's thread
    lock is a named semaphore: killed outright, it is reported as leaked at shutdown).
    Between tasks the worker exits; inside a task the task fails (the executor returns the
    exception, a ``worker`` failure row) and the worker exits at the pool's shutdown. In the
    initializer, where ``SystemExit`` would be logged as its failure, it is held instead."""
    if not _WORKER["ready"]:
        _WORKER["terminate"] = True
        return
    raise SystemExit(128 + number)


def _exit_again(unraisable: Any) -> None:
    """A worker's ``sys.unraisablehook``: the ``SystemExit`` of :func:`_exit_on_sigterm`
    raised while C code called back into Python (numba loading a kernel from its cache calls
    llvmlite's ctypes callbacks) cannot leave the callback; CPython would print it ("Exception
    ignored on calling ctypes callback function", 8 lines under the user's Ctrl-C) and go on.
    SIGTERM is sent again a moment later instead, so the worker still exits cleanly."""
    if unraisable.exc_type is not None and issubclass(unraisable.exc_type, SystemExit):
        threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGTERM)).start()
    else:
        sys.__unraisablehook__(unraisable)


def _start_forkserver() -> None:
    """Start the fork server (and multiprocessing's resource tracker) with Ctrl-C ignored.

    The fork server ignores Ctrl-C only once it has imported its preloaded modules, which
    takes seconds; a Ctrl-C in that window (a terminal sends it to the whole process group)
    killed it with a KeyboardInterrupt traceback of its own. A process started while SIGINT
    is ignored inherits that, and Python then leaves it ignored. The main process ignores
    Ctrl-C only while it starts the two processes (milliseconds; from the main thread only,
    where signal handlers live)."""
    import signal
    import threading
    from multiprocessing import forkserver

    if threading.current_thread() is not threading.main_thread():
        forkserver.ensure_running()
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, previous)


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

    Both import the main script again in every worker, so a script that calls
    :func:`~cellkin.fit_all` outside ``if __name__ == "__main__":`` would run again in each
    of them: :func:`~cellkin.fit._main_guard.check_main_guard` stops such a call at once with
    the fix, before any worker starts.
    """
    check_main_guard()
    context: BaseContext
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["__main__", "cellkin.fit._outcome"])
        _start_forkserver()
    else:  # pragma: no cover - Windows
        context = multiprocessing.get_context("spawn")
    return cf.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(os.getpid(),)
    )


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
    checkpoint: tuple[CheckpointFile, Mapping[str, str]] | None,
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
    batches = execute(tasks, arguments, executor, workers)
    try:
        for batch in batches:
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
        batches.close()  # stops the workers now when the loop ended early
        if bar is not None:
            bar.close()
