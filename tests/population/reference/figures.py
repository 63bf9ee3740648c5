"""Figures of the population-model validation, drawn from the reference outputs beside this
script and from one simulated sparse trial (synthetic data only).

Usage (from the repository root; about a minute on 2 cores)::

    python tests/population/reference/figures.py                 # into figures/ beside this
    python tests/population/reference/figures.py --out /tmp/figs

Writes:

* ``recovery.png`` — every replicate's estimate / truth of each typical value, ω and σ, per
  design (``recovery_replicates.csv``, from ``recovery_replicates.py``), with the mean, the
  criteria bands (±10% typical values, ±25% variances) and each typical value's 95% CI
  coverage; parameters the design does not inform are greyed;
* ``individual_metrics.png`` — |ln(estimate / truth)| of individual Cmax and AUC0–28 on the
  sparse trials for the population conditional distribution, per-patient ML and per-patient
  MAP (``sparse_individual_metrics.csv``, from ``sparse_individual_metrics.py``);
* ``sparse_gof.png``, ``sparse_npde.png``, ``sparse_vpc.png``, ``sparse_trajectories.png`` —
  ``PopulationFit.plot`` of one simulated sparse trial (:mod:`trials`, seed 1; 60 subjects,
  days 7, 14, 30, 100, a third of the samples BLQ).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import trials  # noqa: E402  (the simulator beside this script)

from cellkin.population import PopulationOptions, fit_population  # noqa: E402

DPI = 110
LIMITS = (0.25, 4.0)  # estimate / truth shown; beyond: a triangle at the edge


def recovery_figure(replicates: pd.DataFrame, summary: pd.DataFrame) -> plt.Figure:
    """Estimate / truth per replicate, parameter and design."""
    designs = list(dict.fromkeys(replicates["design"]))
    figure, axes = plt.subplots(len(designs), 1, figsize=(10, 3.6 * len(designs)), sharey=True)
    rng = np.random.default_rng(0)
    for ax, design_name in zip(np.atleast_1d(axes), designs, strict=True):
        design = trials.DESIGNS[design_name]
        rows = replicates[replicates["design"] == design_name]
        keys = list(dict.fromkeys(zip(rows["kind"], rows["parameter"], strict=True)))
        facts = summary[summary["design"] == design_name].set_index(["kind", "parameter"])
        for x, (kind, name) in enumerate(keys):
            group = rows[(rows["kind"] == kind) & (rows["parameter"] == name)]
            ratio = (group["estimate"] / group["truth"]).to_numpy()
            informed = not (kind == "typical" and name in design.not_informed)
            colour = "C0" if kind == "typical" else ("C1" if kind == "omega" else "C2")
            colour = colour if informed else "0.6"
            band = 0.10 if kind == "typical" else 0.25
            ax.fill_between([x - 0.4, x + 0.4], 1 - band, 1 + band, color="0.92", zorder=0)
            jitter = x + rng.uniform(-0.25, 0.25, ratio.size)
            inside = (ratio >= LIMITS[0]) & (ratio <= LIMITS[1])
            ax.scatter(jitter[inside], ratio[inside], s=9, color=colour, alpha=0.6, lw=0)
            for bound, marker in zip(LIMITS, "v^", strict=True):  # off the axis: at its edge
                off = ratio < bound if marker == "v" else ratio > bound
                ax.scatter(jitter[off], np.full(off.sum(), bound), s=18, marker=marker,
                           color=colour, lw=0, clip_on=False)  # fmt: skip
            ax.plot([x - 0.35, x + 0.35], [ratio.mean()] * 2, color="k", lw=1.5)
            if kind == "typical":
                coverage = facts.loc[(kind, name), "ci_coverage_pct"]
                ax.annotate(f"{coverage:.0f}%", (x, 0.02), xycoords=("data", "axes fraction"),
                            xytext=(0, 3), textcoords="offset points", ha="center",
                            fontsize=7)  # fmt: skip
        labels = [name if kind == "typical" else f"ω {name}" if kind == "omega" else "σ"
                  for kind, name in keys]  # fmt: skip
        ax.set_xticks(range(len(keys)), labels, rotation=30, fontsize=8)
        ax.axhline(1.0, color="k", lw=0.6, ls=":")
        ax.set_yscale("log")
        ax.set_ylim(*LIMITS)
        ticks = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0]
        ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_ylabel("estimate / truth")
        n = rows["replicate"].nunique()
        ax.set_title(
            f"{design_name} design: {design.n_subjects} subjects, days "
            f"{', '.join(f'{t:g}' for t in design.schedule)}; {n} replicate trials "
            f"(mean BLQ {rows['blq_fraction'].mean():.0%}); black: mean; numbers: 95% CI "
            "coverage",
            fontsize=9,
        )
    figure.tight_layout()
    return figure


def individual_metrics_figure(table: pd.DataFrame) -> plt.Figure:
    """|ln(estimate / truth)| of individual Cmax and AUC0–28 by method (sparse trials)."""
    methods = {
        "population": "population\n(conditional median)",
        "per_patient": "per-patient ML",
        "per_patient_map": "per-patient MAP\n(published prior)",
    }
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, (metric, label) in zip(axes, [("cmax", "Cmax"), ("auc_0_28", "AUC0–28")],
                                   strict=True):  # fmt: skip
        data, names = [], []
        for key, name in methods.items():
            error = np.abs(np.log(table[f"{metric}_{key}"] / table[f"{metric}_true"])).dropna()
            data.append(error.to_numpy())
            names.append(f"{name}\nn = {error.size}, median {error.median():.2f}"
                         if error.size else f"{name}\nn = 0")  # fmt: skip
        shown = [d if d.size else np.array([np.nan]) for d in data]
        ax.boxplot(shown, showfliers=False)
        ax.set_xticks(range(1, len(names) + 1), names, fontsize=7)
        ax.set_ylabel(f"|ln({label} estimate / truth)|")
        trials_n = table["replicate"].nunique()
        ax.set_title(f"{label}: {len(table) // trials_n} subjects × {trials_n} sparse trials",
                     fontsize=9)  # fmt: skip
    figure.tight_layout()
    return figure


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "figures")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    def save(figure: plt.Figure, name: str) -> None:
        figure.savefig(args.out / name, dpi=DPI, bbox_inches="tight")
        plt.close(figure)

    replicates = pd.read_csv(HERE / "recovery_replicates.csv")
    summary = pd.read_csv(HERE / "recovery_summary.csv")
    save(recovery_figure(replicates, summary), "recovery.png")
    individual = pd.read_csv(HERE / "sparse_individual_metrics.csv")
    save(individual_metrics_figure(individual), "individual_metrics.png")

    kinetics, _ = trials.simulate(trials.SPARSE, 1)
    fit = fit_population(
        kinetics,
        "stein2019",
        random=trials.SPARSE.random,
        seed=1,
        progress=False,
        options=PopulationOptions(n_importance=1000),
    )
    for kind in ("gof", "npde", "vpc", "trajectories"):
        axes = fit.plot(kind)
        save(np.atleast_1d(axes).ravel()[0].figure, f"sparse_{kind}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
