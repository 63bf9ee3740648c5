"""Population benchmark: cellkin's numba ODE kernels against SciPy ``solve_ivp``.

Usage::

    python benchmarks/bench_population.py            # 10,000 virtual patients (+ compile times)
    python benchmarks/bench_population.py --smoke    # 200 patients, a CI-sized check (< 60 s)

Two workloads, each timed in the same run for cellkin and for the SciPy peers a user would
otherwise write (a plain NumPy right-hand side per patient):

1. **Non-stiff** — Kimmel 2021 (normal T cells, CAR-T, tumour; ZUMA-1 parameters with 30%
   log-normal variability on the seven fitted parameters), 365 days, 60 output times,
   rtol 1e-6: cellkin's Dormand–Prince kernel (``simulate_many``, all patients in one
   parallel call) against ``solve_ivp`` RK45 and LSODA.
2. **Stiff** — CARTmath with the Raji parameter set (20% variability on dose, φ, α, γ, θ),
   the 8-day window of the published experiment, 60 output times, rtol 1e-6: cellkin's
   Rodas4 kernel (analytic Jacobian) against ``solve_ivp`` Radau and BDF (same Jacobian).

SciPy runs on a subset of patients and its throughput is extrapolated per patient. Speed-ups
are given on wall-clock time (cellkin on all numba threads against one SciPy process, the
comparison a user sees) and on CPU time (per core; robust to other load on a shared
machine, which inflates wall-clock times unevenly). Accuracy
is the maximum relative error of the observed level on that subset against a tight reference
(SciPy DOP853 at rtol 1e-13 for the non-stiff model, Radau at rtol 1e-12 for the stiff one),
with an absolute floor of 1e-6 × each patient's peak. Compile times are measured in fresh
subprocesses with an empty numba cache (first call) and again with the cache filled.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import subprocess
import sys
import tempfile
import time

import numba
import numpy as np
import scipy
from scipy.integrate import solve_ivp

from cellkin import models

RTOL = 1e-6
KIMMEL_ATOL = (1e-7, 1e-9, 1e-7)  # normal T, CAR-T (cells/µL), tumour (mL)
RAJI_ATOL = 1e-3  # cells


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


def max_rel_error(levels: np.ndarray, reference: np.ndarray) -> float:
    floor = 1e-6 * np.nanmax(np.abs(reference), axis=1, keepdims=True)
    return float(np.nanmax(np.abs(levels - reference) / (np.abs(reference) + floor)))


def time_cellkin(model, t, table, repeats: int = 3) -> tuple[float, float, np.ndarray]:
    """Best of ``repeats``: (wall seconds, CPU seconds of all threads, levels)."""
    model.simulate_many(t, table[:16])  # compile or load from cache, start the threads
    best, best_cpu, levels = math.inf, math.inf, None
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        levels = model.simulate_many(t, table)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best, best_cpu, levels


def workload(label, name, table, t, atol, peers, reference_method, problem, n_sub):
    model = models.get(name).with_options(rtol=RTOL, atol=atol)
    seconds, cpu_seconds, levels = time_cellkin(model, t, table)
    sub = table[:n_sub]
    ref_tol = {"DOP853": 1e-13, "Radau": 1e-12}[reference_method]
    ref_atol = np.asarray(atol, dtype=float) * 1e-6
    reference = scipy_run(problem, sub, t, reference_method, ref_tol, ref_atol)[2]
    n = table.shape[0]
    ours_wall, ours_cpu = seconds / n, cpu_seconds / n
    error = max_rel_error(levels[:n_sub], reference)
    rows = [(f"cellkin {model.method} ({numba.get_num_threads()} threads)", ours_wall, ours_cpu,
             error)]  # fmt: skip
    for method in peers:
        wall, cpu, scipy_levels = scipy_run(problem, sub, t, method, RTOL, atol)
        rows.append((f"solve_ivp {method}", wall, cpu, max_rel_error(scipy_levels, reference)))
    failed = int(np.isnan(levels).any(axis=1).sum())
    print(f"\n### {label}: {n} patients ({failed} failed), SciPy on {n_sub}\n")
    print("| solver | patients/s (wall) | speed-up (wall) | µs CPU / patient | speed-up (CPU)"
          " | max rel. error vs reference |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for solver, wall, cpu, err in rows:
        print(f"| {solver} | {1 / wall:,.0f} | {wall / ours_wall:,.0f}× | {cpu * 1e6:,.0f} "
              f"| {cpu / ours_cpu:,.0f}× | {err:.1e} |")  # fmt: skip


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


def compile_times() -> None:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="200 patients, no compile timing")
    parser.add_argument("--patients", type=int, default=None, help="override the population size")
    args = parser.parse_args()
    n = args.patients or (200 if args.smoke else 10_000)
    n_sub = 10 if args.smoke else 50
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# cellkin population benchmark — {datetime.date.today().isoformat()}\n")
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
        f"(numba threads: {numba.get_num_threads()}, load average at start {load:.1f}); "
        f"Python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"numba {numba.__version__}"
    )
    t = np.linspace(0.0, 365.0, 60)
    workload(
        "Non-stiff: Kimmel 2021, 365 days, 60 times, rtol 1e-6",
        "kimmel2021",
        kimmel_population(n, seed=1),
        t,
        KIMMEL_ATOL,
        ("RK45", "LSODA"),
        "DOP853",
        kimmel_rhs,
        n_sub,
    )
    workload(
        "Stiff: CARTmath Raji, 8 days, 60 times, rtol 1e-6",
        "cartmath_raji",
        raji_population(n // 5 if not args.smoke else n, seed=2),
        np.linspace(0.0, 8.0, 60),
        RAJI_ATOL,
        ("Radau", "BDF"),
        "Radau",
        raji_rhs,
        max(n_sub // 5, 5),
    )
    if not args.smoke:
        compile_times()


if __name__ == "__main__":
    main()
