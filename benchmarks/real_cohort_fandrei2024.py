"""Reliable fits, their reasons and the time back to baseline by product on the Leipzig BCMA
CAR-T cohort (Fandrei et al. 2024; issue 15, closing note).

The data are read from ``shared/data/fandrei2024_bcma`` (found in the folders above the
repository, or at ``$CELLKIN_FANDREI2024``); they are never copied into the project. Prints
Markdown tables:

1. per-subject Stein 2019 fits by maximum likelihood (the default): fitted, refused, reliable;
2. the same with the published prior and the residual SD fixed at Stein 2019's 0.56 (the MAP
   fit the refusal recommends until a population fit of this cohort exists): reliable fits
   and the fits with each issue, by product;
3. the time back to baseline by product and assay, observed (NCA, censored at the last
   sample) and model-based (reliable MAP fits, censored at the horizon), by Kaplan–Meier.

Run: ``python benchmarks/real_cohort_fandrei2024.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pandas as pd

from cellkin import fit_all
from cellkin.errors import IdentifiabilityWarning
from cellkin.fit import ISSUE_CODES
from cellkin.io import read_kinetics
from cellkin.metrics import nca, summarize

MAP_OPTIONS = {"prior": "published", "fixed": {"sigma_qpcr": 0.56}}
_TBB = ["n", "n_events", "n_censored", "median", "median_ci_lower", "median_ci_upper",
        "p_back_1m", "p_back_3m", "p_back_6m", "n_missing"]  # fmt: skip


def cohort_folder() -> Path | None:
    """``$CELLKIN_FANDREI2024``, or ``shared/data/fandrei2024_bcma`` above the repository."""
    if os.environ.get("CELLKIN_FANDREI2024"):
        return Path(os.environ["CELLKIN_FANDREI2024"])
    for parent in Path(__file__).resolve().parents:
        folder = parent / "shared" / "data" / "fandrei2024_bcma"
        if (folder / "kinetics.csv").is_file():
            return folder
    return None


def markdown(table: pd.DataFrame) -> str:
    """A Markdown table (numbers to 3 significant digits)."""

    def cell(value: object) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * table.shape[1]]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


def reliability_by_product(batch, subjects: pd.DataFrame) -> pd.DataFrame:
    """Per product: subjects, fitted, reliable, and the fits with each issue code."""
    product = subjects.set_index("subject")["product"]
    rows = []
    for name in [*sorted(product.unique()), "all"]:
        members = [s for s in batch.subjects if name == "all" or product.get(s) == name]
        fits = [batch.results[s] for s in members if s in batch.results]
        row = {"product": name, "subjects": len(members), "fitted": len(fits),
               "reliable": sum(r.reliable for r in fits)}  # fmt: skip
        for code in ISSUE_CODES:
            row[code] = sum(code in r.issue_codes for r in fits)
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.loc[:, (table != 0).any() | table.columns.isin(["reliable", "fitted"])]


def tbb_by_product(metrics: pd.DataFrame, subjects: pd.DataFrame, basis: str) -> pd.DataFrame:
    table = summarize(metrics, by="product", subjects=subjects, metrics=["time_back_to_baseline"])
    return table.assign(basis=basis).loc[:, ["basis", "product", "assay", *_TBB]]


def main() -> None:
    folder = cohort_folder()
    if folder is None:
        raise SystemExit("fandrei2024_bcma not found; set CELLKIN_FANDREI2024")
    kinetics = read_kinetics(folder / "kinetics.csv")
    subjects = pd.read_csv(folder / "subjects.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IdentifiabilityWarning)
        ml = fit_all(kinetics, n_jobs=1, progress=False)
        posterior = fit_all(kinetics, n_jobs=1, progress=False, **MAP_OPTIONS)
    print("## Maximum likelihood (default)\n")
    print(markdown(pd.DataFrame([ml.counts]).loc[:, ["subjects", "fitted", "failed",
                                                     "reliable"]]))  # fmt: skip
    print("\nFailure reasons (first clause):\n")
    reasons = ml.failures["reason"].str.split(";").str[0].str.replace(r"subject '\w+'", "subject",
                                                                       regex=True)  # fmt: skip
    reasons = reasons.str.replace(r"\(.*\)", "(...)", regex=True).value_counts()
    print(markdown(reasons.rename_axis("reason").reset_index(name="subjects")))
    print("\n## MAP: published prior, residual SD fixed at 0.56\n")
    print(markdown(reliability_by_product(posterior, subjects)))
    observed = nca(kinetics)
    modelled = posterior.metrics()
    reliable = modelled[modelled["reliable"].astype(bool)]
    print("\n## Time back to baseline by product (Kaplan–Meier)\n")
    print(markdown(pd.concat([tbb_by_product(observed, subjects, "observed (NCA)"),
                              tbb_by_product(reliable, subjects, "model, reliable MAP fits")],
                             ignore_index=True)))  # fmt: skip
    beyond = (modelled["time_back_to_baseline"] > modelled["horizon"]).sum()
    print(
        f"\nModel-based times back to baseline beyond the horizon: {beyond}; censored at it: "
        f"{int(modelled['time_back_to_baseline_censored'].sum())} of {len(modelled)}; "
        f"largest reported: {modelled['time_back_to_baseline'].max():.0f} d."
    )


if __name__ == "__main__":
    main()
