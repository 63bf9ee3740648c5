"""Fitting benchmark: cellkin.fit / fit_all against hand-written lmfit + SciPy solve_ivp.

    python benchmarks/bench_fit.py                 # single fits; batches of 1 ... 10,000
    python benchmarks/bench_fit.py --max-n 1000    # batches up to 1,000 subjects only
    python benchmarks/bench_fit.py --smoke         # CI size (< 15 s once numba caches are warm)
    python benchmarks/bench_fit.py --json out.json # also write the records as JSON

The peer is what a pharmacometrician would write by hand: the Stein 2019 model as an ODE
(E' = ρE before Tmax; E' = −αE, M' = FB(α−β)E − βM after it) integrated with
``scipy.integrate.solve_ivp`` (RK45, rtol 1e-6, restarted at Tmax), log-scale residuals of the
quantified samples (BLQ dropped, M1) minimised with ``lmfit.minimize`` (leastsq), one start.

Workloads (virtual subjects from ``virtual_population("stein2019")`` with moderate
variability, 16 samples from day 1 to 180, LLOQ 50 copies/µg, residual SD 0.3 on the log
scale, ~15 quantifiable samples each):

1. **single fit** — per subject, the best of a few runs taken round-robin over the subjects
   (3; other jobs on a shared machine only ever add time), then the median over subjects, of
   ``cellkin.fit`` with its defaults (M3, ``n_starts=4`` with early stop, covariance and CIs;
   goal ≤ 5 ms), of ``cellkin.fit`` on the peer's own problem (M1, one start: the
   like-for-like ratio), and of the peer (on 10 subjects: ~1 s each);
2. **batch** — wall time of ``fit_all`` with its defaults, then ``BatchFit.metrics()`` (M3,
   1,000-draw CIs; the default pool of 2 worker processes, which each call starts and shuts
   down) at n = 1, 10, 100, 1,000 and 10,000 (goals ≤ 10 s and ≤ 100 s), in this order and in
   one process, as a user's session would: the first call (n = 1) also starts cellkin's fork
   server (a fresh interpreter importing cellkin once, 2–4 s), later calls fork their workers
   from it. The peer's batch time is extrapolated from its median per-subject time, as
   ``n × t / 2`` (perfect scaling on 2 cores, which favours the peer). A least-squares line
   through the batches after the first gives the fixed cost per call and the cost per
   subject, to show that the time grows linearly with n;
3. **CPU cost** — CPU seconds of an in-process ``fit_all`` (``n_jobs=1``) of 200 subjects:
   the cost per subject that other jobs on a shared machine inflate least, with the wall
   time it projects on idle cores.

Every record of ``--json`` has the keys ``benchmark, workload, n, cores, cellkin_s, peer,
peer_s, ratio, throughput, throughput_unit, goal, met, repeats, notes`` (``ratio`` =
``peer_s / cellkin_s``). Prints a Markdown table; no timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from typing import Any

import lmfit
import numpy as np
import pandas as pd
from scipy.integrate import solve_ivp

import cellkin
from cellkin.fit import fit, fit_all
from cellkin.simulate import sample_trial, virtual_population

SCHEDULE = [1, 2, 4, 7, 9, 11, 14, 17, 21, 28, 42, 56, 84, 112, 140, 180]
OMEGA = {"cmax": 0.3, "tmax": 0.2, "foldx": 0.3, "alpha": 0.3, "fb": 0.3, "beta": 0.3}
PEER = "lmfit leastsq + solve_ivp RK45 (M1, 1 start)"
CORES = 2


def make_trial(n: int, seed: int = 1) -> pd.DataFrame:
    """A validated kinetics table of ``n`` virtual subjects."""
    population = virtual_population("stein2019", n, seed=seed, omega=OMEGA)
    trial = sample_trial("stein2019", population, SCHEDULE, lloq=50, sigma=0.3, seed=seed + 1)
    return cellkin.read_kinetics(trial)


def stein_ode(t: np.ndarray, p: dict[str, float]) -> np.ndarray:
    """The peer's model: Stein 2019 as ODEs, integrated phase by phase with solve_ivp."""
    c0, rho = p["cmax"] / p["foldx"], np.log(p["foldx"]) / p["tmax"]
    out = np.empty_like(t)
    early, late = t < p["tmax"], t >= p["tmax"]
    first = solve_ivp(lambda _, y: rho * y, (0, p["tmax"]), [c0], rtol=1e-6,
                      t_eval=np.append(t[early], p["tmax"]))  # fmt: skip
    out[early] = first.y[0, :-1]
    k = p["fb"] * (p["alpha"] - p["beta"])
    second = solve_ivp(lambda _, y: [-p["alpha"] * y[0], k * y[0] - p["beta"] * y[1]],
                       (p["tmax"], t.max()), [first.y[0, -1], 0.0], rtol=1e-6,
                       t_eval=t[late])  # fmt: skip
    out[late] = second.y.sum(axis=0)
    return out


def peer_fit(rows: pd.DataFrame) -> dict[str, float]:
    """The hand-written fit: lmfit leastsq on log residuals of the quantified samples."""
    data = rows[(rows["time"] >= 0) & ~rows["blq"]]
    t, y = data["time"].to_numpy(float), data["value"].to_numpy(float)
    params = lmfit.Parameters()
    peak = int(np.argmax(y))
    params.add("cmax", value=y[peak], min=1e-3, max=1e9)
    params.add("tmax", value=max(t[peak], 1.0), min=0.5, max=60)
    params.add("foldx", value=100, min=1.01, max=1e8)
    params.add("alpha", value=0.2, min=1e-4, max=20)
    params.add("fb", value=0.02, min=1e-7, max=1 - 1e-7)
    params.add("beta", value=0.01, min=1e-5, max=20)

    def residual(p: lmfit.Parameters) -> np.ndarray:
        return np.log(y) - np.log(np.maximum(stein_ode(t, p.valuesdict()), 1e-300))

    return dict(lmfit.minimize(residual, params, method="leastsq").params.valuesdict())


def timed(function, *args, **kwargs) -> tuple[Any, float]:
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def record(workload: str, n: int, cores: int, cellkin_s: float, peer_s: float | None,
           throughput: float, unit: str, goal: str, met: bool | None, repeats: int,
           notes: str) -> dict[str, Any]:  # fmt: skip
    return {
        "benchmark": "fit",
        "workload": workload,
        "n": n,
        "cores": cores,
        "cellkin_s": cellkin_s,
        "peer": PEER,
        "peer_s": peer_s,
        "ratio": None if peer_s is None else peer_s / cellkin_s,
        "throughput": throughput,
        "throughput_unit": unit,
        "goal": goal,
        "met": met,
        "repeats": repeats,
        "notes": notes,
    }


def best_times(repeats: int, function, items: list, **kwargs) -> list[float]:
    """Each item's shortest of ``repeats`` timings of ``function(item, **kwargs)``, the
    repeats taken round-robin over the items, so that a burst of other jobs on a shared
    machine spoils one run of several subjects rather than every run of one."""
    best = [float("inf")] * len(items)
    for _ in range(repeats):
        for i, item in enumerate(items):
            best[i] = min(best[i], timed(function, item, **kwargs)[1])
    return best


def single_fits(
    trial: pd.DataFrame, n_ours: int, n_peer: int, repeats: int
) -> list[dict[str, Any]]:
    """Median over subjects of each subject's best-of-``repeats`` time: cellkin.fit with its
    defaults and on the peer's problem (M1, one start), and the peer."""
    subjects = list(dict.fromkeys(trial["subject"]))[:n_ours]
    rows = {s: trial[trial["subject"] == s] for s in subjects}
    fit(rows[subjects[0]])  # numba cache load outside the timing
    tables = list(rows.values())
    default = best_times(repeats, fit, tables)
    like = best_times(repeats, fit, tables, blq="drop", n_starts=1)
    peer = best_times(repeats, peer_fit, tables[:n_peer])
    agree = []
    for table in tables[:n_peer]:
        mine, theirs = fit(table, blq="drop", n_starts=1).estimates, peer_fit(table)
        agree.append(max(abs(mine[k] / theirs[k] - 1) for k in ("cmax", "tmax")))
    peer_s = float(np.median(peer))
    ours, m1 = float(np.median(default)), float(np.median(like))
    how = f"median over subjects of each subject's best of {repeats} runs (round-robin)"
    agreement = f"Cmax/Tmax agree with the peer to {np.median(agree):.1e} (median rel.)"
    return [
        record("single Stein fit, cellkin defaults (M3, n_starts=4, CIs)", len(default), 1,
               ours, peer_s, 1 / ours, "subjects/s", "<= 5 ms per subject", ours <= 0.005,
               repeats, f"{how}; peer on {len(peer)} subjects"),
        record("single Stein fit, peer's problem (M1, 1 start)", len(like), 1, m1, peer_s,
               1 / m1, "subjects/s", "", None, repeats, f"{how}; {agreement}"),
    ]  # fmt: skip


def fit_with_metrics(kinetics: pd.DataFrame, **options: Any) -> Any:
    """``fit_all`` with its defaults, then the model-based metrics (1,000-draw CIs) of every
    fit: the batch workload of a study."""
    batch = fit_all(kinetics, **options)
    batch.metrics()
    return batch


def batches(trial: pd.DataFrame, sizes: list[int], peer_s: float) -> list[dict[str, Any]]:
    """fit_all wall time at each n (default pool of 2 workers, started by each call)."""
    order = list(dict.fromkeys(trial["subject"]))
    positions = trial.groupby("subject", sort=False).indices
    out, seconds = [], []
    for n in sizes:
        subset = trial.iloc[np.concatenate([positions[s] for s in order[:n]])]
        batch, elapsed = timed(fit_with_metrics, subset, n_jobs=CORES, progress=False)
        seconds.append(elapsed)
        goal = {1000: ("<= 10 s", 10.0), 10_000: ("<= 100 s", 100.0)}.get(n, ("", None))
        counts = batch.counts
        out.append(record(
            f"fit_all batch, defaults (M3, metrics with CIs), {CORES} worker processes", n,
            CORES, elapsed, n * peer_s / CORES, n / elapsed, "subjects/s", goal[0],
            None if goal[1] is None else elapsed <= goal[1], 1,
            f"{counts['converged']} converged, {counts['failed']} failed; peer extrapolated "
            f"as n x its median single-fit time / {CORES} cores",
        ))  # fmt: skip
    out[0]["notes"] += "; the first call, which also started the fork server"
    for i in range(2, len(sizes)):
        marginal = (seconds[i] - seconds[i - 1]) / (sizes[i] - sizes[i - 1])
        out[i]["notes"] += (f"; {1e3 * marginal:.2f} ms per added subject since "
                            f"n = {sizes[i - 1]}")  # fmt: skip
    if len(sizes) >= 3:
        slope, intercept = np.polyfit(np.array(sizes[1:], float), np.array(seconds[1:]), 1)
        for row in out:
            row["notes"] += (f"; line through n = {', '.join(map(str, sizes[1:]))}: "
                             f"{intercept:.2f} s per call + {1e3 * slope:.2f} ms per "
                             "subject")  # fmt: skip
    return out


def cpu_cost(trial: pd.DataFrame, n: int, peer_s: float) -> dict[str, Any]:
    """CPU seconds of an in-process ``fit_all`` (``n_jobs=1``) of ``n`` subjects: the cost
    per subject, robust to other jobs on a shared machine, from which the wall time on idle
    cores can be projected."""
    order = list(dict.fromkeys(trial["subject"]))[:n]
    subset = trial[trial["subject"].isin(order)]
    start = time.process_time()
    batch, elapsed = timed(fit_with_metrics, subset, n_jobs=1, progress=False)
    cpu = time.process_time() - start
    per = cpu / n
    return record(
        "fit_all in-process (n_jobs=1), CPU time", n, 1, cpu, n * peer_s, n / cpu,
        "subjects per CPU-second", "", None, 1,
        f"{1e3 * per:.2f} ms CPU per subject (wall {elapsed:.2f} s); on {CORES} idle cores "
        f"1,000 subjects would take ~{1000 * per / CORES:.1f} s and 10,000 "
        f"~{10_000 * per / CORES:.0f} s plus the per-call start-up; "
        f"{batch.counts['converged']} converged",
    )  # fmt: skip


def table(records: list[dict[str, Any]]) -> str:
    lines = ["| workload | n | cores | cellkin (s) | peer (s) | ratio | throughput | goal | met |",
             "|---|---:|---:|---:|---:|---:|---:|---|---|"]  # fmt: skip
    for r in records:
        peer = "" if r["peer_s"] is None else f"{r['peer_s']:.4g}"
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.1f}x"
        met = "" if r["met"] is None else ("yes" if r["met"] else "no")
        lines.append(f"| {r['workload']} | {r['n']} | {r['cores']} | {r['cellkin_s']:.4g} | "
                     f"{peer} | {ratio} | {r['throughput']:.4g} {r['throughput_unit']} | "
                     f"{r['goal']} | {met} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="CI size")
    parser.add_argument(
        "--max-n", type=int, default=10_000, metavar="N", help="largest batch (default 10,000)"
    )
    parser.add_argument("--json", metavar="FILE", help="write the records as JSON")
    args = parser.parse_args()
    if args.smoke:
        n_ours, n_peer, repeats, sizes = 10, 1, 2, [1, 10]
    else:
        n_ours, n_peer, repeats = 100, 10, 3
        sizes = [n for n in (1, 10, 100, 1000, 10_000) if n <= args.max_n]
    trial = make_trial(max(n_ours, *sizes))
    records = single_fits(trial, n_ours, n_peer, repeats)
    records.append(cpu_cost(trial, sizes[-1] if args.smoke else 200, records[0]["peer_s"]))
    records += batches(trial, sizes, records[0]["peer_s"])
    label = "smoke" if args.smoke else f"batches up to {sizes[-1]:,} subjects"
    print(f"# Fitting benchmark ({label})\n")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores; python "
        f"{platform.python_version()}; cellkin {cellkin.__version__}; lmfit {lmfit.__version__}; "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    print(table(records))
    for r in records:
        print(f"\n- {r['workload']}, n={r['n']}: {r['notes']}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(records, handle, indent=2)


if __name__ == "__main__":
    main()
