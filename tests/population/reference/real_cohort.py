"""The population model on a real cohort: Fandrei 2024, 50 BCMA CAR-T patients (qPCR).

Usage (from the repository root; the data stay in the shared folder, never in the project)::

    python tests/population/reference/real_cohort.py ../shared/data/fandrei2024_bcma
    python tests/population/reference/real_cohort.py ../shared/data/fandrei2024_bcma \
        --figures /tmp/fandrei2024_figures     # + GOF, NPDE, pcVPC, SAEM trajectories

The cohort (see that folder's PROVENANCE.md): 34 ide-cel and 18 cilta-cel patients treated at
Leipzig University Hospital, 50 with CAR transgene qPCR (copies/µg DNA) at days 7, 14, 30 and
100 only (median 3 samples each). Fitted: Stein 2019 on the qPCR samples, M3 for the BLQ one,
the product as a covariate of Cmax (ide-cel the reference level, the more frequent), random
effects on Cmax, Tmax, α and FB. The design has no sample before day 7 and one in the
terminal phase, so the fold expansion and β carry no random effect (what the sparse recovery
study shows it can and cannot inform).

Reported: typical values per product, the individual Cmax of each patient (median over its
conditional draws) against the highest sampled level (NCA Cmax, ``cellkin.nca``) as a
geometric-mean ratio, and the share of patients with individual metrics, beside the same
share from per-patient fits (``cellkin.fit_all``, converged and without a parameter on a
bound).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import cellkin
from cellkin.population import PopulationOptions

RANDOM = ("cmax", "tmax", "alpha", "fb")
OPTIONS = PopulationOptions(n_replicates=0, n_importance=1000)


def analyse(
    kinetics: pd.DataFrame, subjects: pd.DataFrame, *, seed: int = 1, options=OPTIONS
) -> dict:
    """Fit the cohort and return the numbers of the closing note."""
    qpcr = kinetics[kinetics["assay"] == "qpcr"]
    fit = cellkin.fit_population(
        qpcr,
        "stein2019",
        random=list(RANDOM),
        covariates={"cmax": ["product"]},
        subjects_table=subjects,
        seed=seed,
        progress=False,
        options=options,
    )
    fixed = fit.fixed_effects
    typical = fixed[fixed["kind"] == "typical"].set_index("parameter")
    effect = fixed[fixed["kind"] == "covariate"].iloc[0]
    reference_level = "ide-cel" if "cilta-cel" in effect["term"] else "cilta-cel"
    other_level = "cilta-cel" if reference_level == "ide-cel" else "ide-cel"
    cmax_reference = float(typical.loc["cmax", "estimate"])
    typical_cmax = {
        reference_level: cmax_reference,
        other_level: cmax_reference * float(np.exp(effect["estimate"])),
    }
    nca = cellkin.nca(cellkin.read_kinetics(qpcr))
    nca_cmax = nca.set_index("subject")["cmax"]
    model_cmax = pd.Series(
        {s: float(np.median(fit.individual_parameters(s, draws=True)[:, 0])) for s in fit.subjects}
    )
    common = nca_cmax.index.intersection(model_cmax.index)
    common = common[nca_cmax[common].to_numpy() > 0]
    gmr = float(np.exp(np.mean(np.log(model_cmax[common] / nca_cmax[common]))))
    batch = cellkin.fit_all(qpcr, "stein2019", n_jobs=1, progress=False)
    statistics = batch.statistics
    reliable = statistics["success"].astype(bool) & (statistics["at_bounds"].fillna("") == "")
    sampled = qpcr.loc[qpcr["time"] > 0, "subject"].nunique()
    return {
        "fit": fit,
        "n_patients_sampled": int(sampled),
        "typical_cmax": typical_cmax,
        "product_effect": effect,
        "cmax_gmr_model_vs_nca": gmr,
        "n_gmr": len(common),
        "share_with_metrics_pct": 100 * len(fit.subjects) / sampled,
        "per_patient_fitted": len(statistics),
        "per_patient_converged": int(statistics["success"].astype(bool).sum()),
        "per_patient_reliable": int(reliable.sum()),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the fandrei2024_bcma folder")
    parser.add_argument(
        "--figures",
        type=Path,
        metavar="DIR",
        help="also draw GOF, NPDE, pcVPC and SAEM trajectories into DIR (outside the "
        "repository: they show the patients' data); simulates the NPDE/VPC replicates",
    )
    args = parser.parse_args(argv)
    options = OPTIONS if args.figures is None else PopulationOptions(n_importance=1000)
    result = analyse(
        pd.read_csv(args.folder / "kinetics.csv"),
        pd.read_csv(args.folder / "subjects.csv"),
        options=options,
    )
    fit = result.pop("fit")
    if args.figures is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        args.figures.mkdir(parents=True, exist_ok=True)
        for kind in ("gof", "npde", "vpc", "trajectories"):
            axes = fit.plot(kind)
            figure = np.atleast_1d(axes).ravel()[0].figure
            figure.savefig(args.figures / f"{kind}.png", dpi=110, bbox_inches="tight")
            plt.close(figure)
    columns = ["parameter", "term", "estimate", "se", "rse_pct", "ci_lower", "ci_upper"]
    with pd.option_context("display.width", 200):
        print(fit.fixed_effects[columns].to_string(index=False))
        print(fit.random_effects.to_string(index=False))
        print(fit.residual_error.to_string(index=False))
    print(f"SAEM: {fit.reason}; -2LL {fit.minus2ll:.1f} (MC SE {fit.minus2ll_se:.2f})")
    for key, value in result.items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
