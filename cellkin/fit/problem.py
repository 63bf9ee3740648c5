"""One subject's fitting problem: observations, parameter layout and objective (private API).

Kept apart from the model (which never sees data) and from the optimiser (lmfit), as PINTS
separates ``ForwardModel``, ``Problem`` and ``LogLikelihood``. Parameters are laid out as

1. the model's kinetic parameters (``model.param_names``),
2. ``scale_<assay>`` for every assay after the first in a joint fit (assay level =
   scale × model level; the first assay's scale is 1),
3. error parameters per assay: ``sigma_<assay>`` (log-additive) or ``sigma_add_<assay>``,
   ``sigma_prop_<assay>`` (combined),

each with its estimation scale (:class:`~cellkin.fit.transforms.Transform`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import log_ndtr

from cellkin.fit import likelihood
from cellkin.fit.likelihood import ErrorKind, Observations
from cellkin.fit.transforms import Transform
from cellkin.models.base import Model

__all__ = ["ParameterLayout", "SubjectProblem", "central_differences"]

_FAILED_MINUS2LL = 1e300


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
    error: ErrorKind,
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
    error: ErrorKind
    transform: Transform = field(init=False)

    def __post_init__(self) -> None:
        layout = self.layout
        object.__setattr__(self, "transform", Transform(layout.scales, layout.lower, layout.upper))

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

    def standardized(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(z, sd) per observation at ``theta``."""
        prediction = self.predict(theta)
        if prediction is None:
            return None
        _, _, errors = self.split(theta)
        sd = likelihood.residual_sd(self.obs, prediction, errors, self.error)
        return likelihood.standardized(self.obs, prediction, sd, self.error)

    def minus2ll(self, theta: np.ndarray) -> float:
        """−2 ln L with all constants (a large finite value where the model fails)."""
        result = self.standardized(theta)
        if result is None or not np.isfinite(result[0]).all():
            return _FAILED_MINUS2LL
        z, sd = result
        return float(likelihood.minus2ll_terms(z, sd, self.obs, self.error).sum())

    @property
    def has_gradient(self) -> bool:
        """Whether :meth:`gradient` is analytic (log-additive error and a model that gives
        ``log_level_gradient``, as the Stein family does)."""
        return self.error == "log-additive" and hasattr(self.model, "log_level_gradient")

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        """d(−2 ln L)/dθ on the natural scale (log-additive error; see :attr:`has_gradient`).

        With ``w_i = ∂(−2 ln L)/∂ ln f_i`` — ``−2z/σ`` for a quantified sample and ``2λ(z)/σ``
        for a censored one (``λ = φ/Φ``, the inverse Mills ratio) — the kinetic gradient is
        ``Σ_i w_i ∂ln f_i/∂θ``; each assay scale gets ``Σ_i w_i / scale``; each σ gets
        ``(2 − 2z²)/σ`` per quantified and ``2λz/σ`` per censored sample.
        """
        kinetic, scales, _ = self.split(theta)
        result = self.standardized(theta)
        if result is None:
            return np.full(theta.size, np.nan)
        z, sd = result
        censored = self.obs.censored
        mills = np.exp(-0.5 * z**2 - 0.5 * np.log(2 * np.pi) - log_ndtr(z))
        weight = np.where(censored, 2 * mills / sd, -2 * z / sd)
        gradient = np.zeros(theta.size)
        k, n_assays = self.n_kinetic, len(self.obs.assays)
        gradient[:k] = weight @ self.model.log_level_gradient(self.obs.time, kinetic)
        per_sigma = np.where(censored, 2 * mills * z / sd, (2 - 2 * z**2) / sd)
        for a in range(n_assays):
            rows = self.obs.assay == a
            if a > 0:
                gradient[k + a - 1] = weight[rows].sum() / scales[a]
            gradient[k + n_assays - 1 + a] = per_sigma[rows].sum()
        return gradient

    def information_jacobian(self, search: np.ndarray, free: np.ndarray) -> np.ndarray:
        """Central-difference Jacobian of the information residuals w.r.t. ``search[free]``,
        error parameters held at their estimates."""

        def info(point: np.ndarray) -> np.ndarray:
            result = self.standardized(self.transform.to_model(point))
            if result is None:
                return np.full(self.obs.n, np.nan)
            return likelihood.information_residuals(result[0], self.obs.censored)

        return central_differences(info, search, np.flatnonzero(free)).reshape(self.obs.n, -1)
