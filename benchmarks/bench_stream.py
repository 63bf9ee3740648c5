"""Streaming benchmark: virtual populations simulated in chunks and written to parquet.

Usage::

    python benchmarks/bench_stream.py                 # n = 10^4, 10^5, 10^6 (+ Kimmel 10^5, 10^6)
    python benchmarks/bench_stream.py --smoke         # CI-sized (< 15 s)
    python benchmarks/bench_stream.py --json out.json # also write the records as JSON

Workloads, 60 sampling days (1 to 365):

1. **Stein 2019 closed form** (published variability), ``cellkin.simulate.simulate_population``
   with ``chunk_size`` 50,000, written to parquet (wide layout: one row per patient) with the
   per-time summary (mean, 5th/50th/95th percentiles), at n = 10^4, 10^5, 10^6.
2. **Kimmel 2021 ODE** (Tsitouras 5(4), rtol 1e-6; 30 % log-normal variability on the seven
   fitted parameters) at n = 10^5 and 10^6 (10^3 in smoke mode).

The peer is what a user would write without streaming, on the same model kernel: the whole
population at once (``virtual_population`` + ``simulate_many``), one pandas DataFrame written
with ``to_parquet``, exact ``numpy.quantile`` summaries — the same wide file and statistics.

Each (workload, n, tool) runs in a **fresh subprocess**, so the peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) of one run does not mix with another's; the
baseline RSS after importing cellkin and one warm-up call (numba kernels loaded from the
cache) is reported beside it. Times are wall-clock of the simulate-write-summarise call only
(median of ``repeats``); throughput is patient-time points per second. ``ratio`` is
``peer_s / cellkin_s`` (above 1: cellkin faster). The goal is memory flat in n, peak RSS at
most 2 GB at 10^6 patients.

``--json FILE`` writes a list of records with keys ``benchmark, workload, n, cores, cellkin_s,
peer, peer_s, ratio, throughput, throughput_unit, goal, met, repeats, notes`` plus
``peak_rss_mb``, ``baseline_rss_mb``, ``peer_peak_rss_mb`` and ``file_mb``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
N_TIMES = 60
CHUNK_SIZE = 50_000
GOAL_MB = 2048.0
KIMMEL_OMEGA = dict.fromkeys(("k_c", "r_n", "rho_c", "a", "b", "gamma_b", "k_b"), 0.3)
WORKLOADS = {
    "stein2019": "Stein 2019 closed form, 60 times, streamed to parquet",
    "kimmel2021": "Kimmel 2021 ODE (Tsit5, rtol 1e-6), 365 d, 60 times, streamed to parquet",
}


def _model(name: str):
    from cellkin import models

    model = models.get(name)
    if name == "kimmel2021":
        model = model.with_options(rtol=1e-6, atol=(1e-7, 1e-9, 1e-7))
    return model


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _cellkin_run(model, n: int, times, path: Path, seed: int) -> None:
    from cellkin.simulate import simulate_population

    omega = KIMMEL_OMEGA if model.name == "kimmel2021" else None
    simulate_population(
        model, n, seed=seed, times=times, chunk_size=CHUNK_SIZE, output=path, omega=omega,
        overwrite=True,  # the repeats replace one file, as the peer's to_parquet does
    )  # fmt: skip


def _peer_run(model, n: int, times, path: Path, seed: int) -> None:
    import numpy as np
    import pandas as pd

    from cellkin.simulate import virtual_population

    omega = KIMMEL_OMEGA if model.name == "kimmel2021" else None
    population = virtual_population(model, n, seed=seed, omega=omega)
    levels = model.simulate_many(times, population)
    columns = [f"day_{t:.15g}" for t in times]
    wide = pd.concat([population, pd.DataFrame(levels, columns=columns)], axis=1)
    wide.to_parquet(path, index=False)
    np.quantile(levels, [0.05, 0.5, 0.95], axis=0), levels.mean(axis=0)


def child(tool: str, name: str, n: int, repeats: int) -> dict:
    """One (tool, model, n) measurement, in this process (fresh, except in smoke mode)."""
    import numba
    import numpy as np
    import pyarrow

    import cellkin

    model = _model(name)
    times = np.linspace(1.0, 365.0, N_TIMES)
    run = _cellkin_run if tool == "cellkin" else _peer_run
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "population.parquet"
        run(model, 64, times, path, seed=0)  # warm-up: numba kernels from the cache
        baseline = _rss_mb()
        seconds = []
        for repeat in range(repeats):
            start = time.perf_counter()
            run(model, n, times, path, seed=1 + repeat)
            seconds.append(time.perf_counter() - start)
        size = path.stat().st_size / 1e6
    versions = (
        f"cellkin {cellkin.__version__}, numba {numba.__version__} "
        f"({numba.get_num_threads()} threads), pyarrow {pyarrow.__version__}"
    )
    return {"seconds": seconds, "peak_rss_mb": _rss_mb(), "baseline_rss_mb": baseline,
            "file_mb": size, "cores": numba.get_num_threads(), "versions": versions}  # fmt: skip


def _measure(specs: list[str]) -> list[dict]:
    """Run ``tool:model:n:repeats`` measurements in one fresh subprocess."""
    command = [sys.executable, __file__, "--child", *specs]
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path)  # this source tree's cellkin
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _record(name: str, n: int, repeats: int, ours: dict, peer: dict | None) -> dict:
    cellkin_s = statistics.median(ours["seconds"])
    peer_s = statistics.median(peer["seconds"]) if peer else None
    peak = ours["peak_rss_mb"]
    return {
        "benchmark": "stream",
        "workload": WORKLOADS[name],
        "n": n,
        "cores": ours["cores"],
        "cellkin_s": cellkin_s,
        "peer": "in-memory pandas + to_parquet" if peer else None,
        "peer_s": peer_s,
        "ratio": peer_s / cellkin_s if peer else None,
        "throughput": n * N_TIMES / cellkin_s,
        "throughput_unit": "patient-time points/s",
        "goal": f"peak RSS <= {GOAL_MB:.0f} MB, flat in n",
        "met": peak <= GOAL_MB,
        "repeats": repeats,
        "notes": f"peak RSS {peak:.0f} MB (baseline after import {ours['baseline_rss_mb']:.0f} "
        f"MB); chunk {CHUNK_SIZE}; file {ours['file_mb']:.0f} MB"
        + (f"; peer peak RSS {peer['peak_rss_mb']:.0f} MB" if peer else ""),
        "peak_rss_mb": peak,
        "baseline_rss_mb": ours["baseline_rss_mb"],
        "peer_peak_rss_mb": peer["peak_rss_mb"] if peer else None,
        "file_mb": ours["file_mb"],
        "versions": ours["versions"],
    }


def results_versions(records: list[dict]) -> str:
    """The versions line reported by the measuring processes."""
    return records[0]["versions"] if records else ""


def _table(records: list[dict]) -> str:
    lines = [
        "| workload | n | cellkin s | points/s | peak RSS MB | baseline MB | peer s | "
        "peer peak RSS MB | ratio | file MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        peer = ("—", "—", "—") if r["peer_s"] is None else (
            f"{r['peer_s']:.2f}", f"{r['peer_peak_rss_mb']:.0f}", f"{r['ratio']:.2f}")  # fmt: skip
        lines.append(
            f"| {r['workload'].split(',')[0]} | {r['n']:,} | {r['cellkin_s']:.2f} | "
            f"{r['throughput']:.3g} | {r['peak_rss_mb']:.0f} | {r['baseline_rss_mb']:.0f} | "
            f"{peer[0]} | {peer[1]} | {peer[2]} | {r['file_mb']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="CI-sized run (< 15 s)")
    parser.add_argument("--json", metavar="FILE", help="write the records as JSON")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        specs = [spec.split(":") for spec in args.child]
        print(json.dumps([child(t, name, int(n), int(r)) for t, name, n, r in specs]))
        return 0
    load = os.getloadavg()[0]
    if args.smoke:  # one subprocess for both (import once): peaks not separated
        plan = [("stein2019", 10_000, 1, False), ("kimmel2021", 1_000, 1, False)]
        results = _measure([f"cellkin:{name}:{n}:{r}" for name, n, r, _ in plan])
        records = [_record(*p[:3], ours, None) for p, ours in zip(plan, results, strict=True)]
    else:
        plan = [
            ("stein2019", 10_000, 3, True),
            ("stein2019", 100_000, 3, True),
            ("stein2019", 1_000_000, 1, True),
            ("kimmel2021", 100_000, 1, False),
            ("kimmel2021", 1_000_000, 1, False),
        ]
        records = []
        for name, n, repeats, with_peer in plan:  # one fresh process per measurement
            ours = _measure([f"cellkin:{name}:{n}:{repeats}"])[0]
            peer = _measure([f"peer:{name}:{n}:{repeats}"])[0] if with_peer else None
            records.append(_record(name, n, repeats, ours, peer))
    print(f"{results_versions(records)}; {os.cpu_count()} CPUs, load average {load:.1f}")
    print(_table(records))
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
