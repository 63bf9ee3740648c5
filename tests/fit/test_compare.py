"""Model comparison by AIC/BIC: per-subject table and study table.

Independent reference: AIC and BIC recomputed from each fit's −2LL, its number of free
parameters and samples (AIC = −2LL + 2k, BIC = −2LL + k ln n). Issue 15: no AIC/BIC where a
subject has no more samples than parameters, and per-model counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cellkin.errors import IdentifiabilityWarning
from cellkin.fit import ModelComparison, compare_models, fit_all
from cellkin.simulate import sample_trial, virtual_population

RICH = [-1, 1, 2, 4, 7, 9, 11, 14, 17, 21, 28, 35, 42, 56, 70, 84, 112, 140, 180]
QUICK = {"n_jobs": 1, "progress": False, "n_starts": 1}
MODELS = ("stein2019", "stein2019_lag")


@pytest.fixture(scope="module")
def kinetics() -> pd.DataFrame:
    table = sample_trial(
        "stein2019", virtual_population("stein2019", 3, seed=21), RICH, lloq=50, seed=22
    )
    blq = table[table["subject"] == "VP001"].assign(subject="ALLBLQ", value=np.nan, blq=True)
    return pd.concat([table, blq], ignore_index=True)


@pytest.fixture(scope="module")
def comparison(kinetics) -> ModelComparison:
    return compare_models(kinetics, MODELS, **QUICK)


def test_per_subject_table_matches_the_fits(comparison):
    table = comparison.table.set_index("subject")
    assert list(table.index) == ["VP001", "VP002", "VP003", "ALLBLQ"]
    for label in MODELS:
        stats = comparison.fits[label].statistics.set_index("subject")
        aic = stats["minus2ll"] + 2 * stats["n_free"]
        bic = stats["minus2ll"] + stats["n_free"] * np.log(stats["n_obs"])
        converged = stats.index[stats["success"]]
        np.testing.assert_allclose(table.loc[converged, f"aic_{label}"], aic[converged])
        np.testing.assert_allclose(table.loc[converged, f"bic_{label}"], bic[converged])
    assert table.loc["ALLBLQ"].filter(like="aic_").isna().all()
    assert not table.at["ALLBLQ", "comparable"] and table.at["ALLBLQ", "best_aic"] is None


def test_best_model_and_deltas(comparison):
    rows = comparison.table[comparison.table["comparable"]]
    assert len(rows) >= 2
    for criterion in ("aic", "bic"):
        scores = rows[[f"{criterion}_{m}" for m in MODELS]].to_numpy()
        best = np.asarray(MODELS)[scores.argmin(axis=1)]
        assert list(rows[f"best_{criterion}"]) == list(best)
        deltas = rows[[f"delta_{criterion}_{m}" for m in MODELS]].to_numpy()
        np.testing.assert_allclose(deltas, scores - scores.min(axis=1, keepdims=True))
        assert (deltas.min(axis=1) == 0).all()


def test_study_table_totals_and_counts(comparison):
    rows = comparison.table[comparison.table["comparable"]]
    study = comparison.study.set_index("model")
    assert list(study.index) == list(MODELS)
    for label in MODELS:
        assert study.at[label, "total_aic"] == pytest.approx(rows[f"aic_{label}"].sum())
        assert study.at[label, "total_bic"] == pytest.approx(rows[f"bic_{label}"].sum())
        assert study.at[label, "n_best_aic"] == (rows["best_aic"] == label).sum()
    assert study["n_best_aic"].sum() == study["n_best_bic"].sum() == len(rows)
    assert study["n_compared"].eq(len(rows)).all() and study["delta_total_aic"].min() == 0
    assert "subjects compared" in str(comparison.summary())
    assert "<table" in comparison._repr_html_()
    assert repr(comparison).startswith("ModelComparison(models=['stein2019', 'stein2019_lag']")


def test_batch_fits_by_label_give_the_same_comparison(kinetics, comparison):
    fits = {label: fit_all(kinetics, label, **QUICK) for label in MODELS}
    again = compare_models(fits)
    pd.testing.assert_frame_equal(again.table, comparison.table)
    pd.testing.assert_frame_equal(again.study, comparison.study)


def test_a_checkpoint_path_gets_one_file_per_model(kinetics, tmp_path):
    compare_models(
        kinetics, MODELS, checkpoint=tmp_path / "fits.jsonl", subjects=["ALLBLQ"], **QUICK
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "fits.stein2019.jsonl",
        "fits.stein2019_lag.jsonl",
    ]


def test_bad_arguments(kinetics, comparison):
    with pytest.raises(ValueError, match="two different models"):
        compare_models(kinetics, ("stein2019", "stein2019"))
    with pytest.raises(TypeError, match="only when `data` is a kinetics table"):
        compare_models(dict(comparison.fits), n_starts=2)
    with pytest.raises(TypeError, match="at least two BatchFit"):
        compare_models({"a": comparison.fits["stein2019"], "b": "not a fit"})


def test_study_table_reports_each_models_counts(comparison):
    study = comparison.study.set_index("model")
    for label in MODELS:
        counts = comparison.fits[label].counts
        row = study.loc[label]
        assert (row["n_subjects"], row["n_fitted"], row["n_converged"], row["n_reliable"]) == (
            counts["subjects"],
            counts["fitted"],
            counts["converged"],
            counts["reliable"],
        )
        assert row["n_too_few_samples"] == 0
    assert study["n_subjects"].eq(4).all()


def test_no_more_samples_than_parameters_omits_aic_with_a_warning(kinetics):
    """With a prior a subject of 4 samples is fitted (7 free parameters): its likelihood is
    not a basis for AIC/BIC, so they are omitted and the subject is not compared."""
    population = virtual_population("stein2019", 1, seed=5).assign(subject="SPARSE")
    sparse = sample_trial("stein2019", population, [7, 14, 30, 100], lloq=50, seed=6)
    data = pd.concat([kinetics[kinetics["subject"] != "ALLBLQ"], sparse], ignore_index=True)
    errors = ("log-additive", "combined")  # Stein 2019 with two error models
    fits = {error: fit_all(data, prior="published", error=error, **QUICK) for error in errors}
    assert all(batch.results["SPARSE"].success for batch in fits.values())
    with pytest.warns(IdentifiabilityWarning, match="SPARSE"):
        comparison = compare_models(fits)
    row = comparison.table.set_index("subject").loc["SPARSE"]
    assert np.isnan(row["aic_log-additive"]) and np.isnan(row["bic_combined"])
    assert not row["comparable"] and row["best_aic"] is None
    study = comparison.study.set_index("model")
    assert study["n_too_few_samples"].eq(1).all()
    assert study["n_compared"].eq(3).all()  # the three rich subjects, fitted by both
