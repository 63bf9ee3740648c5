"""One-subject fits: recovery, likelihood, M3, joint assays, results and bad input.

Independent references: the true parameters of simulated subjects; the log-normal / censored
normal likelihood written out with ``scipy.stats``; the Stein closed-form AUC and root
(``Stein2019.auc`` / ``time_to_level``, checked against ``scipy.integrate.quad`` and the
published typical values in ``tests/models/test_stein.py``).
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cellkin import models
from cellkin.errors import FitError, OptionError
from cellkin.fit import FitResult, fit
from cellkin.simulate import sample_trial, virtual_population

STEIN = models.get("stein2019")
RICH = [-1, 1, 2, 4, 7, 9, 11, 14, 17, 21, 28, 35, 42, 56, 70, 84, 112, 140, 180]
TRUTH = {"cmax": 5000.0, "tmax": 10.0, "foldx": 300.0, "alpha": 0.2, "fb": 0.02, "beta": 0.01}


def _trial(params=TRUTH, *, sigma=0.3, lloq=50.0, seed=1, schedule=RICH, subject="S1"):
    table = pd.DataFrame([{"subject": subject, **params}])
    return sample_trial("stein2019", table, schedule, lloq=lloq, sigma=sigma, seed=seed)


@pytest.fixture(scope="module")
def typical_fit() -> FitResult:
    return fit(_trial(), n_starts=2)


def test_noise_free_data_recover_the_true_parameters():
    result = fit(_trial(sigma=0.01, lloq=1.0), n_starts=2)
    estimates = result.estimates
    for name, value in TRUTH.items():
        assert estimates[name] == pytest.approx(value, rel=0.03), name
    assert result.success, result.message


def test_minus2ll_equals_the_likelihood_written_with_scipy(typical_fit):
    data = typical_fit.data[typical_fit.data["used"]]
    f = STEIN.simulate(data["time"], typical_fit.kinetic_params)
    sigma = typical_fit.estimates["sigma_qpcr"]
    quantified = ~data["blq"].to_numpy()
    y = data["value"].to_numpy()
    # log-normal density of y (includes the 1/y Jacobian) and the censored normal CDF (M3)
    density = stats.lognorm.logpdf(y[quantified], s=sigma, scale=f[quantified])
    censored = stats.norm.logcdf((np.log(data["lloq"].to_numpy()[~quantified])
                                  - np.log(f[~quantified])) / sigma)  # fmt: skip
    expected = -2 * (density.sum() + censored.sum())
    assert typical_fit.minus2ll == pytest.approx(expected, rel=1e-10)
    assert typical_fit.aic == pytest.approx(expected + 2 * 7)
    assert typical_fit.bic == pytest.approx(expected + 7 * np.log(typical_fit.n_obs))


def test_the_estimate_beats_the_truth_on_the_likelihood(typical_fit):
    truth_fit = fit(_trial(), fixed={**TRUTH, "sigma_qpcr": 0.3})
    assert typical_fit.minus2ll <= truth_fit.minus2ll + 1e-6


def test_fits_are_deterministic_for_a_seed():
    first = fit(_trial(seed=5), n_starts=3, seed=7)
    again = fit(_trial(seed=5), n_starts=3, seed=7)
    pd.testing.assert_frame_equal(first.params, again.params)


def test_parameter_table_and_confidence_intervals(typical_fit):
    table = typical_fit.params.set_index("parameter")
    assert list(table.index) == [*STEIN.param_names, "sigma_qpcr"]
    kinetic = table.loc[list(STEIN.param_names)]
    assert (kinetic["ci_lower"] < kinetic["estimate"]).all()
    assert (kinetic["estimate"] < kinetic["ci_upper"]).all()
    assert np.allclose(kinetic["rse_pct"], 100 * kinetic["se"] / kinetic["estimate"])
    assert table.loc["fb", "ci_upper"] < 1 and table.loc["cmax", "unit"] == "copies/ug"
    assert typical_fit.dof == typical_fit.n_obs - 6
    corr = typical_fit.correlation.to_numpy()
    assert np.allclose(np.diag(corr), 1) and np.allclose(corr, corr.T)


def test_fixed_parameters_stay_put_and_have_no_se():
    result = fit(_trial(), fixed={"sigma_qpcr": 0.3, "fb": 0.02}, n_starts=2)
    table = result.params.set_index("parameter")
    assert table.loc["fb", "estimate"] == pytest.approx(0.02)
    assert table.loc["fb", "fixed"] and np.isnan(table.loc["fb", "se"])
    assert result.n_free == 5


def _bias(method: str, n: int = 16) -> float:
    """Median log-ratio of the fitted to the true AUC0-84 over a population."""
    omega = {"cmax": 0.3, "alpha": 0.3, "beta": 0.3}
    population = virtual_population("stein2019", n, seed=3, omega=omega, typical=TRUTH)
    trial = sample_trial("stein2019", population, RICH, lloq=400.0, sigma=0.3, seed=4)
    assert trial.loc[trial["time"] >= 0, "blq"].mean() >= 0.3
    ratios = []
    for subject, rows in trial.groupby("subject"):
        try:
            result = fit(rows, blq=method, n_starts=1, fixed={"sigma_qpcr": 0.3})
        except FitError:  # fewer quantified samples than free parameters: refused (issue 15),
            continue  # the same subjects whatever the BLQ method
        assert result.n_free == 6
        truth = population.set_index("subject").loc[subject, list(STEIN.param_names)]
        ratios.append(np.log(result.metrics(n_draws=0)["auc_0_84"].iloc[0]
                             / STEIN.auc(0, 84, truth.to_dict())))  # fmt: skip
    assert len(ratios) >= 10
    return float(np.median(ratios))


@pytest.mark.filterwarnings("ignore::cellkin.errors.IdentifiabilityWarning")  # not the subject here
def test_m3_is_less_biased_than_dropping_or_imputing_blq():
    """With ≥ 30% BLQ, dropping BLQ (M1) keeps only the high samples of the terminal phase and
    imputing LLOQ/2 invents values; M3 uses the censoring information."""
    m3, m1, half = _bias("m3"), _bias("drop"), _bias("lloq/2")
    assert abs(m3) < abs(m1)
    assert abs(m3) < abs(half)


def test_joint_qpcr_and_flow_fit_shares_kinetics_and_finds_the_scale():
    qpcr = _trial(seed=2)
    flow = sample_trial("stein2019", pd.DataFrame([{"subject": "S1", **TRUTH}]), RICH,
                        lloq=0.5, sigma=0.3, seed=3, assay="flow", unit="cells/uL",
                        scale=0.005)  # fmt: skip
    result = fit(pd.concat([qpcr, flow]), assays=["qpcr", "flow"], n_starts=2)
    table = result.params.set_index("parameter")
    assert table.loc["scale_flow", "ci_lower"] < 0.005 < table.loc["scale_flow", "ci_upper"]
    assert {"sigma_qpcr", "sigma_flow"} <= set(table.index)
    assert result.units == {"qpcr": "copies/ug", "flow": "cells/uL"}
    flow_metrics = result.metrics(n_draws=200).set_index("assay").loc["flow"]
    assert flow_metrics["cmax"] == pytest.approx(table.loc["scale_flow", "estimate"]
                                                 * table.loc["cmax", "estimate"])  # fmt: skip
    assert flow_metrics["unit"] == "cells/uL"


def test_combined_error_model_fits():
    result = fit(_trial(), error="combined", n_starts=2)
    names = set(result.params["parameter"])
    assert {"sigma_add_qpcr", "sigma_prop_qpcr"} <= names
    assert np.isfinite(result.minus2ll)


def test_model_metrics_match_the_closed_forms(typical_fit):
    metrics = typical_fit.metrics(n_draws=400).iloc[0]
    params = typical_fit.kinetic_params
    assert metrics["cmax"] == pytest.approx(params["cmax"])
    assert metrics["auc_0_28"] == pytest.approx(STEIN.auc(0, 28, params), rel=1e-10)
    assert metrics["auc_inf"] == pytest.approx(STEIN.auc(0, np.inf, params), rel=1e-10)
    assert metrics["time_back_to_baseline"] == pytest.approx(STEIN.time_to_level(50, params),
                                                             rel=1e-9)  # fmt: skip
    assert metrics["half_life_terminal"] == pytest.approx(np.log(2) / params["beta"])
    for name in ("cmax", "auc_0_28", "time_back_to_baseline"):
        assert metrics[f"{name}_ci_lower"] < metrics[name] < metrics[f"{name}_ci_upper"]
    assert metrics["time_back_to_baseline_method"] == "model"
    assert metrics["tbb_threshold"] == 50.0


def test_result_faces(typical_fit, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    frame = typical_fit.to_frame()
    assert frame["subject"].unique().tolist() == ["S1"]
    assert "Fit of subject S1" in str(typical_fit.summary())
    assert "<table" in typical_fit._repr_html_()
    t = np.array([1.0, 10.0, 50.0])
    np.testing.assert_allclose(
        typical_fit.predict(t), STEIN.simulate(t, typical_fit.kinetic_params)
    )
    ax = typical_fit.plot()
    assert ax.get_yscale() == "log"
    restored = pickle.loads(pickle.dumps(typical_fit))
    pd.testing.assert_frame_equal(restored.params, typical_fit.params)
    data = typical_fit.data
    assert {"prediction", "residual", "used"} <= set(data.columns)
    assert data.loc[data["time"] < 0, "used"].eq(False).all()
    assert (typical_fit.excluded["reason"] == "pre-infusion sample").all()


@pytest.mark.parametrize(
    ("kwargs", "table", "message"),
    [
        ({}, _trial(TRUTH, lloq=1e5), "quantifiable post-infusion sample"),
        ({"assays": "flow"}, _trial(), r"no \['flow'\] samples"),
        ({"subject": "nobody"}, _trial(), "not in the kinetics table"),
    ],
    ids=["all-BLQ", "assay absent", "unknown subject"],
)
def test_bad_input_raises_fit_error(kwargs, table, message):
    with pytest.raises(FitError, match=message):
        fit(table, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"error": "poisson"}, "`error` must be one of"),
        ({"blq": "m4"}, "`blq` must be one of"),
        ({"blq": "m1"}, "'drop' is Beal's M1"),
        ({"fixed": {"kel": 1.0}}, "unknown parameters"),
        ({"fixed": {"fb": 2.0}}, "outside"),
        ({"bounds": {"tmax": (20, 5)}}, "lower < upper"),
    ],
    ids=[
        "error model",
        "blq method",
        "blq m1",
        "unknown fixed",
        "fixed out of bounds",
        "bad bounds",
    ],
)
def test_bad_options_raise_option_error(kwargs, message):
    with pytest.raises(OptionError, match=message):
        fit(_trial(), **kwargs)


def test_several_subjects_need_a_subject_argument():
    two = pd.concat([_trial(), _trial(subject="S2", seed=9)])
    with pytest.raises(FitError, match="pass `subject=`"):
        fit(two)
    assert fit(two, subject="S2", n_starts=1).subject == "S2"


@pytest.mark.filterwarnings("ignore::cellkin.errors.IdentifiabilityWarning")  # not the subject here
def test_analytic_likelihood_gradient_matches_central_differences():
    """The gradient given to the optimiser (kinetic, assay scale and σ terms, with censored
    samples; compiled, from the model's level function) equals central differences of the
    −2 ln L of the Python objective (levels from the model's simulation kernel)."""
    import importlib

    data_module = importlib.import_module("cellkin.fit._data")
    objective_module = importlib.import_module("cellkin.fit._objective")
    from cellkin.fit._problem import SubjectProblem
    from cellkin.io import read_kinetics

    qpcr = _trial(lloq=400.0, seed=1)
    flow = sample_trial("stein2019", pd.DataFrame([{"subject": "S1", **TRUTH}]), RICH,
                        lloq=0.5, sigma=0.3, seed=2, assay="flow", unit="cells/uL",
                        scale=0.005)  # fmt: skip
    table = read_kinetics(pd.concat([qpcr, flow]))
    result = fit(table, assays=["qpcr", "flow"], n_starts=1)
    obs, _, _ = data_module.observations(table, ("qpcr", "flow"), "m3", "S1")
    assert obs.n_censored > 0
    errors = {"qpcr": "log-additive", "flow": "log-additive"}
    problem = SubjectProblem(result.model, obs, result.layout, errors)
    objective = objective_module.CompiledObjective.from_problem(problem)
    search = problem.transform.to_search(result.params["estimate"].to_numpy())
    search = search + np.linspace(-0.15, 0.15, search.size)
    numeric = []
    for j in range(search.size):
        step = 1e-6 * max(1.0, abs(search[j]))
        up, down = search.copy(), search.copy()
        up[j] += step
        down[j] -= step
        difference = problem.minus2ll(problem.transform.to_model(up)) - problem.minus2ll(
            problem.transform.to_model(down)
        )
        numeric.append(difference / (2 * step))
    np.testing.assert_allclose(objective.value_and_gradient(search)[1], numeric, rtol=1e-5,
                               atol=1e-5)  # fmt: skip


def test_estimate_at_a_bound_stays_inside_it_and_predicts():
    """exp(ln(bound)) can fall an ulp outside the bound; the fit clips it, so predict/plot
    work for a subject whose slow phase is pinned at its lower bound."""
    from cellkin.models.transforms import Transform

    lower, upper = np.array([1e-5, 1e-7]), np.array([20.0, 1 - 1e-7])
    transform = Transform(("log", "logit"), lower, upper)
    edge = transform.to_model(np.array([np.log(1e-5) - 1e-15, -40.0]))
    assert edge[0] == 1e-5 and edge[1] == 1e-7
    assert np.exp(np.log(1e-5)) < 1e-5  # the rounding this guards against


@pytest.mark.filterwarnings("ignore::cellkin.errors.IdentifiabilityWarning")  # not the subject here
def test_parameters_estimated_on_a_bound_are_flagged():
    """A well-informed subject has none; a bound that excludes the truth (foldx ≤ 30 where
    the truth is 300) pins that parameter, and the result says so in its statistics and
    summary."""
    free = fit(_trial(), n_starts=2)
    assert free.at_bounds == ()
    assert free.fit_statistics().at[0, "at_bounds"] == ""
    pinned = fit(_trial(), n_starts=2, bounds={"foldx": (1.5, 30.0)})
    assert pinned.estimates["foldx"] == pytest.approx(30.0, rel=1e-9)
    assert pinned.at_bounds == ("foldx",)
    assert pinned.fit_statistics().at[0, "at_bounds"] == "foldx"
    assert "on a bound" in str(pinned.summary()) and "foldx" in str(pinned.summary())
    assert "parameter_at_bound" in pinned.issue_codes and not pinned.reliable  # issue 15
    fixed = fit(_trial(), n_starts=2, fixed={"foldx": 30.0}, bounds={"foldx": (1.5, 30.0)})
    assert "foldx" not in fixed.at_bounds  # a fixed parameter is not an estimate
