"""``fit_population``: the whole population analysis of one model on one study (private)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numba
import numpy as np
import pandas as pd

from cellkin import models
from cellkin._version import __version__
from cellkin.errors import OptionError
from cellkin.fit import likelihood
from cellkin.io import read_kinetics
from cellkin.models.base import Model
from cellkin.population._conditional import conditional_draws, importance_minus2ll
from cellkin.population._design import Design, PopulationData, build_data, build_design
from cellkin.population._diagnostics import (
    npde,
    predictions_table,
    simulate_replicates,
    vpc_table,
)
from cellkin.population._individual import empirical_bayes, shrinkage
from cellkin.population._information import Information
from cellkin.population._result import PopulationFit
from cellkin.population._saem import SAEMOptions, run_saem
from cellkin.population._state import Estimates
from cellkin.population._tables import (
    fixed_effects_table,
    random_effects_table,
    residual_error_table,
)

__all__ = ["PopulationOptions", "fit_population"]


@dataclass(frozen=True)
class PopulationOptions:
    """Options of :func:`fit_population` beyond the model's structure.

    Parameters
    ----------
    min_exploratory, max_exploratory : int
        Bounds of SAEM's exploratory phase (it stops in between once stationary).
    n_smoothing : int
        Iterations of the smoothing phase.
    n_chains : int, optional
        Markov chains per subject (default ``⌈400 / n_subjects⌉``, at least 1: enough
        chains that the statistics of weakly identified variances average over 400 draws).
    kernel_steps : (int, int, int)
        Metropolis–Hastings steps per iteration of saemix's three kernels.
    information : bool
        Estimate the Fisher information (standard errors) from the conditional draws.
    information_method : {"empirical", "louis"}
        Which estimate of the Fisher information: ``"empirical"`` (default), the scatter of
        the subjects' scores about their mean (Delattre & Kuhn 2023; NONMEM's S matrix),
        positive semi-definite by construction, times n/(n − p − 2) for n subjects and p
        population parameters (the inverse of a scatter matrix overstates variances by that
        factor; :mod:`cellkin.population._information`); or
        ``"louis"``, the observed information by Louis' formula, which subtracts the
        conditional variance of the scores from the complete-data information and can come
        out not positive definite (no SE) when SAEM's estimate is not exactly at the
        maximum or a random effect is strongly shrunk (:mod:`cellkin.population._information`).
    n_draws : int
        Conditional draws kept per subject (metrics' CIs, conditional mean and SD).
    n_importance : int
        Importance-sampling draws per subject for −2 ln L.
    n_replicates : int
        Simulated replicates of the data for the NPDE and the pcVPC (0: none).
    confidence : float
        Level of the reported confidence intervals.
    """

    min_exploratory: int = 200
    max_exploratory: int = 500
    n_smoothing: int = 200
    n_chains: int | None = None
    kernel_steps: tuple[int, int, int] = (2, 2, 2)
    information: bool = True
    information_method: str = "empirical"
    n_draws: int = 500
    n_importance: int = 3000
    n_replicates: int = 300
    confidence: float = 0.95

    def __post_init__(self) -> None:
        counts = {
            "min_exploratory": self.min_exploratory,
            "max_exploratory": self.max_exploratory,
            "n_smoothing": self.n_smoothing,
            "n_draws": self.n_draws,
            "n_importance": self.n_importance,
        }
        for name, value in counts.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise OptionError(f"`{name}` must be a positive integer, got {value!r}")
        if self.min_exploratory > self.max_exploratory:
            raise OptionError("`min_exploratory` must not exceed `max_exploratory`")
        if self.n_replicates < 0 or (self.n_chains is not None and self.n_chains < 1):
            raise OptionError("`n_replicates` must be >= 0 and `n_chains` >= 1")
        if len(self.kernel_steps) != 3 or min(self.kernel_steps) < 0:
            raise OptionError("`kernel_steps` must be three non-negative counts")
        if self.information_method not in ("empirical", "louis"):
            raise OptionError(
                f"`information_method` must be 'empirical' or 'louis', "
                f"got {self.information_method!r}"
            )
        if not 0 < self.confidence < 1:
            raise OptionError(f"`confidence` must be in (0, 1), got {self.confidence}")

    def saem(self) -> SAEMOptions:
        """The SAEM part of the options."""
        return SAEMOptions(
            self.min_exploratory,
            self.max_exploratory,
            self.n_smoothing,
            self.n_chains,
            (self.kernel_steps[0], self.kernel_steps[1], self.kernel_steps[2]),
            self.information,
        )


def _start(model: Model, design: Design, data: PopulationData) -> Estimates:
    """Starting values: the median over subjects of the model's own start rule (the published
    values for models without one), Ω = diag(max(published ω², 1)), the assay scales from the
    peaks, σ = 0.5 (log-additive) or 10% of the median level and 30% (other error models)."""
    first = data.assay == 0
    starts = []
    for s in range(data.n):
        cut = data.slice(s)
        mine = first[cut] & ~data.censored[cut]
        t, y = data.time[cut][mine], data.value[cut][mine]
        if t.size >= 2:
            order = np.argsort(t, kind="stable")
            values = model.clip_to_bounds(model.start_values(t[order], y[order]))
            starts.append(model.transform.to_search(np.array(list(values.values()))))
    default = model.transform.to_search(model.param_vector())
    kinetic = np.median(starts, axis=0) if starts else default
    peaks = [
        np.nanmax(data.value[(data.assay == a) & ~data.censored], initial=np.nan)
        for a in range(len(data.assays))
    ]
    scales = [
        math.log(p / peaks[0]) if np.isfinite(p / peaks[0]) and p > 0 else 0.0 for p in peaks[1:]
    ]
    structural = np.concatenate([kinetic, scales])
    coefficients = []
    for j in design.sampled:
        size = 1 + len(design.covariates.get(design.names[j], ()))
        coefficients.append(np.concatenate([[structural[j]], np.zeros(size - 1)]))
    omega = np.array([max(model.omega.get(design.names[j], 0.0) ** 2, 1.0) for j in design.sampled])
    error = []
    for a, assay in enumerate(data.assays):
        typical = float(np.nanmedian(data.value[(data.assay == a) & ~data.censored]))
        for name in likelihood.ERROR_PARAMETERS[design.errors[assay]]:
            error.append(
                {"sigma": 0.5, "sigma_add": max(0.1 * typical, 1e-3), "sigma_prop": 0.3}[name]
            )
    return Estimates(coefficients, np.diag(omega), np.array(error))


def _progress(enabled: bool, label: str):
    if not enabled:
        return None, lambda k, total: None
    from tqdm.auto import tqdm

    bar = tqdm(total=0, desc=f"SAEM {label}", unit="iteration")

    def update(k: int, total: int) -> None:
        bar.total = total
        bar.n = k
        bar.refresh()

    return bar, update


def fit_population(
    kinetics: Any,
    model: str | Model = "stein2019",
    *,
    subjects: Sequence[str] | None = None,
    assays: Sequence[str] | str | None = None,
    error: str | Mapping[str, str] = "log-additive",
    blq: str = "m3",
    covariates: Mapping[str, Sequence[str]] | None = None,
    subjects_table: pd.DataFrame | None = None,
    random: Sequence[str] | None = None,
    fixed: Mapping[str, float] | None = None,
    omega: str | Sequence[Sequence[str]] = "diagonal",
    seed: int = 0,
    n_jobs: int | None = None,
    progress: bool = True,
    options: PopulationOptions | None = None,
) -> PopulationFit:
    r"""Fit a population (nonlinear mixed-effects) model by SAEM, with M3 for BLQ samples.

    Individual parameters are :math:`\psi_i = h(\mu + Z_i\beta + \eta_i)`,
    :math:`\eta_i \sim N(0, \Omega)`, on each parameter's estimation scale (``h = exp`` for
    log-scale parameters, ``expit`` for fractions: the model's declared transforms); every
    subject's data enter through the likelihood of :mod:`cellkin.fit.likelihood` (error model
    per assay, M3 with each sample's own LLOQ, joint assays through ``scale_<assay>``). The
    population parameters are estimated by SAEM (:mod:`cellkin.population._saem`), their
    standard errors from the Fisher information estimated from each subject's conditional
    draws (the empirical information of the subjects' scores by default, Louis' observed
    information as an option), −2 ln L by importance sampling; every subject then gets its
    conditional distribution (mean, SD, draws), its EBE (conditional mode), residuals (IWRES,
    NPDE) and metrics with CIs (:meth:`PopulationFit.metrics`).

    Parameters
    ----------
    kinetics : DataFrame or path
        A kinetics table (read with :func:`cellkin.read_kinetics`).
    model : str or Model
        Any model of the catalogue: closed forms through their compiled level function, ODE
        models through the numba solvers (a whole population per call).
    subjects : sequence of str, optional
        Subjects to fit (default all). Every subject with at least one post-infusion sample of
        the fitted assays (quantified or BLQ) is in the fit; the others are ``failures`` rows.
    assays : str or sequence of str, optional
        Assays (default ``qpcr`` when present): several for a joint fit.
    error : str or mapping
        Error model, one for all assays or one per assay: ``"log-additive"``, ``"combined"``,
        ``"additive"``, ``"proportional"``.
    blq : {"m3", "drop", "lloq/2"}
        Below-LLOQ samples: censored likelihood (default), dropped, or imputed.
    covariates : mapping, optional
        Covariates by parameter from ``subjects_table``, e.g.
        ``{"cmax": ["dose_level"], "tmax": ["log_dose"]}``: numeric columns enter centred,
        ``log_<column>`` as the centred log of a positive column, other columns as categories
        against their most frequent level.
    subjects_table : DataFrame, optional
        The subject table holding the covariates.
    random : sequence of str, optional
        Parameters with a random effect (default: every free kinetic parameter); the other
        free parameters (and the assay scales) are estimated without one.
    fixed : mapping, optional
        Parameters held at a value (natural scale).
    omega : "diagonal", "full" or sequence of sequences
        Structure of Ω: independent random effects, all correlated, or blocks of correlated
        ones (e.g. ``[["cmax", "tmax"]]``).
    seed : int
        Seed of every random draw: the fit is deterministic for a seed whatever ``n_jobs``.
    n_jobs : int, optional
        Threads of the compiled kernels (used for populations large enough to gain).
    progress : bool
        Show a progress bar of the SAEM iterations.
    options : PopulationOptions, optional
        Iteration counts, sampler and post-estimation settings.

    Returns
    -------
    PopulationFit

    Notes
    -----
    **Models with a kink** (the Stein closed form at Tmax, where the derivative of the level in
    time and in Tmax jumps). Estimators built on derivatives of the model stumble there: a
    linearisation (FO/FOCE, R ``nlme``'s PNLS step) is wrong or fails when Tmax crosses a
    sample time, which is one reason the field fits these models by SAEM. In cellkin:

    * every Metropolis–Hastings proposal, in SAEM and in the conditional draws (metrics' CIs,
      conditional mean and SD), is accepted on the likelihood evaluated exactly at the
      proposal (the compiled closed form, M3 for censored samples), with no derivative;
    * SAEM's M-step needs no derivative of the model: typical values and Ω in closed form
      from the sufficient statistics of the sampled individual parameters, σ of a
      log-additive assay from the squared residuals; parameters without a random effect and
      other error models by Nelder–Mead on the likelihood values. The kink costs nothing;
    * the standard errors (Fisher information) differentiate only the normal density of the
      individual parameters (closed forms) for parameters with a random effect; the data
      likelihood is differentiated (central differences) only in the coefficients of
      parameters without one and in the error parameters — give Tmax a random effect (the
      default) to keep the kink out of the SEs;
    * the EBE (conditional mode) is a quasi-Newton search with central-difference gradients
      and an Armijo line search that takes only steps that lower the objective, started at
      the best of the subject's conditional draws: a kink can stop it early, never at a
      point worse than that draw;
    * −2 ln L is estimated by importance sampling, again on likelihood values only.

    Examples
    --------
    >>> import cellkin
    >>> from cellkin.population import PopulationOptions
    >>> study = cellkin.load_example()
    >>> quick = PopulationOptions(min_exploratory=40, max_exploratory=40, n_smoothing=20,
    ...                           n_draws=50, n_importance=50, n_replicates=0)
    >>> fit = cellkin.fit_population(study.kinetics, progress=False, options=quick)
    >>> fit.n_subjects, len(fit.failures)  # every subject with a post-infusion qPCR sample
    (27, 0)
    """
    options = options or PopulationOptions()
    model = models.get(model)
    likelihood.check_blq(blq)
    table = read_kinetics(kinetics)
    data = build_data(table, subjects, assays, blq)
    design = build_design(
        model,
        data,
        subjects_table,
        error=error,
        fixed=fixed,
        random=random,
        covariates=covariates,
        omega=omega,
    )
    rng = np.random.default_rng(seed)
    threads = numba.get_num_threads()
    if n_jobs is not None:
        if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
            raise OptionError(f"`n_jobs` must be a positive integer or None, got {n_jobs!r}")
        numba.set_num_threads(min(n_jobs, numba.config.NUMBA_NUM_THREADS))
    bar, update = _progress(progress, model.name)
    try:
        run, saem = run_saem(design, data, _start(model, design, data), options.saem(), rng, update)
        return _assemble(
            model,
            design,
            data,
            run,
            saem,
            options,
            rng,
            {
                "cellkin_version": __version__,
                "model": model.name,
                "solver": model.solver_settings,
                "assays": data.assays,
                "error": design.errors,
                "blq": blq,
                "covariates": dict(design.covariates),
                "random": [
                    n for n, r in zip(design.sampled_names, design.random, strict=True) if r
                ],
                "fixed": dict(design.fixed),
                "omega": omega,
                "seed": seed,
                "options": asdict(options),
                "n_exploratory": run.n_exploratory,
                "n_smoothing": run.n_smoothing,
                "n_chains": run.n_chains,
                "confidence": options.confidence,
                "algorithm": "SAEM (Kuhn & Lavielle 2005)",
            },
        )
    finally:
        numba.set_num_threads(threads)
        if bar is not None:
            bar.close()


def _assemble(model, design, data, run, saem, options, rng, settings) -> PopulationFit:
    est = run.estimates
    conditional = conditional_draws(saem, options.n_draws)
    ebe, _ = empirical_bayes(saem, conditional)
    means = est.means(design)
    random = np.flatnonzero(design.random)
    shrunk = shrinkage(ebe[:, random], means[:, random], est.omega[np.ix_(random, random)])
    minus2ll, minus2ll_se, _ = importance_minus2ll(saem, conditional, options.n_importance, rng)
    names, covariance = [], None
    if options.information:
        louis = options.information_method == "louis"
        information = Information(design, est, data.n, louis=louis)
        draws = conditional.draws
        for k, start in enumerate(range(0, draws.shape[1], _CHUNK)):
            chunk = draws[:, start : start + _CHUNK]
            rows = chunk.transpose(1, 0, 2).reshape(-1, draws.shape[2])  # draw-major
            information.update(1.0 / (k + 1), rows, est, saem.evaluator, chunk.shape[1])
        names = information.names()
        covariance = _covariance(information.matrix() if louis else information.empirical())
    predictions = predictions_table(saem, ebe)
    if options.n_replicates > 0:
        simulated = simulate_replicates(saem, options.n_replicates, rng)
        predictions["npde"] = npde(saem, simulated, rng)
        vpc = vpc_table(saem, simulated, predictions["pred"].to_numpy())
    else:
        predictions["npde"] = np.nan
        vpc = pd.DataFrame()
    labels = [f"{kind}:{name}" if kind != "coefficient" else name for kind, name in names]
    return PopulationFit(
        model=model,
        design=design,
        data=data,
        estimates=est,
        fixed_effects=fixed_effects_table(design, est, names, covariance, options.confidence),
        random_effects=random_effects_table(
            design, est, names, covariance, shrunk, options.confidence
        ),
        residual_error=residual_error_table(design, est, names, covariance, options.confidence),
        individual=_individual(design, data, ebe, conditional.draws),
        covariance=None if covariance is None else pd.DataFrame(covariance, labels, labels),
        minus2ll=minus2ll,
        minus2ll_se=minus2ll_se,
        n_parameters=_count(design, est),
        converged=run.converged,
        reason=run.reason,
        trajectory=_trajectory(run),
        predictions=predictions,
        vpc=vpc,
        conditional_draws=conditional.draws,
        ebe=ebe,
        failures=data.failures,
        settings=settings,
    )


_CHUNK = 50  # conditional draws per subject in one step of the information average


def _covariance(information: np.ndarray) -> np.ndarray:
    """The inverse of the information; NaN rows and columns for the parameters whose
    variance comes out non-positive (information not positive definite: too little data
    on them, e.g. a random effect shrunk to nothing)."""
    try:
        covariance = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        return np.full(information.shape, np.nan)
    bad = ~(np.diag(covariance) > 0)
    covariance[bad, :] = np.nan
    covariance[:, bad] = np.nan
    return covariance


def _count(design: Design, est: Estimates) -> int:
    coefficients = sum(c.size for c in est.coefficients)
    random = np.flatnonzero(design.random)
    blocks = design.blocks[random]
    omega_entries = sum(
        1 for a in range(random.size) for b in range(a, random.size) if blocks[a] == blocks[b]
    )
    return int(coefficients + omega_entries + est.error.size)


def _trajectory(run) -> pd.DataFrame:
    table = pd.DataFrame(run.trajectory, columns=list(run.tracked))
    table.insert(0, "iteration", np.arange(1, len(table) + 1))
    table.insert(
        1, "phase", np.where(table["iteration"] <= run.n_exploratory, "exploratory", "smoothing")
    )
    return table


def _individual(design: Design, data: PopulationData, ebe, draws) -> pd.DataFrame:
    """Subject × parameter: EBE, conditional mean and SD on the natural scale."""
    rows = []
    transform = design.transform
    for k, j in enumerate(design.sampled):
        single = transform.subset([j])
        ebe_natural = single.to_model(ebe[:, [k]])[:, 0]
        natural = single.to_model(draws[:, :, [k]].reshape(-1, 1)).reshape(draws.shape[:2])
        rows.append(
            pd.DataFrame(
                {
                    "subject": data.subjects,
                    "parameter": design.names[j],
                    "ebe": ebe_natural,
                    "conditional_mean": natural.mean(axis=1),
                    "conditional_sd": natural.std(axis=1, ddof=1),
                    "unit": design.units[j],
                    "random": bool(design.random[k]),
                }
            )
        )
    table = pd.concat(rows, ignore_index=True)
    order = {s: i for i, s in enumerate(data.subjects)}
    return table.sort_values("subject", key=lambda c: c.map(order), kind="stable").reset_index(
        drop=True
    )
