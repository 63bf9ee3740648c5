"""The report's population model: one mixed-effects fit of the study, and the individual
metrics it gives the subjects whose own fits are not usable (private).

:func:`population_step` fits the report's model to every subject at once
(:func:`cellkin.fit_population`: SAEM, the fits' residual error and BLQ method, the report's
seed), adds its tables (fixed and random effects, residual error, every subject's metrics
from its conditional distribution) and builds ``model_metrics_used``: per subject, the
metrics of its own fit when that fit is among those the model-based summaries use (the
``model_fits`` rule: reliable fits by default), otherwise those of the population model
(``source`` says which: :data:`~cellkin.metrics.SOURCE_PER_SUBJECT` or
:data:`~cellkin.metrics.SOURCE_POPULATION`). The summaries by dose
level and the model-based kinetic endpoints are then computed over that table. A population
fit that did not converge is reported but not used for any subject.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from cellkin.metrics import SOURCE_PER_SUBJECT, SOURCE_POPULATION, summarize
from cellkin.population import fit_population

__all__ = ["population_step", "sources_text"]


def population_step(
    run: Any,
    model: str,
    fit_options: dict[str, Any],
    chosen: pd.DataFrame | None,
    progress: bool,
) -> pd.DataFrame | None:
    """Fit the population model and return the model-based metrics the summaries use
    (``chosen``, the selected per-subject rows, when the population fit is not available)."""
    population = run.steps.run(
        f"population fit ({model})",
        lambda: fit_population(run.inputs.kinetics, model, error=fit_options["error"],
                               blq=fit_options["blq"], seed=fit_options["seed"],
                               progress=progress),
    )  # fmt: skip
    if population is None:
        return chosen
    metrics = population.metrics()
    run.objects["population"] = population
    run.tables["population_fixed_effects"] = population.fixed_effects
    run.tables["population_random_effects"] = population.random_effects
    run.tables["population_residual_error"] = population.residual_error
    run.tables["population_metrics"] = metrics
    if not population.converged:
        run.steps.failures.append({"step": "population fit", "subject": "",
                                   "reason": f"SAEM did not converge ({population.reason}): "
                                   "its metrics are listed, not used"})  # fmt: skip
        return chosen
    used = combine(chosen, metrics[metrics["success"]])
    run.objects["model_metrics_used"] = used
    run.tables["model_metrics_used"] = used
    if len(used):
        run.tables["model_metrics_summary"] = summarize(
            used.drop(columns="source"), by=run.by, subjects=run.kinetic_subjects
        )
    return used


def combine(chosen: pd.DataFrame | None, population: pd.DataFrame) -> pd.DataFrame:
    """Per subject: its rows of ``chosen`` (per-subject fits), else its population rows; a
    ``source`` column after ``assay``; subjects in the population fit's order, then the
    others."""
    own = chosen if chosen is not None else population.iloc[:0]
    mine = set(own["subject"].astype(str))
    rest = population[~population["subject"].astype(str).isin(mine)]
    parts = [own.assign(source=SOURCE_PER_SUBJECT), rest.assign(source=SOURCE_POPULATION)]
    parts = [p for p in parts if len(p)]
    table = pd.concat(parts, ignore_index=True) if parts else rest.assign(source=SOURCE_POPULATION)
    order = {s: i for i, s in enumerate(population["subject"].astype(str))}
    table = table.sort_values("subject", key=lambda c: c.astype(str).map(order).fillna(len(order)),
                              kind="stable").reset_index(drop=True)  # fmt: skip
    columns = list(table.columns)
    columns.insert(columns.index("assay") + 1, columns.pop(columns.index("source")))
    return table[columns]


def sources_text(analysis: Any) -> list[str]:
    """Paragraphs for the report: where each subject's model-based metrics come from."""
    population = analysis.objects.get("population")
    if population is None:
        return []
    used = analysis.tables.get("model_metrics_used")
    if used is None:
        return [f"The population model ({population.model.name}) did not converge "
                f"({population.reason}); its tables are shown, but every model-based summary "
                "uses the per-subject fits only."]  # fmt: skip
    counts = used.drop_duplicates("subject")["source"].value_counts()
    own, borrowed = int(counts.get(SOURCE_PER_SUBJECT, 0)), int(counts.get(SOURCE_POPULATION, 0))
    fits = analysis.options.get("model_fits", "reliable")
    return [f"Model-based metrics per subject come from two sources (column `source`): "
            f"{own} subject(s) from their own {fits} fit, {borrowed} from the population "
            f"model's conditional distribution (median over the subject's conditional draws, "
            "95% CI from their percentiles), for subjects whose own fit is not "
            f"{fits} or was not possible. The summaries by dose level and the model-based "
            "kinetic endpoints use both."]  # fmt: skip
