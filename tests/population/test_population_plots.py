"""Figures of a population fit: each kind draws from the fit's own tables."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from cellkin import plot
from cellkin.errors import OptionError
from cellkin.population import PopulationOptions, fit_population
from cellkin.simulate import sample_trial, virtual_population

QUICK = PopulationOptions(min_exploratory=40, max_exploratory=40, n_smoothing=30, n_draws=50,
                          n_importance=100, n_replicates=50)  # fmt: skip


@pytest.fixture(scope="module")
def population():
    pop = virtual_population("stein2019", 40, seed=2)
    trial = sample_trial("stein2019", pop, [1, 4, 7, 14, 28, 84], lloq=50.0, seed=3)
    return fit_population(trial, progress=False, options=QUICK)


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_gof_draws_every_sample_against_its_individual_prediction(population, ax):
    assert population.plot("gof", ax=ax) is ax
    points = sum(len(line.get_xdata()) for line in ax.get_lines() if line.get_gid() != "identity")
    assert points == population.n_obs
    assert ax.get_xscale() == "log" and "(copies/ug)" in ax.get_xlabel()


def test_vpc_bands_are_the_simulated_intervals_of_the_table(population, ax):
    assert plot.vpc(population, ax=ax) is ax
    median = population.vpc.query("statistic == 'q50'").sort_values("time")
    (line,) = [ln for ln in ax.get_lines() if ln.get_gid() == "observed_q50"]
    np.testing.assert_allclose(line.get_ydata(), median["observed"])
    assert ax.get_yscale() == "log"


def test_npde_and_trajectories(population, ax):
    population.plot("npde", ax=ax)
    references = [ln.get_ydata()[0] for ln in ax.get_lines() if ln.get_gid() == "npde_ref"]
    assert sorted(references) == [-1.96, 0.0, 1.96]
    ax.clear()
    population.plot("trajectories", ax=ax)
    (switch,) = [ln for ln in ax.get_lines() if ln.get_gid() == "end_of_exploration"]
    assert switch.get_xdata()[0] == population.settings["n_exploratory"]


def test_bad_kind_or_assay(population, ax):
    with pytest.raises(OptionError, match="`kind`"):
        population.plot("qq", ax=ax)
    with pytest.raises(OptionError, match="not fitted"):
        plot.population(population, kind="gof", assay="flow", ax=ax)
