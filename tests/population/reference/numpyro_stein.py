"""numpyro (NUTS) reference for ``cellkin.fit_population`` on a rich Stein 2019 trial.

Usage (from the repository root; a few minutes on 2 cores; numpyro and JAX are not cellkin
dependencies: ``pip install numpyro jax`` into a development environment)::

    python tests/population/reference/numpyro_stein.py

Reads ``rich_stein.csv`` (written by ``make_reference_data.py``: 30 subjects × 12 samples, no
BLQ) and samples the posterior of the same hierarchical model cellkin fits, with weakly
informative priors:

* individual parameters ``φ_i = μ + ω ⊙ z_i``, ``z_i ~ N(0, I)`` (non-centred), on the
  estimation scale (ln for ``cmax, tmax, foldx, alpha, beta``; logit for ``fb``);
* ``μ_k ~ N(m_k, 2²)`` around round values of the right order (``m``: ln 10⁴ copies/µg,
  ln 7 d, ln 100, ln 0.1/d, logit 0.05, ln 0.005/d), ``ω_k ~ HalfNormal(1)``,
  ``σ ~ HalfNormal(1)``;
* ``ln y_ij ~ N(ln C(t_ij; h(φ_i)), σ²)`` with the Stein 2019 closed form written in JAX
  (doi:10.1002/psp4.12388), not cellkin's.

NUTS: 4 chains × (1,000 warm-up + 1,000 draws), target acceptance 0.9, seed 2024, each chain
started at the prior centres (ω = σ = 0.5, η = 0). Writes
``numpyro_stein_posterior.csv``: per population parameter the posterior mean, median, SD,
2.5% and 97.5% quantiles, R-hat and effective sample size; typical values on the natural
scale (``h(μ)``), ω and σ on the estimation scale, as cellkin reports them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
from numpyro.infer import MCMC, NUTS, init_to_value

HERE = Path(__file__).resolve().parent
NAMES = ("cmax", "tmax", "foldx", "alpha", "fb", "beta")
PRIOR_CENTRE = np.array(
    [np.log(1e4), np.log(7.0), np.log(100.0), np.log(0.1), np.log(0.05 / 0.95), np.log(0.005)]
)
LOGIT = np.array([name == "fb" for name in NAMES])

jax.config.update("jax_enable_x64", True)


def natural(phi):
    """Estimation scale → natural scale (exp, or expit for ``fb``)."""
    return jnp.where(LOGIT, jax.nn.sigmoid(phi), jnp.exp(phi))


def stein_log_level(t, psi):
    """ln C(t) of the Stein 2019 closed form; ``psi`` rows of natural parameters."""
    cmax, tmax, foldx, alpha, fb, beta = (psi[:, k] for k in range(6))
    rho = jnp.log(foldx) / tmax
    elapsed = jnp.maximum(t - tmax, 0.0)
    rising = jnp.log(cmax) - jnp.log(foldx) + rho * jnp.minimum(t, tmax)
    falling = jnp.log(cmax) + jnp.logaddexp(
        jnp.log1p(-fb) - alpha * elapsed, jnp.log(fb) - beta * elapsed
    )
    return jnp.where(t < tmax, rising, falling)


def model(subject, time, log_value, n_subjects):
    mu = numpyro.sample("mu", dist.Normal(PRIOR_CENTRE, 2.0).to_event(1))
    omega = numpyro.sample("omega", dist.HalfNormal(jnp.ones(6)).to_event(1))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    with numpyro.plate("subjects", n_subjects):
        z = numpyro.sample("z", dist.Normal(jnp.zeros(6), 1.0).to_event(1))
    psi = natural(mu + omega * z)
    predicted = stein_log_level(time, psi[subject])
    numpyro.sample("y", dist.Normal(predicted, sigma), obs=log_value)


def summarise(samples: dict, chains: int) -> pd.DataFrame:
    """Posterior summaries in cellkin's reporting scales."""
    quantities = {}
    mu = np.asarray(samples["mu"])
    typical = np.where(LOGIT, 1 / (1 + np.exp(-mu)), np.exp(mu))
    for k, name in enumerate(NAMES):
        quantities[("typical", name)] = typical[:, k]
        quantities[("omega", name)] = np.asarray(samples["omega"])[:, k]
    quantities[("sigma", "sigma")] = np.asarray(samples["sigma"])
    rows = []
    for (kind, name), draws in quantities.items():
        by_chain = draws.reshape(chains, -1)
        rows.append(
            {
                "kind": kind,
                "parameter": name,
                "mean": draws.mean(),
                "median": np.median(draws),
                "sd": draws.std(ddof=1),
                "q2.5": np.quantile(draws, 0.025),
                "q97.5": np.quantile(draws, 0.975),
                "r_hat": float(split_gelman_rubin(by_chain)),
                "ess": float(effective_sample_size(by_chain)),
            }
        )
    return pd.DataFrame(rows)


def main() -> int:
    numpyro.set_host_device_count(1)
    data = pd.read_csv(HERE / "rich_stein.csv")
    subjects, subject = np.unique(data["subject"], return_inverse=True)
    start = {
        "mu": jnp.asarray(PRIOR_CENTRE),
        "omega": jnp.full(6, 0.5),
        "sigma": 0.5,
        "z": jnp.zeros((len(subjects), 6)),
    }
    chains = 4
    mcmc = MCMC(
        NUTS(model, target_accept_prob=0.9, init_strategy=init_to_value(values=start)),
        num_warmup=1000,
        num_samples=1000,
        num_chains=chains,
        chain_method="sequential",
        progress_bar=False,
    )
    mcmc.run(
        jax.random.PRNGKey(2024),
        jnp.asarray(subject),
        jnp.asarray(data["time"].to_numpy(float)),
        jnp.asarray(np.log(data["value"].to_numpy(float))),
        len(subjects),
    )
    summary = summarise(mcmc.get_samples(), chains)
    divergences = int(np.sum(mcmc.get_extra_fields()["diverging"]))
    summary["divergences"] = divergences
    summary.to_csv(HERE / "numpyro_stein_posterior.csv", index=False, float_format="%.8g")
    with pd.option_context("display.width", 160):
        print(summary.to_string(index=False))
    print(f"numpyro {numpyro.__version__}, jax {jax.__version__}; divergences: {divergences}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
