"""Simulation scaling: how cellkin's cost grows with patients and numba threads, vs a peer.

    python benchmarks/bench_simulation.py                  # n = 10^3 .. 10^6 (see below)
    python benchmarks/bench_simulation.py --smoke          # CI-sized (a few seconds)
    python benchmarks/bench_simulation.py --json out.json  # also write the records

Two workloads, each at several population sizes n and on 1 and 2 numba threads
(``numba.set_num_threads``), 60 output times over 365 days:

1. **Closed form** — Stein 2019 (``models.get("stein2019").simulate_many(times, params)``),
   n = 10^3, 10^4, 10^5, 10^6. Peer: the same formula written by hand in plain vectorised
   NumPy (broadcasting, ``np.exp``/``np.where``: what a user would write), on the same n,
   one thread (NumPy ufuncs are single-threaded). Goal: ≥ 10^8 patient-time points/s on 2
   cores.
2. **Mechanistic** — Kimmel 2021 (3 states, non-stiff) with cellkin's default non-stiff
   kernel (Tsitouras 5(4)), rtol 1e-6, atol (1e-7, 1e-9, 1e-7), n = 10^3 … 10^6 (two
   repeats instead of five at 10^6).
   Peer: SciPy ``solve_ivp`` with a plain Python right-hand side, one patient at a time
   (LSODA; RK45 in the notes), timed on a small subset and **extrapolated per patient** to
   n. Goal: ≥ 60,000 patients/s on 2 cores.

Parameters vary between patients (log-normal, 30% on the rate and size parameters), drawn
with a fixed seed. Times are medians of repeats (wall clock; the CPU time of all threads is
recorded too, as ``cellkin_cpu_s``). Linearity: for each workload and thread count, the
slope of log(time) against log(n) over the sizes run (1 = cost proportional to n; below 1
at small n means fixed overhead still shows). ``ratio`` is peer time / cellkin time.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numba
import numpy as np
from scipy.integrate import solve_ivp

from cellkin import models

TIMES = np.linspace(0.0, 365.0, 60)
RTOL = 1e-6
KIMMEL_ATOL = (1e-7, 1e-9, 1e-7)  # normal T, CAR-T (cells/µL), tumour (mL)
CLOSED_GOAL = 1e8  # patient-time points/s on 2 cores
ODE_GOAL = 60_000.0  # patients/s on 2 cores
SIZES = {
    "full": {"closed": (10**3, 10**4, 10**5, 10**6), "ode": (10**3, 10**4, 10**5, 10**6)},
    "smoke": {"closed": (10**3, 10**4), "ode": (10**2, 10**3)},
}
PEER_SUBSET = {"full": 20, "smoke": 3}
REPEATS = {"full": 5, "smoke": 3}


# ----------------------------------------------------------------------------- populations


def _vary(model_name: str, names: Sequence[str], n: int, seed: int) -> np.ndarray:
    """``n`` rows of the model's defaults, ``names`` multiplied by exp(0.3 z), z ~ N(0, 1)."""
    model = models.get(model_name)
    rng = np.random.default_rng(seed)
    table = np.tile(model.param_vector(), (n, 1))
    for name in names:
        table[:, model.param_names.index(name)] *= np.exp(0.3 * rng.standard_normal(n))
    return table


def stein_population(n: int, seed: int = 1) -> np.ndarray:
    """Stein 2019 parameters (kernel order cmax, tmax, foldx, alpha, fb, beta)."""
    return _vary("stein2019", ("cmax", "tmax", "foldx", "alpha", "fb", "beta"), n, seed)


def kimmel_population(n: int, seed: int = 2) -> np.ndarray:
    """Kimmel 2021 parameters, the seven fitted ones varied."""
    return _vary("kimmel2021", ("k_c", "r_n", "rho_c", "a", "b", "gamma_b", "k_b"), n, seed)


# ----------------------------------------------------------------------------- the peers


def stein_numpy(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The Stein 2019 closed form as a user would write it in NumPy: (n, n_times) levels."""
    cmax, tmax, foldx, alpha, fb, beta = (p[:, j : j + 1] for j in range(6))
    c0 = cmax / foldx
    rho = np.log(foldx) / tmax
    after = np.maximum(t - tmax, 0.0)
    rising = c0 * np.exp(rho * np.minimum(t, tmax))
    falling = cmax * ((1.0 - fb) * np.exp(-alpha * after) + fb * np.exp(-beta * after))
    return np.where(t < 0.0, 0.0, np.where(t < tmax, rising, falling))


def kimmel_scipy(p: np.ndarray, t: np.ndarray, method: str) -> np.ndarray:
    """One Kimmel 2021 patient with ``solve_ivp`` and a plain Python right-hand side."""
    k_n, k_c, r_n, rho_c, a, b, r_b, gamma_b, k_b, n0, dose, v_body, b0 = p

    def rhs(_: float, y: np.ndarray) -> list[float]:
        normal, car_t, tumour = y
        total = max(normal + car_t, 1e-300)
        shortfall = (total - k_n) ** 2
        r_c = rho_c + b * shortfall / (a * total * total + shortfall)
        return [
            -r_n * normal * math.log(total / k_n),
            -r_c * car_t * math.log(total / k_c),
            r_b * tumour - gamma_b * tumour * car_t / (k_b + car_t),
        ]

    solution = solve_ivp(rhs, (0.0, t[-1]), [n0, dose / v_body, b0], method=method,
                         t_eval=t, rtol=RTOL, atol=KIMMEL_ATOL)  # fmt: skip
    return solution.y[1] if solution.success else np.full(t.size, np.nan)


# ----------------------------------------------------------------------------- timing


def timed(function: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """Median wall and CPU seconds of ``repeats`` calls, and the last result."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        result = None  # free the previous output before the next call allocates its own
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def max_rel_difference(levels: np.ndarray, reference: np.ndarray) -> float:
    """Largest |a − b| / (|b| + 1e-6 × the patient's peak) over all patients and times."""
    floor = 1e-6 * np.nanmax(np.abs(reference), axis=1, keepdims=True)
    return float(np.nanmax(np.abs(levels - reference) / (np.abs(reference) + floor)))


def loglog_slope(sizes: Sequence[int], seconds: Sequence[float]) -> float:
    """Least-squares slope of log(seconds) against log(n)."""
    if len(sizes) < 2:
        return math.nan
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def _record(workload: str, n: int, cores: int, wall: float, cpu: float, repeats: int,
            peer: str, peer_s: float | None, unit: str, goal: str) -> dict[str, Any]:  # fmt: skip
    points = n * TIMES.size
    throughput = points / wall if unit == "patient-time points/s" else n / wall
    target = CLOSED_GOAL if unit == "patient-time points/s" else ODE_GOAL
    return {
        "benchmark": "simulation",
        "workload": workload,
        "n": n,
        "cores": cores,
        "cellkin_s": wall,
        "peer": peer,
        "peer_s": peer_s,
        "ratio": None if peer_s is None else peer_s / wall,
        "throughput": throughput,
        "throughput_unit": unit,
        "goal": goal if cores == 2 else None,
        "met": bool(throughput >= target) if cores == 2 else None,
        "repeats": repeats,
        "notes": "",
        "cellkin_cpu_s": cpu,
        "points_per_s": points / wall,
    }


def _finish_series(records: list[dict[str, Any]], extra: str) -> None:
    """Add the log-log slope (per thread count) and the 2-vs-1-thread speed-up to notes."""
    by_cores: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        by_cores.setdefault(record["cores"], []).append(record)
    for series in by_cores.values():
        slope = loglog_slope([r["n"] for r in series], [r["cellkin_s"] for r in series])
        for record in series:
            record["loglog_slope"] = slope
    one = {r["n"]: r["cellkin_s"] for r in by_cores.get(1, [])}
    for record in records:
        notes = [f"log-log slope of time vs n: {record['loglog_slope']:.2f}"]
        if record["cores"] > 1 and record["n"] in one:
            record["speedup_vs_1_thread"] = one[record["n"]] / record["cellkin_s"]
            notes.append(f"{record['speedup_vs_1_thread']:.2f}x the 1-thread speed")
        record["notes"] = "; ".join([*notes, extra])


# ----------------------------------------------------------------------------- workloads


def closed_form(sizes: Sequence[int], threads: Sequence[int], repeats: int) -> list[dict]:
    """Stein 2019 closed form: cellkin on each thread count vs hand-written NumPy."""
    model = models.get("stein2019")
    model.simulate_many(TIMES, stein_population(64))  # compile or load the cache
    records, agreement = [], math.nan
    for n in sizes:
        table = stein_population(n)
        peer_s, _, expected = timed(lambda table=table: stein_numpy(TIMES, table), repeats)
        for cores in threads:
            numba.set_num_threads(cores)
            model.simulate_many(TIMES, table[:64])  # start this many threads
            wall, cpu, levels = timed(lambda table=table: model.simulate_many(TIMES, table),
                                      repeats)  # fmt: skip
            if n == sizes[0] and cores == threads[0]:
                agreement = max_rel_difference(levels, expected)
            records.append(_record(
                "stein2019 closed form, 60 times", n, cores, wall, cpu, repeats,
                "NumPy by hand (1 thread)", peer_s, "patient-time points/s",
                "≥ 1e8 patient-time points/s on 2 cores",
            ))  # fmt: skip
            del levels
        del expected
    _finish_series(records, f"max rel. difference vs NumPy {agreement:.1e}")
    return records


def mechanistic(sizes: Sequence[int], threads: Sequence[int], repeats: int,
                subset: int) -> list[dict]:  # fmt: skip
    """Kimmel 2021, Tsitouras 5(4): cellkin on each thread count vs solve_ivp (extrapolated)."""
    model = models.get("kimmel2021").with_options(rtol=RTOL, atol=KIMMEL_ATOL)
    sample = kimmel_population(subset, seed=3)
    model.simulate_many(TIMES, sample)  # compile or load the cache
    peers = {}
    for method in ("LSODA", "RK45"):
        wall, _, levels = timed(lambda m=method: np.array([kimmel_scipy(p, TIMES, m)
                                                           for p in sample]), 1)  # fmt: skip
        peers[method] = (wall / subset, levels)
    agreement = max_rel_difference(model.simulate_many(TIMES, sample), peers["LSODA"][1])
    records = []
    for n in sizes:
        table = kimmel_population(n)
        for cores in threads:
            numba.set_num_threads(cores)
            model.simulate_many(TIMES, table[:64])  # start this many threads
            runs = repeats if n < 10**6 else min(repeats, 2)  # 10^6: ~15-30 s per call
            wall, cpu, _ = timed(lambda table=table: model.simulate_many(TIMES, table), runs)
            records.append(_record(
                "kimmel2021 Tsit5, 365 d, 60 times, rtol 1e-6", n, cores, wall, cpu, runs,
                f"solve_ivp LSODA (1 thread; {subset} patients, extrapolated)",
                peers["LSODA"][0] * n, "patients/s", "≥ 60,000 patients/s on 2 cores",
            ))  # fmt: skip
    rk45 = 1.0 / peers["RK45"][0]
    _finish_series(records, f"solve_ivp RK45 {rk45:,.0f} patients/s; max rel. difference vs "
                            f"LSODA {agreement:.1e} (both at rtol 1e-6)")  # fmt: skip
    return records


# ----------------------------------------------------------------------------- output


def markdown(records: Sequence[dict[str, Any]]) -> str:
    """The records as a Markdown table."""
    lines = [
        "| workload | n | threads | cellkin (s) | throughput | peer | peer (s) | ratio | goal met"
        " | slope |",
        "|---|---:|---:|---:|---:|---|---:|---:|---|---:|",
    ]
    for r in records:
        peer_s = "" if r["peer_s"] is None else f"{r['peer_s']:.3g}"
        ratio = "" if r["ratio"] is None else f"{r['ratio']:,.1f}×"
        met = "" if r["met"] is None else ("yes" if r["met"] else "no")
        lines.append(
            f"| {r['workload']} | {r['n']:,} | {r['cores']} | {r['cellkin_s']:.3g} "
            f"| {r['throughput']:,.3g} {r['throughput_unit']} | {r['peer']} | {peer_s} "
            f"| {ratio} | {met} | {r['loglog_slope']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, for CI")
    parser.add_argument("--json", metavar="FILE", help="write the records (a JSON list) here")
    args = parser.parse_args(argv)
    mode = "smoke" if args.smoke else "full"
    threads = sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)})
    records = closed_form(SIZES[mode]["closed"], threads, REPEATS[mode])
    records += mechanistic(SIZES[mode]["ode"], threads, REPEATS[mode], PEER_SUBSET[mode])
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    print(f"# Simulation scaling ({mode})\n")
    print(markdown(records))
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
