"""The compiled objective (models with a closed-form level function), start screening and the
early-stopping multi-start.

Independent references: −2 ln L written out with ``scipy.stats`` (log-normal / normal
densities, normal CDF for censored samples); central differences for the gradient;
``scipy.special.log_ndtr``. (The closed-form metrics are tested with the models, against
``scipy.integrate.quad`` and ``brentq``: ``tests/models/test_stein.py``.)
"""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from cellkin import models
from cellkin.errors import DataError
from cellkin.fit import fit
from cellkin.fit._problem import SubjectProblem, build_layout
from cellkin.io import read_kinetics
from cellkin.simulate import sample_trial

data_module = importlib.import_module("cellkin.fit._data")
likelihood = importlib.import_module("cellkin.fit.likelihood")
objective_module = importlib.import_module("cellkin.fit._objective")
minimise_module = importlib.import_module("cellkin.fit._minimise")
starts = importlib.import_module("cellkin.fit._starts")

RICH = [-1, 1, 2, 4, 7, 9, 11, 14, 17, 21, 28, 35, 42, 56, 70, 84, 112, 140, 180]
TRUTH = {"cmax": 5000.0, "tmax": 10.0, "foldx": 300.0, "alpha": 0.2, "fb": 0.02, "beta": 0.01}


def _joint(model: str = "stein2019") -> pd.DataFrame:
    """qPCR (LLOQ 400: a third of the samples censored) and flow of one subject."""
    truth = {**TRUTH, "tlag": 2.0} if model == "stein2019_lag" else TRUTH
    table = pd.DataFrame([{"subject": "S1", **truth}])
    qpcr = sample_trial(model, table, RICH, lloq=400.0, sigma=0.3, seed=1)
    flow = sample_trial(model, table, RICH, lloq=0.5, sigma=0.3, seed=2, assay="flow",
                        unit="cells/uL", scale=0.005)  # fmt: skip
    return read_kinetics(pd.concat([qpcr, flow]))


def _problem(table: pd.DataFrame, model: str, error: str, blq: str = "m3"):
    """The subject's problem at its data-driven start (no fit involved)."""
    model_ = models.get(model)
    samples = data_module.Samples(table)
    assays = ("qpcr", "flow")
    obs, _, _ = data_module.observations(samples, assays, blq, "S1")
    kinetic, scales, typical = data_module.initial_values(model_, samples, assays)
    units = {"qpcr": "copies/ug", "flow": "cells/uL"}
    errors = dict.fromkeys(assays, error)
    layout = build_layout(model_, assays, units, errors, kinetic, scales, typical)
    return SubjectProblem(model_, obs, layout, errors)


def _points(problem: SubjectProblem, n: int = 5) -> list[np.ndarray]:
    """Natural-scale points around the start, inside the bounds."""
    rng = np.random.default_rng(3)
    start = problem.transform.to_search(problem.layout.initial)
    points = []
    for _ in range(n):
        search = start + rng.normal(0.0, 0.3, start.size)
        points.append(problem.transform.to_model(search))
    return points


def _scipy_minus2ll(problem: SubjectProblem, theta: np.ndarray) -> float:
    """−2 ln L with scipy.stats densities (log-normal or normal) and CDFs for censored."""
    obs = problem.obs
    kinetic, scales, errors = problem.split(theta)
    f = problem.model.simulate(obs.time, dict(zip(problem.model.param_names, kinetic,
                                                  strict=True))) * scales[obs.assay]  # fmt: skip
    y, censored = obs.value, obs.censored
    if problem.errors["qpcr"] == "log-additive":
        sigma = np.array([errors[a][0] for a in obs.assays])[obs.assay]
        density = stats.lognorm.logpdf(y[~censored], s=sigma[~censored], scale=f[~censored])
        cdf = stats.norm.logcdf(np.log(obs.lloq[censored]), np.log(f[censored]), sigma[censored])
    else:
        additive = np.array([errors[a][0] for a in obs.assays])[obs.assay]
        proportional = np.array([errors[a][1] for a in obs.assays])[obs.assay]
        sd = np.hypot(additive, proportional * f)
        density = stats.norm.logpdf(y[~censored], f[~censored], sd[~censored])
        cdf = stats.norm.logcdf(obs.lloq[censored], f[censored], sd[censored])
    return -2.0 * (density.sum() + cdf.sum())


@pytest.mark.parametrize("error", ["log-additive", "combined"])
@pytest.mark.parametrize("model", ["stein2019", "stein2019_lag"])
def test_compiled_minus2ll_equals_the_likelihood_written_with_scipy(model, error):
    problem = _problem(_joint(model), model, error)
    assert problem.obs.n_censored >= 5
    objective = objective_module.CompiledObjective.from_problem(problem)
    for theta in _points(problem):
        search = problem.transform.to_search(theta)
        value = objective.minus2ll(search)
        assert value == pytest.approx(_scipy_minus2ll(problem, theta), rel=1e-10)
        assert value == pytest.approx(problem.minus2ll(theta), rel=1e-10)
        assert objective.value_and_gradient(search)[0] == value


@pytest.mark.parametrize("error", ["log-additive", "combined"])
@pytest.mark.parametrize("model", ["stein2019", "stein2019_lag"])
def test_compiled_gradient_matches_central_differences(model, error):
    """Every component (kinetic, assay scale, σ or a/b, tlag) on the estimation scale."""
    problem = _problem(_joint(model), model, error)
    objective = objective_module.CompiledObjective.from_problem(problem)
    for theta in _points(problem, 3):
        search = problem.transform.to_search(theta)
        _, gradient = objective.value_and_gradient(search)
        numeric = np.empty(search.size)
        for j in range(search.size):
            step = 1e-6 * max(1.0, abs(search[j]))
            up, down = search.copy(), search.copy()
            up[j] += step
            down[j] -= step
            numeric[j] = (objective.minus2ll(up) - objective.minus2ll(down)) / (2 * step)
        np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-5)


def test_log_ndtr_matches_scipy_in_both_tails():
    z = np.concatenate([np.linspace(-60, 40, 2001), [-37.0001, -36.9999, -1e-9, 0.0, 1e-9]])
    ours = np.array([likelihood.log_ndtr(v) for v in z])
    np.testing.assert_allclose(ours, special.log_ndtr(z), rtol=1e-12, atol=1e-300)


def test_a_failing_model_gives_the_failure_value():
    """tlag at or after tmax: the kernel refuses the point, the objective reports 1e300."""
    problem = _problem(_joint("stein2019_lag"), "stein2019_lag", "log-additive")
    objective = objective_module.CompiledObjective.from_problem(problem)
    theta = problem.layout.initial.copy()
    theta[problem.layout.index("tlag")] = theta[problem.layout.index("tmax")] + 1.0
    value, gradient = objective.value_and_gradient(problem.transform.to_search(theta))
    assert value == likelihood.FAILED and np.isnan(gradient).all()
    assert problem.minus2ll(theta) == likelihood.FAILED


def test_screening_reaches_the_optimum_of_noise_free_data():
    table = pd.DataFrame([{"subject": "S1", **TRUTH}])
    data = read_kinetics(sample_trial("stein2019", table, RICH, lloq=1.0, sigma=1e-4, seed=1))
    samples = data_module.Samples(data)
    obs, _, _ = data_module.observations(samples, ("qpcr",), "m3", "S1")
    kinetic, _, typical = data_module.initial_values(models.get("stein2019"), samples,
                                                     ("qpcr",))  # fmt: skip
    errors = {"qpcr": "log-additive"}
    layout = build_layout(models.get("stein2019"), ("qpcr",), {"qpcr": "copies/ug"}, errors,
                          kinetic, {}, typical)  # fmt: skip
    problem = SubjectProblem(models.get("stein2019"), obs, layout, errors)
    objective = objective_module.CompiledObjective.from_problem(problem)
    lower = problem.transform.to_search(layout.lower)
    upper = problem.transform.to_search(layout.upper)
    free = np.ones(layout.lower.size, dtype=bool)
    search, value, evaluations, code = minimise_module.minimise(
        objective, problem.transform.to_search(layout.initial), free, lower, upper
    )
    assert code in (minimise_module.GRADIENT_CONVERGED, minimise_module.NO_FURTHER_DECREASE)
    assert evaluations < 2000
    estimate = dict(zip(layout.names, problem.transform.to_model(search), strict=True))
    for name, value_true in TRUTH.items():
        assert estimate[name] == pytest.approx(value_true, rel=1e-3), name
    truth = problem.transform.to_search(np.array([*TRUTH.values(), layout.lower[-1]]))
    assert value <= objective.minus2ll(truth)  # σ at its floor, as estimated


def test_agreement_rule():
    assert not starts.agree([10.0, 10.0])  # three starts must reach the best value
    assert starts.agree([10.0, 10.0 + 5e-6, 10.0 - 4e-6])  # within 1e-6 x |best| (floor 1)
    assert not starts.agree([10.0, 10.0, 10.1])
    assert starts.agree([12.0, 10.0, 10.0 + 5e-6, 10.0])  # the three lowest decide
    assert starts.agree([1e-3, 1e-3 + 5e-7, 1e-3], count=3)  # floor 1 for values near 0
    assert starts.agree([10.0, 10.0], count=2)


def test_tmax_probes_lie_in_the_neighbouring_sample_intervals():
    """Samples at 1, 2, 4, 7, 9, 11, 14, ... days: Tmax 9.36 lies in [9, 11); the probes
    go to the middles of [7, 9) and [11, 14), every other parameter unchanged."""
    problem = _problem(_joint(), "stein2019", "log-additive")
    theta = problem.layout.initial.copy()
    j = problem.layout.index("tmax")
    theta[j] = 9.36
    search = problem.transform.to_search(theta)
    free = np.ones(theta.size, dtype=bool)
    probes = [problem.transform.to_model(p) for p in starts.kink_neighbours(problem, search, free)]
    assert [p[j] for p in probes] == pytest.approx([8.0, 12.5])
    for probe in probes:
        np.testing.assert_allclose(np.delete(probe, j), np.delete(theta, j), rtol=1e-12)
    free[j] = False
    assert starts.kink_neighbours(problem, search, free) == []


@pytest.mark.filterwarnings("ignore::cellkin.errors.IdentifiabilityWarning")  # not the subject here
def test_multistart_stops_once_two_starts_agree_and_stays_deterministic():
    # 6 quantified qPCR samples: the residual SD is fixed so that a maximum-likelihood fit is
    # allowed (issue 15 refuses fewer quantified samples than free parameters)
    table = read_kinetics(_joint().query("assay == 'qpcr'"))
    sd = {"sigma_qpcr": 0.3}
    first = fit(table, n_starts=6, seed=7, fixed=sd)
    again = fit(table, n_starts=6, seed=7, fixed=sd)
    pd.testing.assert_frame_equal(first.params, again.params, check_exact=True)
    run = first.settings["starts_run"]
    assert 3 <= run < 6
    # the same starts were run, so stopping at ``run`` is the fit with ``n_starts=run``
    capped = fit(table, n_starts=run, seed=7, fixed=sd)
    pd.testing.assert_frame_equal(first.params, capped.params, check_exact=True)
    assert fit(table, n_starts=1, seed=7, fixed=sd).settings["starts_run"] == 1


def test_a_validated_table_with_broken_numbers_is_validated_again():
    table = read_kinetics(_trial_rows())
    broken = table.copy()
    row = np.flatnonzero(~broken["blq"].to_numpy())[0]
    broken.loc[row, "value"] = 0.5 * broken.loc[row, "lloq"]  # quantified but below the LLOQ
    assert "cellkin" in broken.attrs
    with pytest.raises(DataError):
        fit(broken, n_starts=1)


def _trial_rows() -> pd.DataFrame:
    return sample_trial("stein2019", pd.DataFrame([{"subject": "S1", **TRUTH}]), RICH,
                        lloq=50.0, sigma=0.3, seed=4)  # fmt: skip
