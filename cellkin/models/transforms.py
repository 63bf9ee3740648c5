"""Explicit reparameterisation between a parameter's natural and estimation scales.

CAR-T rate constants and peaks span orders of magnitude, so parameters are estimated on the
scale their :class:`~cellkin.models.ParamSpec` declares — ``log`` (``φ = ln θ``), ``logit``
(``φ = ln(θ/(1−θ))``, fractions) or ``linear`` — and reported on the natural scale, with
confidence limits transformed from the estimation scale (so they respect the bounds) and
standard errors by the delta method (``SE_θ = |dθ/dφ|·SE_φ``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import expit, logit

__all__ = ["Transform"]


class Transform:
    """Vectorised transforms for a tuple of scales (``"log"``, ``"logit"``, ``"linear"``).

    With natural-scale ``lower``/``upper`` bounds, :meth:`to_model` clips its result to them:
    ``exp(ln(bound))`` can land an ulp outside the bound, which the model would refuse.
    """

    def __init__(
        self,
        scales: tuple[str, ...],
        lower: np.ndarray | None = None,
        upper: np.ndarray | None = None,
    ) -> None:
        self.scales = tuple(scales)
        kinds = np.array(self.scales)
        self._log = kinds == "log"
        self._logit = kinds == "logit"
        self._lower = None if lower is None else np.asarray(lower, dtype=float)
        self._upper = None if upper is None else np.asarray(upper, dtype=float)

    def to_search(self, natural: np.ndarray) -> np.ndarray:
        """Natural → estimation scale (bounds map to ±inf where the transform diverges)."""
        x = np.asarray(natural, dtype=float)
        out = x.copy()
        with np.errstate(divide="ignore"):
            out[..., self._log] = np.log(x[..., self._log])
            out[..., self._logit] = logit(x[..., self._logit])
        return out

    def to_model(self, search: np.ndarray) -> np.ndarray:
        """Estimation → natural scale."""
        x = np.asarray(search, dtype=float)
        out = x.copy()
        with np.errstate(over="ignore"):
            out[..., self._log] = np.exp(x[..., self._log])
        out[..., self._logit] = expit(x[..., self._logit])
        if self._lower is not None or self._upper is not None:
            out = np.clip(out, self._lower, self._upper)
        return out

    def derivative(self, search: np.ndarray) -> np.ndarray:
        """dθ/dφ at ``search`` (elementwise)."""
        theta = self.to_model(search)
        out = np.ones_like(theta)
        out[..., self._log] = theta[..., self._log]
        out[..., self._logit] = theta[..., self._logit] * (1 - theta[..., self._logit])
        return out

    def subset(self, indices: Sequence[int]) -> Transform:
        """The transform of the parameters at ``indices`` only."""
        index = np.atleast_1d(np.asarray(indices, dtype=int))
        return Transform(
            tuple(self.scales[i] for i in index),
            None if self._lower is None else self._lower[index],
            None if self._upper is None else self._upper[index],
        )
