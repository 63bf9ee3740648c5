"""Population benchmark: cellkin's numba ODE kernels against SciPy ``solve_ivp``.

Usage::

    python benchmarks/bench_population.py                 # 10,000 virtual patients + compile times
    python benchmarks/bench_population.py --smoke         # 200 patients, a CI-sized check
    python benchmarks/bench_population.py --json out.json # also write the records (run.py)

Two workloads, each timed in the same run for cellkin and for the SciPy peers a user would
otherwise write (a plain NumPy right-hand side per patient):

1. **Non-stiff** — Kimmel 2021 (normal T cells, CAR-T, tumour; ZUMA-1 parameters with 30%
   log-normal variability on the seven fitted parameters), 365 days, 60 output times,
   rtol 1e-6: cellkin's default explicit kernel (Tsitouras 5(4), ``simulate_many``, all
   patients in one parallel call) against ``solve_ivp`` LSODA and RK45. Goal (issue 5, on
   2 cores): ≥ 60,000 patients/s and ≥ 500× LSODA.
2. **Stiff** — CARTmath with the Raji parameter set (20% variability on dose, φ, α, γ, θ),
   the 8-day window of the published experiment, 60 output times, rtol 1e-6: cellkin's
   Rodas4 kernel (analytic Jacobian) against ``solve_ivp`` Radau and BDF (same Jacobian).
   Goal: ≥ 50× both.

cellkin's time is the median of repeated calls (the best is in the notes); SciPy runs on a
subset of patients (best of two passes, after freezing the objects left by imports and
compilation so that Python's garbage collector does not slow it) and its time is
extrapolated per patient. Speed-ups are given on wall-clock time (cellkin on all numba
threads against one SciPy process, the comparison a user sees) and on CPU time (per core;
robust to other load on a shared machine, which inflates wall-clock times unevenly).
Accuracy is the maximum relative error
of the observed level on that subset against a tight reference (SciPy DOP853 at rtol 1e-13
for the non-stiff model, Radau at rtol 1e-12 for the stiff one), with an absolute floor of
1e-6 × each patient's peak; all solvers run at the same rtol/atol. Compile times are measured
in fresh subprocesses with an empty numba cache (first call) and again with the cache
filled (full run only).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np
import scipy
from scipy.integrate import solve_ivp

from cellkin import models

RTOL = 1e-6
KIMMEL_ATOL = (1e-7, 1e-9, 1e-7)  # normal T, CAR-T (cells/µL), tumour (mL)
RAJI_ATOL = 1e-3  # cells
NONSTIFF_GOAL = (60_000.0, 500.0)  # patients/s and speed-up over LSODA, on 2 cores
STIFF_GOAL = 50.0  # speed-up over Radau and BDF
GOAL_CORES = 2


def kimmel_population(n: int, seed: int) -> np.ndarray:
    model = models.get("kimmel2021")
    rng = np.random.default_rng(seed)
    table = np.tile(model.param_vector(), (n, 1))
    for name in ("k_c", "r_n", "rho_c", "a", "b", "gamma_b", "k_b"):
        j = model.param_names.index(name)
        table[:, j] *= np.exp(0.3 * rng.standard_normal(n))
    return table


def raji_population(n: int, seed: int) -> np.ndarray:
    model = models.get("cartmath_raji")
    rng = np.random.default_rng(seed)
    table = np.tile(model.param_vector(), (n, 1))
    for name in ("dose", "phi", "alpha", "gamma", "theta"):
        j = model.param_names.index(name)
        table[:, j] *= np.exp(0.2 * rng.standard_normal(n))
    return table


def kimmel_rhs(p: np.ndarray):
    """The right-hand side a SciPy user would write (plain Python/NumPy)."""
    k_n, k_c, r_n, rho_c, a, b, r_b, gamma_b, k_b = p[:9]

    def rhs(t, y):
        n, c, tumour = y
        total = n + c
        r_c = rho_c + b * (total - k_n) ** 2 / (a * total * total + (total - k_n) ** 2)
        return [
            -r_n * n * math.log(total / k_n),
            -r_c * c * math.log(total / k_c),
            r_b * tumour - gamma_b * tumour * c / (k_b + c),
        ]

    return rhs, [p[9], p[10] / p[11], p[12]], lambda y: y[1]


def raji_rhs(p: np.ndarray):
    phi, rho, mu_t, eps, mu_m, theta, alpha, r, gamma, dose, tumour0, t_tumour = p[:12]

    def rhs(t, y):
        ct, cm, tumour = y
        return [
            (phi - rho - mu_t) * ct + theta * tumour * cm - alpha * tumour * ct,
            eps * rho * ct - theta * tumour * cm - mu_m * cm,
            r * tumour - gamma * tumour * ct,
        ]

    def jac(t, y):
        ct, cm, tumour = y
        return [
            [phi - rho - mu_t - alpha * tumour, theta * tumour, theta * cm - alpha * ct],
            [eps * rho, -theta * tumour - mu_m, -theta * cm],
            [-gamma * tumour, 0.0, r - gamma * ct],
        ]

    y0 = [dose, 0.0, tumour0 * math.exp(r * t_tumour)]
    return (rhs, jac), y0, lambda y: y[0] + y[1]


def scipy_run(problem, table, t, method, rtol, atol):
    """Solve each row of ``table`` with solve_ivp.

    Returns (wall seconds per patient, CPU seconds per patient, levels).
    """
    out = np.empty((table.shape[0], t.size))
    start, cpu = time.perf_counter(), time.process_time()
    for i, p in enumerate(table):
        fun, y0, observe = problem(p)
        rhs, jac = fun if isinstance(fun, tuple) else (fun, None)
        options = {"jac": jac} if jac is not None and method in ("Radau", "BDF") else {}
        solution = solve_ivp(
            rhs, (0.0, t[-1]), y0, method=method, rtol=rtol, atol=atol, t_eval=t, **options
        )
        out[i] = observe(solution.y) if solution.success else np.nan
    n = table.shape[0]
    return (time.perf_counter() - start) / n, (time.process_time() - cpu) / n, out


def scipy_best(problem, table, t, method, passes=2):
    """Best of ``passes`` runs of :func:`scipy_run` at the benchmark tolerances."""
    runs = [scipy_run(problem, table, t, method, RTOL, _ATOL[problem]) for _ in range(passes)]
    return min(r[0] for r in runs), min(r[1] for r in runs), runs[0][2]


def max_rel_error(levels: np.ndarray, reference: np.ndarray) -> float:
    floor = 1e-6 * np.nanmax(np.abs(reference), axis=1, keepdims=True)
    return float(np.nanmax(np.abs(levels - reference) / (np.abs(reference) + floor)))


def time_cellkin(model, t, table, repeats: int):
    """Repeated calls: (median wall s, best wall s, median CPU s of all threads, levels)."""
    model.simulate_many(t, table[:16])  # compile or load from cache, start the threads
    walls, cpus, levels = [], [], None
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        levels = model.simulate_many(t, table)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), min(walls), statistics.median(cpus), levels


def cores() -> int:
    """Cores cellkin can use: numba threads, bounded by the CPUs this process may run on."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(numba.get_num_threads(), usable or 1)


_ATOL = {kimmel_rhs: KIMMEL_ATOL, raji_rhs: RAJI_ATOL}


def workload(spec: dict[str, Any], repeats: int) -> list[dict[str, Any]]:
    """Time cellkin and the peers on one workload; print a table; return the records."""
    table, t, problem, n_sub = spec["table"], spec["t"], spec["problem"], spec["n_sub"]
    model = models.get(spec["model"]).with_options(rtol=RTOL, atol=_ATOL[problem])
    median, best, cpu_median, levels = time_cellkin(model, t, table, repeats)
    sub = table[:n_sub]
    # The peers allocate Python objects on every step: collect and freeze what importing and
    # compiling left behind, so that the garbage collector does not slow them down unfairly.
    gc.collect()
    gc.freeze()
    ref_tol = {"DOP853": 1e-13, "Radau": 1e-12}[spec["reference"]]
    ref_atol = np.asarray(_ATOL[problem], dtype=float) * 1e-6
    reference = scipy_run(problem, sub, t, spec["reference"], ref_tol, ref_atol)[2]
    n = table.shape[0]
    ours_wall, ours_cpu = median / n, cpu_median / n
    error = max_rel_error(levels[:n_sub], reference)
    rows = [(f"cellkin {model.method} ({numba.get_num_threads()} threads)", ours_wall, ours_cpu,
             error)]  # fmt: skip
    for method in spec["peers"]:
        wall, cpu, scipy_levels = scipy_best(problem, sub, t, method)
        rows.append((f"solve_ivp {method}", wall, cpu, max_rel_error(scipy_levels, reference)))
    failed = int(np.isnan(levels).any(axis=1).sum())
    print(f"\n### {spec['label']}: {n} patients ({failed} failed), SciPy on {n_sub}\n")
    print("| solver | patients/s (wall) | speed-up (wall) | µs CPU / patient | speed-up (CPU)"
          " | max rel. error vs reference |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for solver, wall, cpu, err in rows:
        print(f"| {solver} | {1 / wall:,.0f} | {wall / ours_wall:,.0f}× | {cpu * 1e6:,.0f} "
              f"| {cpu / ours_cpu:,.0f}× | {err:.1e} |")  # fmt: skip
    print(f"\ncellkin: median of {repeats} calls {median:.3f} s, best {best:.3f} s "
          f"({n / best:,.0f} patients/s)")  # fmt: skip
    records = []
    for (solver, wall, cpu, err), method in zip(rows[1:], spec["peers"], strict=True):
        ratio = wall / ours_wall
        goal, met = spec["goal"](n / median, ratio, method)
        records.append({
            "benchmark": spec["benchmark"],
            "workload": spec["label"],
            "n": n,
            "cores": cores(),
            "cellkin_s": median,
            "peer": f"{solver} (one patient at a time; {n_sub} timed, extrapolated)",
            "peer_s": wall * n,
            "ratio": ratio,
            "throughput": n / median,
            "throughput_unit": "patients/s",
            "goal": goal,
            "met": met,
            "repeats": repeats,
            "notes": (
                f"cellkin {model.method}, best of {repeats}: {n / best:,.0f} patients/s; "
                f"CPU per patient {ours_cpu * 1e6:.1f} µs vs {cpu * 1e6:,.0f} µs "
                f"({cpu / ours_cpu:,.0f}× per core); max rel. error vs {spec['reference']} "
                f"reference: cellkin {error:.1e}, {method} {err:.1e}; {failed} failed"
            ),
        })  # fmt: skip
    return records


def _nonstiff_goal(throughput: float, ratio: float, method: str):
    if method != "LSODA":
        return None, None
    goal = f"≥ {NONSTIFF_GOAL[0]:,.0f} patients/s and ≥ {NONSTIFF_GOAL[1]:.0f}× LSODA on 2 cores"
    if cores() != GOAL_CORES:
        return goal + f" (not judged: ran on {cores()} cores)", None
    return goal, bool(throughput >= NONSTIFF_GOAL[0] and ratio >= NONSTIFF_GOAL[1])


def _stiff_goal(throughput: float, ratio: float, method: str):
    return f"≥ {STIFF_GOAL:.0f}× solve_ivp {method} at equal accuracy", bool(ratio >= STIFF_GOAL)


_COMPILE_SNIPPET = """
import time
start = time.perf_counter()
import numpy as np
from cellkin import models
imported = time.perf_counter()
t = np.linspace(0.0, 365.0, 60)
m = models.get("kimmel2021")
m.simulate_many(t, np.tile(m.param_vector(), (16, 1)))
first = time.perf_counter()
m.simulate(t)
single = time.perf_counter()
r = models.get("cartmath_raji")
r.simulate_many(np.linspace(0.0, 8.0, 60), np.tile(r.param_vector(), (16, 1)))
other = time.perf_counter()
print(imported - start, first - imported, single - first, other - single)
"""


def compile_times() -> list[tuple[str, float, float, float, float]]:
    """First call with an empty numba cache, then the same in a new process (cache filled)."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        rows = []
        for label in ("empty cache (first call)", "cache filled (new process)"):
            done = subprocess.run(
                [sys.executable, "-c", _COMPILE_SNIPPET],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            rows.append((label, *map(float, done.stdout.split())))
    print("\n### Compile time (seconds, fresh process)\n")
    print("| numba cache | import cellkin | first population call (parallel kernel)"
          " | first single-subject call (serial kernel) | next model (Raji, Rodas4) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|")
    for label, imported, first, single, other in rows:
        print(f"| {label} | {imported:.2f} | {first:.2f} | {single:.2f} | {other:.2f} |")
    return rows


def compile_record(rows) -> dict[str, Any]:
    (_, _, cold, cold_single, cold_next), (_, imported, warm, warm_single, warm_next) = rows
    return {
        "benchmark": "population_compile",
        "workload": "first Kimmel population call in a fresh process, empty numba cache",
        "n": 16,
        "cores": cores(),
        "cellkin_s": cold,
        "peer": None,
        "peer_s": None,
        "ratio": None,
        "throughput": None,
        "throughput_unit": None,
        "goal": None,
        "met": None,
        "repeats": 1,
        "notes": (
            f"empty cache: first population call {cold:.2f} s, then single subject "
            f"{cold_single:.2f} s, Raji (Rodas4) {cold_next:.2f} s; cache filled: "
            f"{warm:.2f} s, {warm_single:.2f} s, {warm_next:.2f} s (import {imported:.2f} s)"
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="200 patients, no compile timing")
    parser.add_argument("--patients", type=int, default=None, help="override the population size")
    parser.add_argument("--json", metavar="FILE", help="write the records (a JSON list) here")
    parser.add_argument("--no-compile", action="store_true", help="skip the compile timing")
    args = parser.parse_args()
    n = args.patients or (200 if args.smoke else 10_000)
    n_sub, repeats = (10, 3) if args.smoke else (50, 5)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# cellkin population benchmark — {datetime.date.today().isoformat()}\n")
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
        f"(numba threads: {numba.get_num_threads()}, cores used: {cores()}, load average at "
        f"start {load:.1f}); Python {platform.python_version()}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, numba {numba.__version__}"
    )
    records = workload(
        {
            "benchmark": "population_nonstiff",
            "label": "Kimmel 2021, 365 days, 60 times, rtol 1e-6",
            "model": "kimmel2021",
            "table": kimmel_population(n, seed=1),
            "t": np.linspace(0.0, 365.0, 60),
            "peers": ("LSODA", "RK45"),
            "reference": "DOP853",
            "problem": kimmel_rhs,
            "n_sub": n_sub,
            "goal": _nonstiff_goal,
        },
        repeats,
    )
    records += workload(
        {
            "benchmark": "population_stiff",
            "label": "CARTmath Raji, 8 days, 60 times, rtol 1e-6",
            "model": "cartmath_raji",
            "table": raji_population(n if args.smoke else n // 5, seed=2),
            "t": np.linspace(0.0, 8.0, 60),
            "peers": ("Radau", "BDF"),
            "reference": "Radau",
            "problem": raji_rhs,
            "n_sub": max(n_sub // 5, 3),
            "goal": _stiff_goal,
        },
        repeats,
    )
    if not (args.smoke or args.no_compile):
        records.append(compile_record(compile_times()))
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
