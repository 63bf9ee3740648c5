"""Re-run the 29 BAD/WORST attack classes of issue 20 and print their outcome now.

A script, not a test: ``python tests/adversarial/issue20_attacks.py`` runs them all,
``python tests/adversarial/issue20_attacks.py 7 9`` only attacks 7 and 9. Each attack runs
cellkin as a user would (``python -m cellkin ...`` in a fresh process, or a short Python
script for the API writers), on the bundled example study or a few of its subjects, in a
temporary folder, and checks what the issue says went wrong. The table gives, per class,
what the adversarial run of issue 20 found ("before"), what happens now, and the verdict:
GOOD (the finding is fixed) or BAD. The exit status is the number of BAD rows. About 5–8
minutes on two shared cores; Linux (``/proc``) for the orphan check.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
SUBSET = ["KD025-101", "KD025-106", "KD025-109", "KD025-112"]
QUICK = ["--jobs", "1", "--starts", "1", "--no-progress"]
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

#: A wrapper around the command line: slow fits (SLOW_FIT seconds each, also in the pool's
#: workers, which import this script) and, with KILL_WRITE, a table write that stops halfway.
WRAPPER = """
import importlib, os, sys, time
delay = float(os.environ.get("SLOW_FIT", "0"))
outcome = importlib.import_module("cellkin.fit._outcome")
real = outcome.fit_table
def slow_fit(*args, **kwargs):
    time.sleep(delay)
    return real(*args, **kwargs)
outcome.fit_table = slow_fit
if __name__ == "__main__":
    if os.environ.get("KILL_WRITE"):
        import pandas as pd
        def half_written(self, path, **kwargs):
            with open(path, "w") as handle:
                handle.write("subject,parameter\\n" + "S,cmax\\n" * 27)
                handle.flush()
                print("writing", flush=True)
                time.sleep(120)
        pd.DataFrame.to_csv = half_written
    from cellkin.cli import main
    sys.exit(main(sys.argv[1:]))
"""


class Work:
    """The temporary folder of the run, the inputs, and ways to run cellkin."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        sys.path.insert(0, str(ROOT))
        import cellkin

        study = cellkin.load_example()
        self.kinetics = folder / "kinetics.csv"
        study.kinetics[study.kinetics["subject"].isin(SUBSET)].to_csv(self.kinetics, index=False)
        self.example_kinetics = folder / "example_kinetics.csv"
        study.kinetics.to_csv(self.example_kinetics, index=False)
        self.study_files = {}
        for name in ("kinetics", "subjects", "lesions", "adverse_events"):
            table = getattr(study, name)
            self.study_files[name] = folder / f"study_{name}.csv"
            table[table["subject"].isin(SUBSET)].to_csv(self.study_files[name], index=False)
        self.hostile = self._hostile(study)
        self.wrapper = folder / "wrapper.py"
        self.wrapper.write_text(WRAPPER)

    def _hostile(self, study) -> dict[str, Path]:
        ids = dict(zip(SUBSET, ["=SUM(A1)", "+cmd|' /C calc'!A0", '@HYPERLINK("http://x.invalid")',
                                "-2+3+cmd|' /C calc'!A0"], strict=True))  # fmt: skip
        files = {}
        for name in ("kinetics", "subjects", "lesions", "adverse_events"):
            table = getattr(study, name)
            table = table[table["subject"].isin(SUBSET)].copy()
            table["subject"] = table["subject"].map(ids)
            if name == "kinetics":
                table.loc[table["time"] > 20, "visit"] = "@SUM(1+1)"
            if name == "adverse_events":
                table.loc[table.index[:3], "term"] = "=1+1"
            files[name] = self.folder / f"hostile_{name}.csv"
            table.to_csv(files[name], index=False)
        return files

    def cli(self, *args: str, timeout: float = 600, **options) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "cellkin", *args]
        return subprocess.run(command, env=ENV, capture_output=True, text=True,
                              timeout=timeout, cwd=self.folder, **options)  # fmt: skip

    def popen(self, *args: str, env: dict | None = None, **options) -> subprocess.Popen:
        command = [sys.executable, str(self.wrapper), *args]
        return subprocess.Popen(command, env={**ENV, **(env or {})}, cwd=self.folder,
                                text=True, **options)  # fmt: skip

    def path(self, name: str) -> Path:
        return self.folder / name


def one_line(result: subprocess.CompletedProcess, status: int) -> tuple[bool, str]:
    """Exit `status`, one ``cellkin: error:`` line and no traceback."""
    lines = [line for line in result.stderr.strip().splitlines() if line]
    first = lines[0] if lines else ""
    ok = (result.returncode == status and len(lines) == 1
          and first.startswith("cellkin: error:") and "Traceback" not in result.stderr)  # fmt: skip
    line = lines[-1] if lines else "(no message)"
    return ok, f"exit {result.returncode}: {line[:150]}"


def unsafe_cells(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    return [c for c in cells if c[:1] in TRIGGERS and not NUMBER.fullmatch(c)]


# ----------------------------------------------------------------------------- the attacks


def kill_during_final_write(w: Work) -> tuple[bool, str]:
    out = w.path("kill_write")
    assert w.cli("fit", str(w.kinetics), "-o", str(out), *QUICK).returncode == 0  # older run
    process = w.popen("fit", str(w.kinetics), "-o", str(out), "--overwrite", *QUICK,
                      env={"KILL_WRITE": "1"}, stdout=subprocess.PIPE)  # fmt: skip
    while process.stdout.readline().strip() != "writing":
        pass
    time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    visible = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    hidden = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
    ok = visible == [] and not (out / "cellkin-manifest.json").exists()
    return ok, (
        f"killed mid-write of params.csv: visible files {visible or 'none'} (the older "
        f"run's were removed first), hidden {hidden}, no manifest: reads as interrupted"
    )


def stale_report_folder(w: Work) -> tuple[bool, str]:
    out = w.path("report")
    first = w.cli("report", *map(str, w.study_files.values()), "-o", str(out), *QUICK)
    assert first.returncode == 0, first.stderr
    before = len(list((out / "tables").glob("*.csv")))
    again = ["report", "--kinetics", str(w.kinetics), "-o", str(out), *QUICK]
    refused, message = one_line(w.cli(*again), 2)
    assert w.cli(*again, "--overwrite").returncode == 0
    manifest = json.loads((out / "cellkin-manifest.json").read_text())
    listed = {e["path"] for e in manifest["files"]} | {"cellkin-manifest.json"}
    present = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    ok = refused and present == listed
    return ok, (
        f"reuse refused ({message.split(': ', 1)[1][:60]}...); with --overwrite "
        f"{before} -> {len(list((out / 'tables').glob('*.csv')))} tables, none stale"
    )


def stale_fit_plots(w: Work) -> tuple[bool, str]:
    out = w.path("fit_plots")
    assert w.cli("fit", str(w.kinetics), "-o", str(out), "--plots", *QUICK).returncode == 0
    before = sorted(p.name for p in (out / "plots").glob("*.png"))
    # SUBSET[1]: since #15 the first subject (5 samples, 7 parameters) is refused, not fitted
    again = ["fit", str(w.kinetics), "-o", str(out), "--plots", "--subject", SUBSET[1], *QUICK]
    refused, _ = one_line(w.cli(*again), 2)
    assert w.cli(*again, "--overwrite").returncode == 0
    after = sorted(p.name for p in (out / "plots").glob("*.png"))
    ok = refused and after == [f"{SUBSET[1]}.png"]
    return ok, f"reuse refused; --overwrite: plots {len(before)} -> {after}"


def _injection(files: list[Path], what: str) -> tuple[bool, str]:
    bad = {p.name: unsafe_cells(p)[:2] for p in files if unsafe_cells(p)}
    text = "\n".join(p.read_text(encoding="utf-8") for p in files)
    ok = bool(files) and not bad and "'=SUM(A1)" in text
    return ok, f"{len(files)} CSV file(s), {what}; cells a spreadsheet would run: {bad or 'none'}"


def injection_nca(w: Work) -> tuple[bool, str]:
    out = w.path("nca_hostile.csv")
    assert w.cli("nca", str(w.hostile["kinetics"]), "-o", str(out)).returncode == 0
    return _injection([out], "ids written as '=SUM(A1) etc.")


def injection_fit(w: Work) -> tuple[bool, str]:
    out = w.path("fit_hostile")
    assert w.cli("fit", str(w.hostile["kinetics"]), "-o", str(out), *QUICK).returncode == 0
    return _injection(sorted(out.glob("*.csv")), "params/statistics/failures/metrics")


def injection_report(w: Work) -> tuple[bool, str]:
    out = w.path("report_hostile")
    result = w.cli("report", *map(str, w.hostile.values()), "-o", str(out), *QUICK)
    assert result.returncode == 0, result.stderr
    w.report_hostile = out
    return _injection(sorted((out / "tables").glob("*.csv")), "every report table")


def injection_visits_terms(w: Work) -> tuple[bool, str]:
    if not hasattr(w, "report_hostile"):
        injection_report(w)
    tables = w.report_hostile / "tables"
    terms = pd.read_csv(tables / "teae_incidence.csv")["term"].dropna().astype(str)
    nonmem = w.path("visits_nonmem.csv")  # the NONMEM dataset carries the VISIT column
    code = "import cellkin, sys; cellkin.write_nonmem(sys.argv[1], sys.argv[2])"
    subprocess.run([sys.executable, "-c", code, str(w.hostile["kinetics"]), str(nonmem)],
                   env=ENV, check=True)  # fmt: skip
    assert "'@SUM(1+1)" in nonmem.read_text()
    files = [*sorted(tables.glob("*.csv")), nonmem]
    raw = [p.name for p in files if "\n@SUM(1+1)" in p.read_text() or ",@SUM" in p.read_text()]
    ok = "'=1+1" in set(terms) and not any(unsafe_cells(p) for p in files) and not raw
    return ok, (f"AE term '=1+1' written as {sorted({t for t in terms if '1+1' in t})}; visit "
                f"'@SUM(1+1)' as '@SUM(1+1) (NONMEM VISIT); raw in {raw or 'no file'}")  # fmt: skip


def injection_to_csv(w: Work) -> tuple[bool, str]:
    out = w.path("to_csv_hostile")
    code = ("import cellkin, sys; cellkin.fit_all(sys.argv[1], n_jobs=1, progress=False, "
            "n_starts=1).to_csv(sys.argv[2])")  # fmt: skip
    subprocess.run([sys.executable, "-c", code, str(w.hostile["kinetics"]), str(out)], env=ENV,
                   check=True)  # fmt: skip
    return _injection(sorted(out.glob("*.csv")), "BatchFit.to_csv: params/statistics/failures")


def injection_nonmem(w: Work) -> tuple[bool, str]:
    out = w.path("nonmem_hostile.csv")
    code = ("import cellkin, sys; cellkin.write_nonmem(sys.argv[1], sys.argv[2], "
            "subjects=sys.argv[3])")  # fmt: skip
    subprocess.run([sys.executable, "-c", code, str(w.hostile["kinetics"]), str(out),
                    str(w.hostile["subjects"])], env=ENV, check=True)  # fmt: skip
    import cellkin

    back = sorted(cellkin.read_kinetics(out)["subject"].unique())
    ok, text = _injection([out], f"read back by read_kinetics as {back[:2]}...")
    return ok, text


def shared_checkpoint(w: Work) -> tuple[bool, str]:
    checkpoint = w.path("shared.jsonl")
    halves = [[a for s in SUBSET[:2] for a in ("--subject", s)],
              [a for s in SUBSET[2:] for a in ("--subject", s)]]  # fmt: skip
    first = w.popen("fit", str(w.kinetics), "-o", str(w.path("half1")), "--checkpoint",
                    str(checkpoint), *halves[0], *QUICK, env={"SLOW_FIT": "6"},
                    stdout=subprocess.DEVNULL)  # fmt: skip
    while not (checkpoint.exists() and checkpoint.read_bytes().count(b"\n") >= 1):
        time.sleep(0.05)
    second = w.cli("fit", str(w.kinetics), "-o", str(w.path("half2")), "--checkpoint",
                   str(checkpoint), *halves[1], *QUICK)  # fmt: skip
    first.wait(timeout=300)
    refused, message = one_line(second, 1)
    records = checkpoint.read_bytes().count(b"\n") - 1
    ok = refused and f"process {first.pid}" in message and records == 2
    return ok, f"second writer stopped: {message[8:120]}...; first kept all {records} records"


def starts_a_billion(w: Work) -> tuple[bool, str]:
    return one_line(w.cli("fit", str(w.kinetics), "--starts", "1000000000", *QUICK[:2]), 2)


def simulate_memory_limit(w: Work) -> tuple[bool, str]:
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (8 * 2**30, 8 * 2**30))

    result = w.cli("simulate", "--n", "20000000", "--seed", "1", "-o", "big.csv",
                   preexec_fn=limit)  # fmt: skip
    ok, message = one_line(result, 2)
    return ok and "needs about" in message, message + " (under ulimit -v 8 GB)"


def interrupted_parquet(w: Work) -> tuple[bool, str]:
    command = [sys.executable, "-m", "cellkin", "simulate", "--n", "20000000", "--seed", "1",
               "-o", "pop.parquet", "--chunk-size", "20000", "--no-progress"]  # fmt: skip
    process = subprocess.Popen(command, env=ENV, cwd=w.folder, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while not list(w.folder.glob(".pop.parquet.cellkin-*.tmp")):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    time.sleep(1.0)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    left = sorted(p.name for p in w.folder.iterdir() if "pop.parquet" in p.name)
    ok = process.returncode == 130 and left == [] and "Traceback" not in err
    return ok, f"exit {process.returncode} after Ctrl-C; files left: {left or 'none'}"


def _missing(w: Work, kind: str) -> tuple[bool, str]:
    deep = w.path(f"missing_{kind}") / "a" / "b"
    if kind == "nca":
        result, made = w.cli("nca", str(w.kinetics), "-o", str(deep / "nca.csv")), deep / "nca.csv"
    elif kind == "fit":
        result, made = w.cli("fit", str(w.kinetics), "-o", str(deep), *QUICK), deep / "params.csv"
    elif kind == "simulate":
        made = deep / "sim.csv"
        result = w.cli("simulate", "--n", "3", "--seed", "1", "-o", str(made))
    else:
        made = deep / "fits.jsonl"
        result = w.cli("fit", str(w.kinetics), "-o", str(w.path("ck_out")), "--checkpoint",
                       str(made), *QUICK)  # fmt: skip
    ok = result.returncode == 0 and made.is_file() and "Traceback" not in result.stderr
    return ok, f"exit {result.returncode}; folders created, {made.name} written"


def _unwritable(w: Work, kind: str) -> tuple[bool, str]:
    if os.geteuid() == 0:  # root writes anywhere a permission allows: use /proc, read-only
        base = Path("/proc/cellkin-attack")
    else:
        base = w.path(f"locked_{kind}")
        base.mkdir(mode=0o500)
    args = {
        "nca": ["nca", str(w.kinetics), "-o", str(base / "nca.csv")],
        "fit": ["fit", str(w.kinetics), "-o", str(base / "fit"), *QUICK],
        "simulate": ["simulate", "--n", "3", "--seed", "1", "-o", str(base / "sim.csv")],
        "checkpoint": ["fit", str(w.kinetics), "-o", str(w.path(f"ck_{kind}")),
                       "--checkpoint", str(base / "fits.jsonl"), *QUICK],
    }[kind]  # fmt: skip
    result = w.cli(*args)
    ok, message = one_line(result, result.returncode)
    return ok and result.returncode in (1, 2), message


def output_names_a_file(w: Work) -> tuple[bool, str]:
    existing = w.path("results.csv")
    existing.write_text("keep\n")
    started = time.monotonic()
    result = w.cli("fit", str(w.example_kinetics), "-o", str(existing), *QUICK)
    ok, message = one_line(result, 2)
    took = time.monotonic() - started
    ok = ok and "Batch fit" not in result.stdout and existing.read_text() == "keep\n"
    return ok, f"{message} ({took:.1f} s, before fitting)"


def checkpoint_is_a_folder(w: Work) -> tuple[bool, str]:
    return one_line(w.cli("fit", str(w.kinetics), "--checkpoint", str(w.folder), *QUICK), 2)


def exclude_before(w: Work, value: str) -> tuple[bool, str]:
    return one_line(w.cli("validate", str(w.kinetics), f"--exclude-before={value}"), 2)


def seed_negative(w: Work) -> tuple[bool, str]:
    return one_line(w.cli("fit", str(w.kinetics), "--seed", "-1", *QUICK), 2)


def ctrl_c(w: Work) -> tuple[bool, str]:
    out = w.path("ctrl_c")
    checkpoint = out / "fits.jsonl"
    argv = ["fit", "--example", "-o", str(out), "--checkpoint", str(checkpoint), "--jobs", "2",
            "--starts", "1", "--no-progress"]  # fmt: skip
    process = w.popen(*argv, env={"SLOW_FIT": "0.3"}, stderr=subprocess.PIPE,
                      start_new_session=True)  # fmt: skip
    while not (checkpoint.exists() and checkpoint.read_bytes().count(b"\n") >= 4):
        assert process.poll() is None
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=120)
    lines = err.strip().splitlines()
    done = checkpoint.read_bytes().count(b"\n") - 1
    resumed = w.cli(*argv)
    ok = (process.returncode == 130 and len(lines) == 1 and "Traceback" not in err
          and resumed.returncode == 0)  # fmt: skip
    return ok, (
        f"exit {process.returncode}, {len(lines)} line: {lines[0][:60]}...; "
        f"{done} subjects kept, the same command resumed (exit {resumed.returncode})"
    )


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False


def orphans(w: Work) -> tuple[bool, str]:
    process = w.popen("fit", "--example", "-o", str(w.path("orphans")), "--jobs", "4",
                      "--starts", "1", "--no-progress", env={"SLOW_FIT": "60"})  # fmt: skip
    deadline = time.monotonic() + 120
    while len(tree := _descendants(process.pid)) < 6:  # tracker, fork server, 4 workers
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.1)
    time.sleep(1.0)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed = time.monotonic()
    while any(_running(p) for p in tree) and time.monotonic() - killed < 90:
        time.sleep(0.05)
    gone = time.monotonic() - killed
    alive = [p for p in tree if _running(p)]
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    return not alive and gone < 5, (
        f"{len(tree)} pool processes (4 workers); all gone "
        f"{gone:.1f} s after kill -9 of the main process"
    )


def times_unsorted(w: Work) -> tuple[bool, str]:
    out = w.path("times.csv")
    result = w.cli("simulate", "--n", "3", "--seed", "1", "--times", "7,1,7", "--lloq", "50",
                   "-o", str(out))  # fmt: skip
    import cellkin

    read = cellkin.read_kinetics(out)
    note = result.stderr.strip()
    ok = result.returncode == 0 and sorted(read["time"].unique()) == [1.0, 7.0]
    return ok, f"{note}; read_kinetics reads it ({len(read)} samples)"


ATTACKS: list[tuple[str, str, Callable[[Work], tuple[bool, str]]]] = [
    ("kill -9 during the final table write", "truncated params.csv (27 of 34,944 rows) that "
     "parses, beside the older run's tables", kill_during_final_write),
    ("report folder reused", "16 tables of another study beside 13 new ones", stale_report_folder),
    ("fit folder reused (--plots)", "old plots stay", stale_fit_plots),
    ("formula injection: nca CSV", "=SUM(A1), +cmd|, @HYPERLINK written raw", injection_nca),
    ("formula injection: fit tables", "ids written raw", injection_fit),
    ("formula injection: BatchFit.to_csv", "ids written raw", injection_to_csv),
    ("formula injection: every report table", "ids written raw", injection_report),
    ("formula injection: visits and AE terms", "written raw", injection_visits_terms),
    ("formula injection: write_nonmem", "USUBJID written raw", injection_nonmem),
    ("two processes share one checkpoint", "1,761 of 2,500 records silently lost",
     shared_checkpoint),
    ("fit --starts 1000000000", "1.8 GB before fitting anything", starts_a_billion),
    ("simulate --n 20000000 under a memory limit", "_ArrayMemoryError traceback",
     simulate_memory_limit),
    ("interrupted parquet run", "valid-looking 0-row .parquet.partial", interrupted_parquet),
    *[(f"{kind} output into a missing folder", "traceback",
       (lambda k: lambda w: _missing(w, k))(kind))
      for kind in ("nca", "fit", "simulate", "checkpoint")],
    *[(f"{kind} output into a non-writable folder", "traceback",
       (lambda k: lambda w: _unwritable(w, k))(kind))
      for kind in ("nca", "fit", "simulate", "checkpoint")],
    ("fit -o naming an existing file", "traceback after all the fitting", output_names_a_file),
    ("checkpoint path is a folder", "traceback", checkpoint_is_a_folder),
    ("--exclude-before nan", "traceback", lambda w: exclude_before(w, "nan")),
    ("--exclude-before inf", "traceback", lambda w: exclude_before(w, "inf")),
    ("--seed -1", "traceback", seed_negative),
    ("Ctrl-C during fit", "24-line KeyboardInterrupt traceback", ctrl_c),
    ("kill -9 of the main process: orphans", "4 pool processes alive after 90 s", orphans),
    ("simulate --times 7,1,7", "duplicate samples cellkin's reader rejects", times_unsorted),
]  # fmt: skip


def main(chosen: list[int]) -> int:
    """Run the attacks numbered in `chosen` (all when empty); print the table."""
    rows, bad = [], 0
    with tempfile.TemporaryDirectory(prefix="issue20-") as folder:
        work = Work(Path(folder))
        for number, (name, before, attack) in enumerate(ATTACKS, 1):
            if chosen and number not in chosen:
                continue
            started = time.monotonic()
            try:
                ok, now = attack(work)
            except Exception as exc:  # an attack that could not run counts as BAD
                ok, now = False, f"attack failed: {type(exc).__name__}: {exc}"
            bad += not ok
            rows.append((number, name, before, now.replace("|", "/").replace("\n", " "),
                         "GOOD" if ok else "BAD", time.monotonic() - started))  # fmt: skip
            print(f"{number:2d} {'GOOD' if ok else 'BAD ':4} {name}", file=sys.stderr)
    print("| # | attack class (issue 20) | before | now | verdict |")
    print("|---|---|---|---|---|")
    for number, name, before, now, verdict, _ in rows:
        print(f"| {number} | {name} | {before} | {now} | {verdict} |")
    print(f"\n{len(rows)} classes re-run: {len(rows) - bad} GOOD, {bad} BAD")
    return bad


if __name__ == "__main__":
    sys.exit(main([int(n) for n in sys.argv[1:]]))
