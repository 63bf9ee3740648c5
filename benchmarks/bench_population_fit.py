"""Population-fit benchmark: cellkin.fit_population (SAEM) against the same model in numpyro NUTS.

    python benchmarks/bench_population_fit.py                # the full run (tens of minutes)
    python benchmarks/bench_population_fit.py --max-n 500    # scaling up to 500 subjects only
    python benchmarks/bench_population_fit.py --no-peer      # without numpyro
    python benchmarks/bench_population_fit.py --smoke        # CI size (seconds, cache warm)
    python benchmarks/bench_population_fit.py --json out.json

**Data.** Virtual trials of the Stein 2019 model (``virtual_population("stein2019")``: the
published typical values, Cmax 24,000 copies/µg, Tmax 9.3 d, foldx 3,900, α 0.16/d, FB 0.0079,
β 0.0032/d), between-subject SDs of 0.3-0.5 on the estimation scale (:data:`OMEGA`: the
published ones, up to 1.55 for foldx, leave six samples unable to identify all six random
effects), the published residual SD 0.56 on the log scale, six samples per subject on days
1, 3, 7, 21, 56 and 180 and an LLOQ of 75 copies/µg, which makes 30-40% of the samples BLQ
(mostly days 1, 3 and 180). Larger trials extend smaller ones (the first n subjects of one
seeded draw).

**cellkin.** ``fit_population(trial, "stein2019")`` with its defaults: all six parameters
with a random effect (diagonal Ω), log-additive error, M3 for the BLQ samples, and the whole
analysis — SAEM, the conditional distributions, standard errors (empirical Fisher
information), −2LL by importance sampling, EBEs, NPDE and the pcVPC table (300 replicates).
Wall time (numba threads: all cores) and the process's CPU time (all threads), at n = 100,
200, 500, 1,000, 2,000 (goals on
2 cores: ≤ 20 s at 200 and ≤ 120 s at 2,000); a least-squares line of time against n checks
that the cost is linear in n.

**Peer.** The same hierarchical model written in numpyro (Phan, Pradhan & Jankowiak 2019) and
sampled by NUTS on the 200-subject trial: ψ_i = h(μ + ω ∘ z_i), z_i ~ N(0, I) (non-centred;
``h`` = exp, expit for FB), the Stein closed form on the log scale, log-normal residuals, each
BLQ sample by the normal log-CDF at its own LLOQ (M3), weakly informative priors μ ~ N(published
value on the estimation scale, 2²), ω ~ HalfNormal(1), σ ~ HalfNormal(1); float64. Before
timing, the script checks that the peer's levels equal cellkin's model (to 1e-9 on the log
scale). **Fair setting**: 4 chains (one per host device, on all cores), 1,000 warm-up
iterations (Stan's default: step size and diagonal mass matrix adapted, target acceptance
0.8, start at the prior median), then blocks of 500 draws per chain until every population
parameter (μ, ω, σ) has split R-hat < 1.01 and a bulk effective sample size ≥ 400 (the
posterior means then carry a Monte Carlo error of at most 5% of their posterior SD, far
below the 2 SE being tested) or 5,000 draws per chain. Its time runs from the start of the
warm-up to the last draw; a first call of one warm-up iteration and one draw, which traces
and compiles the model, runs before it and is not counted (whatever JAX can reuse from it is
then already compiled: this favours the peer).

**Agreement.** For each population parameter, cellkin's estimate minus the posterior mean in
units of cellkin's SE: typical values on the estimation scale (ln, logit for FB; SE from the
table by the delta method), ω and σ as SDs; ``agree`` when |difference| ≤ 2 SE.

**ODE model.** Kimmel 2021 (T-cell competition, flow CAR+ cells/µL, Tsitouras 5(4) kernel) on
100 subjects × 6 samples: random effects on K_C, ρ_C, a and b (SD 0.3), the other parameters
fixed at the published values, log-additive error (SD 0.3), LLOQ 0.5 cells/µL: time only.

Every record of ``--json`` has the keys ``benchmark, workload, n, cores, cellkin_s, peer,
peer_s, ratio, throughput, throughput_unit, goal, met, repeats, notes`` (``ratio`` =
``peer_s / cellkin_s``) plus ``cpu_s``, ``iterations``, ``load_average`` and, on the peer row,
``agreement`` (one entry per parameter). Prints Markdown tables; no timing is asserted
anywhere. The machine's load average at the start and end of each measurement is in the
notes: on a shared host, wall times are upper bounds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from typing import Any

import numpy as np
import pandas as pd

import cellkin
from cellkin import models
from cellkin.population import PopulationFit, PopulationOptions, fit_population
from cellkin.simulate import sample_trial, virtual_population

CORES = 2
SCHEDULE = [1, 3, 7, 21, 56, 180]
LLOQ = 75.0
SIGMA = 0.56
OMEGA = {"cmax": 0.5, "tmax": 0.3, "foldx": 0.5, "alpha": 0.4, "fb": 0.5, "beta": 0.4}
SIZES = [100, 200, 500, 1000, 2000]
GOALS = {200: 20.0, 2000: 120.0}
NAMES = ("cmax", "tmax", "foldx", "alpha", "fb", "beta")
KIMMEL_RANDOM = {"k_c": 0.3, "rho_c": 0.3, "a": 0.3, "b": 0.3}
KIMMEL_SCHEDULE = [3, 7, 14, 28, 56, 90]
KIMMEL_LLOQ = 0.5
NUTS_SETTING = {"chains": 4, "warmup": 1000, "block": 500, "max_draws": 5000}
RHAT_MAX, ESS_MIN = 1.01, 400.0
#: Short runs for --smoke (CI): the code paths, not the statistics.
SMOKE_OPTIONS = PopulationOptions(
    min_exploratory=20, max_exploratory=20, n_smoothing=10, n_draws=20, n_importance=50,
    n_replicates=0,
)  # fmt: skip
SMOKE_NUTS = {"chains": 1, "warmup": 20, "block": 20, "max_draws": 20}


# ----------------------------------------------------------------------------- data


def make_trial(n: int, seed: int = 1) -> pd.DataFrame:
    """``n`` virtual Stein 2019 subjects, six samples each, ~1/3 BLQ (validated)."""
    population = virtual_population("stein2019", n, seed=seed, omega=OMEGA)
    trial = sample_trial("stein2019", population, SCHEDULE, lloq=LLOQ, sigma=SIGMA, seed=seed + 1)
    return cellkin.read_kinetics(trial)


def first_subjects(trial: pd.DataFrame, n: int) -> pd.DataFrame:
    """The rows of the first ``n`` subjects of ``trial``."""
    keep = list(dict.fromkeys(trial["subject"]))[:n]
    return trial[trial["subject"].isin(keep)]


def load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan


def record(workload: str, n: int, cellkin_s: float, **fields: Any) -> dict[str, Any]:
    out = {
        "benchmark": "population_fit", "workload": workload, "n": n, "cores": CORES,
        "cellkin_s": cellkin_s, "peer": None, "peer_s": None, "ratio": None,
        "throughput": n / cellkin_s, "throughput_unit": "subjects/s", "goal": "", "met": None,
        "repeats": 1, "notes": "",
    }  # fmt: skip
    out.update(fields)
    if out["peer_s"] is not None:
        out["ratio"] = out["peer_s"] / cellkin_s
    return out


# ----------------------------------------------------------------------------- cellkin


def timed_fit(trial: pd.DataFrame, model: str = "stein2019", **kwargs: Any):
    """``fit_population`` with ``progress=False``: (fit, wall s, CPU s, load at start/end)."""
    before, cpu, start = load(), time.process_time(), time.perf_counter()
    fit = fit_population(trial, model, progress=False, **kwargs)
    wall = time.perf_counter() - start
    return fit, wall, time.process_time() - cpu, (before, load())


def iterations(fit: PopulationFit) -> int:
    return int(fit.settings["n_exploratory"] + fit.settings["n_smoothing"])


def scaling(trial: pd.DataFrame, sizes: list[int], repeats_at_200: int, options) -> tuple:
    """Wall and CPU time of the default analysis at each n; the 200-subject fit is kept for
    the comparison with the peer."""
    rows, walls, kept = [], [], None
    for n in sizes:
        subset = first_subjects(trial, n)
        repeats = repeats_at_200 if n == 200 else 1
        runs = [timed_fit(subset, seed=1, options=options) for _ in range(repeats)]
        fit = runs[0][0]
        kept = fit if n == 200 or kept is None else kept
        wall = float(np.median([r[1] for r in runs]))
        cpu = float(np.median([r[2] for r in runs]))
        loads = (runs[0][3][0], runs[-1][3][1])
        walls.append(wall)
        goal = GOALS.get(n)
        met = None if goal is None else wall <= goal
        blq = float(subset["blq"].mean())
        rows.append(record(
            f"Stein 2019 M3, {len(SCHEDULE)} samples/subject ({100 * blq:.0f}% BLQ), "
            "fit_population defaults", n, wall, repeats=repeats,
            goal="" if goal is None else f"<= {goal:g} s", met=met,
            cpu_s=cpu, iterations=iterations(fit), load_average=loads,
            notes=f"CPU {cpu:.1f} s (all threads); {iterations(fit)} SAEM iterations "
            f"({fit.settings['n_exploratory']} exploratory); converged: {fit.converged}; "
            f"load average {loads[0]:.1f} -> {loads[1]:.1f}",
        ))  # fmt: skip
    if len(sizes) >= 3:
        slope, intercept = np.polyfit(np.array(sizes, float), np.array(walls), 1)
        residual = np.array(walls) - (intercept + slope * np.array(sizes, float))
        for row in rows:
            row["notes"] += (f"; line through n = {', '.join(map(str, sizes))}: "
                             f"{intercept:.1f} s + {1e3 * slope:.1f} ms per subject "
                             f"(largest residual {np.abs(residual).max():.1f} s)")  # fmt: skip
    return rows, kept


# ----------------------------------------------------------------------------- the peer


def import_numpyro(chains: int):
    """numpyro and JAX with one host device per chain and float64, or None when absent."""
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={chains}"
    ).strip()
    try:
        import jax
        import numpyro
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    return jax, numpyro


def peer_arrays(trial: pd.DataFrame) -> dict[str, Any]:
    """The trial as flat arrays: subject index, time, ln value (ln LLOQ if BLQ), censored."""
    rows = trial[trial["time"] >= 0]
    subjects = pd.Categorical(rows["subject"], categories=list(dict.fromkeys(rows["subject"])))
    censored = rows["blq"].to_numpy(bool)
    level = np.where(censored, rows["lloq"].to_numpy(float), rows["value"].to_numpy(float))
    return {
        "subject": subjects.codes.astype(np.int32),
        "time": rows["time"].to_numpy(float),
        "log_value": np.log(level),
        "censored": censored,
        "n_subjects": len(subjects.categories),
    }


def stein_log_level(jnp, jax_nn, phi, t):
    """ln C(t) of the Stein 2019 closed form (``phi``: ln cmax, ln tmax, ln foldx, ln α,
    logit FB, ln β per row): ln Cmax + ln foldx·(t/Tmax − 1) before Tmax, then
    ln Cmax + ln((1 − FB)e^{−α(t−Tmax)} + FB·e^{−β(t−Tmax)})."""
    lcmax, ltmax, lfoldx, lalpha, lfb, lbeta = (phi[..., k] for k in range(6))
    tmax = jnp.exp(ltmax)
    after = jnp.maximum(t - tmax, 0.0)
    rising = lcmax + lfoldx * (t / tmax - 1.0)
    falling = lcmax + jnp.logaddexp(
        -jax_nn.softplus(lfb) - jnp.exp(lalpha) * after,
        -jax_nn.softplus(-lfb) - jnp.exp(lbeta) * after,
    )
    return jnp.where(t < tmax, rising, falling)


def peer_model(jax, numpyro, n_subjects: int):
    """The hierarchical Stein model with M3 censoring, as a numpyro model."""
    import jax.numpy as jnp
    import numpyro.distributions as dist
    from jax.scipy.stats import norm

    stein = models.get("stein2019")
    prior_mean = jnp.asarray(stein.transform.to_search(stein.param_vector()))

    def model(subject, time, log_value, censored):
        mu = numpyro.sample("mu", dist.Normal(prior_mean, 2.0))
        omega = numpyro.sample("omega", dist.HalfNormal(jnp.ones(6)))
        sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
        with numpyro.plate("subjects", n_subjects):
            z = numpyro.sample("z", dist.Normal(jnp.zeros(6), 1.0).to_event(1))
        level = stein_log_level(jnp, jax.nn, (mu + omega * z)[subject], time)
        loglik = jnp.where(
            censored,
            norm.logcdf((log_value - level) / sigma),
            norm.logpdf(log_value, level, sigma),
        )
        numpyro.factor("data", loglik.sum())

    return model


def check_peer_levels(jax) -> float:
    """Largest |ln level| difference between the peer's closed form and cellkin's model on
    virtual subjects over a grid around Tmax: the two fit the same model."""
    import jax.numpy as jnp

    stein = models.get("stein2019")
    population = virtual_population("stein2019", 20, seed=7, omega=OMEGA)
    matrix = population[list(NAMES)].to_numpy(float)
    t = np.linspace(0.25, 400.0, 97)
    ours = np.log(stein.simulate_many(t, matrix))
    phi = stein.transform.to_search(matrix)
    theirs = np.asarray(stein_log_level(jnp, jax.nn, jnp.asarray(phi)[:, None, :], t[None, :]))
    gap = float(np.max(np.abs(ours - theirs)))
    if not gap < 1e-9:
        raise RuntimeError(f"the peer's Stein levels differ from cellkin's by {gap:.2e} (ln)")
    return gap


def _draws(mcmc) -> dict[str, np.ndarray]:
    import jax

    samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
    return {k: np.asarray(samples[k]) for k in ("mu", "omega", "sigma")}


def _convergence(blocks: list[dict[str, np.ndarray]]) -> tuple[float, float]:
    """Worst split R-hat and smallest bulk ESS over every population parameter."""
    from numpyro.diagnostics import effective_sample_size, split_gelman_rubin

    rhat, ess = [], []
    for key in ("mu", "omega", "sigma"):
        draws = np.concatenate([b[key] for b in blocks], axis=1)
        draws = draws.reshape(draws.shape[0], draws.shape[1], -1)
        for j in range(draws.shape[2]):
            column = draws[:, :, j]
            rhat.append(split_gelman_rubin(column) if column.shape[0] > 1 else math.nan)
            ess.append(effective_sample_size(column))
    return float(np.nanmax(rhat)) if np.isfinite(rhat).any() else math.nan, float(min(ess))


def nuts_fit(jax, numpyro, trial: pd.DataFrame, setting: dict[str, int], seed: int = 0):
    """NUTS under the stopping rule of the module docstring: (draws, seconds, R-hat, ESS,
    draws per chain, divergences, compile seconds)."""
    from numpyro.infer import MCMC, NUTS, init_to_median

    arrays = peer_arrays(trial)
    n_subjects = arrays.pop("n_subjects")
    model = peer_model(jax, numpyro, n_subjects)

    def sampler(warmup: int, draws: int, chains: int) -> Any:
        kernel = NUTS(model, target_accept_prob=0.8, init_strategy=init_to_median)
        return MCMC(kernel, num_warmup=warmup, num_samples=draws, num_chains=chains,
                    chain_method="parallel", progress_bar=False)  # fmt: skip

    compile_s = math.nan
    if setting["warmup"] > 1:  # a first call traces and compiles; JAX keeps what it can reuse
        start = time.perf_counter()
        first = sampler(1, 1, setting["chains"])
        first.run(jax.random.PRNGKey(seed + 1), **arrays)
        _draws(first)
        compile_s = time.perf_counter() - start
    mcmc = sampler(setting["warmup"], setting["block"], setting["chains"])
    start = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(seed), extra_fields=("diverging",), **arrays)
    blocks = [_draws(mcmc)]
    divergences = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    rhat, ess = _convergence(blocks)
    while (
        not (rhat < RHAT_MAX and ess >= ESS_MIN)
        and len(blocks) * setting["block"] < setting["max_draws"]
    ):
        mcmc.post_warmup_state = mcmc.last_state
        mcmc.run(mcmc.post_warmup_state.rng_key, extra_fields=("diverging",), **arrays)
        blocks.append(_draws(mcmc))
        divergences += int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
        rhat, ess = _convergence(blocks)
    seconds = time.perf_counter() - start
    draws = {k: np.concatenate([b[k] for b in blocks], axis=1) for k in blocks[0]}
    per_chain = len(blocks) * setting["block"]
    return draws, seconds, rhat, ess, per_chain, divergences, compile_s


# ----------------------------------------------------------------------------- agreement


def agreement(fit: PopulationFit, draws: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Per population parameter: cellkin's estimate and SE, the posterior mean and SD, and
    their difference in cellkin SEs (typical values on the estimation scale)."""
    fixed = fit.fixed_effects.query("kind == 'typical'").set_index("parameter")
    random = fit.random_effects.query("kind == 'omega'").set_index("parameter")
    error = fit.residual_error.set_index("parameter")
    stein = models.get("stein2019")
    truth = stein.transform.to_search(stein.param_vector())
    flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in draws.items()}
    rows = []
    for j, name in enumerate(NAMES):
        estimate, se = fixed.loc[name, "estimate"], fixed.loc[name, "se"]
        if fixed.loc[name, "scale"] == "logit":
            search, slope = math.log(estimate / (1 - estimate)), estimate * (1 - estimate)
        else:
            search, slope = math.log(estimate), estimate
        rows.append(("typical (" + fixed.loc[name, "scale"] + ")", name, search, se / slope,
                     flat["mu"][:, j], truth[j]))  # fmt: skip
    for j, name in enumerate(NAMES):
        rows.append(("omega (SD)", name, random.loc[name, "estimate"], random.loc[name, "se"],
                     flat["omega"][:, j], OMEGA[name]))  # fmt: skip
    sigma = error.loc["sigma_qpcr"]
    rows.append(("sigma", "sigma_qpcr", sigma["estimate"], sigma["se"], flat["sigma"], SIGMA))
    out = []
    for kind, name, estimate, se, posterior, true in rows:
        z = (estimate - posterior.mean()) / se if se > 0 else math.nan
        out.append({
            "kind": kind, "parameter": name, "truth": float(true), "cellkin": float(estimate),
            "cellkin_se": float(se), "nuts_mean": float(posterior.mean()),
            "nuts_sd": float(posterior.std(ddof=1)), "difference_se": float(z),
            "agree": bool(abs(z) <= 2.0),
        })  # fmt: skip
    return out


def peer_row(
    fit: PopulationFit, trial: pd.DataFrame, cellkin_s: float, setting: dict[str, int]
) -> dict[str, Any]:
    """cellkin's fit against numpyro NUTS on the same data (or a row saying that numpyro is
    not installed)."""
    trial_n = fit.n_subjects
    workload = f"Stein 2019 M3, {trial_n} subjects: cellkin vs the same model in numpyro NUTS"
    goal = ">= 10x numpyro, estimates within 2 SE"
    found = import_numpyro(setting["chains"])
    if found is None:
        return record(workload, trial_n, cellkin_s, goal=goal,
                      peer="numpyro NUTS: not installed (pip install numpyro jax)",
                      notes="peer not run: numpyro/jax are not installed")  # fmt: skip
    jax, numpyro = found
    gap = check_peer_levels(jax)
    draws, seconds, rhat, ess, per_chain, divergences, compile_s = nuts_fit(
        jax, numpyro, trial, setting
    )
    rows = agreement(fit, draws)
    agree = all(r["agree"] for r in rows)
    ratio = seconds / cellkin_s
    worst = max(rows, key=lambda r: abs(np.nan_to_num(r["difference_se"], nan=math.inf)))
    return record(
        workload, trial_n, cellkin_s, peer=f"numpyro {numpyro.__version__} NUTS "
        f"({setting['chains']} chains, {setting['warmup']} warm-up + {per_chain} draws each)",
        peer_s=seconds, goal=goal, met=ratio >= 10 and agree, agreement=rows,
        notes=f"{sum(r['agree'] for r in rows)}/{len(rows)} population parameters within 2 SE "
        f"(largest: {worst['kind']} {worst['parameter']} {worst['difference_se']:+.1f} SE); "
        f"NUTS stopped at split R-hat {rhat:.3f}, bulk ESS {ess:.0f} (rule: R-hat < "
        f"{RHAT_MAX}, ESS >= {ESS_MIN:.0f}), {divergences} divergent transitions; not "
        f"counted: a first 1 + 1-iteration call that traced and compiled the model "
        f"({compile_s:.1f} s); "
        f"peer levels = cellkin's to {gap:.0e} (ln)",
    )  # fmt: skip


# ----------------------------------------------------------------------------- ODE model


def ode_row(n: int, options: PopulationOptions | None) -> dict[str, Any]:
    """Kimmel 2021 on ``n`` subjects: four random effects, the rest fixed (time only)."""
    kimmel = models.get("kimmel2021")
    population = virtual_population("kimmel2021", n, seed=3, omega=KIMMEL_RANDOM)
    trial = sample_trial("kimmel2021", population, KIMMEL_SCHEDULE, lloq=KIMMEL_LLOQ,
                         assay="flow", sigma=0.3, seed=4)  # fmt: skip
    fixed = {
        name: float(value)
        for name, value in zip(kimmel.param_names, kimmel.param_vector(), strict=True)
        if name not in KIMMEL_RANDOM
    }
    fit, wall, cpu, loads = timed_fit(
        trial, "kimmel2021", assays="flow", fixed=fixed, seed=1, options=options
    )
    typical = fit.fixed_effects.set_index("parameter")["estimate"]
    truth = dict(zip(kimmel.param_names, kimmel.param_vector(), strict=True))
    recovered = ", ".join(f"{name} {typical[name] / truth[name]:.2f}" for name in KIMMEL_RANDOM)
    return record(
        f"Kimmel 2021 ODE (Tsitouras 5(4)), {len(KIMMEL_SCHEDULE)} flow samples/subject "
        f"({100 * trial['blq'].mean():.0f}% BLQ), random effects on {', '.join(KIMMEL_RANDOM)}",
        n, wall, cpu_s=cpu, iterations=iterations(fit), load_average=loads,
        notes=f"CPU {cpu:.1f} s; {iterations(fit)} SAEM iterations; converged: "
        f"{fit.converged}; typical value / truth: {recovered}; load average "
        f"{loads[0]:.1f} -> {loads[1]:.1f}",
    )  # fmt: skip


# ----------------------------------------------------------------------------- output


def table(records: list[dict[str, Any]]) -> str:
    lines = ["| workload | n | cellkin (s) | CPU (s) | peer (s) | ratio | goal | met |",
             "|---|---:|---:|---:|---:|---:|---|---|"]  # fmt: skip
    for r in records:
        peer = "" if r["peer_s"] is None else f"{r['peer_s']:.4g}"
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.1f}x"
        met = "" if r["met"] is None else ("yes" if r["met"] else "no")
        cpu = f"{r['cpu_s']:.4g}" if "cpu_s" in r else ""
        lines.append(f"| {r['workload']} | {r['n']} | {r['cellkin_s']:.4g} | {cpu} | {peer} | "
                     f"{ratio} | {r['goal']} | {met} |")  # fmt: skip
    return "\n".join(lines)


def agreement_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| parameter | scale | truth | cellkin (SE) | NUTS mean (SD) | difference | agree |",
             "|---|---|---:|---:|---:|---:|---|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['parameter']} | {r['kind']} | {r['truth']:.4g} | "
                     f"{r['cellkin']:.4g} ({r['cellkin_se']:.2g}) | {r['nuts_mean']:.4g} "
                     f"({r['nuts_sd']:.2g}) | {r['difference_se']:+.2f} SE | "
                     f"{'yes' if r['agree'] else 'no'} |")  # fmt: skip
    return "\n".join(lines)


def run(smoke: bool, max_n: int, peer: bool) -> list[dict[str, Any]]:
    """Every workload, in order: scaling (with the 200-subject fit), the peer, the ODE."""
    if smoke:
        sizes, repeats, options, setting, ode_n = [30], 1, SMOKE_OPTIONS, SMOKE_NUTS, 12
    else:
        sizes = [n for n in SIZES if n <= max_n]
        repeats, options, setting, ode_n = 3, None, NUTS_SETTING, 100
    trial = make_trial(max(sizes))
    timed_fit(first_subjects(trial, 20), options=SMOKE_OPTIONS)  # numba cache load, untimed
    records, fit = scaling(trial, sizes, repeats, options)
    if peer:
        compared = next((r for r in records if r["n"] == fit.n_subjects), records[0])
        subset = first_subjects(trial, fit.n_subjects)
        records.append(peer_row(fit, subset, compared["cellkin_s"], setting))
    records.append(ode_row(ode_n, SMOKE_OPTIONS if smoke else None))
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="CI size")
    parser.add_argument("--max-n", type=int, default=max(SIZES), metavar="N",
                        help=f"largest population (default {max(SIZES):,})")  # fmt: skip
    parser.add_argument("--no-peer", action="store_true", help="do not run numpyro")
    parser.add_argument("--json", metavar="FILE", help="write the records as JSON")
    args = parser.parse_args()
    start_load = load()
    records = run(args.smoke, args.max_n, not args.no_peer)
    label = "smoke" if args.smoke else f"populations up to {max(r['n'] for r in records):,}"
    print(f"# Population-fit benchmark ({label})\n")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; python "
          f"{platform.python_version()}; cellkin {cellkin.__version__}; load average "
          f"{start_load:.1f} at the start, {load():.1f} at the end\n")  # fmt: skip
    print(table(records))
    for r in records:
        print(f"\n- {r['workload']}, n={r['n']}: {r['notes']}")
        if "agreement" in r:
            print("\n" + agreement_table(r["agreement"]))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(records, handle, indent=2)


if __name__ == "__main__":
    main()
