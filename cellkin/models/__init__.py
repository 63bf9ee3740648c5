"""Kinetic models of CAR-T expansion, contraction and persistence.

Use :func:`get` to obtain a model by name and :func:`available` to list the registry::

    >>> from cellkin import models
    >>> model = models.get("stein2019")
    >>> round(float(model.simulate([9.3])[0]))
    24000
"""

from __future__ import annotations

from cellkin.errors import ModelError
from cellkin.models.base import Model, ParamSpec
from cellkin.models.cartmath import CARTmathHDLM2, CARTmathRaji
from cellkin.models.chaudhury import Chaudhury2020
from cellkin.models.kimmel import Kimmel2021
from cellkin.models.leon_triana import LeonTriana2021
from cellkin.models.ode import ODEModel
from cellkin.models.stein import Stein2019, Stein2019Lag
from cellkin.models.stein_ode import Stein2019ODE

__all__ = [
    "CARTmathHDLM2",
    "CARTmathRaji",
    "Chaudhury2020",
    "Kimmel2021",
    "LeonTriana2021",
    "Model",
    "ODEModel",
    "ParamSpec",
    "Stein2019",
    "Stein2019Lag",
    "Stein2019ODE",
    "available",
    "get",
    "register",
]

_REGISTRY: dict[str, type[Model]] = {}


def register(model_class: type[Model]) -> type[Model]:
    """Add a model class to the registry under its ``name`` (usable as a decorator)."""
    if not (isinstance(model_class, type) and issubclass(model_class, Model)):
        raise ModelError(f"only Model subclasses can be registered, got {model_class!r}")
    existing = _REGISTRY.get(model_class.name)
    if existing is not None and existing is not model_class:
        raise ModelError(f"a different model is already registered as `{model_class.name}`")
    _REGISTRY[model_class.name] = model_class
    return model_class


def available() -> list[str]:
    """Names of the registered models, sorted."""
    return sorted(_REGISTRY)


def get(name: str | Model) -> Model:
    """Return an instance of the model registered as ``name`` (a model passes through)."""
    if isinstance(name, Model):
        return name
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise ModelError(f"unknown model {name!r}; available models are {available()}") from None


for _model_class in (
    Stein2019,
    Stein2019Lag,
    Stein2019ODE,
    Chaudhury2020,
    CARTmathHDLM2,
    CARTmathRaji,
    Kimmel2021,
    LeonTriana2021,
):
    register(_model_class)
