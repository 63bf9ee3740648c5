"""Suite-wide setup: load (or compile) the numba kernels once, before the first test.

numba compiles with ``cache=True``: the first run on a machine compiles every kernel (about a
minute), later runs load them from disk in well under a second. Warming them up at the start of
the session keeps that cost out of whichever test happens to run first, so that the durations
``pytest --durations`` reports are the tests' own.
"""

from __future__ import annotations

import numpy as np


def pytest_sessionstart(session) -> None:
    """Touch the compiled paths: closed-form and ODE simulation, a fit, NCA, model metrics and
    the population engine."""
    import pandas as pd

    import cellkin
    from cellkin import models
    from cellkin.population import PopulationOptions, fit_population
    from cellkin.simulate import sample_trial

    stein = models.get("stein2019")
    stein.simulate_many([1.0, 7.0], np.tile(stein.param_vector(), (2, 1)))
    models.get("kimmel2021").simulate([1.0, 7.0])
    truth = pd.DataFrame([{"subject": "S1", **stein.defaults}])
    table = sample_trial("stein2019", truth, [1, 4, 7, 10, 14, 28, 56], lloq=10.0, seed=1)
    cellkin.fit(table, n_starts=1).metrics(n_draws=10)
    cellkin.nca(table)
    two = pd.concat([table, table.assign(subject="S2")], ignore_index=True)
    tiny = PopulationOptions(min_exploratory=2, max_exploratory=2, n_smoothing=2, n_draws=4,
                             n_importance=4, n_replicates=2)  # fmt: skip
    fit_population(two, random=["cmax"], progress=False, options=tiny)
