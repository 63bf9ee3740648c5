r"""Each subject's conditional distribution given the population fit, and the likelihood of the
data (private).

* **Conditional distribution** p(φ_i | y_i; θ̂): the SAEM sampler's Metropolis–Hastings
  kernels run on at the final estimates (no more updates), after a burn-in, and every draw of
  every chain is kept (:func:`conditional_draws`); its mean and SD are the conditional mean
  and SD, its draws give the metrics' confidence intervals.
* **−2 ln L** by importance sampling (as Monolix): for each subject,
  :math:`L_i = E_q[p(y_i|\varphi)\,p(\varphi;\hat\theta)/q(\varphi)]` with ``q`` a multivariate
  Student t (5 degrees of freedom) centred on the conditional mean with the conditional
  covariance; the estimate is averaged over ``n_importance`` draws, and its Monte Carlo SE is
  reported.

Parameters estimated without a random effect are held at their typical value in both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from cellkin.population._saem import SAEM

__all__ = ["ConditionalDraws", "conditional_draws", "importance_minus2ll"]

_NU = 5.0


@dataclass(frozen=True)
class ConditionalDraws:
    """Draws of each subject's sampled parameters (estimation scale): ``(n, n_draws, r)``."""

    draws: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        """Conditional mean per subject, ``(n, r)``."""
        return self.draws.mean(axis=1)

    @property
    def sd(self) -> np.ndarray:
        """Conditional SD per subject, ``(n, r)``."""
        return self.draws.std(axis=1, ddof=1)

    def covariance(self, s: int) -> np.ndarray:
        """Conditional covariance of subject ``s``."""
        return np.atleast_2d(np.cov(self.draws[s], rowvar=False))


def conditional_draws(saem: SAEM, n_draws: int, burn_in: int = 50) -> ConditionalDraws:
    """Run the sampler at the final estimates and keep ``n_draws`` draws per subject
    (``⌈n_draws / chains⌉`` iterations after ``burn_in``)."""
    design = saem.design
    fixed_effect = ~design.random
    means = np.tile(saem.estimates.means(design), (saem.n_chains, 1))
    saem.chains.sampled[:, fixed_effect] = means[:, fixed_effect]
    omega = saem.estimates.omega.copy()
    omega[np.ix_(fixed_effect, fixed_effect)] = np.diag(np.full(fixed_effect.sum(), 1e-14))
    saem.estimates.omega = omega
    saem.chains.loglik = saem.evaluator.loglik(saem.chains.sampled, saem.estimates.error)
    for _ in range(burn_in):
        saem.simulate()
    n, chains, r = saem.data.n, saem.n_chains, saem.r
    iterations = -(-n_draws // chains)
    kept = np.empty((iterations, chains, n, r))
    for k in range(iterations):
        saem.simulate()
        kept[k] = saem.chains.sampled.reshape(chains, n, r)
    draws = kept.transpose(2, 0, 1, 3).reshape(n, iterations * chains, r)[:, :n_draws]
    draws[:, :, fixed_effect] = saem.estimates.means(design)[:, None, fixed_effect]
    return ConditionalDraws(np.ascontiguousarray(draws))


def importance_minus2ll(
    saem: SAEM,
    conditional: ConditionalDraws,
    n_importance: int,
    rng: np.random.Generator,
    batch: int = 200,
) -> tuple[float, float, np.ndarray]:
    """−2 ln L by importance sampling; returns the estimate, its Monte Carlo SE and each
    subject's ``ln L_i``."""
    design, est = saem.design, saem.estimates
    random = np.flatnonzero(design.random)
    n = saem.data.n
    means = est.means(design)
    omega = est.omega[np.ix_(random, random)]
    precision = np.linalg.inv(omega)
    log_det = np.linalg.slogdet(omega)[1]
    location = conditional.mean[:, random]
    roots = np.empty((n, random.size, random.size))
    log_dets = np.empty(n)
    for s in range(n):
        cov = conditional.covariance(s)[np.ix_(random, random)] * 1.0
        cov += np.eye(random.size) * 1e-10 * max(np.trace(cov), 1e-12)
        roots[s] = np.linalg.cholesky(cov)
        log_dets[s] = 2 * np.log(np.diag(roots[s])).sum()
    log_weights = np.empty((n, n_importance))
    done = 0
    while done < n_importance:
        m = min(batch, n_importance - done)
        z = rng.standard_normal((m, n, random.size))
        chi = rng.chisquare(_NU, size=(m, n, 1))
        t = z * np.sqrt(_NU / chi)
        phi_r = location[None] + np.einsum("sij,msj->msi", roots, t)
        rows = np.tile(means, (m, 1))
        rows[:, random] = phi_r.reshape(m * n, random.size)
        loglik = saem.evaluator.loglik(rows, est.error).reshape(m, n)
        deviation = phi_r - means[None, :, random]
        log_prior = -0.5 * np.einsum("msi,ij,msj->ms", deviation, precision, deviation) - 0.5 * (
            log_det + random.size * np.log(2 * np.pi)
        )
        quad = np.einsum("msi,msi->ms", t, t)
        log_q = (
            special.gammaln((_NU + random.size) / 2)
            - special.gammaln(_NU / 2)
            - 0.5 * random.size * np.log(_NU * np.pi)
            - 0.5 * log_dets[None]
            - 0.5 * (_NU + random.size) * np.log1p(quad / _NU)
        )
        log_weights[:, done : done + m] = (loglik + log_prior - log_q).T
        done += m
    log_weights = np.where(np.isfinite(log_weights), log_weights, -np.inf)
    per_subject = special.logsumexp(log_weights, axis=1) - np.log(n_importance)
    shift = log_weights.max(axis=1, keepdims=True)
    weights = np.exp(log_weights - shift)
    relative_se = weights.std(axis=1, ddof=1) / np.maximum(weights.mean(axis=1), 1e-300)
    se = 2.0 * float(np.sqrt(np.sum((relative_se / np.sqrt(n_importance)) ** 2)))
    return float(-2.0 * per_subject.sum()), se, per_subject
