"""Virtual populations and simulated trials.

:func:`virtual_population` draws individual parameters around a model's typical values with
log-normal (logit-normal for fractions) between-subject variability; :func:`sample_trial`
turns a parameter table into a kinetics table as a laboratory would report it: log-normal
residual error and censoring below the LLOQ (BLQ samples carry ``value = NaN``,
``blq = True``); :func:`round_significant` rounds values to the significant digits a
laboratory reports.

Every random draw comes from an explicit ``seed`` (an int or a :class:`numpy.random.Generator`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from cellkin import models
from cellkin.errors import ModelError, OptionError
from cellkin.io import KINETICS_COLUMNS
from cellkin.models.base import Model

__all__ = ["ParameterSampler", "round_significant", "sample_trial", "virtual_population"]

_MAX_REDRAWS = 100


def _to_estimation_scale(values: np.ndarray, scale: str) -> np.ndarray:
    if scale == "log":
        return np.log(values)
    if scale == "logit":
        return logit(values)
    return values


def _from_estimation_scale(values: np.ndarray, scale: str) -> np.ndarray:
    if scale == "log":
        return np.exp(values)
    if scale == "logit":
        return expit(values)
    return values


def _correlation_matrix(
    correlation: pd.DataFrame | np.ndarray | None, names: Sequence[str]
) -> np.ndarray:
    k = len(names)
    if correlation is None:
        return np.eye(k)
    if isinstance(correlation, pd.DataFrame):
        missing = [n for n in names if n not in correlation.index or n not in correlation.columns]
        if missing:
            raise OptionError(f"correlation matrix lacks rows/columns for {missing}")
        matrix = correlation.loc[list(names), list(names)].to_numpy(dtype=float)
    else:
        matrix = np.asarray(correlation, dtype=float)
    if matrix.shape != (k, k):
        raise OptionError(
            f"correlation matrix must be {k}x{k} over the varying parameters {list(names)}, "
            f"got shape {matrix.shape}"
        )
    if not (np.allclose(matrix, matrix.T) and np.allclose(np.diag(matrix), 1.0)):
        raise OptionError("correlation matrix must be symmetric with a unit diagonal")
    if np.linalg.eigvalsh(matrix).min() <= 0:
        raise OptionError("correlation matrix must be positive definite")
    return matrix


class ParameterSampler:
    """Draws of individual parameters for one model and one variability specification.

    The validated form of :func:`virtual_population`'s arguments, so that a streaming
    simulation can draw many blocks of subjects without re-checking them (see
    :func:`virtual_population` for the distribution).
    """

    def __init__(
        self,
        model: Model,
        *,
        omega: Mapping[str, float] | None = None,
        correlation: pd.DataFrame | np.ndarray | None = None,
        typical: Mapping[str, float] | None = None,
    ) -> None:
        self.model = model
        omega = dict(model.omega if omega is None else omega)
        unknown = sorted(set(omega) - set(model.param_names))
        if unknown:
            raise OptionError(f"`omega` names unknown parameters {unknown} of model `{model.name}`")
        bad = sorted(name for name, value in omega.items() if not value >= 0)
        if bad:
            raise OptionError(f"`omega` must be >= 0 (an SD on the estimation scale); see {bad}")
        self.centre = model.param_vector(typical)
        self.varying = [name for name in model.param_names if omega.get(name, 0.0) > 0]
        sd = np.array([omega[name] for name in self.varying])
        self.covariance = _correlation_matrix(correlation, self.varying) * np.outer(sd, sd)
        self.columns = [model.param_names.index(name) for name in self.varying]

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(n, n_params)`` parameters in kernel order, drawn from ``rng``."""
        model, centre = self.model, self.centre
        table = np.tile(centre, (n, 1))
        pending = np.arange(n if self.varying else 0)  # no variability: all typical
        for _ in range(_MAX_REDRAWS):
            if pending.size == 0:
                break
            eta = rng.multivariate_normal(
                np.zeros(len(self.varying)), self.covariance, size=pending.size
            )
            ok = np.ones(pending.size, dtype=bool)
            for k, j in enumerate(self.columns):
                spec = model.params[j]
                with np.errstate(over="ignore"):  # an overflowing draw is out of bounds: redrawn
                    drawn = _from_estimation_scale(
                        _to_estimation_scale(np.array(centre[j]), spec.scale) + eta[:, k],
                        spec.scale,
                    )
                table[pending, j] = drawn
                ok &= np.isfinite(drawn) & (drawn >= spec.lower) & (drawn <= spec.upper)
            pending = pending[~ok]
        if pending.size:
            raise ModelError(
                f"{pending.size} subjects still had parameters outside the bounds of model "
                f"`{model.name}` after {_MAX_REDRAWS} redraws; reduce `omega` or widen the bounds"
            )
        return table


def virtual_population(
    model: str | Model,
    n: int,
    *,
    seed: int | np.random.Generator,
    omega: Mapping[str, float] | None = None,
    correlation: pd.DataFrame | np.ndarray | None = None,
    typical: Mapping[str, float] | None = None,
    subject_prefix: str = "VP",
) -> pd.DataFrame:
    """Draw a virtual population's individual parameters.

    Each parameter with variability is drawn as
    ``g⁻¹(g(θ_typical) + η)``, ``η ~ N(0, Ω)``, where ``g`` is the parameter's declared
    estimation scale (``log`` → log-normal, ``logit`` → logit-normal, ``linear`` → normal)
    and ``Ω = diag(ω)·R·diag(ω)``. Draws outside a parameter's bounds are redrawn (the
    distribution is truncated at the bounds), never clipped.

    Parameters
    ----------
    model : str or Model
        A registered model name (see :func:`cellkin.models.available`) or a model instance.
    n : int
        Number of virtual subjects.
    seed : int or numpy.random.Generator
        Source of randomness; the same seed gives the same population.
    omega : mapping, optional
        Standard deviation of η per parameter on its estimation scale. Defaults to the
        model's published variability (``model.omega``). Parameters absent from it are fixed
        at their typical value.
    correlation : DataFrame or ndarray, optional
        Correlation matrix R of the η's, labelled by parameter name (DataFrame) or ordered
        as the varying parameters appear in ``model.param_names`` (array). Identity if omitted.
    typical : mapping, optional
        Typical values overriding the model's defaults.
    subject_prefix : str
        Subject ids are ``f"{subject_prefix}{i:0{w}d}"`` for i = 1..n.

    Returns
    -------
    pandas.DataFrame
        Columns ``subject`` and one column per parameter, one row per subject.
    """
    model = models.get(model)
    if not (isinstance(n, (int, np.integer)) and n >= 0):
        raise OptionError(f"`n` must be a non-negative integer, got {n!r}")
    sampler = ParameterSampler(model, omega=omega, correlation=correlation, typical=typical)
    table = sampler.draw(int(n), np.random.default_rng(seed))
    width = max(len(str(n)), 3)
    frame = pd.DataFrame(table, columns=list(model.param_names))
    frame.insert(0, "subject", [f"{subject_prefix}{i:0{width}d}" for i in range(1, n + 1)])
    return frame


def _schedule_table(schedule: object, subjects: Sequence[str]) -> pd.DataFrame:
    if isinstance(schedule, pd.DataFrame):
        missing = {"subject", "time"} - set(schedule.columns)
        if missing:
            raise OptionError(f"schedule table lacks column(s) {sorted(missing)}")
        unknown = sorted(set(schedule["subject"].astype(str)) - set(subjects))
        if unknown:
            raise OptionError(f"schedule names subjects without parameters: {unknown[:5]}")
        table = schedule.loc[:, ["subject", "time"]].copy()
        table["subject"] = table["subject"].astype(str)
    else:
        times = np.asarray(schedule, dtype=float).ravel()
        table = pd.DataFrame(
            {
                "subject": np.repeat(np.asarray(subjects, dtype=object), times.size),
                "time": np.tile(times, len(subjects)),
            }
        )
    if not np.isfinite(table["time"].to_numpy(dtype=float)).all():
        raise OptionError("schedule times must be finite days since infusion")
    return table.reset_index(drop=True)


def sample_trial(
    model: str | Model,
    params: pd.DataFrame | Mapping[str, float],
    schedule: Sequence[float] | np.ndarray | pd.DataFrame,
    *,
    lloq: float,
    seed: int | np.random.Generator,
    assay: str = "qpcr",
    unit: str | None = None,
    sigma: float | None = None,
    scale: float | Sequence[float] | np.ndarray = 1.0,
) -> pd.DataFrame:
    """Simulate observed samples with residual error and BLQ censoring.

    Each sample is ``y = s·f(t; θ_i)·exp(σ·ε)``, ``ε ~ N(0, 1)`` (additive error on the log
    scale, as in Stein 2019), where ``s`` converts the model level into the assay's unit.
    Samples with ``y < lloq`` (including every pre-infusion sample, where ``f = 0``) are
    reported BLQ: ``value = NaN``, ``blq = True``.

    Parameters
    ----------
    model : str or Model
        Model name or instance.
    params : DataFrame or mapping
        One row per subject (a ``subject`` column is used for ids when present, otherwise
        ``S001``, ...) or a single subject's parameters as a mapping.
    schedule : array_like or DataFrame
        Sampling days shared by all subjects, or a ``subject, time`` table (per-subject
        schedules, e.g. with missed visits).
    lloq : float
        Lower limit of quantification in ``unit``.
    seed : int or numpy.random.Generator
        Source of randomness for the residual error.
    assay : str
        Assay label written to the ``assay`` column (``qpcr``, ``flow``, ...).
    unit : str, optional
        Unit of the reported values; defaults to ``model.observed_unit``.
    sigma : float, optional
        Residual SD on the log scale; defaults to the model's published ``sigma``.
    scale : float or array_like
        Factor(s) ``s`` from model level to assay unit, one value or one per subject.

    Returns
    -------
    pandas.DataFrame
        A kinetics table with columns ``subject, time, value, assay, unit, lloq, blq``
        sorted by subject and time.
    """
    model = models.get(model)
    if isinstance(params, Mapping):
        params = pd.DataFrame([dict(params)])
    if "subject" in params.columns:
        subjects = params["subject"].astype(str).tolist()
    else:
        subjects = [f"S{i:03d}" for i in range(1, len(params) + 1)]
    if len(set(subjects)) != len(subjects):
        raise OptionError("parameter table has duplicated subject ids")
    sigma = getattr(model, "sigma", None) if sigma is None else sigma
    if sigma is None or not np.isfinite(sigma) or sigma < 0:
        raise OptionError(f"`sigma` must be a finite value >= 0, got {sigma!r}")
    if not (np.isfinite(lloq) and lloq > 0):
        raise OptionError(f"`lloq` must be a positive number, got {lloq!r}")
    factors = np.broadcast_to(np.asarray(scale, dtype=float), (len(subjects),))
    if not (np.isfinite(factors).all() and (factors > 0).all()):
        raise OptionError("`scale` must be positive and finite")

    table = _schedule_table(schedule, subjects)
    times = np.unique(table["time"].to_numpy(dtype=float))
    levels = model.simulate_many(times, params)
    row = pd.Index(subjects).get_indexer(table["subject"])
    column = np.searchsorted(times, table["time"].to_numpy(dtype=float))
    predicted = levels[row, column] * factors[row]
    rng = np.random.default_rng(seed)
    observed = predicted * np.exp(sigma * rng.standard_normal(predicted.size))
    blq = ~(observed >= lloq)
    table["value"] = np.where(blq, np.nan, observed)
    table["assay"] = assay
    table["unit"] = model.observed_unit if unit is None else unit
    table["lloq"] = float(lloq)
    table["blq"] = blq
    order = np.lexsort((table["time"].to_numpy(), row))
    return table.iloc[order].reset_index(drop=True).loc[:, list(KINETICS_COLUMNS)]


def round_significant(values: Sequence[float] | np.ndarray | pd.Series, digits: int) -> np.ndarray:
    """Round values to `digits` significant digits, as a laboratory reports them.

    Each finite non-zero ``x`` becomes ``numpy.round(x, digits - 1 - floor(log10(|x|)))``:
    NumPy scales by a power of ten, rounds half to even and scales back, so the result prints
    with at most `digits` significant digits. Like :func:`numpy.round` it works on the scaled
    binary value, not on the decimal expansion: ``0.15`` (stored as 0.1499…) scales to
    exactly 1.5 and rounds to ``0.2`` at one digit. NaN, ±inf and 0 pass through unchanged.

    Parameters
    ----------
    values : array_like
        Values to round (any shape is flattened to 1-D).
    digits : int
        Significant digits kept, >= 1.

    Returns
    -------
    numpy.ndarray
        float64 array of the rounded values, in the order given.

    Raises
    ------
    OptionError
        If `digits` is not a whole number >= 1.

    Examples
    --------
    >>> round_significant([123456.0, 0.0012345, -98.76, 0.0, float("nan")], 3).tolist()
    [123000.0, 0.00123, -98.8, 0.0, nan]
    """
    if isinstance(digits, bool) or not (isinstance(digits, (int, np.integer)) and digits >= 1):
        raise OptionError(f"`digits` must be a whole number >= 1, got {digits!r}")
    x = np.asarray(values, dtype=float).ravel()
    out = x.copy()
    ok = np.isfinite(x) & (x != 0)
    magnitude = np.floor(np.log10(np.abs(x[ok]))).astype(int)
    # round() of a numpy.float64 is numpy.round (kept as is: the example study depends on it)
    out[ok] = [round(v, int(digits) - 1 - m) for v, m in zip(x[ok], magnitude, strict=True)]
    return out
