"""NCA benchmark: cellkin.nca against pynca on the same table, measured in one run.

    python benchmarks/bench_nca.py                  # 10,000 subjects x 16 samples
    python benchmarks/bench_nca.py --smoke          # 500 subjects, for CI
    python benchmarks/bench_nca.py --json out.json  # also write the records (benchmarks/run.py)

The peer is ``pynca`` (PyPI; a Python port of the R package NonCompart), the NCA package a
Python user would otherwise reach for: ``pip install pynca``. It is run on a subset of the
subjects (its cost is linear in subjects; the per-subject time is reported) and its values
are compared with cellkin's where the definitions agree (linear trapezoid, λz by adjusted R²).
Prints a Markdown table: median of repeats, subjects/s and the ratio. Without pynca the peer
fields of the record are None and its notes say so. Goals: ≥ 20× pynca's subjects/s, and
10,000 subjects in ≤ 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pandas as pd

import cellkin
from cellkin._version import __version__
from cellkin.metrics import nca
from cellkin.simulate import sample_trial, virtual_population

SCHEDULE = [-0.02, 1, 4, 7, 10, 14, 21, 28, 42, 56, 84, 112, 180, 270, 365, 450]


def make_study(n: int, seed: int = 1) -> pd.DataFrame:
    population = virtual_population("stein2019", n, seed=seed)
    return sample_trial("stein2019", population, SCHEDULE, lloq=50.0, seed=seed + 1)


def time_call(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def run_pynca(kinetics: pd.DataFrame) -> pd.DataFrame:
    from pynca.tools import tblNCA

    post = kinetics[kinetics["time"] >= 0].assign(conc=lambda d: d["value"].fillna(0.0))
    # pynca needs a sample at time 0; cellkin imputes C(0) = 0 the same way by default.
    start = pd.DataFrame({"subject": post["subject"].unique(), "time": 0.0, "conc": 0.0})
    post = pd.concat([start, post[["subject", "time", "conc"]]]).sort_values(
        ["subject", "time"], kind="stable"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pynca emits pandas/numpy warnings on its own code
        result = tblNCA(post, key=["subject"], colTime="time", colConc="conc", dose=1,
                        adm="Extravascular", down="Linear")  # fmt: skip
    result = result.iloc[1:]  # first row holds units
    return result.set_index("subject")[["Cmax", "Tmax", "AUClast", "Lambda_z"]].astype(float)


def compare_with_pynca(subset: pd.DataFrame, reference: pd.DataFrame) -> dict[str, float]:
    """Largest relative difference from pynca per metric, where the definitions agree."""
    # BLQ as zero everywhere is what pynca does with the zeros it is given.
    mine = nca(subset, blq="zero").set_index("subject")
    # pynca keeps windows with λz <= 0 (a rising tail); PKNCA and cellkin require λz > 0,
    # so λz is compared where pynca's is positive and the other subjects are counted.
    comparable = reference["Lambda_z"] > 0
    return {
        column: float(np.nanmax(np.abs(mine[ours_name] / reference[column] - 1)[rows]))
        for column, ours_name, rows in (
            ("Cmax", "cmax", slice(None)), ("Tmax", "tmax", slice(None)),
            ("AUClast", "auc_last", slice(None)), ("Lambda_z", "lambda_z", comparable),
        )
    }  # fmt: skip


def make_record(n: int, seconds: float, repeats: int, n_peer: int, peer: float | None,
                notes: list[str], full: bool) -> dict[str, Any]:  # fmt: skip
    """The benchmark record of ``benchmarks/run.py`` (peer extrapolated to ``n`` subjects)."""
    peer_s = None if peer is None else peer / n_peer * n
    name = f"pynca.tblNCA (1 thread; {n_peer} subjects, extrapolated)"
    ratio = None if peer_s is None else peer_s / seconds
    checks = [] if ratio is None else [ratio >= 20]
    if full:
        checks.append(n < 10_000 or seconds * 10_000 / n <= 2.0)
    return {
        "benchmark": "nca",
        "workload": "cellkin.nca, 16 samples/subject (~30% BLQ), linear trapezoid",
        "n": n,
        "cores": numba.get_num_threads(),
        "cellkin_s": seconds,
        "peer": None if peer is None else name,
        "peer_s": peer_s,
        "ratio": ratio,
        "throughput": n / seconds,
        "throughput_unit": "subjects/s",
        "goal": "≥ 20× pynca; 10,000 subjects ≤ 2 s",
        "met": all(checks) if checks else None,
        "repeats": repeats,
        "notes": "; ".join(notes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small, fast run for CI")
    parser.add_argument("--json", metavar="FILE", help="write the records (a JSON list) here")
    args = parser.parse_args()
    n, n_peer, repeats = (500, 5, 3) if args.smoke else (10_000, 200, 5)
    kinetics = cellkin.read_kinetics(make_study(n))
    start = time.perf_counter()
    nca(kinetics.iloc[:64])  # compile (or load the cache) outside the timing
    warm_up = time.perf_counter() - start
    ours = time_call(lambda: nca(kinetics), repeats)
    rows = [("cellkin.nca", n, ours, n / ours)]
    subset = kinetics[kinetics["subject"].isin(kinetics["subject"].unique()[:n_peer])]
    try:  # one run: pynca costs seconds per 10 subjects
        start = time.perf_counter()
        reference = run_pynca(subset)
        peer = time.perf_counter() - start
    except ImportError:
        peer = None
    notes = [f"first call (compile or cache load) {warm_up:.2f} s"]
    if peer is not None:
        rows.append(("pynca.tblNCA", n_peer, peer, n_peer / peer))
        agree = compare_with_pynca(subset, reference)
        notes.append("max rel. difference vs pynca: "
                     + ", ".join(f"{k} {v:.1e}" for k, v in agree.items()))  # fmt: skip
    else:
        notes.append("pynca not installed (pip install pynca): peer not measured")
    print(f"# NCA benchmark ({'smoke' if args.smoke else 'full'})\n")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"python {platform.python_version()}; cellkin {__version__}; "
        f"numpy {np.__version__}; pandas {pd.__version__}"
    )
    print(f"first call (compile or cache load): {warm_up:.2f} s\n")
    print("| implementation | subjects | median time (s) | subjects/s |")
    print("|---|---:|---:|---:|")
    for name, count, seconds, rate in rows:
        print(f"| {name} | {count} | {seconds:.3f} | {rate:,.0f} |")
    if peer is not None:
        print(f"\nspeed ratio cellkin / pynca (subjects/s): {rows[0][3] / rows[1][3]:,.0f}x")
    print(f"\n{notes[-1]}")
    if args.json:
        record = make_record(n, ours, repeats, n_peer, peer, notes, full=not args.smoke)
        Path(args.json).write_text(json.dumps([record], indent=1))


if __name__ == "__main__":
    main()
