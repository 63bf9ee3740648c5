"""Metrics of every subject of a population fit, from its conditional distribution (#18).

Independent references: the Stein 2019 closed form written here with NumPy (Cmax = the
``cmax`` parameter at Tmax = ``tmax``; the AUC integrated piecewise in closed form, as
``reference/trials.py`` does for the recovery study) evaluated on the subject's conditional
draws and summarised with ``numpy.percentile``; and, for a richly sampled subject, its own
per-subject fit (``cellkin.fit``), whose metrics must agree with the population's within CI.
The trial is simulated by ``cellkin.simulate`` from known typical values.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cellkin
from cellkin.errors import OptionError
from cellkin.population import PopulationOptions, fit_population
from cellkin.simulate import sample_trial, virtual_population

TRUTH = {"cmax": 20000.0, "tmax": 10.0, "foldx": 1000.0, "alpha": 0.2, "fb": 0.02, "beta": 0.01}
OMEGA = {"cmax": 0.6, "tmax": 0.3, "foldx": 0.5, "alpha": 0.4, "fb": 0.5, "beta": 0.4}
SCHEDULE = [1, 4, 7, 10, 14, 21, 28, 56, 84]
RICH = [1, 2, 4, 6, 7, 8, 9, 10, 11, 12, 14, 17, 21, 24, 28, 35, 42, 56, 70, 84, 112, 140]
QUICK = PopulationOptions(
    min_exploratory=80, max_exploratory=150, n_smoothing=60, n_draws=200, n_importance=100,
    n_replicates=0,
)  # fmt: skip
METRICS = Path(cellkin.__file__).parent / "metrics"


def _stein_auc(p: np.ndarray, start: float, end: float) -> np.ndarray:
    """AUC over [start, end] of Stein rows ``p`` (cmax, tmax, foldx, alpha, fb, beta)."""
    cmax, tmax, foldx, alpha, fb, beta = p.T
    rho = np.log(foldx) / tmax
    a, b = np.maximum(start, 0.0), np.minimum(end, tmax)
    rising = np.where(b > a, cmax / foldx * (np.exp(rho * b) - np.exp(rho * a)) / rho, 0.0)
    a, b = np.maximum(start, tmax) - tmax, np.maximum(end, tmax) - tmax
    falling = cmax * ((1 - fb) * (np.exp(-alpha * a) - np.exp(-alpha * b)) / alpha
                      + fb * (np.exp(-beta * a) - np.exp(-beta * b)) / beta)  # fmt: skip
    return rising + np.where(b > a, falling, 0.0)


@pytest.fixture(scope="module")
def trial() -> pd.DataFrame:
    population = virtual_population("stein2019", 30, seed=11, omega=OMEGA, typical=TRUTH)
    table = sample_trial("stein2019", population, SCHEDULE, lloq=100.0, sigma=0.3, seed=12)
    one = pd.DataFrame([{"subject": "RICH", **TRUTH, "cmax": 30000.0, "tmax": 12.0}])
    rich = sample_trial("stein2019", one, RICH, lloq=100.0, sigma=0.3, seed=13)
    first = table[table["subject"] == table["subject"].iloc[0]]
    pre = first.assign(subject="PRE", time=-first["time"] - 1.0)  # no post-infusion sample
    return pd.concat([table, rich, pre], ignore_index=True)


@pytest.fixture(scope="module")
def population(trial):
    return fit_population(trial, seed=2, progress=False, options=QUICK)


@pytest.fixture(scope="module")
def metrics(population):
    return population.metrics()


def test_every_subject_has_a_row_named_as_the_per_subject_metrics(population, metrics, trial):
    assert list(metrics["subject"]) == [*population.subjects, "PRE"]
    single = cellkin.fit(trial[trial["subject"] == population.subjects[0]], n_starts=1)
    assert list(metrics.columns) == list(single.metrics(n_draws=20).columns)
    failure = metrics.set_index("subject").loc["PRE"]
    assert np.isnan(failure["cmax"]) and not failure["success"] and not failure["reliable"]
    assert failure["exclude_reason"].startswith("not in the population fit: no post-infusion")
    assert not failure[[c for c in metrics.columns if c.endswith("_extrapolated")]].any()
    fitted = metrics[metrics["subject"] != "PRE"]
    assert fitted["success"].all() == population.converged
    assert np.isfinite(fitted[["cmax", "tmax", "auc_0_28", "cmax_ci_lower"]]).all().all()
    info = metrics.attrs["cellkin"]
    assert info["source"] == "population (conditional)" and info["n_draws"] == 200
    assert info["population"]["n_failures"] == 1


def test_estimates_and_cis_are_the_median_and_percentiles_over_the_conditional_draws(
    population, metrics
):
    table = metrics.set_index("subject")
    for subject in population.subjects[:5]:
        draws = population.individual_parameters(subject, draws=True)[:, :6]
        reference = {
            "cmax": draws[:, 0],
            "tmax": draws[:, 1],
            "auc_0_28": _stein_auc(draws, 0.0, 28.0),
            "auc_0_84": _stein_auc(draws, 0.0, 84.0),
        }
        for name, values in reference.items():
            expected = np.percentile(values, [50.0, 2.5, 97.5])
            found = table.loc[subject, [name, f"{name}_ci_lower", f"{name}_ci_upper"]]
            np.testing.assert_allclose(found.to_numpy(float), expected, rtol=1e-9)
    inside = (metrics["cmax_ci_lower"] <= metrics["cmax"]) & (
        metrics["cmax"] <= metrics["cmax_ci_upper"]
    )
    assert inside[metrics["subject"] != "PRE"].all()


def test_a_richly_sampled_subject_agrees_with_its_own_fit_within_ci(population, metrics, trial):
    table = metrics.set_index("subject")
    own = cellkin.fit(trial[trial["subject"] == "RICH"], n_starts=2)
    assert own.reliable
    own = own.metrics().iloc[0]
    for name in ("cmax", "tmax", "auc_0_28", "auc_0_84"):
        mine = table.loc["RICH"]
        assert mine[f"{name}_ci_lower"] <= own[name] <= mine[f"{name}_ci_upper"], name
        assert own[f"{name}_ci_lower"] <= mine[name] <= own[f"{name}_ci_upper"], name


def test_fewer_draws_and_bad_options(population):
    few = population.metrics(n_draws=50)
    assert few.attrs["cellkin"]["n_draws"] == 50
    with pytest.raises(OptionError, match="n_draws"):
        population.metrics(n_draws=0)


def test_metrics_do_not_import_the_population_layer_at_module_level():
    for path in METRICS.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only
            names = [a.name for a in getattr(node, "names", [])]
            module = getattr(node, "module", None) or ""
            assert not any(n.startswith("cellkin.population") for n in [module, *names]), path


def _stein_levels(p: np.ndarray, t: float) -> np.ndarray:
    """Stein 2019 level at day ``t`` of rows ``p`` (after Tmax), written out."""
    cmax, tmax, _, alpha, fb, beta = p.T
    tau = np.maximum(t - tmax, 0.0)
    return cmax * ((1 - fb) * np.exp(-alpha * tau) + fb * np.exp(-beta * tau))


def test_an_ode_model_goes_through_the_numeric_path_and_censors_never_returning_draws():
    """``stein2019_ode`` (the Stein model integrated numerically, no closed-form metrics):
    medians and CIs over the conditional draws agree with the closed form written here to the
    accuracy of the metric grid; a time back to baseline that no draw reaches by the horizon
    is censored there, estimate and CI limits alike."""
    published = virtual_population("stein2019", 6, seed=1)  # the model's published ω
    six = sample_trial("stein2019", published, SCHEDULE, lloq=50.0, sigma=0.3, seed=2)
    options = PopulationOptions(min_exploratory=10, max_exploratory=10, n_smoothing=5,
                                n_draws=40, n_importance=10, n_replicates=0,
                                information=False)  # fmt: skip
    fit = fit_population(six, "stein2019_ode", progress=False, options=options)
    table = fit.metrics().set_index("subject")
    censored = 0
    for subject in fit.subjects:
        draws = fit.individual_parameters(subject, draws=True)[:, :6]
        row = table.loc[subject]
        for name, values in (("cmax", draws[:, 0]), ("auc_0_28", _stein_auc(draws, 0, 28))):
            expected = np.percentile(values, [50.0, 2.5, 97.5])
            found = row[[name, f"{name}_ci_lower", f"{name}_ci_upper"]].to_numpy(float)
            # the grid's peak misses the true one by up to (expansion rate × grid step)
            np.testing.assert_allclose(found, expected, rtol=2e-2, err_msg=name)
        assert abs(row["tmax"] - np.median(draws[:, 1])) < 0.1
        if (_stein_levels(draws, row["horizon"]) > row["tbb_threshold"]).all():
            censored += 1
            limits = ["time_back_to_baseline", "time_back_to_baseline_ci_lower",
                      "time_back_to_baseline_ci_upper"]  # fmt: skip
            assert (row[limits] == row["horizon"]).all() and row["time_back_to_baseline_censored"]
    assert censored > 0  # the case is exercised


def test_a_joint_fit_scales_the_second_assay_by_its_individual_scale():
    """qPCR + flow on the example study: a flow row's Cmax is the median over the draws of
    Cmax × scale_flow (the flow level is the qPCR curve times the subject's scale)."""
    quick = PopulationOptions(min_exploratory=40, max_exploratory=40, n_smoothing=20,
                              n_draws=50, n_importance=50, n_replicates=0)  # fmt: skip
    study = cellkin.load_example()
    fit = fit_population(study.kinetics, assays=["qpcr", "flow"], progress=False, options=quick)
    metrics = fit.metrics()
    assert len(metrics) == 2 * fit.n_subjects
    flow = metrics[metrics["assay"] == "flow"].set_index("subject")
    assert set(flow["unit"]) == {"cells/uL"}
    scale = list(fit.design.names).index("scale_flow")
    for subject in fit.subjects[:5]:
        draws = fit.individual_parameters(subject, draws=True)
        expected = np.percentile(draws[:, 0] * draws[:, scale], [50.0, 2.5, 97.5])
        found = flow.loc[subject, ["cmax", "cmax_ci_lower", "cmax_ci_upper"]].to_numpy(float)
        np.testing.assert_allclose(found, expected, rtol=1e-9)
