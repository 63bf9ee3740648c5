"""The model contract: declarations are checked when a model class is defined."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from cellkin import models
from cellkin.errors import ModelError
from cellkin.models import Model, ParamSpec


@numba.njit  # not cached: test modules are imported by path, not by package name
def _constant_kernel(t, param_matrix, out):  # pragma: no cover - compiled
    status = np.zeros(param_matrix.shape[0], dtype=np.int32)
    for i in range(param_matrix.shape[0]):
        for j in range(t.shape[0]):
            out[i, j] = param_matrix[i, 0]
    return status


def _declare(**overrides):
    attributes = {
        "__doc__": "Constant level. doi:10.0000/none",
        "name": "constant",
        "citation": "none",
        "doi": "10.0000/none",
        "observed_unit": "copies/ug",
        "params": (ParamSpec("level", "copies/ug", 1.0, 0.0, 10.0),),
        "_batch_kernel": staticmethod(_constant_kernel),
    }
    attributes.update(overrides)
    return type("Constant", (Model,), attributes)


def test_a_valid_declaration_simulates():
    model = _declare()()
    np.testing.assert_array_equal(model.simulate([0, 1], {"level": 3.0}), [3.0, 3.0])
    assert model.param_table.loc[0, "unit"] == "copies/ug"


@pytest.mark.parametrize(
    ("spec_args", "message"),
    [
        (("level", "1", 20.0, 0.0, 10.0), "outside its bounds"),
        (("level", "1", 1.0, 5.0, 2.0), "must be below upper"),
        (("Level", "1", 1.0, 0.0, 2.0), "snake_case"),
        (("level", "1", float("nan"), 0.0, 2.0), "must be finite"),
        (("level", "1", 0.5, -1.0, 2.0), "log scale"),
    ],
)
def test_invalid_param_specs_are_rejected(spec_args, message):
    with pytest.raises(ModelError, match=message):
        ParamSpec(*spec_args)


def test_logit_scale_needs_unit_interval_bounds():
    with pytest.raises(ModelError, match="logit"):
        ParamSpec("fraction", "1", 0.5, 0.0, 2.0, "logit")
    with pytest.raises(ModelError, match="scale"):
        ParamSpec("fraction", "1", 0.5, 0.0, 1.0, "probit")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"params": (ParamSpec("a", "1", 1, 0, 2), ParamSpec("a", "1", 1, 0, 2))}, "duplicated"),
        ({"params": ()}, "non-empty tuple"),
        ({"__doc__": "A model without a reference."}, "DOI"),
        ({"omega": {"missing": 0.3}}, "unknown parameters"),
        ({"omega": {"level": -0.3}}, ">= 0"),
        ({"_batch_kernel": None}, "_batch_kernel"),
        ({"name": "Bad Name"}, "snake_case"),
    ],
)
def test_invalid_model_declarations_fail_at_class_definition(overrides, message):
    with pytest.raises(ModelError, match=message):
        _declare(**overrides)


def test_missing_declaration_attribute_is_named():
    attributes = {"__doc__": "doi:x", "name": "x", "citation": "x", "doi": "x", "params": ()}
    with pytest.raises(ModelError, match="`observed_unit`"):
        type("Incomplete", (Model,), attributes)


def test_registry_lists_and_returns_models():
    assert {"stein2019", "stein2019_lag"} <= set(models.available())
    model = models.get("stein2019")
    assert isinstance(model, models.Stein2019)
    assert models.get(model) is model
    with pytest.raises(ModelError, match=r"unknown model 'stein'; available models are \["):
        models.get("stein")


def test_registry_refuses_a_second_model_under_a_taken_name():
    impostor = _declare(name="stein2019")
    with pytest.raises(ModelError, match="already registered"):
        models.register(impostor)
    with pytest.raises(ModelError, match="Model subclasses"):
        models.register(dict)  # type: ignore[arg-type]


def test_spec_lookup():
    assert models.get("stein2019").spec("fb").scale == "logit"
    with pytest.raises(ModelError, match="has no parameter `kel`"):
        models.get("stein2019").spec("kel")
