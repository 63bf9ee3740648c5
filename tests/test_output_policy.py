"""Safe outputs (issue 20): atomic files, one output-folder policy, the manifest — in the
Python API (``overwrite=``) as on the command line."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import cellkin
from cellkin.errors import OptionError
from cellkin.fit import fit_all

output = importlib.import_module("cellkin._output")

STUDY = cellkin.load_example()
TWO = STUDY.kinetics[STUDY.kinetics["subject"].isin(["KD025-101", "KD025-102"])]


@pytest.fixture(scope="module")
def batch():
    return fit_all(TWO, n_jobs=1, progress=False, n_starts=1)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_to_csv_writes_a_manifest_last_that_matches_the_files(batch, tmp_path):
    paths = batch.to_csv(tmp_path / "fits")
    manifest = json.loads((tmp_path / "fits" / "cellkin-manifest.json").read_text())
    assert manifest["format"] == "cellkin-output-manifest" and manifest["complete"] is True
    assert manifest["cellkin_version"] == cellkin.__version__
    assert manifest["command"] == "BatchFit.to_csv"
    listed = {entry["path"]: entry for entry in manifest["files"]}
    assert sorted(listed) == ["failures.csv", "params.csv", "statistics.csv"]
    for name, path in paths.items():
        entry = listed[f"{name}.csv"]
        assert entry["rows"] == len(pd.read_csv(path)) == len(getattr(batch, name))
        assert entry["bytes"] == path.stat().st_size and entry["sha256"] == _sha256(path)
    assert output.verify_manifest(tmp_path / "fits" / "cellkin-manifest.json") == []
    (tmp_path / "fits" / "params.csv").write_text("subject\n")  # truncated by hand
    assert output.verify_manifest(tmp_path / "fits" / "cellkin-manifest.json") == [
        "params.csv: size or SHA-256 differs from the manifest"
    ]
    assert sorted(p.name for p in (tmp_path / "fits").iterdir()) == [
        "cellkin-manifest.json", "failures.csv", "params.csv", "statistics.csv"
    ]  # fmt: skip


def test_a_non_empty_folder_is_refused_and_overwrite_removes_only_cellkin_files(batch, tmp_path):
    folder = tmp_path / "fits"
    batch.to_csv(folder)
    (folder / "plots").mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(OptionError, match=r"directory: folder .*fits is not empty .*=True"):
        batch.to_csv(folder)
    # a previous run's listed file that this run does not write is removed, others stay
    manifest = json.loads((folder / "cellkin-manifest.json").read_text())
    (folder / "plots" / "old.png").write_bytes(b"png")
    manifest["files"].append({"path": "plots/old.png", "rows": None, "bytes": 3, "sha256": ""})
    manifest["files"].append({"path": "../outside.txt", "rows": None, "bytes": 0, "sha256": ""})
    (folder / "cellkin-manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "outside.txt").write_text("not in the folder")
    batch.to_csv(folder, overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == [
        "cellkin-manifest.json", "failures.csv", "notes.txt", "params.csv", "statistics.csv"
    ]  # fmt: skip
    assert (tmp_path / "outside.txt").exists() and (folder / "notes.txt").read_text() == "mine"


def test_overwrite_removes_the_files_of_an_interrupted_run_from_its_journal(tmp_path):
    folder = tmp_path / "out"
    first = output.OutputFolder(folder, command="first")
    first.csv("tables/a.csv", pd.DataFrame({"x": [1]}))
    first.bytes("plots/s1.png", b"png")
    with pytest.raises(RuntimeError), first.file("tables/b.csv") as temporary:
        temporary.write_text("half a ta")
        raise RuntimeError("killed while writing")
    # interrupted: no manifest, a journal, no temporary file left behind
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    assert names == [".cellkin-journal", "plots", "plots/s1.png", "tables", "tables/a.csv"]
    with pytest.raises(OptionError, match="not empty"):
        output.OutputFolder(folder)
    second = output.OutputFolder(folder, overwrite=True)
    second.csv("tables/c.csv", pd.DataFrame({"y": [2]}))
    second.finish()
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    assert names == ["cellkin-manifest.json", "tables", "tables/c.csv"]


@pytest.mark.parametrize("kind", ["file for a folder", "folder for a file", "not writable"])
def test_targets_that_cannot_be_written_are_one_clear_error_before_any_work(
    tmp_path, kind, monkeypatch
):
    existing = tmp_path / "existing.csv"
    existing.write_text("x\n")
    if kind == "file for a folder":
        with pytest.raises(OptionError, match=r"existing\.csv is an existing file, not a folder"):
            output.OutputFolder(existing)
    elif kind == "folder for a file":
        with pytest.raises(OptionError, match=r"path: .* is a folder; give a file name"):
            output.check_file(tmp_path, overwrite=True, argument="path")
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        if os.geteuid() == 0:  # root may write anywhere: let the folder say it cannot
            real = os.access
            monkeypatch.setattr(os, "access", lambda p, m: Path(p) != locked and real(p, m))
        with pytest.raises(OptionError, match=r"cannot write in folder .*locked"):
            output.check_file(locked / "a" / "b.csv", overwrite=False, argument="-o/--output")
        with pytest.raises(OptionError, match=r"cannot write in folder .*locked"):
            output.OutputFolder(locked / "report")


def test_write_nonmem_and_the_report_follow_the_policy(tmp_path):
    path = tmp_path / "nm" / "data.csv"  # missing folders are created
    cellkin.write_nonmem(TWO, path)
    first = path.read_bytes()
    with pytest.raises(OptionError, match=r"data\.csv already exists"):
        cellkin.write_nonmem(STUDY.kinetics, path)
    assert path.read_bytes() == first
    written = cellkin.write_nonmem(STUDY.kinetics, path, overwrite=True)
    assert len(pd.read_csv(path)) == len(written) > len(pd.read_csv(tmp_path / "nm" / "data.csv",
                                                                    nrows=3))  # fmt: skip
    assert [p.name for p in path.parent.iterdir()] == ["data.csv"]  # no temporary left


_KILL_WRITER = """
import sys, time
import pandas as pd
import importlib
output = importlib.import_module("cellkin._output")
frame = pd.DataFrame({"subject": ["S%d" % i for i in range(200_000)], "value": 1.5})
folder = output.OutputFolder(sys.argv[1], overwrite=True)
folder.csv("params.csv", frame)
original = pd.DataFrame.to_csv
def slow_to_csv(self, path, **kwargs):  # the second table: killed halfway through
    with open(path, "w") as handle:
        handle.write("subject,value\\n" + "S,1\\n" * 1000)
        handle.flush()
        print("writing", flush=True)
        time.sleep(60)
pd.DataFrame.to_csv = slow_to_csv
folder.csv("statistics.csv", frame)
"""


def test_kill_9_during_the_final_write_leaves_no_truncated_table(tmp_path):
    """Issue 20: a kill -9 while tables were written left a truncated ``params.csv`` that
    still parsed, beside an older run's tables. Now a table is renamed into place only when
    complete, the older run's files are gone (``--overwrite`` removed them before writing),
    and the folder has no manifest, so it reads as an interrupted run."""
    folder = tmp_path / "fits"
    older = output.OutputFolder(folder)
    older.csv("statistics.csv", pd.DataFrame({"subject": ["OLD"], "value": [0.0]}))
    older.csv("failures.csv", pd.DataFrame({"subject": ["OLD"], "stage": ["fit"]}))
    older.finish()
    env = {**os.environ, "PYTHONPATH": str(Path(cellkin.__file__).parents[1])}
    command = [sys.executable, "-c", _KILL_WRITER, str(folder)]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout.readline().strip() == "writing"
        time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert not (folder / "cellkin-manifest.json").exists()
    assert len(pd.read_csv(folder / "params.csv")) == 200_000  # renamed only when complete
    visible = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    assert visible == ["params.csv"]  # no half-written statistics.csv, no older tables
    hidden = sorted(p.name for p in folder.iterdir() if p.name.startswith("."))
    assert len(hidden) == 2 and hidden[0] == ".cellkin-journal"
    assert hidden[1].startswith(".statistics.csv.cellkin-") and hidden[1].endswith(".tmp")
    again = output.OutputFolder(folder, overwrite=True)  # the next run removes the leftovers
    again.csv("failures.csv", pd.DataFrame({"subject": ["NEW"]}))
    again.finish()
    assert sorted(p.name for p in folder.iterdir()) == ["cellkin-manifest.json", "failures.csv"]
