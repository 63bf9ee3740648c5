"""An exclusive lock on a file that names its holder (private core).

A file that one process appends to (a fit checkpoint) must not be written by two processes at
once: their records would interleave and each would cut the other's "torn" tail on resume.
:class:`HolderLock` takes an exclusive, non-blocking lock (``flock`` on POSIX, ``msvcrt`` on
Windows) on a small sidecar file, ``<file>.lock``, and writes its holder there (process id,
host, start time, command). A second process that finds the lock taken reads the holder and
stops with one line naming it, instead of waiting or writing anyway. The operating system
releases the lock when its holder exits, even on ``kill -9``: a lock file left behind by a
killed process is simply taken over.

The lock file is removed on release while still locked; a process that opened it just before
checks, once it holds the lock, that the path still names the file it locked (the usual
inode check), and otherwise tries again on the new file.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import sys
from pathlib import Path
from typing import IO, Any

__all__ = ["HolderLock", "LockHeld"]

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class LockHeld(Exception):
    """The lock is held by another process; ``holder`` describes it (may be empty)."""

    def __init__(self, holder: dict[str, Any]) -> None:
        super().__init__(describe(holder))
        self.holder = holder


def describe(holder: dict[str, Any]) -> str:
    """``"pid 123 on host, since 2026-01-01T10:00:00+00:00: cellkin fit ..."``."""
    if not holder.get("pid"):
        return "another process"
    where = f" on {holder['host']}" if holder.get("host") else ""
    since = f", since {holder['started_utc']}" if holder.get("started_utc") else ""
    command = f": {holder['command']}" if holder.get("command") else ""
    return f"process {holder['pid']}{where}{since}{command}"


def _try_lock(handle: IO[bytes]) -> bool:
    if fcntl is not None:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    import msvcrt  # pragma: no cover - Windows

    handle.seek(1 << 20)  # pragma: no cover - lock a byte past the holder's record
    try:  # pragma: no cover
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
    except OSError:  # pragma: no cover
        return False
    return True  # pragma: no cover


def _read_holder(path: Path) -> dict[str, Any]:
    try:
        holder = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


class HolderLock:
    """Exclusive lock on ``<path>.lock``, with the holder written inside.

    Use as a context manager, or call :meth:`acquire` / :meth:`release`. :meth:`acquire`
    raises :class:`LockHeld` (naming the holder) when another process holds it.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(f"{os.fspath(path)}.lock")
        self._handle: IO[bytes] | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`LockHeld`; creates the lock file's folder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(10):  # the file may be replaced between open and lock: try again
            handle = open(self.path, "a+b")
            if not _try_lock(handle):
                handle.close()
                raise LockHeld(_read_holder(self.path))
            try:
                same = os.path.samestat(os.fstat(handle.fileno()), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                self._handle = handle
                self._write_holder()
                return
            handle.close()
        raise LockHeld({})  # pragma: no cover - replaced ten times in a row

    def _write_holder(self) -> None:
        assert self._handle is not None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
        }
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(json.dumps(holder).encode("utf-8"))
        self._handle.flush()

    def release(self) -> None:
        """Remove the lock file and release the lock (no-op when not held)."""
        if self._handle is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            self._handle.close()  # closing the descriptor releases the lock
            self._handle = None

    def __enter__(self) -> HolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
