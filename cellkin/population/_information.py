r"""The Fisher information of the population parameters from the conditional draws (private).

With complete data (y, φ) and the complete log-likelihood
:math:`\ell(\theta) = \sum_i \ln p(y_i \mid \varphi_i; \theta) + \ln p(\varphi_i; \theta)`,
each subject's score is :math:`s_i = E[\partial \ell_i]` (Fisher's identity), the expectation
over the subject's conditional distribution of φ_i at the final estimates. The expectations
are averaged over the conditional draws of every subject (the Metropolis–Hastings chains run
on at θ̂ after SAEM, :mod:`cellkin.population._conditional`), chunk by chunk with
:math:`\Delta_i \leftarrow \Delta_i + \gamma_k (\bar g_i - \Delta_i)` and
:math:`G \leftarrow G + \gamma_k (\sum_i \overline{H_i + g_i g_i^\top} - G)`,
:math:`\gamma_k = 1/k` (the running mean). Two estimates of the information follow:

* **empirical** (:meth:`Information.empirical`, the default of ``fit_population``): the
  scatter of the scores about their mean,
  :math:`S = \sum_i (\Delta_i - \bar\Delta)(\Delta_i - \bar\Delta)^\top` (Delattre & Kuhn
  2023; NONMEM's S matrix), with the small-sample factor below. It is positive semi-definite
  by construction and needs only first derivatives and conditional means;
* **Louis** (:meth:`Information.matrix`): the observed information (Louis 1982)
  :math:`I = -\sum_i ( E[\partial^2 \ell_i + \partial \ell_i \partial \ell_i^\top]
  - E[\partial \ell_i] E[\partial \ell_i]^\top )`. For a typical value μ with a random
  effect it is :math:`\sum_i (1/\omega^2 - \mathrm{Var}(\varphi_i \mid y_i)/\omega^4)`, a
  difference of two large terms when the random effect is shrunk: the Monte Carlo error of
  the conditional variances, or an estimate of ω² not exactly at the maximum (SAEM's own
  Monte Carlo error), can make it not positive definite. At the exact maximum with exact
  expectations its μ block equals the empirical one,
  :math:`\sum_i (E[\varphi_i \mid y_i] - \mu)^2/\omega^4` (by the score equation of ω²).

**Small-sample factor of the empirical information.** The covariance of θ̂ is about
:math:`(nJ)^{-1}`, J the information of one subject. If the n scores are independent with
covariance J (normal), S is Wishart with n − 1 degrees of freedom and
:math:`E[S^{-1}] = J^{-1}/(n-p-2)` for p parameters (the mean of the inverse Wishart
distribution; Mardia, Kent & Bibby 1979, Multivariate Analysis, §3.8): :math:`S^{-1}` itself
overstates the variances by :math:`n/(n-p-2)` — 1.6× with 40 subjects and 13 parameters.
:meth:`Information.empirical` therefore returns :math:`I = S\,n/(n-p-2)` (for n > p + 2;
S unchanged otherwise), whose inverse is unbiased under that approximation. On 20 simulated
trials of each design of ``tests/population/reference/trials.py`` the uncorrected SEs were
1.0–1.6× the SD of the estimates over the trials on the example schedule (40 subjects,
13 parameters) and the 95% CIs covered the truth in 20 of 20 trials for 5 of 6 typical values.
With the factor, over 40 trials of each design, the mean SE is 0.83–1.14× that SD and
coverage 87.5–95% for every typical value the designs inform (``recovery_summary.csv``).

Louis' information was not positive definite in 3 of 20 fits of the example schedule and 10
of 20 of the sparse one (1–2 chains per subject, the default before ``ROWS_PER_ITERATION``;
500 draws; those SEs NaN); the empirical one in none.

Parameters: the coefficients γ of each parameter with a random effect (typical value on the
estimation scale, covariate effects) and the entries of Ω (variances and, within blocks,
covariances) enter only :math:`\ln p(\varphi_i; \theta)`, a normal density, whose derivatives
are closed forms (with :math:`W = \Omega^{-1}`, :math:`d = \varphi - Z\gamma` and
:math:`E_u = \partial\Omega/\partial\theta_u`: :math:`\partial\ell/\partial\gamma_j = Z_j (Wd)_j`,
:math:`\partial\ell/\partial\theta_u = -\tfrac12 \mathrm{tr}(WE_u) + \tfrac12 d^\top W E_u W d`,
:math:`\partial^2\ell/\partial\theta_u\partial\theta_v = \tfrac12 \mathrm{tr}(WE_vWE_u) -
\tfrac12 d^\top (WE_uWE_vW + WE_vWE_uW) d`,
:math:`\partial^2\ell/\partial\gamma_j\partial\theta_u = -Z_j (WE_uWd)_j`). The coefficients of
parameters without a random effect and the error parameters (on the log scale) enter only the
data term, whose derivatives are taken by central differences of the compiled likelihood.

References: Louis TA. Finding the observed information matrix when using the EM algorithm.
J R Stat Soc B 1982;44(2):226-233. Delattre M, Kuhn E. Computing an empirical Fisher
information matrix estimate in latent variable models through stochastic approximation.
Computo 2023 (https://computo.sfds.asso.fr/published-202311-delattre-fim).
"""

from __future__ import annotations

import numpy as np

from cellkin.population._design import Design
from cellkin.population._state import Estimates, Evaluator

__all__ = ["Information"]

_STEP = 1e-4


class Information:
    """The scores and complete-data derivatives of every subject, averaged over its draws.

    With ``louis=False`` only the scores are accumulated (all :meth:`empirical` needs): the
    second derivatives, by central differences of the likelihood for the data term, are not
    computed."""

    def __init__(
        self, design: Design, estimates: Estimates, n_subjects: int, *, louis: bool = True
    ) -> None:
        self.design = design
        self.louis = louis
        self.random = np.flatnonzero(design.random)
        self.fixed_effect = np.flatnonzero(~design.random)
        blocks = design.blocks[self.random]
        self.pairs = [
            (a, b)
            for a in range(self.random.size)
            for b in range(a, self.random.size)
            if blocks[a] == blocks[b]
        ]
        sizes = [c.size for c in estimates.coefficients]
        self.a_coefficients = [(int(j), sizes[j]) for j in self.random]
        self.b_coefficients = [(int(j), sizes[j]) for j in self.fixed_effect]
        self.n_a = sum(s for _, s in self.a_coefficients) + len(self.pairs)
        self.n_b = sum(s for _, s in self.b_coefficients) + len(design.error_names)
        size = self.n_a + self.n_b
        self.delta = np.zeros((n_subjects, size))
        self.second = np.zeros((size, size))
        self.n_subjects = n_subjects

    # ------------------------------------------------------------------ names
    def names(self) -> list[tuple[str, str]]:
        """``(kind, name)`` of each parameter: coefficient, omega, error."""
        design = self.design
        out: list[tuple[str, str]] = []
        sampled = design.sampled_names
        for j, _ in self.a_coefficients:
            out += [
                ("coefficient", f"{sampled[j]}:{t}")
                for t in ("", *design.covariates.get(sampled[j], ()))
            ]
        out += [
            ("omega", f"{sampled[self.random[a]]},{sampled[self.random[b]]}") for a, b in self.pairs
        ]
        for j, _ in self.b_coefficients:
            out += [
                ("coefficient", f"{sampled[j]}:{t}")
                for t in ("", *design.covariates.get(sampled[j], ()))
            ]
        out += [("error", name) for name in design.error_names]
        return out

    # ------------------------------------------------------------------ accumulation
    def update(
        self,
        gamma: float,
        sampled: np.ndarray,
        estimates: Estimates,
        evaluator: Evaluator,
        n_chains: int,
    ) -> None:
        """Add the chains' complete-data derivatives with step ``gamma``."""
        g_a, h_a = self._random_part(sampled, estimates)
        g_b, h_b = self._data_part(sampled, estimates, evaluator)
        gradient = np.concatenate([g_a, g_b], axis=1)
        n_rows, size = gradient.shape
        mean_gradient = gradient.reshape(n_chains, self.n_subjects, size).mean(axis=0)
        self.delta += gamma * (mean_gradient - self.delta)
        if h_a is None or h_b is None:
            return
        hessian = np.zeros((n_rows, size, size))
        hessian[:, : self.n_a, : self.n_a] = h_a
        hessian[:, self.n_a :, self.n_a :] = h_b
        outer = np.einsum("ri,rj->ij", gradient, gradient) / n_chains
        total = hessian.sum(axis=0) / n_chains + outer
        self.second += gamma * (total - self.second)

    def matrix(self) -> np.ndarray:
        """The observed information by Louis' formula (symmetrised)."""
        if not self.louis:
            raise ValueError("Louis' information needs Information(..., louis=True)")
        information = -(self.second - self.delta.T @ self.delta)
        return 0.5 * (information + information.T)

    def empirical(self) -> np.ndarray:
        """The empirical information: the scatter of the subjects' scores (``delta``, one
        row per subject) about their mean, times the small-sample factor n/(n − p − 2)
        (module docstring) when there are more than p + 2 subjects."""
        n, p = self.delta.shape
        centred = self.delta - self.delta.mean(axis=0)
        scatter = centred.T @ centred
        return scatter * (n / (n - p - 2)) if n > p + 2 else scatter

    def _random_part(
        self, sampled: np.ndarray, est: Estimates
    ) -> tuple[np.ndarray, np.ndarray | None]:
        design, random = self.design, self.random
        n_rows = sampled.shape[0]
        n = self.n_subjects
        means = np.tile(est.means(design), (n_rows // n, 1))[:, random]
        d = sampled[:, random] - means
        omega = est.omega[np.ix_(random, random)]
        w = np.linalg.inv(omega)
        wd = d @ w
        units = []
        for a, b in self.pairs:
            e = np.zeros_like(omega)
            e[a, b] = e[b, a] = 1.0
            units.append(e)
        gradient = np.zeros((n_rows, self.n_a))
        columns, position = [], 0
        for k, (j, size) in enumerate(self.a_coefficients):
            z = np.tile(design.design_matrix(j), (n_rows // n, 1))
            gradient[:, position : position + size] = z * wd[:, [k]]
            columns.append((position, size, z))
            position += size
        wew = [w @ e @ w for e in units]
        for u, (e, a_u) in enumerate(zip(units, wew, strict=True)):
            gradient[:, position + u] = -0.5 * np.trace(w @ e) + 0.5 * np.einsum(
                "ri,ij,rj->r", d, a_u, d
            )
        if not self.louis:
            return gradient, None
        hessian = np.zeros((n_rows, self.n_a, self.n_a))
        for (pk, sk, zk), k in zip(columns, range(len(columns)), strict=True):
            for (pl, sl, zl), m in zip(columns, range(len(columns)), strict=True):
                hessian[:, pk : pk + sk, pl : pl + sl] = -w[k, m] * np.einsum("ri,rj->rij", zk, zl)
        for u, (e, a_u) in enumerate(zip(units, wew, strict=True)):
            column = position + u
            cross = d @ a_u  # (W E_u W d) per row
            for (pk, sk, zk), k in zip(columns, range(len(columns)), strict=True):
                hessian[:, pk : pk + sk, column] = -zk * cross[:, [k]]
                hessian[:, column, pk : pk + sk] = hessian[:, pk : pk + sk, column]
            for v, (f, a_v) in enumerate(zip(units, wew, strict=True)):
                if v < u:
                    continue
                both = a_u @ f @ w + a_v @ e @ w
                value = 0.5 * np.trace(w @ f @ w @ e) - 0.5 * np.einsum("ri,ij,rj->r", d, both, d)
                hessian[:, column, position + v] = value
                hessian[:, position + v, column] = value
        return gradient, hessian

    def _data_part(
        self, sampled: np.ndarray, est: Estimates, evaluator: Evaluator
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Central differences of the data log-likelihood in the coefficients of parameters
        without a random effect and the log error parameters (second differences only for
        Louis' information)."""
        design = self.design
        n_rows, n = sampled.shape[0], self.n_subjects
        base = sampled.copy()
        designs = {
            j: np.tile(design.design_matrix(j), (n_rows // n, 1)) for j, _ in self.b_coefficients
        }
        for j, _ in self.b_coefficients:
            base[:, j] = designs[j] @ est.coefficients[j]
        log_error = np.log(est.error)
        point = np.concatenate([*(est.coefficients[j] for j, _ in self.b_coefficients), log_error])

        def loglik(x: np.ndarray) -> np.ndarray:
            rows, position = base.copy(), 0
            for j, size in self.b_coefficients:
                rows[:, j] = designs[j] @ x[position : position + size]
                position += size
            return evaluator.loglik(rows, np.exp(x[position:]))

        size = point.size
        gradient = np.zeros((n_rows, size))
        shifted = {}
        for u in range(size):
            for sign in (1, -1):
                x = point.copy()
                x[u] += sign * _STEP
                shifted[u, sign] = loglik(x)
            gradient[:, u] = (shifted[u, 1] - shifted[u, -1]) / (2 * _STEP)
        if not self.louis:
            return gradient, None
        hessian = np.zeros((n_rows, size, size))
        centre = loglik(point)
        for u in range(size):
            hessian[:, u, u] = (shifted[u, 1] - 2 * centre + shifted[u, -1]) / _STEP**2
        for u in range(size):
            for v in range(u + 1, size):
                corners = []
                for su, sv in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                    x = point.copy()
                    x[u] += su * _STEP
                    x[v] += sv * _STEP
                    corners.append(loglik(x))
                value = (corners[0] - corners[1] - corners[2] + corners[3]) / (4 * _STEP**2)
                hessian[:, u, v] = hessian[:, v, u] = value
        return gradient, hessian
