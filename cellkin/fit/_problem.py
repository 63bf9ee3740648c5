"""One subject's fitting problem: observations, parameter layout and objective (private).

Kept apart from the model (which never sees data) and from the optimiser (lmfit), as PINTS
separates ``ForwardModel``, ``Problem`` and ``LogLikelihood``. The objective is the one
compiled likelihood of :mod:`cellkin.fit.likelihood` evaluated on the model's levels from
its simulation kernel, so it serves every model (the ODE models through their solvers);
models with a closed-form level function are optimised through the compiled
:mod:`cellkin.fit._objective` instead, on the same likelihood. Parameters are laid out as

1. the model's kinetic parameters (``model.param_names``),
2. ``scale_<assay>`` for every assay after the first in a joint fit (assay level =
   scale × model level; the first assay's scale is 1),
3. error parameters per assay: ``sigma_<assay>`` (log-additive) or ``sigma_add_<assay>``,
   ``sigma_prop_<assay>`` (combined),

each with its estimation scale (:class:`~cellkin.models.transforms.Transform`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from cellkin.fit import likelihood
from cellkin.fit._prior import Prior
from cellkin.fit.likelihood import FAILED, Observations
from cellkin.models.base import Model
from cellkin.models.transforms import Transform

__all__ = ["ParameterLayout", "SubjectProblem", "build_layout", "central_differences"]


def central_differences(function, point: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Derivatives of ``function`` (scalar or vector valued) w.r.t. ``point[columns]``.

    Central differences with step ``1e-5·max(1, |x_j|)``; one column per derivative.
    """
    derivatives = []
    for j in columns:
        step = 1e-5 * max(1.0, abs(point[j]))
        up, down = point.copy(), point.copy()
        up[j] += step
        down[j] -= step
        derivatives.append((np.asarray(function(up)) - np.asarray(function(down))) / (2 * step))
    return np.column_stack(derivatives) if derivatives else np.empty((0, 0))


@dataclass(frozen=True)
class ParameterLayout:
    """Names, kinds, units, scales and natural-scale bounds of every fitted quantity."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]  # "kinetic", "scale" or "error"
    units: tuple[str, ...]
    scales: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    initial: np.ndarray
    descriptions: tuple[str, ...]

    def index(self, name: str) -> int:
        """Position of ``name``."""
        return self.names.index(name)


def build_layout(
    model: Model,
    assays: tuple[str, ...],
    units: dict[str, str],
    errors: Mapping[str, str],
    initial_kinetic: dict[str, float],
    initial_scales: dict[str, float],
    typical_level: dict[str, float],
) -> ParameterLayout:
    """Lay out the parameters of a (possibly joint) fit."""
    rows: list[tuple] = []
    for spec in model.params:
        rows.append((spec.name, "kinetic", spec.unit if spec.unit != model.observed_unit
                     else units[assays[0]], spec.scale, spec.lower, spec.upper,
                     initial_kinetic[spec.name], spec.description))  # fmt: skip
    for assay in assays[1:]:
        rows.append((f"scale_{assay}", "scale", f"({units[assay]})/({units[assays[0]]})", "log",
                     1e-12, 1e12, initial_scales[assay],
                     f"{assay} level per unit of {assays[0]} level"))  # fmt: skip
    for assay in assays:
        for name in likelihood.ERROR_PARAMETERS[errors[assay]]:
            rows.append(_error_row(name, assay, units[assay], typical_level[assay]))
    names, kinds, units_, scales, lower, upper, initial, descriptions = zip(*rows, strict=True)
    return ParameterLayout(
        names,
        kinds,
        units_,
        scales,
        np.array(lower, float),
        np.array(upper, float),
        np.array(initial, float),
        descriptions,
    )


def _error_row(name: str, assay: str, unit: str, typical: float) -> tuple:
    """The layout row of one error parameter of ``assay``."""
    if name == "sigma":
        return (f"sigma_{assay}", "error", "1", "log", likelihood.SD_FLOOR, 10.0, 0.5,
                f"residual SD of ln({assay})")  # fmt: skip
    if name == "sigma_add":
        return (f"sigma_add_{assay}", "error", unit, "log", likelihood.SD_FLOOR, 1e12,
                max(0.1 * typical, 0.01), f"additive residual SD of {assay}")  # fmt: skip
    return (f"sigma_prop_{assay}", "error", "1", "log", 1e-6, 10.0, 0.3,
            f"proportional residual SD of {assay}")  # fmt: skip


@dataclass(frozen=True)
class SubjectProblem:
    """Objective and predictions for one subject; ``theta`` is the full natural-scale vector."""

    model: Model
    obs: Observations
    layout: ParameterLayout
    errors: Mapping[str, str]
    prior: Prior | None = None
    transform: Transform = field(init=False)
    error_kind: np.ndarray = field(init=False, repr=False)
    error_start: np.ndarray = field(init=False, repr=False)
    prior_index: np.ndarray = field(init=False, repr=False)
    prior_mean: np.ndarray = field(init=False, repr=False)
    prior_precision: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        layout = self.layout
        set_ = object.__setattr__
        set_(self, "transform", Transform(layout.scales, layout.lower, layout.upper))
        first = self.n_kinetic + len(self.obs.assays) - 1
        kinds, starts = likelihood.error_layout(self.errors, self.obs.assays, first)
        set_(self, "error_kind", kinds)
        set_(self, "error_start", starts)
        prior = self.prior
        names = () if prior is None else prior.names
        set_(self, "prior_index", np.array([layout.index(n) for n in names], dtype=np.int64))
        set_(self, "prior_mean", np.zeros(0) if prior is None else prior.mean)
        set_(self, "prior_precision", np.zeros((0, 0)) if prior is None else prior.precision)

    @property
    def n_kinetic(self) -> int:
        """Number of kinetic parameters (the model's)."""
        return len(self.model.params)

    def split(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """(kinetic vector, per-assay scale vector, each assay's error parameters)."""
        k, n_assays = self.n_kinetic, len(self.obs.assays)
        scales = np.concatenate([[1.0], theta[k : k + n_assays - 1]])
        errors = {}
        for a, assay in enumerate(self.obs.assays):
            size = len(likelihood.ERROR_PARAMETERS[self.errors[assay]])
            errors[assay] = theta[self.error_start[a] : self.error_start[a] + size]
        return theta[:k], scales, errors

    def levels(self, kinetic: np.ndarray, times: np.ndarray) -> np.ndarray | None:
        """Model level at ``times`` (None when the kernel reports a failure)."""
        out = np.empty((1, times.size))
        status = self.model.serial_kernel(times, kinetic[np.newaxis, :], out)
        return None if status[0] != 0 else out[0]

    def predict(self, theta: np.ndarray) -> np.ndarray | None:
        """Predicted level of every observation (None on kernel failure)."""
        kinetic, scales, _ = self.split(theta)
        level = self.levels(kinetic, self.obs.time)
        return None if level is None else level * scales[self.obs.assay]

    def _minus2ll(self, theta: np.ndarray, z: np.ndarray) -> float:
        """The compiled likelihood at ``theta``, filling ``z`` when it has one entry per sample."""
        level = self.levels(np.ascontiguousarray(theta[: self.n_kinetic]), self.obs.time)
        if level is None:
            return FAILED
        obs = self.obs
        theta = np.ascontiguousarray(theta, dtype=np.float64)
        no_gradient = np.empty((0, self.n_kinetic))
        return float(likelihood.subject_minus2ll(
            theta, level, no_gradient, obs.target, np.ascontiguousarray(obs.censored),
            np.ascontiguousarray(obs.assay, dtype=np.int64), self.n_kinetic, self.error_kind,
            self.error_start, np.empty(0), z,
        ))  # fmt: skip

    def minus2ll(self, theta: np.ndarray) -> float:
        """−2 ln L with all constants, plus the prior's ``(φ_I − m)ᵀP(φ_I − m)`` when there
        is one (:data:`~cellkin.fit.likelihood.FAILED` where the model fails)."""
        value = self._minus2ll(theta, np.empty(0))
        if value >= FAILED or self.prior is None:
            return value
        deviation = self.transform.to_search(theta)[self.prior_index] - self.prior_mean
        return value + float(deviation @ self.prior_precision @ deviation)

    def standardized(self, theta: np.ndarray) -> np.ndarray | None:
        """Standardised residual (or M3 argument) of every observation at ``theta``."""
        z = np.full(self.obs.n, np.nan)
        return None if self._minus2ll(theta, z) >= FAILED else z

    def information_jacobian(self, search: np.ndarray, free: np.ndarray) -> np.ndarray:
        """Central-difference Jacobian of the information residuals w.r.t. ``search[free]``,
        error parameters held at their estimates."""
        censored = np.ascontiguousarray(self.obs.censored)

        def info(point: np.ndarray) -> np.ndarray:
            out = np.full(self.obs.n, np.nan)
            z = self.standardized(self.transform.to_model(point))
            if z is not None:
                likelihood.information_residuals(z, censored, out)
            return out

        return central_differences(info, search, np.flatnonzero(free)).reshape(self.obs.n, -1)
