"""One subject's fitting problem: observations, parameter layout and objective (private).

Kept apart from the model (which never sees data) and from the optimiser (lmfit), as PINTS
separates ``ForwardModel``, ``Problem`` and ``LogLikelihood``. The objective is the one
compiled likelihood of :mod:`cellkin.fit._likelihood` evaluated on the model's levels from
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

from dataclasses import dataclass, field

import numpy as np

from cellkin.fit import _likelihood as likelihood
from cellkin.fit._likelihood import FAILED, Observations
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
    error: str,
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
        if error == "log-additive":
            rows.append((f"sigma_{assay}", "error", "1", "log", likelihood.SD_FLOOR, 10.0, 0.5,
                         f"residual SD of ln({assay})"))  # fmt: skip
        else:
            rows.append((f"sigma_add_{assay}", "error", units[assay], "log",
                         likelihood.SD_FLOOR, 1e12, max(0.1 * typical_level[assay], 0.01),
                         f"additive residual SD of {assay}"))  # fmt: skip
            rows.append((f"sigma_prop_{assay}", "error", "1", "log", 1e-6, 10.0, 0.3,
                         f"proportional residual SD of {assay}"))  # fmt: skip
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


@dataclass(frozen=True)
class SubjectProblem:
    """Objective and predictions for one subject; ``theta`` is the full natural-scale vector."""

    model: Model
    obs: Observations
    layout: ParameterLayout
    error: str
    transform: Transform = field(init=False)
    _arrays: tuple = field(init=False, repr=False)

    def __post_init__(self) -> None:
        layout = self.layout
        object.__setattr__(self, "transform", Transform(layout.scales, layout.lower, layout.upper))
        arrays = (self.obs.target, np.ascontiguousarray(self.obs.censored, dtype=np.bool_),
                  np.ascontiguousarray(self.obs.assay, dtype=np.int64), self.n_kinetic,
                  len(self.obs.assays), likelihood.check_error(self.error))  # fmt: skip
        object.__setattr__(self, "_arrays", arrays)

    @property
    def n_kinetic(self) -> int:
        """Number of kinetic parameters (the model's)."""
        return len(self.model.params)

    def split(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(kinetic vector, per-assay scale vector, per-assay error matrix)."""
        k, n_assays = self.n_kinetic, len(self.obs.assays)
        scales = np.concatenate([[1.0], theta[k : k + n_assays - 1]])
        errors = theta[k + n_assays - 1 :].reshape(n_assays, -1)
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
        target, censored, assay, n_kinetic, n_assays, error = self._arrays
        theta = np.ascontiguousarray(theta, dtype=np.float64)
        no_gradient = np.empty((0, n_kinetic))
        return float(likelihood.subject_minus2ll(theta, level, no_gradient, target, censored,
                                                 assay, n_kinetic, n_assays, error,
                                                 np.empty(0), z))  # fmt: skip

    def minus2ll(self, theta: np.ndarray) -> float:
        """−2 ln L with all constants (:data:`~cellkin.fit._likelihood.FAILED` where the model
        fails)."""
        return self._minus2ll(theta, np.empty(0))

    def standardized(self, theta: np.ndarray) -> np.ndarray | None:
        """Standardised residual (or M3 argument) of every observation at ``theta``."""
        z = np.full(self.obs.n, np.nan)
        return None if self._minus2ll(theta, z) >= FAILED else z

    def information_jacobian(self, search: np.ndarray, free: np.ndarray) -> np.ndarray:
        """Central-difference Jacobian of the information residuals w.r.t. ``search[free]``,
        error parameters held at their estimates."""
        censored = self._arrays[1]

        def info(point: np.ndarray) -> np.ndarray:
            out = np.full(self.obs.n, np.nan)
            z = self.standardized(self.transform.to_model(point))
            if z is not None:
                likelihood.information_residuals(z, censored, out)
            return out

        return central_differences(info, search, np.flatnonzero(free)).reshape(self.obs.n, -1)
