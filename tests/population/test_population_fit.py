"""Population fits: the API, bad input, every subject accounted for, determinism, priors.

The reference for the estimates is the truth of simulated trials written in the test (virtual
patients drawn from known typical values and between-subject SDs); the recovery over many
replicates, against independent estimators and on the real cohort are in
``test_population_validation.py``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import cellkin
from cellkin.errors import DataError, OptionError
from cellkin.population import (
    PopulationFit,
    PopulationOptions,
    fit_population,
    likelihood_ratio_test,
)
from cellkin.simulate import sample_trial, virtual_population

TRUTH = {"cmax": 20000.0, "tmax": 10.0, "foldx": 1000.0, "alpha": 0.2, "fb": 0.02, "beta": 0.01}
OMEGA = {"cmax": 0.6, "tmax": 0.3, "foldx": 0.5, "alpha": 0.4, "fb": 0.5, "beta": 0.4}
SCHEDULE = [1, 4, 7, 10, 14, 21, 28, 56, 84]
QUICK = PopulationOptions(
    min_exploratory=80,
    max_exploratory=150,
    n_smoothing=60,
    n_draws=100,
    n_importance=300,
    n_replicates=40,
)


def _trial(n: int = 60, seed: int = 1, schedule=SCHEDULE, lloq: float = 100.0) -> pd.DataFrame:
    population = virtual_population("stein2019", n, seed=seed, omega=OMEGA, typical=TRUTH)
    return sample_trial("stein2019", population, schedule, lloq=lloq, sigma=0.3, seed=seed + 1)


@pytest.fixture(scope="module")
def trial() -> pd.DataFrame:
    return _trial()


@pytest.fixture(scope="module")
def population(trial) -> PopulationFit:
    return fit_population(trial, seed=3, progress=False, options=QUICK)


def test_estimates_are_near_the_truth_and_the_tables_are_complete(population):
    fixed = population.fixed_effects.set_index("parameter")
    for name in ("cmax", "tmax", "alpha", "fb"):
        ratio = fixed.loc[name, "estimate"] / TRUTH[name]
        assert 0.7 < ratio < 1.4, (name, ratio)
        assert (
            fixed.loc[name, "ci_lower"] < fixed.loc[name, "estimate"] < fixed.loc[name, "ci_upper"]
        )
    random = population.random_effects.set_index("parameter")
    assert set(random.index) == set(TRUTH)
    assert 0.3 < random.loc["cmax", "estimate"] < 1.0
    error = population.residual_error.set_index("parameter")
    assert 0.2 < error.loc["sigma_qpcr", "estimate"] < 0.45
    assert population.n_subjects == 60 and population.n_parameters == 6 + 6 + 1
    assert population.aic == pytest.approx(population.minus2ll + 26)
    individual = population.individual
    assert len(individual) == 60 * 6
    assert (individual["conditional_sd"] > 0).all()
    diagnostics = population.diagnostics()
    assert {"dv", "pred", "ipred", "iwres", "npde"} <= set(diagnostics.columns)
    assert len(diagnostics) == population.n_obs
    assert set(population.trajectory["phase"]) == {"exploratory", "smoothing"}
    assert "Population fit" in str(population.summary())
    assert population.settings["solver"] == {"method": "none", "rtol": None, "atol": None}
    assert "closed form (no ODE solver)" in str(population.summary())
    assert "<table" in population._repr_html_()


def test_the_fit_is_deterministic_for_a_seed_whatever_the_threads(trial):
    small = trial[trial["subject"].isin(trial["subject"].unique()[:20])]
    options = PopulationOptions(
        min_exploratory=20,
        max_exploratory=20,
        n_smoothing=10,
        n_draws=20,
        n_importance=50,
        n_replicates=0,
    )
    first = fit_population(small, seed=5, n_jobs=1, progress=False, options=options)
    again = fit_population(small, seed=5, n_jobs=2, progress=False, options=options)
    pd.testing.assert_frame_equal(first.fixed_effects, again.fixed_effects)
    pd.testing.assert_frame_equal(first.individual, again.individual)
    assert first.minus2ll == again.minus2ll
    other = fit_population(small, seed=6, n_jobs=1, progress=False, options=options)
    assert not first.fixed_effects["estimate"].equals(other.fixed_effects["estimate"])


def test_every_subject_with_a_sample_gets_estimates_and_the_others_are_failures(trial):
    """A subject with a single BLQ sample is in the fit (the population tells what it can be);
    one with only pre-infusion samples is a failure row, with its reason."""
    first = trial[trial["subject"] == "VP001"]
    one_blq = first.iloc[[1]].assign(subject="ONE", value=np.nan, blq=True)
    pre = first.assign(subject="PRE", time=-first["time"] - 1.0)
    table = pd.concat([trial, one_blq, pre], ignore_index=True)
    options = PopulationOptions(
        min_exploratory=30,
        max_exploratory=30,
        n_smoothing=20,
        n_draws=40,
        n_importance=50,
        n_replicates=0,
    )
    result = fit_population(
        table,
        progress=False,
        options=options,
        subjects=[*trial["subject"].unique(), "ONE", "PRE", "NOBODY"],
    )
    assert "ONE" in result.subjects and "PRE" not in result.subjects
    failures = result.failures.set_index("subject")["reason"]
    assert "no post-infusion sample" in failures["PRE"]
    assert failures["NOBODY"] == "not in the kinetics table"
    assert len(result.subjects) + len(result.failures) == trial["subject"].nunique() + 3
    one = result.individual[result.individual["subject"] == "ONE"]
    assert np.isfinite(one["ebe"]).all() and len(one) == 6


def test_population_informed_fit_of_one_new_sparse_patient(population):
    """A patient sampled as clinics sample (days 7, 14, 30, 100), fitted with the population
    as prior; the prior is the population's."""
    patient = _trial(1, seed=40, schedule=[7, 14, 30, 100]).assign(subject="NEW")
    prior = population.prior_for()
    fixed = population.fixed_effects.set_index("parameter")
    np.testing.assert_allclose(np.exp(prior.mean[0]), fixed.loc["cmax", "estimate"], rtol=1e-12)
    result = cellkin.fit(patient, prior=population, fixed={"sigma_qpcr": 0.3})
    assert result.success and result.settings["prior"].startswith("population fit")
    assert np.isfinite(result.params["se"].iloc[:6]).all()


def test_the_empirical_and_louis_information_agree_on_well_informed_typical_values(
    trial, population
):
    """The default SEs (empirical information: the scatter of the subjects' scores) and
    Louis' observed information, from the same SAEM run and conditional draws (same seed):
    both finite for the typical values the schedule informs, within a factor 1.6 of each
    other (at the exact maximum their typical-value blocks coincide)."""
    louis = fit_population(
        trial,
        seed=3,
        progress=False,
        options=dataclasses.replace(QUICK, information_method="louis"),
    )
    assert population.settings["options"]["information_method"] == "empirical"
    ours = population.fixed_effects.set_index("parameter")["se"]
    theirs = louis.fixed_effects.set_index("parameter")["se"]
    for name in ("cmax", "tmax", "alpha"):
        assert np.isfinite(ours[name]) and np.isfinite(theirs[name]), name
        assert 1 / 1.6 < ours[name] / theirs[name] < 1.6, (name, ours[name], theirs[name])
    with pytest.raises(OptionError, match="information_method"):
        PopulationOptions(information_method="hessian")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"covariates": {"cmax": ["age"]}}, OptionError, "subject table"),
        ({"covariates": {"kel": ["age"]}}, OptionError, "not an estimated parameter"),
        ({"random": ["cmax", "kel"]}, OptionError, "`random` names"),
        ({"fixed": {"tmax": 500.0}}, OptionError, "outside"),
        ({"omega": "banded"}, OptionError, "'diagonal', 'full'"),
        ({"error": "poisson"}, OptionError, "`error` must be one of"),
        ({"blq": "m1"}, OptionError, "Beal's M1"),
        ({"assays": "flow"}, OptionError, "not in the kinetics table"),
    ],
)
def test_bad_options_are_clear_errors(trial, kwargs, error, match):
    with pytest.raises(error, match=match):
        fit_population(trial, progress=False, options=QUICK, **kwargs)


def test_covariate_errors_name_the_column_and_the_subjects(trial):
    subjects = pd.DataFrame({"subject": trial["subject"].unique(), "dose": 1.0})
    with pytest.raises(OptionError, match="constant"):
        fit_population(
            trial,
            progress=False,
            options=QUICK,
            subjects_table=subjects,
            covariates={"cmax": ["dose"]},
        )
    with pytest.raises(OptionError, match="no column `weight`"):
        fit_population(
            trial,
            progress=False,
            options=QUICK,
            subjects_table=subjects,
            covariates={"cmax": ["weight"]},
        )
    gaps = subjects.assign(dose=np.r_[np.nan, np.arange(1.0, len(subjects))])
    with pytest.raises(DataError, match="missing for subject"):
        fit_population(
            trial, progress=False, options=QUICK, subjects_table=gaps, covariates={"cmax": ["dose"]}
        )
    few = trial[trial["subject"].isin(trial["subject"].unique()[:4])]
    with pytest.raises(OptionError, match="random effects for 4 subjects"):
        fit_population(few, progress=False, options=QUICK)


def test_a_covariate_effect_is_found_and_tested(trial):
    """Cmax doubled in one dose level: β ≈ ln 2 on the log scale, Wald p small; the reduced
    model (no covariate) loses in a likelihood-ratio test."""
    population = virtual_population("stein2019", 80, seed=11, omega=OMEGA, typical=TRUTH)
    high = population.index % 2 == 1
    population.loc[high, "cmax"] *= 2.0
    data = sample_trial("stein2019", population, SCHEDULE, lloq=100.0, sigma=0.3, seed=12)
    subjects = pd.DataFrame(
        {"subject": population["subject"], "dose_level": np.where(high, "DL2", "DL1")}
    )
    with_covariate = fit_population(
        data,
        progress=False,
        options=QUICK,
        seed=1,
        subjects_table=subjects,
        covariates={"cmax": ["dose_level"]},
    )
    effect = with_covariate.fixed_effects.query("kind == 'covariate'").iloc[0]
    assert effect["term"] == "dose_level[DL2]" or effect["term"] == "dose_level[DL1]"
    assert abs(abs(effect["estimate"]) - np.log(2)) < 0.35
    assert effect["p_value"] < 1e-3
    without = fit_population(data, progress=False, options=QUICK, seed=1)
    test = likelihood_ratio_test(with_covariate, without).iloc[0]
    assert test["df"] == 1 and test["p_value"] < 1e-3
    with pytest.raises(OptionError, match="more estimated parameters"):
        likelihood_ratio_test(without, with_covariate)
