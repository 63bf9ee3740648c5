"""The fitting API accepts mechanistic ODE models (issue: mechanistic models)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cellkin import models
from cellkin.fit import fit
from cellkin.simulate import sample_trial

SCHEDULE = [1, 2, 4, 7, 10, 14, 21, 28, 42, 56, 84]


@pytest.mark.slow
def test_leon_triana_fit_recovers_the_free_parameters_with_the_rest_fixed():
    """Simulated subject at the published León-Triana parameters with ρC and τC perturbed;
    the structural parameters a blood series cannot inform are fixed at their truth."""
    model = models.get("leon_triana2021")
    truth = {**model.defaults, "rho_c": 0.7, "tau_c": 10.0}
    table = pd.DataFrame([{"subject": "M1", **truth}])
    trial = sample_trial(model, table, SCHEDULE, lloq=0.05, sigma=0.05, seed=3,
                         assay="flow", unit="cells/uL")  # fmt: skip
    free = ("rho_c", "tau_c")
    fixed = {name: value for name, value in truth.items() if name not in free}
    result = fit(trial, model=model, assays="flow", fixed=fixed, n_starts=2, seed=0)
    estimates = result.estimates
    for name in free:
        assert estimates[name] == pytest.approx(truth[name], rel=0.05), name
    table = result.params.set_index("parameter")
    assert (table.loc[list(free), "ci_lower"] < [truth[n] for n in free]).all()
    assert (table.loc[list(free), "ci_upper"] > [truth[n] for n in free]).all()
    assert np.isfinite(result.metrics(n_draws=100)["cmax"]).all()
