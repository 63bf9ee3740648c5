"""The public namespace is curated, documented, and its examples run."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

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


def _every_module() -> list[str]:
    """Every module of the package (the public API's docstrings live in private modules)."""
    root = Path(cellkin.__file__).parent
    names = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if not name.endswith("__main__"):
            names.append(name)
    return names


@pytest.mark.parametrize("module_name", _every_module())
def test_docstring_examples_run(module_name):
    """Every example in every docstring runs and shows what it says."""
    result = doctest.testmod(importlib.import_module(module_name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_a_summary_shows_an_empty_table_as_none():
    """An empty table in a summary reads "(none)", not pandas' "Empty DataFrame / Columns: [...]"
    (a batch where no fit had an issue printed that)."""
    import pandas as pd

    from cellkin._display import Summary

    summary = Summary("T", (("Issues", pd.DataFrame(columns=["issue", "fits"])),))
    assert "Empty DataFrame" not in str(summary) and "Issues\n(none)" in str(summary)
    assert "<p>(none)</p>" in summary._repr_html_()
