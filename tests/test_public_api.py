"""The public namespace is curated, documented, and its examples run."""

from __future__ import annotations

import doctest
import importlib

import pytest

import cellkin

PUBLIC_MODULES = [
    "cellkin",
    "cellkin.models",
    "cellkin.simulate",
    "cellkin.io",
    "cellkin.errors",
    "cellkin.datasets",
    "cellkin.metrics",
    "cellkin.fit",
    "cellkin.outcomes",
    "cellkin.plot",
    "cellkin.models.ode",
    "cellkin.models.solvers",
]


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_is_documented(module_name):
    module = importlib.import_module(module_name)
    assert module.__doc__, f"{module_name} has no module docstring"
    undocumented = [
        name
        for name in module.__all__
        if not name.startswith("__")
        and callable(getattr(module, name))
        and not (getattr(module, name).__doc__ or "").strip()
    ]
    assert not undocumented, f"{module_name}: undocumented public names {undocumented}"


def test_top_level_exposes_the_foundation_api():
    for name in (
        "read_kinetics",
        "read_subjects",
        "read_lesions",
        "read_adverse_events",
        "write_nonmem",
        "load_example",
        "DataError",
        "ModelError",
        "FitError",
        "CellkinError",
        "models",
        "__version__",
    ):
        assert name in cellkin.__all__ and hasattr(cellkin, name), name
    assert len(cellkin.__all__) <= 30


@pytest.mark.parametrize(
    "module_name",
    [
        "cellkin.models",
        "cellkin.outcomes._recist",
        "cellkin.outcomes._response",
        "cellkin.outcomes._survival",
        "cellkin.outcomes._escalation",
        "cellkin.metrics._exposure_response",
        "cellkin.metrics._exposure_by_outcome",
        "cellkin.plot",
        "cellkin.fit._batch",
        "cellkin.fit._compare",
    ],
)
def test_docstring_examples_run(module_name):
    result = doctest.testmod(importlib.import_module(module_name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
