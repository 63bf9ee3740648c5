r"""Uncertainty of a fit: the information covariance, the stationarity check and the
parameter table with SEs and CIs (private).

The covariance of the estimation-scale parameters is :math:`(J^\top J)^{-1}\,n/(n-p)`, with
:math:`J` the Jacobian of the information residuals (standardised residuals, and
:math:`\sqrt{-2\ln\Phi}` for censored samples) at the estimate, error parameters held fixed
— robust to a kink of the curve (Stein's Tmax), where Hessian-based SEs collapse when the kink
falls on a sample time. Confidence limits use t quantiles with ``n − p`` degrees of freedom on
the estimation scale and are transformed back (so they respect the bounds); SEs on the
natural scale by the delta method.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from cellkin.fit._objective import CompiledObjective
from cellkin.fit._problem import SubjectProblem, central_differences

__all__ = ["Uncertainty", "build_parameter_table", "covariance", "stationary", "t_quantile"]


def stationary(
    problem: SubjectProblem,
    search: np.ndarray,
    structural: np.ndarray,
    covariance: np.ndarray,
    objective: CompiledObjective | None,
) -> bool:
    """Whether the estimate is a stationary point: the Newton decrement of −2LL over the
    structural parameters, ``¼·gᵀ·Cov·g`` (``Cov ≈ I⁻¹``, g by central differences), is below
    1e-3 — the −2LL a further Newton step could still gain.

    L-BFGS-B often stops with an "abnormal line search" at the optimum itself (at the Stein
    kink, or with finite-difference gradients); this scale-free check tells such a stop from
    a real failure. With a compiled objective, a coordinate along which the estimate is a
    local minimum counts 0 in ``g`` (:meth:`CompiledObjective.stationarity_gradient`): when a
    kink time (Stein's Tmax) sits on a sample time, −2 ln L has a kink there and its central
    difference is not 0 although no step along it descends.
    """
    if covariance.size == 0 or not np.isfinite(covariance).all():
        return False
    columns = np.flatnonzero(structural)
    if objective is not None:
        g = objective.stationarity_gradient(search, columns)
    else:
        g = central_differences(
            lambda point: problem.minus2ll(problem.transform.to_model(point)), search, columns
        ).ravel()
    return bool(0.25 * g @ covariance @ g < 1e-3)


@dataclass(frozen=True)
class Uncertainty:
    """The covariance of a fit and what it leaves out.

    Attributes
    ----------
    structural : ndarray of bool
        Parameters in the covariance (free, not error parameters, not pinned at a bound,
        identified).
    matrix : ndarray
        Covariance of the ``structural`` parameters on the estimation scale (NaN when it
        could not be computed).
    note : str
        The parameters left out and why, or the covariance problem ("" when none).
    failed : bool
        No covariance could be computed (the model failed, or too few samples).
    unidentified : tuple of str
        Parameters left out because the information matrix was singular.
    leverage : ndarray or None
        Leverage ``diag(J I⁻¹ Jᵀ)`` of each observation (``J`` the information Jacobian,
        ``I`` the information matrix); None without a covariance.
    """

    structural: np.ndarray
    matrix: np.ndarray
    note: str
    failed: bool
    unidentified: tuple[str, ...] = ()
    leverage: np.ndarray | None = None


def covariance(
    problem: SubjectProblem,
    search: np.ndarray,
    free: np.ndarray,
    objective: CompiledObjective | None,
) -> Uncertainty:
    """Jacobian-based covariance of the identified kinetic/scale parameters (estimation scale).

    Parameters pinned at a bound are left out, and while the information matrix is singular
    (condition number > 1e10) the parameter with the least information is left out too (e.g.
    α once FB reaches 1, when the decline is mono-exponential). Those get no SE and are
    named in the note (and, the unidentified ones, in ``unidentified``), so that the
    identified ones keep their uncertainty.
    """
    lower = problem.transform.to_search(problem.layout.lower)
    upper = problem.transform.to_search(problem.layout.upper)
    tolerance = 1e-6 * (1 + np.abs(search))
    pinned = free & ((np.abs(search - lower) < tolerance) | (np.abs(upper - search) < tolerance))
    structural = free & (np.array(problem.layout.kinds) != "error") & ~pinned
    if objective is not None:
        jacobian = objective.information_jacobian(search, np.flatnonzero(structural))
    else:
        jacobian = problem.information_jacobian(search, structural)
    names = np.array(problem.layout.names)
    notes = [f"{', '.join(names[pinned])} at a bound"] if pinned.any() else []
    if not np.isfinite(jacobian).all():
        return Uncertainty(structural, np.full((structural.sum(),) * 2, np.nan), "model failed",
                           True)  # fmt: skip
    columns = np.flatnonzero(structural)
    full = jacobian.T @ jacobian + _prior_information(problem, columns)
    keep = np.ones(columns.size, dtype=bool)
    while keep.any() and np.linalg.cond(full[np.ix_(keep, keep)]) > 1e10:
        norms = np.where(keep, np.sqrt(np.diag(full)), np.inf)
        keep[int(np.argmin(norms))] = False
    unidentified = tuple(str(n) for n in names[columns[~keep]])
    if unidentified:
        notes.append(f"{', '.join(unidentified)} not identifiable")
        structural[columns[~keep]] = False
    n, p = problem.obs.n, int(keep.sum())
    if p == 0:
        return Uncertainty(structural, np.empty((0, 0)), "; ".join(notes), False, unidentified)
    inverse = np.linalg.inv(full[np.ix_(keep, keep)])
    kept = jacobian[:, keep]
    leverage = np.einsum("ij,jk,ik->i", kept, inverse, kept)
    if problem.prior is not None:  # the posterior's curvature: no small-sample factor
        return Uncertainty(structural, inverse, "; ".join(notes), False, unidentified, leverage)
    if n <= p:
        return Uncertainty(structural, np.full((p, p), np.nan),
                           "too few samples for a covariance", True, unidentified)  # fmt: skip
    return Uncertainty(structural, inverse * n / (n - p), "; ".join(notes), False, unidentified,
                       leverage)  # fmt: skip


def _prior_information(problem: SubjectProblem, columns: np.ndarray) -> np.ndarray:
    """The prior's precision on ``columns`` (in −ln units: ½ of the −2 ln penalty's
    Hessian), zero where a column has no prior."""
    out = np.zeros((columns.size, columns.size))
    if problem.prior is None:
        return out
    position = {int(c): i for i, c in enumerate(columns)}
    rows = [(i, position[int(j)]) for i, j in enumerate(problem.prior_index) if int(j) in position]
    for a, pa in rows:
        for b, pb in rows:
            out[pa, pb] = problem.prior_precision[a, b]
    return out


@functools.lru_cache(maxsize=256)
def t_quantile(probability: float, dof: int) -> float:
    """Student-t quantile (cached: a batch asks for the same few again and again)."""
    return float(stats.t.ppf(probability, dof))


def build_parameter_table(
    problem: SubjectProblem,
    search: np.ndarray,
    free: np.ndarray,
    structural: np.ndarray,
    covariance: np.ndarray,
    dof: int,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Estimates on the natural scale with SE (delta method), RSE% and t-based CIs.

    Error parameters get the asymptotic SE of a log-scale SD, ``SE(ln σ̂) ≈ 1/√(2 n_q)``
    (``n_q`` quantified samples of that assay); other error models' parameters get no SE.
    With a prior, CIs use normal quantiles (the posterior's curvature).
    """
    layout, transform, obs = problem.layout, problem.transform, problem.obs
    se_search = np.full(search.size, np.nan)
    se_search[structural] = np.sqrt(np.clip(np.diag(covariance), 0, None))
    for a, assay in enumerate(obs.assays):
        j = layout.names.index(f"sigma_{assay}") if f"sigma_{assay}" in layout.names else -1
        if j >= 0 and free[j] and problem.errors[assay] == "log-additive":
            quantified = int(((obs.assay == a) & ~obs.censored).sum())
            se_search[j] = 1 / np.sqrt(2 * quantified) if quantified else np.nan
    if problem.prior is not None:
        quantile = float(stats.norm.ppf(0.5 + confidence / 2))
    else:
        quantile = t_quantile(0.5 + confidence / 2, max(dof, 1))
    estimate = transform.to_model(search)
    se = transform.derivative(search) * se_search
    with np.errstate(invalid="ignore"):
        lower = transform.to_model(search - quantile * se_search)
        upper = transform.to_model(search + quantile * se_search)
    return pd.DataFrame(
        {
            "parameter": layout.names,
            "kind": layout.kinds,
            "estimate": estimate,
            "se": se,
            "rse_pct": 100 * se / np.abs(estimate),
            "ci_lower": lower,
            "ci_upper": upper,
            "unit": layout.units,
            "scale": layout.scales,
            "fixed": ~free,
            "description": layout.descriptions,
        },
        copy=False,  # every array above is new; skips pandas' consolidating copy
    )
