"""Coverage of the 95% CIs of Cmax and AUC0–28 on simulated sparse trials, among all fits and
among the fits marked reliable (issue 15, closing note).

Virtual subjects are drawn from Stein 2019's published population (typical values and
between-subject SDs, ``cellkin.simulate.virtual_population``), sampled on a schedule with
log-normal residual error and an LLOQ, and fitted one by one with :func:`cellkin.fit`. The
truth is known: Cmax is a parameter, AUC0–28 comes from the closed form
(``Stein2019.auc``). A CI covers when ``ci_lower ≤ truth ≤ ci_upper`` in the model-based
metrics table (:func:`cellkin.metrics.model_metrics`, percentile CIs from 1,000 parameter
draws).

Designs (one row each in the output):

* ``7/14/30/100 ML`` — the Leipzig BCMA cohort's visits: 4 samples for 7 free parameters, so
  every maximum-likelihood fit is refused (counted as fits = 0);
* ``7/14/30/100 MAP`` — the same with ``prior="published"`` and the residual SD fixed at the
  simulated one (the MAP fits the refusal message recommends);
* ``example ML`` — the bundled example study's nominal qPCR visits (days 1, 4, 7, 10, 14,
  21, 28, 42, 56, 84, 112, 180, 270, 365), maximum likelihood.

Run: ``python benchmarks/coverage_sparse.py --n 1000 --jobs 2`` (about 10 minutes on 2
cores); ``--n 100`` for a quick look. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

from cellkin import models
from cellkin.errors import FitError, IdentifiabilityWarning
from cellkin.fit import fit
from cellkin.simulate import sample_trial, virtual_population

STEIN = models.get("stein2019")
SPARSE = [7, 14, 30, 100]
EXAMPLE = [1, 4, 7, 10, 14, 21, 28, 42, 56, 84, 112, 180, 270, 365]
SIGMA = 0.5
LLOQ = 50.0
DESIGNS = {
    "7/14/30/100 ML": (SPARSE, {}),
    "7/14/30/100 MAP": (SPARSE, {"prior": "published", "fixed": {"sigma_qpcr": SIGMA}}),
    "example ML": (EXAMPLE, {}),
}


def _one(rows: pd.DataFrame, truth: dict[str, float], options: dict) -> dict[str, object]:
    """Fit one subject; whether its Cmax and AUC0–28 CIs cover the truth."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IdentifiabilityWarning)
        try:
            result = fit(rows, n_starts=2, seed=1, **options)
        except FitError:
            return {"fitted": False}
    metrics = result.metrics(n_draws=1000, seed=2).iloc[0]
    auc = STEIN.auc(0, 28, truth)
    return {
        "fitted": True,
        "reliable": result.reliable,
        "issues": ", ".join(result.issue_codes),
        "cmax": bool(metrics["cmax_ci_lower"] <= truth["cmax"] <= metrics["cmax_ci_upper"]),
        "auc_0_28": bool(metrics["auc_0_28_ci_lower"] <= auc <= metrics["auc_0_28_ci_upper"]),
    }


def run(n: int, jobs: int, seed: int = 11) -> pd.DataFrame:
    population = virtual_population("stein2019", n, seed=seed)
    truth = population.set_index("subject")[list(STEIN.param_names)].to_dict("index")
    rows = []
    for label, (schedule, options) in DESIGNS.items():
        trial = sample_trial("stein2019", population, schedule, lloq=LLOQ, sigma=SIGMA,
                             seed=seed + 1)  # fmt: skip
        groups = [part for _, part in trial.groupby("subject", sort=False)]
        truths = [truth[part["subject"].iloc[0]] for part in groups]
        start = time.perf_counter()
        with ProcessPoolExecutor(jobs) as pool:
            found = pd.DataFrame(list(pool.map(_one, groups, truths, [options] * len(groups),
                                               chunksize=20)))  # fmt: skip
        fitted = found[found["fitted"]]
        reliable = fitted[fitted["reliable"].astype(bool)] if len(fitted) else fitted
        codes = pd.Series([c for cell in fitted.get("issues", []) for c in cell.split(", ") if c])
        rows.append({
            "design": label, "subjects": n, "fitted": len(fitted), "reliable": len(reliable),
            "cover_cmax_all": fitted["cmax"].mean() if len(fitted) else np.nan,
            "cover_auc_all": fitted["auc_0_28"].mean() if len(fitted) else np.nan,
            "cover_cmax_reliable": reliable["cmax"].mean() if len(reliable) else np.nan,
            "cover_auc_reliable": reliable["auc_0_28"].mean() if len(reliable) else np.nan,
            "issues": "; ".join(f"{k} {v}" for k, v in codes.value_counts().items()),
            "seconds": round(time.perf_counter() - start, 1),
        })  # fmt: skip
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="subjects per design")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--seed", type=int, default=11)
    arguments = parser.parse_args()
    table = run(arguments.n, arguments.jobs, arguments.seed)
    print(markdown(table))


def markdown(table: pd.DataFrame) -> str:
    """A Markdown table (numbers to 3 decimals)."""

    def cell(value: object) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
