r"""SAEM: the stochastic approximation EM algorithm for the population parameters (private).

Each iteration ``k``

1. **simulates** each subject's individual parameters φ_i (estimation scale) by
   Metropolis–Hastings, with saemix's three kernels (Comets, Lavenu & Lavielle 2017):
   proposals from the current population distribution N(Z_iγ, Ω) (kernel 1), a random walk on
   one component at a time (kernel 2) and on all of them (kernel 3), their step sizes adapted
   towards an acceptance rate of 0.4; every subject in one compiled likelihood call per
   proposal (:mod:`cellkin.population._engine`); with ``L`` chains per subject when subjects
   are few (``L = ⌈400/n⌉``, see :data:`ROWS_PER_ITERATION`);
2. **imputes** each censored sample of a log-additive assay from its normal distribution
   truncated at the LLOQ given φ_i (Samson, Lavielle & Mentré 2006), so that the residual
   variance has sufficient statistics;
3. **updates** the sufficient statistics by stochastic approximation,
   :math:`s_k = s_{k-1} + \gamma_k (S(\varphi^{(k)}) - s_{k-1})`, with
   :math:`\gamma_k = 1` during the ``K1`` exploratory iterations and :math:`1/(k - K_1)`
   during the ``K2`` smoothing ones (Delyon, Lavielle & Moulines 1999; Kuhn & Lavielle 2005);
4. **maximises** in closed form: the coefficients γ_j (typical value and covariate effects) by
   least squares of the statistics on each parameter's design, Ω from the second moments
   (restricted to its blocks), σ² of each log-additive assay from the squared residuals; the
   parameters of other error models by a numerical maximisation of the complete likelihood,
   stochastically approximated in the parameters as saemix does.

During the first ``min_exploratory / 2`` iterations the variances are annealed — Ω's diagonal and
σ may shrink by at most 3% per iteration — so that the chains explore before they settle.
Parameters estimated without a random effect are not sampled: every chain holds them at
their current typical value ``Z_iγ_j``, and the M-step maximises the data log-likelihood of the
current chains in their coefficients numerically (Nelder–Mead), stochastically approximated in
the parameters, :math:`\gamma \leftarrow \gamma + \gamma_k(\gamma^* - \gamma)`, as saemix does
for its fixed effects without variability. (Sampling them with a variance that decays towards
zero, Monolix's treatment, made their estimate the mean of draws that the other parameters'
chains adapt to, not a maximum of the likelihood: on a simulated trial of the example schedule
the fit ended 10 units of −2 ln L above the nested model that fixes those parameters at their
true values.)

The exploratory phase stops, at a check every 25 iterations, once every parameter's mean over
the last 50 iterations differs from its mean over the 50 before by less than a tenth of the
distance it has travelled since the start plus half its spread (at least ``min_exploratory``,
at most ``max_exploratory`` iterations); the smoothing phase runs ``n_smoothing`` iterations. The
run is converged when the exploratory phase stopped on that criterion and the estimates of
the second half of the smoothing phase moved by less than 2% (or 0.02 on a log/logit scale).

References
----------
Delyon B, Lavielle M, Moulines E. Convergence of a stochastic approximation version of the EM
algorithm. Ann Stat 1999;27(1):94-128. doi:10.1214/aos/1018031103
Kuhn E, Lavielle M. Maximum likelihood estimation in nonlinear mixed effects models.
Comput Stat Data Anal 2005;49(4):1020-1038. doi:10.1016/j.csda.2004.07.002
Samson A, Lavielle M, Mentré F. Extension of the SAEM algorithm to left-censored data in
nonlinear mixed-effects model. Comput Stat Data Anal 2006;51(3):1562-1574.
doi:10.1016/j.csda.2006.05.007
Comets E, Lavenu A, Lavielle M. Parameter estimation in nonlinear mixed effect models using
saemix, an R implementation of the SAEM algorithm. J Stat Softw 2017;80(3).
doi:10.18637/jss.v080.i03
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize
from scipy.special import log_ndtr, ndtri

from cellkin.population._design import Design, PopulationData
from cellkin.population._state import Estimates, Evaluator

__all__ = ["Chains", "SAEMOptions", "SAEMRun", "run_saem"]

_TARGET_ACCEPTANCE = 0.4
_ANNEALING = 0.97
_NONRANDOM_OMEGA = 1e-10  # nominal variance of a parameter without a random effect


#: Chains × subjects simulated per iteration at least (the default number of chains per subject
#: is ``⌈ROWS_PER_ITERATION / n⌉``; Monolix's automatic rule is the same with 50). The SAEM
#: statistics of a weakly identified variance are averages over the chains, and with few rows
#: a variance can collapse towards 0 (the model then has no between-subject variability
#: there and the SE of that typical value is far too small). Measured 2026-12-05:
#:
#: * 200 subjects × 6 samples (``benchmarks/bench_population_fit.py``'s trial): with one
#:   chain, ω of the slow-phase fraction ``fb`` ended between 0.23 and 0.49 by seed (NUTS
#:   posterior 0.51 ± 0.09) and −2 ln L up to 7 units above the best; with two (400 rows)
#:   four seeds gave 0.46–0.49 and −2 ln L within the importance-sampling noise;
#: * 20 replicate trials of each design of ``tests/population/reference/trials.py`` (40
#:   subjects × 14 samples; 60 × 4): an ω below 0.1 with a truth ≥ 0.3 in 3/20 and 7/20
#:   fits with ⌈50/n⌉ chains, 0/20 and 1/20 with ⌈200/n⌉, 1/20 and 0/12 with ⌈400/n⌉;
#:   SAEM time per fit 2.7/7.3 s, 3.7/8.8 s and 10.1/14.1 s.
ROWS_PER_ITERATION = 400


@dataclass(frozen=True)
class SAEMOptions:
    """Iteration counts and sampler settings of SAEM (defaults as saemix/Monolix)."""

    min_exploratory: int = 200
    max_exploratory: int = 500
    n_smoothing: int = 200
    n_chains: int | None = None
    kernel_steps: tuple[int, int, int] = (2, 2, 2)
    information: bool = True


@dataclass
class Chains:
    """The Markov chains of the individual parameters: ``(L·n, r)`` rows, chain-major."""

    sampled: np.ndarray
    loglik: np.ndarray
    steps: np.ndarray  # kernel-2 random-walk SD per component
    block_scale: float = 0.5
    accepted: np.ndarray = field(default_factory=lambda: np.zeros(3))

    @property
    def n_rows(self) -> int:
        """Number of rows (chains × subjects)."""
        return self.sampled.shape[0]


@dataclass
class SAEMRun:
    """What a SAEM run leaves: the estimates, the chains, the trajectory and the verdict."""

    estimates: Estimates
    chains: Chains
    trajectory: np.ndarray  # (iterations, n_tracked)
    tracked: tuple[str, ...]
    n_exploratory: int
    n_smoothing: int
    converged: bool
    reason: str
    n_chains: int


class _Statistics:
    """Sufficient statistics, stochastically approximated."""

    def __init__(self, n: int, r: int, n_assays: int) -> None:
        self.phi = np.zeros((n, r))
        self.second = np.zeros((r, r))
        self.residual = np.zeros(n_assays)

    def update(self, gamma: float, phi: np.ndarray, second: np.ndarray, residual: np.ndarray):
        """``s ← s + γ (S − s)`` for every statistic."""
        self.phi += gamma * (phi - self.phi)
        self.second += gamma * (second - self.second)
        self.residual += gamma * (residual - self.residual)


class SAEM:
    """One SAEM run on a design and its data (see the module docstring)."""

    def __init__(
        self,
        design: Design,
        data: PopulationData,
        start: Estimates,
        options: SAEMOptions,
        rng: np.random.Generator,
    ) -> None:
        self.design, self.data, self.options, self.rng = design, data, options, rng
        self.evaluator = Evaluator(design, data)
        self.estimates = start.copy()
        self.n_chains = options.n_chains or max(1, math.ceil(ROWS_PER_ITERATION / data.n))
        self.r = len(design.sampled)
        self.designs = [design.design_matrix(j) for j in range(self.r)]
        self.projections = [np.linalg.pinv(z) for z in self.designs]
        self.nonrandom = np.flatnonzero(~design.random)
        self.counts = np.bincount(data.assay, minlength=len(data.assays)).astype(float)
        omega = self.estimates.omega
        omega[self.nonrandom, :] = 0.0
        omega[:, self.nonrandom] = 0.0
        omega[self.nonrandom, self.nonrandom] = _NONRANDOM_OMEGA
        means = np.tile(start.means(design), (self.n_chains, 1))
        steps = 0.5 * np.sqrt(np.diag(start.omega))
        steps[self.nonrandom] = 0.0
        self.chains = Chains(means.copy(), self.evaluator.loglik(means, start.error), steps)
        self.statistics = _Statistics(data.n, self.r, len(data.assays))

    # -------------------------------------------------------------------------- simulation
    def _accept(
        self, proposal: np.ndarray, loglik: np.ndarray, log_ratio: np.ndarray
    ) -> np.ndarray:
        chains = self.chains
        accept = np.log(self.rng.uniform(size=chains.n_rows)) < log_ratio
        chains.sampled[accept] = proposal[accept]
        chains.loglik[accept] = loglik[accept]
        return accept

    def simulate(self) -> None:
        """One pass of the three Metropolis–Hastings kernels over every row."""
        est, chains, rng = self.estimates, self.chains, self.rng
        n1, n2, n3 = self.options.kernel_steps
        means = np.tile(est.means(self.design), (self.n_chains, 1))
        precision = np.linalg.inv(est.omega)
        root = np.linalg.cholesky(est.omega)
        for _ in range(n1):
            proposal = means + rng.standard_normal(chains.sampled.shape) @ root.T
            proposal[:, self.nonrandom] = means[:, self.nonrandom]
            loglik = self.evaluator.loglik(proposal, est.error)
            self._accept(proposal, loglik, loglik - chains.loglik)
        prior = self.evaluator.logprior(chains.sampled, means, precision)
        rates = np.zeros(self.r)
        for _ in range(n2):
            for j in np.flatnonzero(self.design.random):
                proposal = chains.sampled.copy()
                proposal[:, j] += chains.steps[j] * rng.standard_normal(chains.n_rows)
                loglik = self.evaluator.loglik(proposal, est.error)
                new_prior = self.evaluator.logprior(proposal, means, precision)
                accept = self._accept(proposal, loglik, loglik + new_prior - chains.loglik - prior)
                prior[accept] = new_prior[accept]
                rates[j] += accept.mean() / max(n2, 1)
        block = 0.0
        for _ in range(n3):
            proposal = chains.sampled + chains.block_scale * chains.steps * rng.standard_normal(
                chains.sampled.shape
            )
            loglik = self.evaluator.loglik(proposal, est.error)
            new_prior = self.evaluator.logprior(proposal, means, precision)
            accept = self._accept(proposal, loglik, loglik + new_prior - chains.loglik - prior)
            prior[accept] = new_prior[accept]
            block += accept.mean() / max(n3, 1)
        if n2:
            chains.steps *= 1.0 + 0.4 * (rates - _TARGET_ACCEPTANCE)
        if n3:
            chains.block_scale *= 1.0 + 0.4 * (block - _TARGET_ACCEPTANCE)

    # -------------------------------------------------------------------------- statistics
    def residuals(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Predictions, observed-or-imputed values and squared residuals by assay of the
        current chains (censored samples imputed from their truncated distribution)."""
        est, data = self.estimates, self.data
        levels = self.evaluator.levels(self.chains.sampled)
        f = np.maximum(self.evaluator.predictions(self.chains.sampled, levels), 1e-300)
        chains = self.n_chains
        y = np.tile(data.target, chains)
        censored = np.tile(data.censored, chains)
        assay = np.tile(data.assay, chains)
        squared = np.zeros(len(data.assays))
        for a, name in enumerate(data.assays):
            mine = assay == a
            kind = self.design.errors[name]
            start = self.design.error_start[a] - len(self.design.names)
            if kind == "log-additive":
                sigma = est.error[start]
                residual = np.log(y[mine]) - np.log(f[mine])
                cut = censored[mine]
                if cut.any():
                    z = residual[cut] / sigma  # (ln LLOQ − ln f)/σ
                    u = self.rng.uniform(size=cut.sum())
                    residual[cut] = sigma * ndtri(np.exp(np.log(u) + log_ndtr(z)))
                squared[a] = float(np.sum(residual**2)) / chains
            else:
                sd = self._combined_sd(kind, est.error[start : start + 2], f[mine])
                cut = censored[mine]
                if cut.any():
                    z = (y[mine][cut] - f[mine][cut]) / sd[cut]
                    u = self.rng.uniform(size=cut.sum())
                    imputed = f[mine][cut] + sd[cut] * ndtri(np.exp(np.log(u) + log_ndtr(z)))
                    values = y[mine].copy()
                    values[cut] = imputed
                    y[mine] = values
        return f, y, squared

    @staticmethod
    def _combined_sd(kind: str, parameters: np.ndarray, f: np.ndarray) -> np.ndarray:
        if kind == "combined":
            return np.hypot(parameters[0], parameters[1] * f)
        if kind == "additive":
            return np.full(f.shape, parameters[0])
        return parameters[0] * f

    # -------------------------------------------------------------------------- M-step
    def maximise(self, gamma: float, iteration: int, annealing: bool, f, y, squared) -> None:
        """Update the statistics by stochastic approximation, then the parameters."""
        est, stats, design = self.estimates, self.statistics, self.design
        sampled = self.chains.sampled.reshape(self.n_chains, self.data.n, self.r)
        second = np.einsum("cni,cnj->ij", sampled, sampled) / self.n_chains
        stats.update(gamma, sampled.mean(axis=0), second, squared)
        coefficients = [p @ stats.phi[:, j] for j, p in enumerate(self.projections)]
        for j in self.nonrandom:  # not sampled: their own numerical step below
            coefficients[j] = est.coefficients[j]
        est.coefficients = coefficients
        means = est.means(design)
        n = self.data.n
        omega = (stats.second - stats.phi.T @ means - means.T @ stats.phi + means.T @ means) / n
        omega = 0.5 * (omega + omega.T)
        omega[design.blocks[:, None] != design.blocks[None, :]] = 0.0
        diagonal = np.maximum(np.diag(omega), 1e-8)
        if annealing:
            diagonal = np.maximum(diagonal, _ANNEALING**2 * np.diag(est.omega))
        diagonal[self.nonrandom] = _NONRANDOM_OMEGA
        omega[self.nonrandom, :] = 0.0
        omega[:, self.nonrandom] = 0.0
        omega[np.diag_indices_from(omega)] = diagonal
        if np.linalg.eigvalsh(omega).min() <= 1e-12 * _NONRANDOM_OMEGA:  # not positive definite
            omega = np.diag(diagonal)
        est.omega = omega
        self._nonrandom_step(gamma)
        self._error_step(gamma, annealing, f, y)

    def _nonrandom_step(self, gamma: float) -> None:
        """Coefficients of the parameters without a random effect: the maximum of the current
        chains' data log-likelihood, stochastically approximated; the chains then hold the new
        typical values."""
        if not self.nonrandom.size:
            return
        est, chains = self.estimates, self.chains
        designs = [np.tile(self.designs[j], (self.n_chains, 1)) for j in self.nonrandom]
        sizes = np.cumsum([0] + [est.coefficients[j].size for j in self.nonrandom])
        rows = chains.sampled.copy()

        def place(x: np.ndarray) -> np.ndarray:
            for k, j in enumerate(self.nonrandom):
                rows[:, j] = designs[k] @ x[sizes[k] : sizes[k + 1]]
            return rows

        def minus_loglik(x: np.ndarray) -> float:
            value = -float(np.sum(self.evaluator.loglik(place(x), est.error)))
            return value if np.isfinite(value) else np.inf

        current = np.concatenate([est.coefficients[j] for j in self.nonrandom])
        found = optimize.minimize(
            minus_loglik,
            current,
            method="Nelder-Mead",
            options={"xatol": 1e-4, "fatol": 1e-6, "maxiter": 200 * current.size},
        )
        best = found.x if np.isfinite(found.fun) and found.fun <= minus_loglik(current) else current
        updated = current + gamma * (best - current)
        for k, j in enumerate(self.nonrandom):
            est.coefficients[j] = updated[sizes[k] : sizes[k + 1]].copy()
        chains.sampled[:] = place(updated)

    def _error_step(self, gamma: float, annealing: bool, f: np.ndarray, y: np.ndarray) -> None:
        est, data, design = self.estimates, self.data, self.design
        assay = np.tile(data.assay, self.n_chains)
        for a, name in enumerate(data.assays):
            kind = design.errors[name]
            start = design.error_start[a] - len(design.names)
            if kind == "log-additive":
                sigma = math.sqrt(self.statistics.residual[a] / self.counts[a])
                if annealing:
                    sigma = max(sigma, _ANNEALING * est.error[start])
                est.error[start] = max(sigma, 1e-4)
                continue
            mine = assay == a
            size = 2 if kind == "combined" else 1
            current = np.log(est.error[start : start + size])
            best = _complete_error_optimum(kind, current, f[mine], y[mine])
            if annealing:
                best = np.maximum(best, current + math.log(_ANNEALING))
            est.error[start : start + size] = np.exp(current + gamma * (best - current))

    # -------------------------------------------------------------------------- run
    def tracked(self) -> np.ndarray:
        """The values whose trajectory is recorded: coefficients, ω (SD), error parameters."""
        est = self.estimates
        return np.concatenate([*est.coefficients, np.sqrt(np.diag(est.omega)), est.error])

    def tracked_names(self) -> tuple[str, ...]:
        """Names of :meth:`tracked`."""
        design = self.design
        names = []
        for name in design.sampled_names:
            names += [f"mu_{name}", *(f"beta_{name}_{t}" for t in design.covariates.get(name, ()))]
        names += [f"omega_{n}" for n in design.sampled_names]
        return (*names, *design.error_names)

    def run(self, progress: Callable[[int, int], None] | None = None) -> SAEMRun:
        """Exploratory iterations until stationary, then smoothing ones."""
        options = self.options
        trajectory = []
        k, stop_reason = 0, ""
        while k < options.max_exploratory:
            self._iterate(1.0, k, k < options.min_exploratory // 2)
            trajectory.append(self.tracked())
            k += 1
            if progress is not None:
                progress(k, options.max_exploratory + options.n_smoothing)
            if k >= options.min_exploratory and k % 25 == 0 and _stationary(trajectory):
                stop_reason = f"exploratory phase stationary after {k} iterations"
                break
        n_exploratory = k
        halfway = None
        for m in range(1, options.n_smoothing + 1):
            self._iterate(1.0 / m, n_exploratory + m, False)
            trajectory.append(self.tracked())
            if m == options.n_smoothing // 2:
                halfway = self.tracked()
            if progress is not None:
                progress(n_exploratory + m, n_exploratory + options.n_smoothing)
        converged, reason = _verdict(
            stop_reason, halfway, self.tracked(), self.tracked_names(), options.max_exploratory
        )
        return SAEMRun(
            self.estimates,
            self.chains,
            np.array(trajectory),
            self.tracked_names(),
            n_exploratory,
            options.n_smoothing,
            converged,
            reason,
            self.n_chains,
        )

    def _iterate(self, gamma: float, iteration: int, annealing: bool) -> None:
        self.simulate()
        f, y, squared = self.residuals()
        self.maximise(gamma, iteration, annealing, f, y, squared)
        # the likelihood of the chains under the updated error parameters
        self.chains.loglik = self.evaluator.loglik(self.chains.sampled, self.estimates.error)


def _complete_error_optimum(kind: str, current: np.ndarray, f: np.ndarray, y: np.ndarray):
    """The log error parameters maximising the complete (imputed) normal likelihood."""

    def minus_loglik(log_parameters: np.ndarray) -> float:
        parameters = np.exp(log_parameters)
        sd = SAEM._combined_sd(kind, parameters, f)
        return float(np.sum(np.log(sd) + 0.5 * ((y - f) / sd) ** 2))

    found = optimize.minimize(
        minus_loglik,
        current,
        method="Nelder-Mead",
        options={"xatol": 1e-4, "fatol": 1e-6, "maxiter": 400},
    )
    return found.x if np.isfinite(found.fun) else current


def _stationary(trajectory: list[np.ndarray], window: int = 50) -> bool:
    """Whether every parameter's mean over the last ``window`` iterations differs from its
    mean over the ``window`` before by less than a tenth of the distance it has travelled
    since the start (its range so far) plus half its spread over the two windows."""
    if len(trajectory) < 2 * window:
        return False
    history = np.array(trajectory)
    last, previous = history[-window:], history[-2 * window : -window]
    drift = np.abs(last.mean(axis=0) - previous.mean(axis=0))
    travelled = history.max(axis=0) - history.min(axis=0)
    spread = history[-2 * window :].std(axis=0)
    return bool(np.all(drift <= 0.1 * travelled + 0.5 * spread + 1e-12))


def _verdict(stop_reason, halfway, final, names, max_exploratory) -> tuple[bool, str]:
    if not stop_reason:
        return False, (
            f"the exploratory phase did not become stationary within "
            f"{max_exploratory} iterations; raise `max_exploratory`"
        )
    if halfway is None:
        return True, stop_reason
    change = np.abs(final - halfway) / np.maximum(np.abs(halfway), 1.0)
    moving = [n for n, c in zip(names, change, strict=True) if c > 0.02]
    if moving:
        return False, (
            f"{stop_reason}; still moving in the smoothing phase: {', '.join(moving)}"
            f" (raise `n_smoothing`)"
        )
    return True, f"{stop_reason}; smoothing phase settled"


def run_saem(
    design: Design,
    data: PopulationData,
    start: Estimates,
    options: SAEMOptions,
    rng: np.random.Generator,
    progress=None,
) -> tuple[SAEMRun, SAEM]:
    """Run SAEM from ``start``; returns the run and the sampler (for the conditional step)."""
    saem = SAEM(design, data, start, options, rng)
    return saem.run(progress), saem
