"""The population parameters during estimation, and the likelihood of individual parameters
(private).

:class:`Estimates` are the population parameters at one iteration: for each sampled
parameter its regression coefficients (typical value on the estimation scale, then covariate
effects), the covariance Ω of the individual parameters on the estimation scale, and the
residual-error parameters (natural scale). :class:`Evaluator` turns rows of individual
parameters (estimation scale, chain-major rows as in :mod:`cellkin.population._engine`) into
their data log-likelihoods and log prior densities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cellkin.population._design import Design, PopulationData
from cellkin.population._engine import LevelSource, row_loglik

__all__ = ["Estimates", "Evaluator"]


@dataclass
class Estimates:
    """Population parameters at one iteration (a working copy; the result is frozen)."""

    coefficients: list[np.ndarray]  # per sampled parameter: [μ, β...] on the estimation scale
    omega: np.ndarray  # (r, r) over the sampled parameters
    error: np.ndarray  # natural scale, in Design.error_names order

    def copy(self) -> Estimates:
        """An independent copy."""
        return Estimates(
            [c.copy() for c in self.coefficients], self.omega.copy(), self.error.copy()
        )

    def means(self, design: Design) -> np.ndarray:
        """``(n_subjects, r)``: each subject's mean of the sampled parameters, ``Z_i γ``."""
        return np.column_stack(
            [design.design_matrix(j) @ c for j, c in enumerate(self.coefficients)]
        )


class Evaluator:
    """Log-likelihood and log prior of rows of individual parameters."""

    def __init__(self, design: Design, data: PopulationData) -> None:
        self.design = design
        self.data = data
        self.source = LevelSource(design.model, data.n, data.offsets, data.time)
        fixed = np.zeros(len(design.names))
        for name, value in design.fixed.items():
            fixed[design.names.index(name)] = value
        self.fixed_search = design.transform.to_search(fixed)
        self.fixed_mask = np.isin(np.arange(len(design.names)), design.sampled, invert=True)

    def full(self, sampled: np.ndarray) -> np.ndarray:
        """Rows of every structural parameter (estimation scale) from the sampled ones."""
        rows = np.tile(self.fixed_search, (sampled.shape[0], 1))
        rows[:, self.design.sampled] = sampled
        return rows

    def inside(self, sampled: np.ndarray) -> np.ndarray:
        """Whether each row lies inside the parameter bounds (estimation scale)."""
        lower = self.design.lower_search[self.design.sampled]
        upper = self.design.upper_search[self.design.sampled]
        return np.all((sampled > lower) & (sampled < upper), axis=1)

    def levels(self, sampled: np.ndarray) -> np.ndarray:
        """Flat model levels (first assay's unit) of every row at its subject's samples."""
        natural = self.design.transform.to_model(self.full(sampled))
        return self.source.levels(natural[:, : self.design.n_kinetic])

    def loglik(
        self, sampled: np.ndarray, error: np.ndarray, levels: np.ndarray | None = None
    ) -> np.ndarray:
        """``ln p(y_s | ψ_r)`` of every row (−inf outside the bounds or where the model fails)."""
        design, data = self.design, self.data
        natural = design.transform.to_model(self.full(sampled))
        if levels is None:
            levels = self.source.levels(natural[:, : design.n_kinetic])
        theta = np.ascontiguousarray(np.hstack([natural, np.tile(error, (natural.shape[0], 1))]))
        out = np.empty(theta.shape[0])
        row_loglik(
            theta,
            levels,
            data.n,
            data.offsets,
            data.target,
            data.censored,
            data.assay,
            design.n_kinetic,
            design.error_kind,
            design.error_start,
            out,
        )
        out[~self.inside(sampled)] = -np.inf
        return out

    @staticmethod
    def logprior(sampled: np.ndarray, means: np.ndarray, precision: np.ndarray) -> np.ndarray:
        """``−½ (φ − m)ᵀ Ω⁻¹ (φ − m)`` of every row (``means`` already tiled to the rows)."""
        deviation = sampled - means
        return -0.5 * np.einsum("ri,ij,rj->r", deviation, precision, deviation)

    def predictions(self, sampled: np.ndarray, levels: np.ndarray) -> np.ndarray:
        """Predicted level of each sample of each row (assay scale applied), flat."""
        design, data = self.design, self.data
        natural = design.transform.to_model(self.full(sampled))
        n_rows = sampled.shape[0]
        chains = n_rows // data.n
        scales = np.ones((n_rows, len(data.assays)))
        if len(data.assays) > 1:
            scales[:, 1:] = natural[:, design.n_kinetic : design.n_kinetic + len(data.assays) - 1]
        owner = np.repeat(np.arange(data.n), np.diff(data.offsets))
        rows = (np.arange(chains)[:, None] * data.n + owner[None, :]).ravel()
        return levels * scales[rows, np.tile(data.assay, chains)]
