"""Virtual populations and simulated trials."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cellkin import models
from cellkin.errors import ModelError, OptionError
from cellkin.simulate import round_significant, sample_trial, virtual_population

STEIN = models.get("stein2019")


def _stein_reference(t, cmax, tmax, foldx, alpha, fb, beta):
    """The published closed form, written out independently of cellkin's kernel."""
    t = np.asarray(t, dtype=float)
    rho = np.log(foldx) / tmax
    grow = cmax / foldx * np.exp(rho * np.minimum(t, tmax))
    after = np.maximum(t - tmax, 0.0)
    decline = cmax * ((1 - fb) * np.exp(-alpha * after) + fb * np.exp(-beta * after))
    return np.where(t < 0, 0.0, np.where(t < tmax, grow, decline))


def test_population_is_reproducible_from_the_seed():
    first = virtual_population("stein2019", 50, seed=11)
    again = virtual_population("stein2019", 50, seed=np.random.default_rng(11))
    other = virtual_population("stein2019", 50, seed=12)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)
    assert list(first.columns) == ["subject", *STEIN.param_names]
    assert first["subject"].iloc[0] == "VP001" and first["subject"].is_unique


def test_population_variability_matches_the_published_omega():
    population = virtual_population("stein2019", 20_000, seed=3)
    for name, omega in STEIN.omega.items():
        spec = STEIN.spec(name)
        values = population[name].to_numpy()
        eta = np.log(values) if spec.scale == "log" else np.log(values / (1 - values))
        centre = STEIN.defaults[name]
        centre = np.log(centre) if spec.scale == "log" else np.log(centre / (1 - centre))
        # Truncation at the bounds is negligible for these parameters.
        assert eta.std() == pytest.approx(omega, rel=0.03), name
        assert np.median(eta) == pytest.approx(centre, abs=0.05 * omega + 0.01), name


def test_population_respects_bounds_omega_override_and_correlation():
    omega = {"cmax": 0.5, "tmax": 0.5}
    correlation = pd.DataFrame([[1, 0.8], [0.8, 1]], index=list(omega), columns=list(omega))
    population = virtual_population(
        "stein2019",
        5_000,
        seed=5,
        omega=omega,
        correlation=correlation,
        typical={"cmax": 1_000.0},
    )
    assert (population["foldx"] == STEIN.defaults["foldx"]).all()
    rho = stats.pearsonr(np.log(population["cmax"]), np.log(population["tmax"]))[0]
    assert rho == pytest.approx(0.8, abs=0.03)
    assert np.exp(np.log(population["cmax"]).mean()) == pytest.approx(1_000, rel=0.03)
    wide = virtual_population("stein2019", 2_000, seed=5, omega={"fb": 3.0})
    assert wide["fb"].between(1e-9, 1 - 1e-9).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": -1}, "non-negative integer"),
        ({"omega": {"kel": 0.2}}, "unknown parameters"),
        ({"omega": {"cmax": 0.2, "tmax": 0.2}, "correlation": np.eye(3)}, "2x2"),
        (
            {"omega": {"cmax": 0.2, "tmax": 0.2}, "correlation": np.array([[1, 2], [2, 1]])},
            "positive definite",
        ),
        (
            {"omega": {"cmax": 0.2, "tmax": 0.2}, "correlation": np.array([[1, 0.1], [0.2, 1]])},
            "symmetric",
        ),
    ],
)
def test_population_bad_arguments(kwargs, message):
    arguments = {"n": 10, "seed": 0, **kwargs}
    with pytest.raises(OptionError, match=message):
        virtual_population("stein2019", **arguments)


def test_population_outside_the_bounds_after_every_redraw_is_a_model_error():
    with pytest.raises(ModelError, match="redraws"):
        virtual_population("stein2019", 10, seed=0, omega={"cmax": 1e6})


def test_trial_without_error_reproduces_the_closed_form():
    population = virtual_population("stein2019", 20, seed=1)
    schedule = [-1.0, 1, 4, 7, 14, 28, 84, 365]
    trial = sample_trial("stein2019", population, schedule, lloq=1e-9, sigma=0.0, seed=0)
    assert list(trial.columns) == ["subject", "time", "value", "assay", "unit", "lloq", "blq"]
    for subject, rows in trial.groupby("subject"):
        p = population.set_index("subject").loc[subject]
        expected = _stein_reference(rows["time"], *(p[name] for name in STEIN.param_names))
        observed = rows["value"].fillna(0.0).to_numpy()
        np.testing.assert_allclose(observed, expected, rtol=1e-12)
    pre = trial[trial["time"] < 0]
    assert pre["blq"].all() and pre["value"].isna().all()


def test_trial_residuals_are_lognormal_with_sigma_and_blq_is_censored():
    trial = sample_trial(
        "stein2019", STEIN.defaults, np.linspace(1, 60, 4000), lloq=1e-6, sigma=0.4, seed=9
    )
    log_ratio = np.log(trial["value"] / _stein_reference(trial["time"], **STEIN.defaults))
    assert log_ratio.std() == pytest.approx(0.4, rel=0.05)
    assert abs(log_ratio.mean()) < 0.03
    censored = sample_trial(
        "stein2019", STEIN.defaults, [1, 9.3, 365, 2000], lloq=50, sigma=0.0, seed=1
    )
    assert censored["blq"].tolist() == [True, False, False, True]
    assert censored["value"].isna().tolist() == [True, False, False, True]


def test_trial_with_per_subject_schedule_scale_and_assay():
    population = virtual_population("stein2019", 3, seed=2)
    schedule = pd.DataFrame({"subject": ["VP001", "VP001", "VP003"], "time": [7.0, 1.0, 14.0]})
    trial = sample_trial(
        "stein2019",
        population,
        schedule,
        lloq=0.5,
        sigma=0.0,
        seed=0,
        assay="flow",
        unit="cells/uL",
        scale=[0.01, 0.02, 0.03],
    )
    assert trial["subject"].tolist() == ["VP001", "VP001", "VP003"]
    assert trial["time"].tolist() == [1.0, 7.0, 14.0]
    assert (trial["assay"] == "flow").all() and (trial["unit"] == "cells/uL").all()
    p3 = population.iloc[2]
    expected = 0.03 * _stein_reference(14.0, *(p3[n] for n in STEIN.param_names))
    assert trial["value"].iloc[2] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lloq": -1.0}, "lloq"),
        ({"sigma": -0.1}, "sigma"),
        ({"scale": 0.0}, "scale"),
        ({"schedule": [1.0, np.nan]}, "finite"),
        ({"schedule": pd.DataFrame({"subject": ["X"], "time": [1.0]})}, "without parameters"),
        ({"schedule": pd.DataFrame({"time": [1.0]})}, "lacks column"),
    ],
)
def test_trial_bad_arguments(kwargs, message):
    arguments = {"schedule": [1.0], "lloq": 50.0, "seed": 0, **kwargs}
    with pytest.raises(OptionError, match=message):
        sample_trial("stein2019", {"cmax": 100.0}, **arguments)


def test_population_without_variability_is_all_typical():
    population = virtual_population("stein2019", 4, seed=1, omega={}, typical={"cmax": 500.0})
    expected = {**STEIN.defaults, "cmax": 500.0}
    for name in STEIN.param_names:
        assert (population[name] == expected[name]).all(), name


def test_round_significant_agrees_with_decimal_formatting():
    """Reference: Python's correctly rounded ``format(x, ".{d}g")`` (an independent path), on
    values away from decimal ties; at a tie NumPy's documented half-to-even on the scaled
    value applies (0.15 is 0.1499... in binary, times 10 is exactly 1.5, rounded to 2)."""
    rng = np.random.default_rng(3)
    values = rng.lognormal(0.0, 6.0, 2000) * rng.choice([-1.0, 1.0], 2000)
    for digits in (1, 3, 4, 6):
        expected = np.array([float(f"{v:.{digits}g}") for v in values])
        np.testing.assert_array_equal(round_significant(values, digits), expected)
    special = round_significant(pd.Series([0.0, np.nan, np.inf, -np.inf, 0.15]), 1)
    np.testing.assert_array_equal(special, [0.0, np.nan, np.inf, -np.inf, 0.2])
    with pytest.raises(OptionError, match="`digits` must be a whole number >= 1, got 0"):
        round_significant([1.0], 0)
