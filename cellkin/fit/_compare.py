"""Compare kinetic models by AIC and BIC, per subject and across the study.

:func:`compare_models` fits each model to every subject with :func:`~cellkin.fit.fit_all`
(or takes batch fits already made) and returns a :class:`ModelComparison`: a per-subject table
(AIC and BIC of each model, differences to the best, the best model) and a study table (totals,
number of subjects where each model is best).

A subject is compared only when every model converged on it with the same number of samples in
the likelihood (AIC values from different data are not comparable; −2LL includes all constants,
so models with different error models may be compared), and only where each model has more
samples than free parameters: with no more samples than parameters the likelihood can be made
as large as one likes, and AIC/BIC mean nothing; such a fit's AIC and BIC are omitted (NaN)
with an :class:`~cellkin.errors.IdentifiabilityWarning` naming the subjects.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cellkin._display import Summary
from cellkin.errors import IdentifiabilityWarning, OptionError
from cellkin.fit._batch import BatchFit, fit_all
from cellkin.models import get as get_model
from cellkin.models.base import Model

__all__ = ["ModelComparison", "compare_models"]

_CRITERIA = ("aic", "bic")


@dataclass(frozen=True, eq=False, repr=False)
class ModelComparison:
    """AIC/BIC comparison of several batch fits of the same subjects.

    Attributes
    ----------
    table : DataFrame
        One row per subject: ``aic_<label>`` and ``bic_<label>`` per model (NaN when that fit
        failed, did not converge or has no more samples than free parameters),
        ``delta_aic_<label>`` and ``delta_bic_<label>`` (difference to the subject's smallest
        value), ``best_aic``, ``best_bic`` (label of the best model) and ``comparable`` (every
        model converged, on the same ``n_obs``, each with more samples than free parameters;
        deltas and best models are only given for comparable subjects).
    study : DataFrame
        One row per model: ``model`` (label), ``n_subjects`` (input subjects), ``n_fitted``,
        ``n_converged``, ``n_reliable`` (:attr:`cellkin.fit.FitResult.reliable`),
        ``n_too_few_samples`` (fits with no more samples than free parameters: no AIC/BIC),
        ``n_compared`` (comparable subjects), ``total_aic``, ``total_bic`` (sums over
        comparable subjects), ``delta_total_aic``, ``delta_total_bic`` (to the smallest
        total), ``n_best_aic``, ``n_best_bic``.
    fits : dict
        Label → :class:`~cellkin.fit.BatchFit` that was compared.
    """

    table: pd.DataFrame
    study: pd.DataFrame
    fits: Mapping[str, BatchFit]

    def to_frame(self) -> pd.DataFrame:
        """The per-subject table (a copy)."""
        return self.table.copy()

    def summary(self) -> Summary:
        """People-facing summary: the study table and how many subjects were compared."""
        compared = int(self.table["comparable"].sum())
        notes = (
            f"{compared} of {len(self.table)} subjects compared (every model converged on the "
            "same samples, with more samples than free parameters); totals and counts are over "
            "those subjects",
        )
        title = f"Model comparison: {', '.join(self.fits)}"
        return Summary(title, (("Study", self.study),), notes)

    def __repr__(self) -> str:
        best = (
            self.study.loc[self.study["total_aic"].idxmin(), "model"] if len(self.study) else None
        )
        compared = int(self.table["comparable"].sum())
        return f"ModelComparison(models={list(self.fits)}, compared={compared}, best_aic={best!r})"

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


def _checkpoint_for(checkpoint: str | os.PathLike[str], label: str) -> Path:
    path = Path(checkpoint)
    return path.with_name(f"{path.stem}.{label}{path.suffix}")


def _fit_each(
    kinetics: Any, names: Sequence[str | Model], options: dict[str, Any]
) -> dict[str, BatchFit]:
    labels = [get_model(name).name for name in names]
    if len(set(labels)) != len(labels) or len(labels) < 2:
        raise OptionError(f"`models` must name at least two different models, got {labels}")
    checkpoint = options.pop("checkpoint", None)
    fits = {}
    for label, name in zip(labels, names, strict=True):
        path = None if checkpoint is None else _checkpoint_for(checkpoint, label)
        fits[label] = fit_all(kinetics, name, checkpoint=path, **options)
    return fits


def _criteria(fits: Mapping[str, BatchFit], subjects: list[str]) -> pd.DataFrame:
    """Per subject and label: AIC/BIC of converged fits with more samples than free
    parameters (NaN otherwise), ``n_obs`` of converged fits, and which fits have no more
    samples than free parameters (``("too_few", label)``)."""
    columns = {}
    for label, batch in fits.items():
        stats = batch.statistics.set_index("subject").reindex(subjects)
        converged = stats["success"].eq(True).to_numpy()
        n_obs = stats["n_obs"].to_numpy(dtype=float)
        too_few = ~np.isnan(n_obs) & ~(n_obs > stats["n_free"].to_numpy(dtype=float))
        for criterion in (*_CRITERIA, "n_obs"):
            values = stats[criterion].to_numpy(dtype=float)
            keep = converged & ~too_few if criterion in _CRITERIA else converged
            columns[(criterion, label)] = np.where(keep, values, np.nan)
        columns[("too_few", label)] = too_few
    return pd.DataFrame(columns, index=pd.Index(subjects, name="subject"))


def _warn_too_few(values: pd.DataFrame, labels: list[str]) -> None:
    """IdentifiabilityWarning naming the fits whose AIC/BIC were omitted."""
    left_out = [f"{label}: {', '.join(values.index[values[('too_few', label)]])}"
                for label in labels if values[("too_few", label)].any()]  # fmt: skip
    if left_out:
        warnings.warn(
            f"AIC/BIC omitted where a subject has no more samples than the model's free "
            f"parameters (such a likelihood is not a basis for comparison): "
            f"{'; '.join(left_out)}. Those subjects are not compared.",
            IdentifiabilityWarning,
            stacklevel=3,
        )


def _subject_table(values: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    n_obs = values["n_obs"]
    comparable = n_obs.notna().all(axis=1) & n_obs.nunique(axis=1).eq(1)
    comparable &= values["aic"].notna().all(axis=1)
    table = pd.DataFrame(index=values.index)
    for criterion in _CRITERIA:
        for label in labels:
            table[f"{criterion}_{label}"] = values[(criterion, label)]
    best = {}
    for criterion in _CRITERIA:
        scores = values[criterion].where(comparable, axis=0)
        for label in labels:
            table[f"delta_{criterion}_{label}"] = scores[label] - scores.min(axis=1)
        lowest = scores.fillna(np.inf).to_numpy().argmin(axis=1)
        best[f"best_{criterion}"] = np.where(comparable, np.asarray(labels)[lowest], None)
    table = table.assign(**best, comparable=comparable)
    return table.reset_index()


def _study_table(
    table: pd.DataFrame, values: pd.DataFrame, fits: Mapping[str, BatchFit]
) -> pd.DataFrame:
    labels = list(fits)
    rows = table[table["comparable"]]
    study = pd.DataFrame({"model": labels})
    counts = [fits[label].counts for label in labels]
    study["n_subjects"] = [c["subjects"] for c in counts]
    study["n_fitted"] = [c["fitted"] for c in counts]
    study["n_converged"] = [c["converged"] for c in counts]
    study["n_reliable"] = [c["reliable"] for c in counts]
    study["n_too_few_samples"] = [int(values[("too_few", label)].sum()) for label in labels]
    study["n_compared"] = len(rows)
    for criterion in _CRITERIA:
        totals = np.array([rows[f"{criterion}_{label}"].sum() for label in labels])
        study[f"total_{criterion}"] = totals
        study[f"delta_total_{criterion}"] = totals - totals.min()
    for criterion in _CRITERIA:
        counts = rows[f"best_{criterion}"].value_counts()
        study[f"n_best_{criterion}"] = [int(counts.get(label, 0)) for label in labels]
    return study


def compare_models(
    data: pd.DataFrame | str | os.PathLike[str] | Mapping[str, BatchFit],
    models: Sequence[str | Model] = ("stein2019", "stein2019_lag"),
    **fit_all_options: Any,
) -> ModelComparison:
    """Compare models by AIC and BIC per subject and across the study.

    Parameters
    ----------
    data : DataFrame, str, os.PathLike or mapping of str to BatchFit
        A kinetics table (or file): every model in ``models`` is fitted with
        :func:`~cellkin.fit.fit_all`. Or batch fits already made, by label (e.g. the same model
        with two error models); ``models`` and ``fit_all_options`` are then not used.
    models : sequence of str or Model
        At least two different models (default: Stein 2019 with and without a lag).
    **fit_all_options
        Options of :func:`~cellkin.fit.fit_all` and :func:`~cellkin.fit.fit`, the same for
        every model. A ``checkpoint`` path gets the
        model's name before its suffix, one file per model: ``fits.jsonl`` →
        ``fits.stein2019.jsonl``.

    Returns
    -------
    ModelComparison
        ``table`` (per subject), ``study`` (per model) and the batch fits.

    Notes
    -----
    AIC = −2LL + 2k and BIC = −2LL + k ln n, counting every free parameter (error
    parameters included). Differences of about 2 or less are weak evidence; more than 10 is
    strong (Burnham & Anderson, 2002). Subjects where a model failed, did not converge or has
    no more samples than free parameters (``n_obs ≤ n_free``, with an
    :class:`~cellkin.errors.IdentifiabilityWarning`) are shown with NaN and left out of the
    totals and counts, so that every total is over the same subjects, each fitted by every
    model. ``study`` gives each model's counts (fitted, converged, reliable, too few samples).

    Examples
    --------
    >>> from cellkin.simulate import sample_trial, virtual_population
    >>> kinetics = sample_trial("stein2019", virtual_population("stein2019", 2, seed=1),
    ...                         [1, 4, 7, 10, 14, 21, 28, 56, 84], lloq=50, seed=2)
    >>> comparison = compare_models(kinetics, ("stein2019", "stein2019_lag"), n_jobs=1,
    ...                             progress=False, n_starts=1)
    >>> list(comparison.table.columns[:3])
    ['subject', 'aic_stein2019', 'aic_stein2019_lag']
    >>> list(comparison.study["model"])
    ['stein2019', 'stein2019_lag']
    """
    if isinstance(data, Mapping):
        if fit_all_options:
            raise TypeError("fit options apply only when `data` is a kinetics table")
        fits = {str(label): batch for label, batch in data.items()}
        wrong = [label for label, batch in fits.items() if not isinstance(batch, BatchFit)]
        if wrong or len(fits) < 2:
            raise TypeError(f"give at least two BatchFit values by label; check {wrong or fits}")
    else:
        fits = _fit_each(data, list(models), dict(fit_all_options))
    labels = list(fits)
    subjects = list(dict.fromkeys(s for batch in fits.values() for s in batch.subjects))
    values = _criteria(fits, subjects)
    _warn_too_few(values, labels)
    table = _subject_table(values, labels)
    return ModelComparison(table=table, study=_study_table(table, values, fits), fits=fits)
