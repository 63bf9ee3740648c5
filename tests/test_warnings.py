"""Every warning class cellkin exports is raised by some path (issue #14).

A warning class that nothing raises misleads users who filter on it, so each exported class
has a trigger here: real input that makes cellkin emit it. Adding a warning class to
``cellkin.errors`` without a path that raises it fails the first test.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

import cellkin
from cellkin import errors
from cellkin.simulate import sample_trial

#: Stein 2019 parameters of one subject; sampled only from day 14 on, the data cannot
#: determine the expansion (foldx), which `fit` reports with an IdentifiabilityWarning.
TRUTH = {"cmax": 5000.0, "tmax": 10.0, "foldx": 300.0, "alpha": 0.2, "fb": 0.02, "beta": 0.01}


def _duplicate_row() -> None:
    """A sample row repeated exactly: read_kinetics moves the copy to the exclusions."""
    table = pd.DataFrame(
        {"subject": ["S1"] * 3, "time": [1.0, 7.0, 7.0], "value": [10.0, 500.0, 500.0],
         "assay": "qpcr", "unit": "copies/ug", "lloq": 5.0}
    )  # fmt: skip
    cellkin.read_kinetics(table)


def _late_samples_only() -> None:
    table = sample_trial(
        "stein2019", pd.DataFrame([{"subject": "S1", **TRUTH}]),
        [14, 21, 28, 35, 42, 56, 70, 84], lloq=50.0, sigma=0.3, seed=1,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", errors.DataWarning)
        cellkin.fit(table, n_starts=2)


TRIGGERS = {
    errors.CellkinWarning: _duplicate_row,  # the base class, through any subclass
    errors.DataWarning: _duplicate_row,
    errors.IdentifiabilityWarning: _late_samples_only,
}


def _exported_warnings() -> set[type]:
    names = set(errors.__all__) | set(cellkin.__all__)
    found = {getattr(errors, n, None) or getattr(cellkin, n) for n in names}
    return {c for c in found if isinstance(c, type) and issubclass(c, Warning)}


def test_every_exported_warning_has_a_trigger():
    assert _exported_warnings() == set(TRIGGERS)
    assert all(issubclass(c, errors.CellkinWarning) for c in TRIGGERS)


@pytest.mark.parametrize("category", list(TRIGGERS), ids=lambda c: c.__name__)
def test_the_warning_is_raised(category):
    with pytest.warns(category):
        TRIGGERS[category]()
