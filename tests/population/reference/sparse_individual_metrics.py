"""Individual Cmax and AUC0–28 on sparse trials: population conditional distribution against
per-patient fits, both against the truth.

Usage (from the repository root; a few minutes on 2 cores)::

    python tests/population/reference/sparse_individual_metrics.py               # 10 trials
    python tests/population/reference/sparse_individual_metrics.py --replicates 20

Each trial is the sparse design of :mod:`trials` (60 subjects sampled on days 7, 14, 30, 100,
about a third of the samples below the LLOQ; NumPy only). For every subject:

* **population**: ``cellkin.fit_population`` as in the recovery study; the subject's Cmax and
  AUC0–28 are the medians over its conditional draws
  (``PopulationFit.individual_parameters(subject, draws=True)``) of the model's closed-form
  metrics (``model.metrics_kernel``);
* **per-patient**: ``cellkin.fit_all`` with its defaults (maximum likelihood, M3,
  multi-start); the metrics of each fitted subject's estimates by the same closed forms; a
  subject without a fit has none (with fewer quantified samples than free parameters cellkin
  refuses the fit, #15 — on this design that is nearly every subject);
* **per-patient MAP**: the same with ``prior="published"`` (each subject fitted alone, the
  published Stein 2019 population as prior — what a user without a population fit can do);
* **truth**: the subject's true Cmax (the ``cmax`` parameter of the Stein curve) and its
  true AUC0–28, integrated in closed form by :func:`trials.true_auc`.

The error of a method on a subject is ``|ln(estimate / truth)|``; writes
``sparse_individual_metrics.csv`` (one row per trial × subject) and prints the median absolute
log error of each method on every subject it gives a value for, and on the subjects both
give a value for.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import trials  # noqa: E402

import cellkin  # noqa: E402
from cellkin.models.capabilities import METRIC_NAMES  # noqa: E402
from cellkin.population import PopulationOptions  # noqa: E402

OPTIONS = PopulationOptions(n_replicates=0, n_importance=100)
METRICS = ("cmax", "auc_0_28")


def closed_form_metrics(model, parameters: np.ndarray) -> np.ndarray:
    """``(rows, 2)``: Cmax and AUC0–28 of each row of natural-scale kinetic parameters."""
    intervals = np.array([[0.0, 28.0]])
    out = np.empty(len(METRIC_NAMES))
    values = np.full((parameters.shape[0], 2), np.nan)
    for r, row in enumerate(np.ascontiguousarray(parameters, dtype=float)):
        if model.metrics_kernel(row, intervals, 1.0, out) == 0:
            values[r] = out[0], out[2]
    return values


def population_metrics(kinetics: pd.DataFrame, design: trials.Design, seed: int):
    """Per subject: medians over the conditional draws of Cmax and AUC0–28."""
    fit = cellkin.fit_population(
        kinetics, "stein2019", random=design.random, seed=seed, progress=False, options=OPTIONS
    )
    rows = []
    for subject in fit.subjects:
        draws = fit.individual_parameters(subject, draws=True)[:, : len(trials.NAMES)]
        cmax, auc = np.nanmedian(closed_form_metrics(fit.model, draws), axis=0)
        rows.append({"subject": subject, "cmax": cmax, "auc_0_28": auc})
    return pd.DataFrame(rows), fit


def per_patient_metrics(kinetics: pd.DataFrame, prior: str | None = None) -> pd.DataFrame:
    """Per fitted subject: Cmax and AUC0–28 of its own fit (``cellkin.fit_all``), by maximum
    likelihood or, with ``prior``, maximum a posteriori."""
    batch = cellkin.fit_all(kinetics, "stein2019", prior=prior, n_jobs=1, progress=False)
    model = cellkin.models.get("stein2019")
    rows = []
    for subject, result in batch.results.items():
        estimates = result.params.set_index("parameter")["estimate"]
        vector = np.array([[estimates[name] for name in trials.NAMES]])
        cmax, auc = closed_form_metrics(model, vector)[0]
        rows.append(
            {
                "subject": subject,
                "cmax": cmax,
                "auc_0_28": auc,
                "converged": bool(result.success),
            }
        )
    return pd.DataFrame(rows, columns=["subject", "cmax", "auc_0_28", "converged"])


def compare_trial(design: trials.Design, seed: int) -> pd.DataFrame:
    """One trial: one row per subject with each method's estimate and the truth."""
    kinetics, parameters = trials.simulate(design, seed)
    truth = pd.DataFrame(
        {
            "subject": parameters["subject"],
            "cmax": parameters["cmax"],
            "auc_0_28": [trials.true_auc(row, 0.0, 28.0) for _, row in parameters.iterrows()],
        }
    )
    population, _ = population_metrics(kinetics, design, seed)
    table = truth.merge(population, on="subject", how="left", suffixes=("_true", ""))
    table = table.rename(columns={m: f"{m}_population" for m in METRICS})
    for method, prior in (("per_patient", None), ("per_patient_map", "published")):
        single = per_patient_metrics(kinetics, prior)
        single = single.rename(columns={m: f"{m}_{method}" for m in METRICS})
        single = single.rename(columns={"converged": f"converged_{method}"})
        table = table.merge(single, on="subject", how="left")
        table[f"converged_{method}"] = table[f"converged_{method}"].astype("boolean")
    table.insert(0, "replicate", seed)
    return table


METHODS = ("population", "per_patient", "per_patient_map")


def _median(values: np.ndarray) -> float:
    return float(np.median(values)) if values.size else float("nan")


def errors(table: pd.DataFrame) -> pd.DataFrame:
    """Median |ln(estimate/truth)| per metric and method, and how many subjects each covers.

    ``median_abs_log_error_common`` is over the subjects the population and the per-patient
    MAP fits both give a value for (NaN where there are none)."""
    rows = []
    both = np.ones(len(table), dtype=bool)
    for metric in METRICS:
        for method in ("population", "per_patient_map"):
            both &= np.isfinite(table[f"{metric}_{method}"].to_numpy(float))
    for metric in METRICS:
        truth = table[f"{metric}_true"].to_numpy(float)
        for method in METHODS:
            value = table[f"{metric}_{method}"].to_numpy(float)
            error = np.abs(np.log(value / truth))
            has = np.isfinite(error)
            rows.append(
                {
                    "metric": metric,
                    "method": method,
                    "subjects_with_value": int(has.sum()),
                    "share_with_value_pct": 100 * has.mean(),
                    "median_abs_log_error": _median(error[has]),
                    "median_abs_log_error_common": _median(error[both & has]),
                    "n_common": int(both.sum()),
                }
            )
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=10)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    tables = [compare_trial(trials.SPARSE, seed) for seed in range(1, args.replicates + 1)]
    table = pd.concat(tables, ignore_index=True)
    table.to_csv(args.out / "sparse_individual_metrics.csv", index=False, float_format="%.6g")
    with pd.option_context("display.width", 200):
        print(errors(table).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
