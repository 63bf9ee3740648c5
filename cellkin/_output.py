"""Output files written safely (private core): atomic files, one output policy, a manifest.

Every file cellkin writes — tables, figures, the report page, NONMEM datasets, simulated
populations — follows the three rules below, kept in this one module so that the command
line and the Python API behave alike. CSV tables are also made safe for spreadsheets
(:mod:`cellkin._csv`).

**Atomic files.** A file is written under a temporary name in its target folder,
``.NAME.cellkin-<8 hex>.tmp`` (hidden, with an extension no reader takes for a result),
flushed to disk and renamed over the target in one step (:func:`os.replace`). A reader sees
the previous file or the complete new one, never a truncated one; a killed run leaves at most
a hidden temporary file.

**One output policy**, checked before any work starts (:func:`check_file`,
:class:`OutputFolder`):

* a file target that is an existing folder, or a folder target that is an existing file, is
  refused;
* an existing file, or an existing folder that holds anything, is refused unless
  ``overwrite`` is given;
* the nearest existing parent must be a folder this process may write in (missing folders
  are created when the first file is written).

With ``overwrite`` an existing file is replaced (atomically). In a folder, only the files a
previous cellkin run listed there (its manifest, or the journal of an interrupted run) are
removed, just before the new files are written: files cellkin did not write are left alone.

**A manifest written last.** ``cellkin-manifest.json`` in an output folder (or
``NAME.manifest.json`` beside a file the command line wrote) lists every file of the run —
``path`` (relative to the manifest), ``rows`` (tables; null otherwise), ``bytes`` and
``sha256`` — with ``cellkin_version``, ``command`` and ``created_utc``. A folder without a
manifest holds an interrupted run (or files cellkin did not write). While a run writes a
folder, ``.cellkin-journal`` (JSON lines) lists the files written so far, so that
``overwrite`` can remove an interrupted run's files; it is removed when the manifest is
written. :func:`verify_manifest` checks a manifest against the files.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from cellkin._csv import neutralise
from cellkin._version import __version__
from cellkin.errors import OptionError

__all__ = [
    "JOURNAL_NAME",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "OutputFiles",
    "OutputFolder",
    "atomic_path",
    "check_file",
    "verify_manifest",
    "write_csv",
    "write_parquet",
]

MANIFEST_NAME = "cellkin-manifest.json"
JOURNAL_NAME = ".cellkin-journal"
MANIFEST_FORMAT = "cellkin-output-manifest"
_MANIFEST_VERSION = 1
_TEMPORARY = re.compile(r"^\..+\.cellkin-[0-9a-f]{8}\.tmp$")


# ----------------------------------------------------------------------------- atomic files
def _temporary_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.cellkin-{secrets.token_hex(4)}.tmp")


def _fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX; folders cannot be opened on Windows)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(descriptor)
    except OSError:  # pragma: no cover - file systems without directory fsync
        pass
    finally:
        os.close(descriptor)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; once the block has written it, rename it over
    `path` in one step. On an error (or an interrupt) the temporary file is deleted and
    `path` is left as it was. Missing folders are created."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_path(target)
    try:
        yield temporary
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(target.parent)


def write_csv(frame: pd.DataFrame, path: str | os.PathLike[str], **to_csv: Any) -> None:
    """Write `frame` as an injection-safe CSV (:func:`cellkin._csv.neutralise`), atomically;
    `to_csv` goes to :meth:`pandas.DataFrame.to_csv` (``index=False`` unless given)."""
    with atomic_path(path) as temporary:
        neutralise(frame).to_csv(temporary, **{"index": False, **to_csv})


def write_parquet(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write `frame` as parquet (no index), atomically. ``DataFrame.attrs`` are not written
    (they may hold arrays, which parquet's JSON metadata cannot; the run's provenance is in
    the manifest)."""
    table = frame.copy(deep=False)
    table.attrs = {}
    with atomic_path(path) as temporary:
        table.to_parquet(temporary, index=False)


# ----------------------------------------------------------------------------- the policy
def _overwrite_hint(argument: str) -> str:
    return "--overwrite" if argument.startswith("-") else "overwrite=True"


def _check_parent(folder: Path, argument: str) -> None:
    """The nearest existing ancestor of `folder` must be a folder this process can write in."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OptionError(f"{argument}: {existing} is a file, not a folder; choose another place")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OptionError(
            f"{argument}: cannot write in folder {existing} (permission denied); choose a "
            f"folder you can write in"
        )


def check_file(path: str | os.PathLike[str], *, overwrite: bool, argument: str) -> Path:
    """Apply the output policy to a file target before any work; return it as a Path.

    Raises
    ------
    OptionError
        `path` is a folder, exists (without `overwrite`), or cannot be created. The message
        names `argument` (``"-o/--output"`` on the command line, ``"path"`` in the API).
    """
    target = Path(path)
    if target.is_dir():
        raise OptionError(f"{argument}: {target} is a folder; give a file name")
    if target.exists() and not overwrite:
        raise OptionError(
            f"{argument}: {target} already exists; give another name, or "
            f"{_overwrite_hint(argument)} to replace it"
        )
    _check_parent(target.parent, argument)
    return target


# ----------------------------------------------------------------------------- manifests
def _digest(path: Path) -> tuple[int, str]:
    sha, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
            size += len(block)
    return size, sha.hexdigest()


class _Manifest:
    """The files of one run, recorded as they are written; :meth:`write` writes the manifest."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.entries: dict[str, dict[str, Any]] = {}

    def record(self, name: str, path: Path, rows: int | None) -> dict[str, Any]:
        size, sha256 = _digest(path)
        entry = {"path": name, "rows": None if rows is None else int(rows), "bytes": size,
                 "sha256": sha256}  # fmt: skip
        self.entries[name] = entry
        return entry

    def write(self, path: Path) -> Path:
        document = {
            "format": MANIFEST_FORMAT,
            "version": _MANIFEST_VERSION,
            "cellkin_version": __version__,
            "command": self.command,
            "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "complete": True,
            "files": list(self.entries.values()),
        }
        with atomic_path(path) as temporary:
            temporary.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        return path


def verify_manifest(path: str | os.PathLike[str]) -> list[str]:
    """Problems of the files a manifest lists (missing, other size or SHA-256); [] if none."""
    manifest = Path(path)
    document = json.loads(manifest.read_text(encoding="utf-8"))
    if document.get("format") != MANIFEST_FORMAT:
        return [f"{manifest}: not a cellkin output manifest"]
    problems = []
    for entry in document["files"]:
        file = Path(entry["path"])
        file = file if file.is_absolute() else manifest.parent / file
        if not file.is_file():
            problems.append(f"{entry['path']}: missing")
        elif _digest(file) != (entry["bytes"], entry["sha256"]):
            problems.append(f"{entry['path']}: size or SHA-256 differs from the manifest")
    return problems


class OutputFiles:
    """Single-file outputs of one command (``-o FILE``, ``--summary FILE``, ...), each under
    the output policy, with one manifest beside the first (``NAME.manifest.json``)."""

    def __init__(self, command: str) -> None:
        self._manifest = _Manifest(command)
        self._targets: dict[Path, str] = {}

    def target(self, path: str | os.PathLike[str], *, overwrite: bool, argument: str) -> Path:
        """Check `path` (before any work; see :func:`check_file`) and reserve it."""
        target = check_file(path, overwrite=overwrite, argument=argument)
        key = target.resolve()
        if key in self._targets:
            raise OptionError(
                f"{argument}: {target} is also given to {self._targets[key]}; give each "
                f"output its own file"
            )
        self._targets[key] = argument
        return target

    def _name(self, path: Path) -> str:
        first = next(iter(self._targets))
        try:
            return os.path.relpath(path.resolve(), first.parent)
        except ValueError:  # pragma: no cover - another drive (Windows)
            return str(path.resolve())

    def csv(self, path: Path, frame: pd.DataFrame, **to_csv: Any) -> Path:
        """Write a table as injection-safe CSV, atomically, and record it."""
        write_csv(frame, path, **to_csv)
        return self.add(path, rows=len(frame))

    def parquet(self, path: Path, frame: pd.DataFrame) -> Path:
        """Write a table as parquet, atomically, and record it."""
        write_parquet(frame, path)
        return self.add(path, rows=len(frame))

    def add(self, path: Path, rows: int | None = None) -> Path:
        """Record a file written (atomically) by someone else, e.g. a streamed parquet file."""
        self._manifest.record(self._name(path), path, rows)
        return path

    def finish(self) -> Path | None:
        """Write the manifest beside the first target (None when nothing was written)."""
        if not self._manifest.entries:
            return None
        first = next(iter(self._targets))
        return self._manifest.write(first.with_name(first.name + ".manifest.json"))


def _inside(folder: Path, name: str) -> Path | None:
    """``folder / name`` when `name` is a relative path that stays inside `folder`."""
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        return None
    return folder / relative


def _previous_files(folder: Path) -> set[str]:
    """Files a previous cellkin run listed in `folder`: its manifest and its journal."""
    names: set[str] = set()
    try:
        document = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
        if document.get("format") == MANIFEST_FORMAT:
            names.update(str(entry["path"]) for entry in document["files"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # none, or not one of ours: remove nothing on its word
    try:
        lines = (folder / JOURNAL_NAME).read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    for line in lines[1:]:
        try:
            names.add(str(json.loads(line)["path"]))
        except (ValueError, KeyError, TypeError):
            continue  # a torn last line
    return names


class OutputFolder:
    """The files of one run written into one folder, under the output policy, with a manifest.

    Constructing it checks the policy (do it before any work); the first write removes what
    a previous cellkin run listed there (with `overwrite`) and starts the journal;
    :meth:`finish` writes the manifest last.

    Parameters
    ----------
    folder : path
        The output folder (created when missing).
    overwrite : bool
        Accept a non-empty folder, replacing the files a previous cellkin run wrote there.
    argument : str
        How the caller names the folder in messages (``"-o/--output"``, ``"directory"``).
    command : str
        The command (or call) recorded in the manifest.
    keep : sequence of path
        Files inside the folder that do not make it "non-empty" (e.g. the checkpoint that a
        resumed ``cellkin fit`` keeps there).
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        argument: str = "directory",
        command: str = "",
        keep: tuple[str | os.PathLike[str], ...] = (),
    ) -> None:
        self.folder = Path(folder)
        self.overwrite = bool(overwrite)
        self._manifest = _Manifest(command)
        self._started = False
        keep_names = {Path(p).resolve() for p in keep}
        keep_names |= {Path(f"{p}.lock").resolve() for p in keep}
        self._check(argument, keep_names)

    def _check(self, argument: str, keep: set[Path]) -> None:
        folder = self.folder
        if folder.exists() and not folder.is_dir():
            raise OptionError(
                f"{argument}: {folder} is an existing file, not a folder; give a folder name"
            )
        if not folder.is_dir():
            _check_parent(folder.parent, argument)
            return
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OptionError(f"{argument}: cannot write in folder {folder} (permission denied)")
        held = sorted(p.name for p in folder.iterdir() if p.resolve() not in keep)
        if held and not self.overwrite:
            raise OptionError(
                f"{argument}: folder {folder} is not empty ({len(held)} entries, e.g. "
                f"{held[0]}); give a new folder, or {_overwrite_hint(argument)} to replace the "
                f"files a previous cellkin run wrote there"
            )

    def _start(self) -> None:
        if self._started:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.overwrite:
            self._remove_previous()
        header = {"format": "cellkin-output-journal", "command": self._manifest.command}
        (self.folder / JOURNAL_NAME).write_text(json.dumps(header) + "\n", encoding="utf-8")
        self._started = True

    def _remove_previous(self) -> None:
        folder = self.folder
        emptied: set[Path] = set()
        for name in _previous_files(folder):
            path = _inside(folder, name)
            if path is not None and (path.is_file() or path.is_symlink()):
                path.unlink()
                emptied.update(p for p in path.parents if folder in p.parents)
        for path in folder.rglob(".*.cellkin-*.tmp"):
            if _TEMPORARY.match(path.name):
                path.unlink(missing_ok=True)
        for path in sorted(emptied, key=lambda p: len(p.parts), reverse=True):
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        (folder / MANIFEST_NAME).unlink(missing_ok=True)

    def path(self, name: str) -> Path:
        """Where file `name` (a relative path, e.g. ``"tables/nca.csv"``) goes."""
        path = _inside(self.folder, name)
        if path is None or name in (MANIFEST_NAME, JOURNAL_NAME):
            raise ValueError(f"not a file name inside the output folder: {name!r}")
        return path

    @contextmanager
    def file(self, name: str, rows: int | None = None) -> Iterator[Path]:
        """Yield a temporary path to write file `name` to; renamed into place and recorded
        when the block ends without an error."""
        self._start()
        target = self.path(name)
        with atomic_path(target) as temporary:
            yield temporary
            entry = self._manifest.record(name, temporary, rows)
        with open(self.folder / JOURNAL_NAME, "a", encoding="utf-8") as journal:
            journal.write(json.dumps({"path": entry["path"]}) + "\n")

    def csv(self, name: str, frame: pd.DataFrame, **to_csv: Any) -> Path:
        """Write a table as injection-safe CSV (``index=False`` unless given)."""
        with self.file(name, rows=len(frame)) as temporary:
            neutralise(frame).to_csv(temporary, **{"index": False, **to_csv})
        return self.path(name)

    def text(self, name: str, text: str) -> Path:
        """Write a UTF-8 text file (e.g. the report page)."""
        with self.file(name) as temporary:
            temporary.write_text(text, encoding="utf-8")
        return self.path(name)

    def bytes(self, name: str, data: bytes) -> Path:
        """Write a binary file (e.g. a PNG figure)."""
        with self.file(name) as temporary:
            temporary.write_bytes(data)
        return self.path(name)

    def finish(self) -> Path:
        """Write the manifest (last) and remove the journal; returns the manifest's path."""
        self._start()
        manifest = self._manifest.write(self.folder / MANIFEST_NAME)
        (self.folder / JOURNAL_NAME).unlink(missing_ok=True)
        return manifest
