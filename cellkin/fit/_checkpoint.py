"""Resumable checkpoints of a batch fit (private; used by :func:`cellkin.fit_all`).

JSON lines: a header with the format version and the normalised settings (cellkin version,
model, every fit option), then one record per finished subject
``{subject, input_sha256, payload_sha256, payload}`` whose payload is the base64 pickle of the
subject's outcome. Records are flushed and fsynced as they are written; on resume a torn or
corrupt last line is ignored and cut off, and a file written with other settings, another
model or version, or other input rows for a subject is refused. The payload is a pickle: only
resume from files you wrote.

One process at a time: the file is opened under an exclusive lock on ``<checkpoint>.lock``
(:class:`cellkin._lock.HolderLock`), taken before the file is read and released when it is
closed. A second process stops at once with a :class:`~cellkin.errors.FitError` naming the
holder (process id, host, start time, command) instead of interleaving its records with the
first one's — two writers used to lose most of each other's subjects when they cut what they
took for a torn tail.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import pandas as pd

from cellkin._lock import HolderLock, LockHeld
from cellkin.errors import DataError, FitError, OptionError
from cellkin.models.base import Model

if TYPE_CHECKING:
    from cellkin.fit._outcome import Outcome

__all__ = [
    "CheckpointFile",
    "append",
    "encode",
    "input_digest",
    "normalise",
    "open_checkpoint",
    "restore",
]

_CHECKPOINT_FORMAT = "cellkin-fit-checkpoint"
_CHECKPOINT_VERSION = 3  # 2: no per-subject params/statistics frames; 3: no metric rows


def _jsonable(value: Any) -> Any:
    if isinstance(value, Model):
        return value.name
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return repr(value)


def normalise(settings: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(settings, sort_keys=True, default=_jsonable))


def input_digest(rows: pd.DataFrame) -> str:
    digest = hashlib.sha256(json.dumps([str(c) for c in rows.columns]).encode())
    hashed = pd.util.hash_pandas_object(rows.reset_index(drop=True), index=False)
    digest.update(hashed.to_numpy().tobytes())
    return digest.hexdigest()


def encode(outcome: Outcome, input_sha256: str) -> bytes:
    payload = base64.b64encode(pickle.dumps(outcome, protocol=5)).decode("ascii")
    record = {
        "subject": outcome.subject,
        "input_sha256": input_sha256,
        "payload_sha256": hashlib.sha256(payload.encode("ascii")).hexdigest(),
        "payload": payload,
    }
    return (json.dumps(record) + "\n").encode("utf-8")


def _parse_record(line: bytes) -> dict | None:
    try:
        record = json.loads(line)
        payload = record["payload"].encode("ascii")
        intact = hashlib.sha256(payload).hexdigest() == record["payload_sha256"]
        return record if intact and isinstance(record["subject"], str) else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _read_header(path: Path, first: bytes, settings: dict) -> None:
    try:
        header = json.loads(first)
        known = header["format"] == _CHECKPOINT_FORMAT
    except (ValueError, KeyError, TypeError):
        known = False
    if not known:
        raise DataError(f"{path}: not a cellkin fit checkpoint; give a new file or delete it")
    if header.get("version") != _CHECKPOINT_VERSION:
        raise DataError(
            f"{path}: checkpoint format version {header.get('version')!r} is not "
            f"supported (expected {_CHECKPOINT_VERSION}); start a new checkpoint"
        )
    stored = _flatten(header.get("settings", {}))
    now = _flatten(settings)
    keys = sorted(k for k in set(stored) | set(now) if stored.get(k, "-") != now.get(k, "-"))
    if keys:
        detail = "; ".join(
            f"{k}: {stored.get(k, '-')!r} in the file, {now.get(k, '-')!r} now" for k in keys
        )
        raise DataError(
            f"{path}: checkpoint was written with other settings ({detail}); resume with the "
            f"same model and options, or use a new checkpoint"
        )


def _flatten(settings: Mapping[str, Any]) -> dict[str, Any]:
    flat = {}
    for key, value in settings.items():
        if isinstance(value, Mapping) and value:
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


class CheckpointFile:
    """The open checkpoint (binary, appending) and its lock, released by :meth:`close`."""

    def __init__(self, handle: BinaryIO, lock: HolderLock) -> None:
        self._handle, self._lock = handle, lock

    def write(self, data: bytes) -> int:
        """Write `data` at the end of the file."""
        return self._handle.write(data)

    def flush(self) -> None:
        """Flush Python's buffer."""
        self._handle.flush()

    def fileno(self) -> int:
        """The file descriptor (for ``os.fsync``)."""
        return self._handle.fileno()

    def close(self) -> None:
        """Close the file, then release the lock."""
        try:
            self._handle.close()
        finally:
            self._lock.release()

    def __enter__(self) -> CheckpointFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lock(path: Path) -> HolderLock:
    """The checkpoint's lock, taken; one clear error for a folder, a path that cannot be
    written or a lock held by another process."""
    if path.is_dir():
        raise OptionError(
            f"`checkpoint`: {path} is a folder; give a file name, e.g. {path / 'fits.jsonl'}"
        )
    lock = HolderLock(path)
    try:
        lock.acquire()
    except LockHeld as held:
        raise FitError(
            f"{path}: checkpoint in use by {held}; wait for that run to finish, or give "
            f"another checkpoint file"
        ) from None
    except OSError as exc:
        raise OptionError(
            f"`checkpoint`: cannot write {path} ({exc.strerror or exc}); choose a file in a "
            f"folder you can write in"
        ) from None
    return lock


def open_checkpoint(path: Path, settings: dict) -> tuple[CheckpointFile, dict[str, dict]]:
    """Lock, check the header, read intact records (first per subject), cut a torn tail,
    append. The returned file releases the lock when closed."""
    lock = _lock(path)
    try:
        handle, records = _open_locked(path, settings)
    except OSError as exc:
        lock.release()
        raise OptionError(
            f"`checkpoint`: cannot use {path} ({exc.strerror or exc}); give a file you can "
            f"read and write"
        ) from None
    except BaseException:
        lock.release()
        raise
    return CheckpointFile(handle, lock), records


def _open_locked(path: Path, settings: dict) -> tuple[BinaryIO, dict[str, dict]]:
    raw = path.read_bytes() if path.exists() else b""
    end = raw.rfind(b"\n") + 1
    lines = raw[:end].splitlines()
    records: dict[str, dict] = {}
    start = f'{{"format": "{_CHECKPOINT_FORMAT}"'.encode()
    if not lines and raw[: len(start)] != start[: len(raw)]:
        _read_header(path, raw, settings)  # not a torn header of ours: refuse, keep the file
    if lines:
        _read_header(path, lines[0], settings)
        for line in lines[1:]:
            record = _parse_record(line)
            if record is not None:
                records.setdefault(record["subject"], record)
    handle = open(path, "r+b" if path.exists() else "wb")  # closed by fit_all
    handle.truncate(end if lines else 0)
    handle.seek(0, os.SEEK_END)
    if not lines:
        header = {
            "format": _CHECKPOINT_FORMAT,
            "version": _CHECKPOINT_VERSION,
            "settings": settings,
        }
        append(handle, [(json.dumps(header) + "\n").encode("utf-8")])
    return handle, records


def append(handle: BinaryIO | CheckpointFile, lines: Sequence[bytes]) -> None:
    if lines:
        handle.write(b"".join(lines))
        handle.flush()
        os.fsync(handle.fileno())


def restore(
    records: Mapping[str, dict], digests: Mapping[str, str], path: Path
) -> dict[str, Outcome]:
    restored = {}
    for subject, digest in digests.items():
        record = records.get(subject)
        if record is None:
            continue
        if record["input_sha256"] != digest:
            raise DataError(
                f"{path}: subject {subject!r} has other samples than when the "
                f"checkpoint was written; use a new checkpoint for changed data"
            )
        try:
            restored[subject] = pickle.loads(base64.b64decode(record["payload"]))
        except Exception:  # written by incompatible code: fit the subject again
            continue
    return restored
