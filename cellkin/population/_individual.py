r"""Individual estimates of a population fit: the conditional mode (EBE) and its residuals
(private).

The empirical Bayes estimate (EBE) of subject ``i`` is the mode of its conditional
distribution, the maximum a posteriori

.. math:: \hat\varphi_i = \arg\min_\varphi\; -2\ln p(y_i \mid \varphi) +
          (\varphi - Z_i\hat\gamma)^\top \hat\Omega^{-1} (\varphi - Z_i\hat\gamma),

found for every subject at once by a quasi-Newton method (BFGS with an Armijo backtracking
line search, central-difference gradients of the compiled likelihood), started at the subject's
best conditional draw with the conditional covariance as the first inverse Hessian (a
subject's own BFGS state; every evaluation computes all subjects in one compiled call).
η-shrinkage is :math:`1 - \mathrm{SD}(\hat\eta_j)/\hat\omega_j` (Savic & Karlsson 2009,
doi:10.1208/s12248-009-9133-0).
"""

from __future__ import annotations

import numpy as np

from cellkin.population._conditional import ConditionalDraws
from cellkin.population._saem import SAEM

__all__ = ["empirical_bayes"]

_STEP = 1e-5


def _objective(
    saem: SAEM, x: np.ndarray, means: np.ndarray, precision: np.ndarray, random: np.ndarray
) -> np.ndarray:
    """−2 ln posterior of every subject at ``x`` (its random components)."""
    rows = means.copy()
    rows[:, random] = x
    loglik = saem.evaluator.loglik(rows, saem.estimates.error)
    deviation = x - means[:, random]
    return -2.0 * loglik + np.einsum("si,ij,sj->s", deviation, precision, deviation)


def _gradient(saem, x, means, precision, random) -> np.ndarray:
    out = np.empty_like(x)
    for j in range(x.shape[1]):
        step = _STEP * np.maximum(1.0, np.abs(x[:, j]))
        up, down = x.copy(), x.copy()
        up[:, j] += step
        down[:, j] -= step
        out[:, j] = (
            _objective(saem, up, means, precision, random)
            - _objective(saem, down, means, precision, random)
        ) / (2 * step)
    return np.where(np.isfinite(out), out, 0.0)


def empirical_bayes(saem: SAEM, conditional: ConditionalDraws, max_iterations: int = 200):
    """The EBE of every subject (estimation scale, ``(n, r)``; parameters without a random
    effect at their typical value), and whether each subject's search converged."""
    design, est = saem.design, saem.estimates
    random = np.flatnonzero(design.random)
    means = est.means(design)
    precision = np.linalg.inv(est.omega[np.ix_(random, random)])
    draws = conditional.draws
    n = draws.shape[0]
    candidates = np.concatenate(
        [draws[:, :: max(1, draws.shape[1] // 20)], conditional.mean[:, None]], axis=1
    )[:, :, random]
    scores = np.column_stack(
        [
            _objective(saem, candidates[:, c], means, precision, random)
            for c in range(candidates.shape[1])
        ]
    )
    x = candidates[np.arange(n), np.argmin(scores, axis=1)].copy()
    value = _objective(saem, x, means, precision, random)
    gradient = _gradient(saem, x, means, precision, random)
    inverse = np.stack(
        [
            conditional.covariance(s)[np.ix_(random, random)] / 2 + 1e-8 * np.eye(random.size)
            for s in range(n)
        ]
    )
    done = np.zeros(n, dtype=bool)
    for _ in range(max_iterations):
        direction = -np.einsum("sij,sj->si", inverse, gradient)
        slope = np.einsum("si,si->s", direction, gradient)
        direction[slope >= 0] = -gradient[slope >= 0]
        slope = np.einsum("si,si->s", direction, gradient)
        step = np.ones(n)
        trial_x, trial_value = x.copy(), value.copy()
        pending = ~done
        for _ in range(30):
            if not pending.any():
                break
            candidate = x + step[:, None] * direction
            candidate_value = _objective(saem, candidate, means, precision, random)
            good = pending & (candidate_value <= value + 1e-4 * step * slope)
            trial_x[good], trial_value[good] = candidate[good], candidate_value[good]
            pending &= ~good
            step[pending] *= 0.5
        moved = ~done & ~pending
        new_gradient = _gradient(saem, trial_x, means, precision, random)
        s_vec, y_vec = trial_x - x, new_gradient - gradient
        sy = np.einsum("si,si->s", s_vec, y_vec)
        update = moved & (sy > 1e-12)
        if update.any():
            s_u, y_u, sy_u = s_vec[update], y_vec[update], sy[update][:, None, None]
            hy = np.einsum("sij,sj->si", inverse[update], y_u)
            yhy = np.einsum("si,si->s", y_u, hy)[:, None, None]
            outer_ss = np.einsum("si,sj->sij", s_u, s_u)
            inverse[update] += (sy_u + yhy) * outer_ss / sy_u**2 - (
                np.einsum("si,sj->sij", hy, s_u) + np.einsum("si,sj->sij", s_u, hy)
            ) / sy_u
        decrease = value - trial_value
        x[moved], value[moved], gradient[moved] = (
            trial_x[moved],
            trial_value[moved],
            new_gradient[moved],
        )
        done |= pending | (moved & (decrease < 1e-9 * np.maximum(1.0, np.abs(value))))
        if done.all():
            break
    out = means.copy()
    out[:, random] = x
    return out, done


def shrinkage(ebe: np.ndarray, means: np.ndarray, omega: np.ndarray) -> np.ndarray:
    """η-shrinkage of each random effect: ``1 − SD(η̂)/ω``."""
    eta = ebe - means
    return 1.0 - eta.std(axis=0, ddof=1) / np.sqrt(np.diag(omega))
