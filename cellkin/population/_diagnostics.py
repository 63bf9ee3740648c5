r"""Goodness-of-fit of a population model: predictions, residuals, NPDE and the pcVPC (private).

* ``pred``: the model at the subject's typical parameters (η = 0, its covariates);
  ``ipred``: at its EBE; ``iwres``: the standardised individual residual at the EBE
  (``(ln y − ln ipred)/σ`` for a log-additive assay, ``(y − ipred)/s`` otherwise; NaN for a
  censored sample).
* **NPDE** (Brendel et al. 2006, doi:10.1007/s11095-006-9067-5; Comets et al. 2008,
  doi:10.1016/j.cmpb.2007.12.002): each subject's data are simulated ``K`` times from the
  fitted model (its own design, η drawn from N(0, Ω), residual error added); observed and
  simulated vectors are decorrelated with the Cholesky factor of the simulated covariance (on
  the log scale for log-additive assays); ``npde = Φ⁻¹(pde)``, ``pde`` the fraction of
  simulated decorrelated values below the observed one. A censored observation is first
  replaced by the simulated value at a quantile drawn uniformly below its LLOQ's (Nguyen et al.
  2012, doi:10.1007/s10928-012-9264-2).
* **Prediction-corrected VPC** (Bergstrand et al. 2011, doi:10.1208/s12248-011-9255-z): every
  observed and simulated value is multiplied by ``median(pred in its bin)/pred``; per time bin
  the observed 10th, 50th and 90th percentiles are set against the 90% interval of the same
  percentiles over the simulated replicates, and the fraction below the LLOQ against its
  simulated interval. Bins are the nominal days when the data have them, else the sample days
  when there are at most ten distinct ones, else ten bins of equal counts of the actual times
  (the table says which).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from cellkin.population._saem import SAEM

__all__ = ["predictions_table", "simulate_replicates", "vpc_table"]

QUANTILES = (0.1, 0.5, 0.9)


def _log_scale(saem: SAEM) -> np.ndarray:
    """Per sample: whether its assay's error model is log-additive."""
    kinds = np.array([saem.design.errors[a] == "log-additive" for a in saem.data.assays])
    return kinds[saem.data.assay]


def _sd(saem: SAEM, f: np.ndarray) -> np.ndarray:
    """Residual SD of each sample (log scale for log-additive assays), ``f`` flat per sample."""
    design, data, error = saem.design, saem.data, saem.estimates.error
    sd = np.empty(f.shape)
    assay = np.resize(data.assay, f.shape[0])
    for a, name in enumerate(data.assays):
        mine = assay == a
        start = design.error_start[a] - len(design.names)
        kind = design.errors[name]
        parameters = error[start : start + 2]
        if kind == "log-additive":
            sd[mine] = parameters[0]
        elif kind == "combined":
            sd[mine] = np.hypot(parameters[0], parameters[1] * f[mine])
        elif kind == "additive":
            sd[mine] = parameters[0]
        else:
            sd[mine] = parameters[0] * f[mine]
    return sd


def _predict(saem: SAEM, rows: np.ndarray) -> np.ndarray:
    levels = saem.evaluator.levels(rows)
    return saem.evaluator.predictions(rows, levels)


def predictions_table(saem: SAEM, ebe: np.ndarray) -> pd.DataFrame:
    """One row per sample: identity, ``dv``, ``pred``, ``ipred`` and ``iwres``."""
    data = saem.data
    pred = _predict(saem, saem.estimates.means(saem.design))
    ipred = _predict(saem, ebe)
    logged = _log_scale(saem)
    sd = _sd(saem, ipred)
    with np.errstate(divide="ignore", invalid="ignore"):
        iwres = np.where(
            logged, (np.log(data.value) - np.log(ipred)) / sd, (data.value - ipred) / sd
        )
    table = data.samples.loc[
        :,
        [
            c
            for c in ("subject", "time", "assay", "unit", "lloq", "blq", "nominal_time", "visit")
            if c in data.samples
        ],
    ]
    return table.assign(
        dv=data.value, pred=pred, ipred=ipred, iwres=np.where(data.censored, np.nan, iwres)
    ).reset_index(drop=True)


def simulate_replicates(saem: SAEM, n_replicates: int, rng: np.random.Generator) -> np.ndarray:
    """``(K, N)`` simulated observations of every sample (uncensored), from η ~ N(0, Ω) and
    the residual error model."""
    design, est, data = saem.design, saem.estimates, saem.data
    means = est.means(design)
    root = np.linalg.cholesky(est.omega)
    out = np.empty((n_replicates, data.time.size))
    logged = _log_scale(saem)
    batch = max(1, min(n_replicates, 200_000 // max(data.n, 1)))
    done = 0
    while done < n_replicates:
        m = min(batch, n_replicates - done)
        rows = np.tile(means, (m, 1)) + rng.standard_normal((m * data.n, means.shape[1])) @ root.T
        rows = np.clip(
            rows,
            design.lower_search[design.sampled] + 1e-9,
            design.upper_search[design.sampled] - 1e-9,
        )
        f = _predict(saem, rows)
        sd = _sd(saem, f)
        noise = rng.standard_normal(f.shape) * sd
        tiled = np.tile(logged, m)
        simulated = np.where(tiled, f * np.exp(noise), f + noise)
        out[done : done + m] = simulated.reshape(m, data.time.size)
        done += m
    return out


def npde(saem: SAEM, simulated: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """NPDE of every sample (see the module docstring)."""
    data = saem.data
    logged = _log_scale(saem)
    k = simulated.shape[0]
    out = np.full(data.time.size, np.nan)
    for s in range(data.n):
        cut = data.slice(s)
        sim = simulated[:, cut].copy()
        observed = data.value[cut].copy()
        censored = data.censored[cut]
        for i in np.flatnonzero(censored):  # impute below the LLOQ (Nguyen et al. 2012)
            column = np.sort(sim[:, i])
            below = np.searchsorted(column, data.lloq[cut][i], side="right") / k
            quantile = rng.uniform(0.0, max(below, 1.0 / k))
            observed[i] = np.quantile(column, quantile)
        log = logged[cut]
        with np.errstate(divide="ignore", invalid="ignore"):
            sim[:, log] = np.log(np.maximum(sim[:, log], 1e-300))
            observed[log] = np.log(np.maximum(observed[log], 1e-300))
        centre = sim.mean(axis=0)
        covariance = np.atleast_2d(np.cov(sim, rowvar=False))
        covariance += np.eye(covariance.shape[0]) * 1e-12 * max(np.trace(covariance), 1e-300)
        try:
            root = np.linalg.cholesky(covariance)
        except np.linalg.LinAlgError:
            root = np.diag(np.sqrt(np.maximum(np.diag(covariance), 1e-300)))
        decorrelated = np.linalg.solve(root, (sim - centre).T).T
        target = np.linalg.solve(root, observed - centre)
        pde = (decorrelated < target).mean(axis=0)
        out[cut] = stats.norm.ppf(np.clip(pde, 1 / (2 * k), 1 - 1 / (2 * k)))
    return out


def _bins(samples: pd.DataFrame, max_bins: int = 10) -> tuple[np.ndarray, str]:
    if "nominal_time" in samples and samples["nominal_time"].notna().all():
        nominal = samples["nominal_time"].to_numpy(float)
        return np.unique(nominal, return_inverse=True)[1], "nominal day"
    time = samples["time"].to_numpy(float)
    distinct, position = np.unique(np.round(time, 6), return_inverse=True)
    if distinct.size <= max_bins:
        return position, "sample day"
    edges = np.unique(np.quantile(time, np.linspace(0, 1, max_bins + 1)))
    bins = np.clip(np.searchsorted(edges, time, side="right") - 1, 0, max(edges.size - 2, 0))
    return bins, f"{edges.size - 1} bins of equal counts of the actual times"


def vpc_table(saem: SAEM, simulated: np.ndarray, pred: np.ndarray) -> pd.DataFrame:
    """The prediction-corrected VPC, per assay and time bin (see the module docstring)."""
    data = saem.data
    bins, how = _bins(data.samples)
    rows = []
    for a, assay in enumerate(data.assays):
        for b in np.unique(bins[data.assay == a]):
            mine = (bins == b) & (data.assay == a)
            correction = np.median(pred[mine]) / pred[mine]
            lloq = data.lloq[mine] * correction
            observed = np.where(data.censored[mine], -np.inf, data.value[mine] * correction)
            sim = simulated[:, mine] * correction
            sim = np.where(sim < lloq, -np.inf, sim)
            record = {
                "assay": assay,
                "bin": int(b),
                "time": float(np.median(data.time[mine])),
                "n": int(mine.sum()),
                "binning": how,
            }
            for q in QUANTILES:
                with np.errstate(invalid="ignore"):  # quantiles among censored (-inf) values
                    obs_q = np.quantile(observed, q, method="inverted_cdf")
                    sim_q = np.quantile(sim, q, axis=1, method="inverted_cdf")
                    low, mid, high = np.quantile(sim_q, [0.05, 0.5, 0.95], method="inverted_cdf")
                rows.append(
                    {
                        **record,
                        "statistic": f"q{int(q * 100)}",
                        "observed": obs_q if np.isfinite(obs_q) else np.nan,
                        "simulated_lower": low if np.isfinite(low) else np.nan,
                        "simulated_median": mid if np.isfinite(mid) else np.nan,
                        "simulated_upper": high if np.isfinite(high) else np.nan,
                    }
                )
            fraction = np.isinf(sim).mean(axis=1)
            low, mid, high = np.quantile(fraction, [0.05, 0.5, 0.95])
            rows.append(
                {
                    **record,
                    "statistic": "fraction_blq",
                    "observed": float(data.censored[mine].mean()),
                    "simulated_lower": low,
                    "simulated_median": mid,
                    "simulated_upper": high,
                }
            )
    return pd.DataFrame(rows)
