"""A normal prior on a model's parameters (estimation scale), for maximum a posteriori fits.

A patient's parameters are drawn from a population: on each parameter's estimation scale
(:attr:`~cellkin.models.ParamSpec.scale`: log, logit or linear) they are normal around the
population's typical values with the between-subject covariance Ω. A :class:`Prior` holds
that distribution for some of a model's parameters; ``cellkin.fit(..., prior=...)`` then
maximises the posterior, adding to −2 ln L

.. math:: (\\varphi_I - m)^\\top \\Omega^{-1} (\\varphi_I - m)

(−2 ln of the normal density, up to a constant), and takes the CIs from the curvature of the
posterior. A prior comes from a model's published variability (:meth:`Prior.published`) or
from a population fit (:meth:`cellkin.population.PopulationFit.prior_for`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from cellkin.errors import OptionError
from cellkin.models.base import Model

__all__ = ["Prior"]


@dataclass(frozen=True, eq=False)
class Prior:
    """A multivariate normal prior on the estimation scale of some parameters.

    Parameters
    ----------
    names : tuple of str
        Parameter names (a model's kinetic parameters, or a joint fit's ``scale_<assay>``).
    mean : ndarray, shape (n,)
        Mean on each parameter's estimation scale (e.g. ``ln`` of the typical value).
    covariance : ndarray, shape (n, n)
        Covariance on the estimation scale (Ω); symmetric positive definite.
    source : str
        Where the prior comes from (recorded in the fit's settings).
    """

    names: tuple[str, ...]
    mean: np.ndarray
    covariance: np.ndarray
    source: str = ""
    precision: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names = tuple(self.names)
        mean = np.array(self.mean, dtype=float).reshape(-1)
        covariance = np.array(self.covariance, dtype=float)
        if len(set(names)) != len(names) or mean.size != len(names):
            raise OptionError(f"a prior needs one mean per distinct parameter, got {names}")
        if covariance.shape != (mean.size, mean.size) or not np.isfinite(covariance).all():
            raise OptionError(f"prior covariance must be a finite {mean.size}x{mean.size} matrix")
        if not np.allclose(covariance, covariance.T) or not np.isfinite(mean).all():
            raise OptionError("prior covariance must be symmetric and its mean finite")
        try:
            precision = np.linalg.inv(np.linalg.cholesky(covariance))
        except np.linalg.LinAlgError:
            raise OptionError("prior covariance must be positive definite") from None
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "covariance", covariance)
        object.__setattr__(self, "precision", precision.T @ precision)

    @classmethod
    def published(cls, model: Model) -> Prior:
        """The model's published population: typical values (:attr:`Model.defaults`) and
        between-subject SDs (:attr:`Model.omega`), for the parameters with an SD > 0."""
        names = tuple(n for n in model.param_names if model.omega.get(n, 0.0) > 0)
        if not names:
            raise OptionError(
                f"model `{model.name}` declares no between-subject variability (omega); "
                f"give a Prior or a population fit instead of 'published'"
            )
        search = model.transform.to_search(model.param_vector())
        index = [model.param_names.index(n) for n in names]
        omega = np.array([model.omega[n] for n in names])
        return cls(names, search[index], np.diag(omega**2), f"published ({model.citation})")

    def restricted_to(self, names: Sequence[str]) -> Prior | None:
        """The marginal prior of the parameters among ``names`` (None when none is)."""
        keep = [i for i, n in enumerate(self.names) if n in set(names)]
        if not keep:
            return None
        if len(keep) == len(self.names):
            return self
        return Prior(tuple(self.names[i] for i in keep), self.mean[keep],
                     self.covariance[np.ix_(keep, keep)], self.source)  # fmt: skip

    def to_frame(self):
        """The prior as a table: parameter, mean (estimation scale) and SD."""
        import pandas as pd

        return pd.DataFrame({"parameter": self.names, "mean": self.mean,
                             "sd": np.sqrt(np.diag(self.covariance))})  # fmt: skip
