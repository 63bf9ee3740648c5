r"""Whether a fit's numbers can be used: the reliability verdict (private; see
:attr:`cellkin.fit.FitResult.reliable`).

``FitResult.success`` says that the optimiser converged; it says nothing about whether the data
determine the parameters. On sparse CAR-T data (3–4 samples for 7 parameters) an optimiser
converges happily on numbers that are not worth reading. This module is the one place that
decides, per fit, which of the problems below apply: each is a :class:`FitIssue` (a code from
:data:`ISSUE_CODES` and a message), ``FitResult.issues`` lists them, and a fit is *reliable*
when it has none.

Before any fit, a subject with fewer quantified samples than free parameters is **refused**
(:func:`check_enough_samples` raises :class:`~cellkin.errors.FitError` saying what to do),
unless the fit has a prior (maximum a posteriori), which determines what the data leave open.

The checks, in the order of :data:`ISSUE_CODES`:

* ``not_converged`` — the optimiser did not converge (``success`` is False).
* ``parameter_at_bound`` — a kinetic, scale or error parameter estimated on one of its bounds
  (other than a residual SD at its floor): the likelihood would improve beyond the bound, or
  the data do not determine the parameter; its SE and CI mean nothing.
* ``sigma_at_floor`` — a residual SD at its lower bound: the curve passes through every
  sample, so the residual error, and with it every SE, is unknown.
* ``covariance_singular`` — the information matrix is singular (parameters left out of the
  covariance as not identifiable, so the others' CIs are conditional on them and too narrow)
  or the covariance is missing or not positive definite.
* ``rse_over_100`` — a parameter that drives Cmax, Tmax, AUC0–28 or AUC0–84 with an RSE over
  :data:`RSE_LIMIT_PCT` %: a kinetic parameter whose elasticity ``|∂ ln m/∂φ|`` on its
  estimation scale reaches :data:`DRIVING_ELASTICITY` for one of them, or a scale parameter
  (it carries the second assay's levels). Where the likelihood is that flat its quadratic
  (Wald) approximation, and the CIs built on it, fail. A parameter that drives none of them
  (e.g. the terminal rate on a profile whose AUCs the fast phase carries) affects only the
  half-lives and the time back to baseline, whose own CIs, extrapolation flags and horizon
  say how far they can be trusted (:func:`cellkin.metrics.model_metrics`). Parameters
  under a prior are exempt: their SE is the posterior's, which is close to normal and honest
  where the data say little (a prior's wide SD is not a failure); ``metric_ci_wide`` still
  applies to them.
* ``metric_ci_wide`` — the confidence interval of Cmax, Tmax, AUC0–28 or AUC0–84 spans more
  than :data:`METRIC_CI_DECADES` orders of magnitude: the delta-method (Wald) interval of
  :math:`\ln m` at the fit's level, :math:`\exp(\pm q\,\sqrt{g^\top \Sigma g})` with :math:`g`
  the central-difference gradient of :math:`\ln m` on the estimation scale, :math:`\Sigma` the
  covariance and :math:`q` the quantile of the parameter CIs.
* ``peak_not_bracketed`` — no quantified sample after the model's Tmax: the peak, and the
  decline that defines it, are never observed.
* ``tmax_outside_samples`` — the model's Tmax before the first or after the last
  post-infusion sample: Cmax and Tmax are extrapolated.
* ``tmax_implausible`` — Tmax outside :data:`PLAUSIBLE_TMAX_DAYS` (CAR-T expansion peaks
  within 1–4 weeks of infusion; a Tmax of 240 days usually means times entered in hours).
* ``outlier`` — a quantified sample whose externally studentised residual
  :math:`t_i = z_i/(s_{(i)}\sqrt{1-h_{ii}})` exceeds the Bonferroni limit
  :math:`t_{1-\alpha/(2n)}(n-p-1)`, :math:`\alpha` = :data:`OUTLIER_ALPHA`; :math:`z` are the
  standardised residuals of the assay's :math:`n` quantified samples, :math:`s_{(i)}^2 =
  \sum_{j\ne i} z_j^2/(n-p-1)` their scale without sample :math:`i`, :math:`h_{ii}` the
  leverage :math:`J(J^\top J)^{-1}J^\top` of the information Jacobian and :math:`p` the
  identified parameters (Cook & Weisberg 1982, *Residuals and Influence in Regression*,
  ch. 2; the linearised form for nonlinear least squares). A sample that alone determines a
  parameter (:math:`h_{ii} \approx 1`) cannot be tested, nor can any with
  :math:`n - p - 1 < 1`; a single spike the curve bends to reach then shows up as a bound,
  a singular covariance or a wide CI instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cellkin.errors import FitError
from cellkin.fit._problem import ParameterLayout, SubjectProblem
from cellkin.fit._uncertainty import t_quantile
from cellkin.models.base import Model
from cellkin.models.transforms import Transform

__all__ = [
    "DRIVING_ELASTICITY",
    "ISSUE_CODES",
    "METRIC_CI_DECADES",
    "OUTLIER_ALPHA",
    "PLAUSIBLE_TMAX_DAYS",
    "RSE_LIMIT_PCT",
    "FitIssue",
    "assess",
    "bound_hits",
    "check_enough_samples",
    "peak_metrics",
]

#: Every code a :class:`FitIssue` may carry, with what it means (stable: tables and
#: scripts filter on these codes).
ISSUE_CODES: dict[str, str] = {
    "not_converged": "the optimiser did not converge",
    "parameter_at_bound": "a parameter estimated on one of its bounds",
    "sigma_at_floor": "a residual SD estimated at its lower bound",
    "covariance_singular": "singular or indefinite covariance: parameters not identifiable",
    "rse_over_100": "a kinetic or scale parameter with a relative standard error over 100%",
    "metric_ci_wide": "a Cmax, Tmax or AUC confidence interval spanning over two decades",
    "peak_not_bracketed": "no quantified sample after the model's Tmax",
    "tmax_outside_samples": "the model's Tmax outside the sampled days",
    "tmax_implausible": "a Tmax implausible for CAR-T expansion",
    "outlier": "a sample whose residual is an outlier",
}
#: Largest acceptable relative standard error of a kinetic or scale parameter (%).
RSE_LIMIT_PCT = 100.0
#: A kinetic parameter drives a metric when ``|∂ ln m/∂φ| ≥`` this on its estimation scale
#: (a 10% change of a log-scale parameter moves the metric by at least 1%).
DRIVING_ELASTICITY = 0.1
#: Widest acceptable metric confidence interval, in orders of magnitude (upper/lower = 10²).
METRIC_CI_DECADES = 2.0
#: Days within which a CAR-T expansion peak is plausible.
PLAUSIBLE_TMAX_DAYS = (1.0, 60.0)
#: Family-wise level of the outlier test of one assay's samples (Bonferroni).
OUTLIER_ALPHA = 0.01
#: The metrics whose CI width is checked, and their AUC intervals (days).
_CHECKED = ("cmax", "tmax", "auc_0_28", "auc_0_84")
_INTERVALS = np.array([[0.0, 28.0], [0.0, 84.0]])
_GRID = np.linspace(0.0, 84.0, 1681)  # 0.05-day grid of models without closed forms
_SAME_DAY = 1e-3  # days: a Tmax this close to a sample time is at that sample (the kink)


@dataclass(frozen=True)
class FitIssue:
    """One reason why a fit's numbers should not be used as they are.

    Attributes
    ----------
    code : str
        Machine-readable reason, one of :data:`ISSUE_CODES`.
    message : str
        What was found, for people (names the parameters, samples or values).
    """

    code: str
    message: str

    def __post_init__(self) -> None:
        if self.code not in ISSUE_CODES:
            raise ValueError(f"unknown issue code {self.code!r}; known: {list(ISSUE_CODES)}")

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def check_enough_samples(subject: str, n_quantified: int, free_names: Sequence[str]) -> None:
    """Refuse a maximum-likelihood fit with fewer quantified samples than free parameters."""
    if n_quantified >= len(free_names):
        return
    raise FitError(
        f"subject {subject!r}: {n_quantified} quantified sample(s) for {len(free_names)} free "
        f"parameters ({', '.join(free_names)}); such a fit converges on numbers the data "
        f"cannot support, so it is refused. Fix parameters the data cannot determine "
        f"(`fixed=`, e.g. the decline parameters and the residual SD), pass a prior "
        f"(`prior='published'` or a `cellkin.fit.Prior`), or fit the population "
        f"(`cellkin.fit_population`) and use its prior for each subject."
    )


def bound_hits(
    layout: ParameterLayout, search: np.ndarray, free: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Free parameters on their lower and on their upper bound: within 10⁻⁶ of the
    bound-to-bound range on the estimation scale, where L-BFGS-B stops on a bound."""
    transform = Transform(layout.scales, layout.lower, layout.upper)
    lower, upper = transform.to_search(layout.lower), transform.to_search(layout.upper)
    tolerance = 1e-6 * (upper - lower)
    return free & (search - lower <= tolerance), free & (upper - search <= tolerance)


def peak_metrics(model: Model, kinetic: np.ndarray) -> np.ndarray:
    """Cmax, Tmax, AUC0–28 and AUC0–84 of each row of ``kinetic`` (natural scale, the model's
    parameters): from the model's closed-form metrics where it has them, else from its curve
    on a 0.05-day grid (trapezoids). NaN where the model fails."""
    rows = np.atleast_2d(kinetic)
    out = np.full((rows.shape[0], len(_CHECKED)), np.nan)
    if model.metrics_kernel is not None:
        values = np.empty(len(_INTERVALS) + 7)
        rows = np.ascontiguousarray(rows, dtype=float)
        with np.errstate(all="ignore"):
            for i in range(rows.shape[0]):
                if model.metrics_kernel(rows[i], _INTERVALS, np.nan, values) == 0:
                    out[i] = values[:4]
        return out
    levels = np.empty((rows.shape[0], _GRID.size))
    with np.errstate(all="ignore"):  # the thread-free kernel: no OpenMP in a fitting process
        status = model.serial_kernel(_GRID, np.ascontiguousarray(rows, dtype=float), levels)
    levels[status != 0] = np.nan
    finite = np.isfinite(levels).all(axis=1)
    peak = np.argmax(np.where(np.isfinite(levels), levels, -np.inf), axis=1)
    index = np.arange(rows.shape[0])
    out[:, 0], out[:, 1] = levels[index, peak], _GRID[peak]
    for q, (_, end) in enumerate(_INTERVALS):
        inside = _GRID <= end
        out[:, 2 + q] = np.trapezoid(levels[:, inside], _GRID[inside], axis=1)
    out[~finite] = np.nan
    return out


@dataclass(frozen=True)
class Evidence:
    """What the checks look at, gathered once by the fit."""

    problem: SubjectProblem
    search: np.ndarray  # estimation-scale estimate (full vector)
    free: np.ndarray
    structural: np.ndarray  # parameters in the covariance
    covariance: np.ndarray  # estimation scale, over ``structural``
    unidentified: tuple[str, ...]
    covariance_failed: bool
    leverage: np.ndarray | None  # per observation
    z: np.ndarray | None  # standardised residuals
    rse_pct: np.ndarray
    quantile: float  # of the parameter CIs
    success: bool
    message: str


def assess(evidence: Evidence) -> tuple[FitIssue, ...]:
    """Every issue of one fit, in the order of :data:`ISSUE_CODES`."""
    problem = evidence.problem
    theta = problem.transform.to_model(evidence.search)
    point = peak_metrics(problem.model, theta[: problem.n_kinetic])[0]
    gradient = _metric_gradient(evidence, point)
    found = [
        *_convergence(evidence),
        *_bounds(evidence),
        *_covariance(evidence),
        *_rse(evidence, gradient),
        *_metric_ci(evidence, gradient),
        *_peak(evidence, point[1]),
        *_outliers(evidence),
    ]
    order = list(ISSUE_CODES)
    return tuple(sorted(found, key=lambda issue: order.index(issue.code)))


def _metric_gradient(evidence: Evidence, point: np.ndarray) -> np.ndarray | None:
    """``∂ ln m/∂φ_j`` of the checked metrics (columns) w.r.t. each structural parameter
    (rows) on the estimation scale, by central differences; 0 for a scale parameter (it does
    not move the reference assay's curve). None where a metric is not positive and finite."""
    problem, search = evidence.problem, evidence.search
    columns = np.flatnonzero(evidence.structural)
    if columns.size == 0 or not (np.isfinite(point) & (point > 0)).all():
        return None
    steps = 1e-4 * np.maximum(1.0, np.abs(search[columns]))
    moved = np.repeat(search[np.newaxis], 2 * columns.size, axis=0)  # +h, −h for each column
    index = np.arange(columns.size)
    moved[2 * index, columns] += steps
    moved[2 * index + 1, columns] -= steps
    rows = problem.transform.to_model(moved)[:, : problem.n_kinetic]  # clipped to the bounds
    values = peak_metrics(problem.model, rows)
    with np.errstate(all="ignore"):
        logs = np.log(values).reshape(columns.size, 2, len(_CHECKED))
        gradient = (logs[:, 0, :] - logs[:, 1, :]) / (2 * steps[:, np.newaxis])
    gradient[columns >= problem.n_kinetic] = 0.0
    return gradient if np.isfinite(gradient).all() else None


def _convergence(evidence: Evidence) -> list[FitIssue]:
    if evidence.success:
        return []
    return [FitIssue("not_converged", f"the optimiser did not converge ({evidence.message})")]


def _bounds(evidence: Evidence) -> list[FitIssue]:
    layout = evidence.problem.layout
    low, high = bound_hits(layout, evidence.search, evidence.free)
    error = np.array(layout.kinds) == "error"
    names = np.array(layout.names)
    floor = low & error
    other = (low | high) & ~floor
    issues = []
    if other.any():
        sides = [f"{n} ({'lower' if lo else 'upper'} bound)"
                 for n, lo in zip(names[other], low[other], strict=True)]  # fmt: skip
        issues.append(FitIssue("parameter_at_bound", f"estimated on a bound: {', '.join(sides)}; "
                               "widen the bound or fix the parameter"))  # fmt: skip
    if floor.any():
        issues.append(FitIssue("sigma_at_floor", f"{', '.join(names[floor])} at its floor: the "
                               "curve passes through the samples, so the residual error and "
                               "every SE are unknown"))  # fmt: skip
    return issues


def _covariance(evidence: Evidence) -> list[FitIssue]:
    matrix = evidence.covariance
    if evidence.unidentified:
        return [FitIssue("covariance_singular", f"{', '.join(evidence.unidentified)} not "
                         "identifiable (singular information matrix): the other parameters' "
                         "CIs are conditional on them and too narrow")]  # fmt: skip
    if evidence.covariance_failed or not np.isfinite(matrix).all():
        return [FitIssue("covariance_singular", "no covariance could be computed")]
    if matrix.size and np.linalg.eigvalsh((matrix + matrix.T) / 2).min() <= 0:
        return [FitIssue("covariance_singular", "the covariance is not positive definite")]
    return []


def _rse(evidence: Evidence, gradient: np.ndarray | None) -> list[FitIssue]:
    """RSE over the limit on a parameter that drives a checked metric: elasticity
    ``|∂ ln m/∂φ_j| ≥`` :data:`DRIVING_ELASTICITY` for one of them, or a scale parameter
    (it carries the second assay's levels); every parameter counts when the gradient is
    unknown."""
    problem = evidence.problem
    layout = problem.layout
    driving = evidence.free & (np.array(layout.kinds) != "error")
    driving[problem.prior_index] = False  # the posterior SD, honest where the data say little
    if gradient is not None:
        columns = np.flatnonzero(evidence.structural)
        weak = np.abs(gradient).max(axis=1) < DRIVING_ELASTICITY
        weak &= np.array(layout.kinds)[columns] == "kinetic"
        driving[columns[weak]] = False
    with np.errstate(invalid="ignore"):
        high = driving & (evidence.rse_pct > RSE_LIMIT_PCT)
    if not high.any():
        return []
    listed = ", ".join(f"{layout.names[j]} {evidence.rse_pct[j]:.0f}%"
                       for j in np.flatnonzero(high))  # fmt: skip
    return [FitIssue("rse_over_100", f"relative standard error over {RSE_LIMIT_PCT:.0f}% on a "
                     f"parameter driving Cmax, Tmax or the AUCs: {listed}")]  # fmt: skip


def _metric_ci(evidence: Evidence, gradient: np.ndarray | None) -> list[FitIssue]:
    """Delta-method CI of each checked metric on the log scale (see the module docstring)."""
    if gradient is None or not np.isfinite(evidence.covariance).all():
        return []
    se = np.sqrt(np.clip(np.einsum("jm,jk,km->m", gradient, evidence.covariance, gradient),
                         0, None))  # fmt: skip
    decades = 2 * evidence.quantile * se / np.log(10)
    wide = decades > METRIC_CI_DECADES
    if not wide.any():
        return []
    listed = ", ".join(f"{name} ({width:.1f} decades)"
                       for name, width in zip(np.array(_CHECKED)[wide], decades[wide],
                                              strict=True))  # fmt: skip
    return [FitIssue("metric_ci_wide", f"confidence interval over {METRIC_CI_DECADES:g} "
                     f"orders of magnitude: {listed}")]  # fmt: skip


def _peak(evidence: Evidence, tmax: float) -> list[FitIssue]:
    obs = evidence.problem.obs
    post = obs.time >= 0
    if not np.isfinite(tmax) or not post.any():
        return []
    quantified = obs.time[post & ~obs.censored]
    first, last = float(obs.time[post].min()), float(obs.time[post].max())
    issues = []
    if not (quantified > tmax + _SAME_DAY).any():
        issues.append(FitIssue("peak_not_bracketed", f"no quantified sample after the model's "
                               f"Tmax ({tmax:.3g} d): the peak is never observed"))  # fmt: skip
    if tmax < first - _SAME_DAY or tmax > last + _SAME_DAY:
        issues.append(FitIssue("tmax_outside_samples", f"the model's Tmax ({tmax:.3g} d) lies "
                               f"outside the sampled days {first:g}–{last:g}: Cmax and Tmax "
                               "are extrapolated"))  # fmt: skip
    low, high = PLAUSIBLE_TMAX_DAYS
    if not low <= tmax <= high:
        issues.append(FitIssue("tmax_implausible", f"Tmax {tmax:.3g} d is outside "
                               f"{low:g}–{high:g} d, implausible for CAR-T expansion (are the "
                               "times in days since infusion?)"))  # fmt: skip
    return issues


def _outliers(evidence: Evidence) -> list[FitIssue]:
    """Externally studentised residuals of each assay's quantified samples (module docstring)."""
    obs, z, leverage = evidence.problem.obs, evidence.z, evidence.leverage
    if z is None or leverage is None:
        return []
    p = int(evidence.structural.sum())
    found = []
    for a, assay in enumerate(obs.assays):
        rows = np.flatnonzero((obs.assay == a) & ~obs.censored)
        dof = rows.size - p - 1
        if dof < 1:
            continue
        zi, hi = z[rows], leverage[rows]
        testable = np.isfinite(zi) & (hi < 1 - 1e-6)
        with np.errstate(all="ignore"):
            scale = np.sqrt((np.sum(zi**2) - zi**2) / dof)
            t = zi / (scale * np.sqrt(1 - hi))
        limit = t_quantile(1 - OUTLIER_ALPHA / (2 * rows.size), dof)
        hits = testable & (np.abs(t) > limit)
        found += [f"{assay} day {obs.time[rows[i]]:g} (t = {t[i]:.1f})"
                  for i in np.flatnonzero(hits)]  # fmt: skip
    if not found:
        return []
    return [FitIssue("outlier", f"studentised residual beyond the Bonferroni limit "
                     f"(α = {OUTLIER_ALPHA:g}): {', '.join(found)}; check the sample")]  # fmt: skip
