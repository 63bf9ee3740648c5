"""Fitting benchmark: cellkin.fit / fit_all against hand-written lmfit + SciPy solve_ivp.

    python benchmarks/bench_fit.py            # 1,000-subject batch, 20 peer fits
    python benchmarks/bench_fit.py --smoke    # 40-subject batch, 3 peer fits (CI smoke)

The peer is what a pharmacometrician would write by hand: the Stein 2019 model as an ODE
(E' = ρE before Tmax; E' = −αE, M' = FB(α−β)E − βM after it) integrated with
``scipy.integrate.solve_ivp`` (RK45, rtol 1e-6, restarted at Tmax), log-scale residuals of
the quantified samples (BLQ dropped, M1) minimised with ``lmfit.minimize`` (leastsq).
For a like-for-like comparison cellkin runs the same M1 problem (``blq="m1"``) with one start,
and the estimates of both are compared. cellkin's default (M3, 4 starts, metrics with CIs)
is timed too. Prints a Markdown table; no timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import lmfit
import numpy as np
import pandas as pd
from scipy.integrate import solve_ivp

import cellkin
from cellkin.fit import fit, fit_all
from cellkin.simulate import sample_trial, virtual_population

SCHEDULE = [1, 2, 4, 7, 9, 11, 14, 17, 21, 28, 42, 56, 84, 112, 140, 180]
OMEGA = {"cmax": 0.3, "tmax": 0.2, "foldx": 0.3, "alpha": 0.3, "fb": 0.3, "beta": 0.3}


def make_trial(n: int, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    population = virtual_population("stein2019", n, seed=seed, omega=OMEGA)
    trial = sample_trial("stein2019", population, SCHEDULE, lloq=50, sigma=0.3, seed=seed + 1)
    return population, cellkin.read_kinetics(trial)


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


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    n_batch, n_peer = (40, 3) if args.smoke else (1000, 20)
    population, trial = make_trial(max(n_batch, n_peer))
    subjects = population["subject"].tolist()
    fit(trial, subject=subjects[0], n_starts=1)  # compile / cache load outside the timing
    rows = {s: trial[trial["subject"] == s] for s in subjects[:n_peer]}
    ours, peer, agree = [], [], []
    for subject_rows in rows.values():
        mine, seconds = timed(fit, subject_rows, blq="m1", n_starts=1)
        ours.append(seconds)
        theirs, seconds = timed(peer_fit, subject_rows)
        peer.append(seconds)
        agree.append(max(abs(mine.estimates[k] / theirs[k] - 1) for k in ("cmax", "tmax")))
    defaults = [timed(fit, r)[1] for r in list(rows.values())[:5]]
    batch_subjects = trial[trial["subject"].isin(subjects[:n_batch])]
    batch, batch_seconds = timed(fit_all, batch_subjects, n_jobs=2, progress=False)
    print(f"# Fitting benchmark ({'smoke' if args.smoke else 'full'})\n")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores; python "
        f"{platform.python_version()}; cellkin {cellkin.__version__}; lmfit {lmfit.__version__}"
    )
    print("\n| fit | subjects | median s/subject |")
    print("|---|---:|---:|")
    print(f"| peer: lmfit leastsq + solve_ivp RK45 (M1) | {n_peer} | {np.median(peer):.4f} |")
    print(f"| cellkin.fit, same M1 problem, 1 start | {n_peer} | {np.median(ours):.4f} |")
    print(f"| cellkin.fit default (M3, 4 starts) | {len(defaults)} | {np.median(defaults):.4f} |")
    print(
        f"\nspeed ratio (M1, 1 start): {np.median(peer) / np.median(ours):.1f}x; median "
        f"max relative difference of Cmax/Tmax estimates: {np.median(agree):.1e}"
    )
    print(
        f"fit_all default options, {n_batch} subjects, 2 workers: {batch_seconds:.1f} s "
        f"({len(batch.failures)} failure rows, "
        f"{int(batch.statistics['success'].sum())} converged)"
    )


if __name__ == "__main__":
    main()
