"""Fit one subject's CAR-T kinetics with lmfit (maximum likelihood, M3 for BLQ samples).

See :func:`fit`. The likelihood (error models, M3) is in :mod:`cellkin.fit.likelihood`, its
compiled form for the Stein family and the start screening in :mod:`cellkin.fit._compiled`,
the result object in :mod:`cellkin.fit.result`.

Optimisation, per model family:

* **Stein family** (closed forms): each multi-start point is minimised by the compiled
  projected BFGS of :mod:`cellkin.fit._compiled` (~0.2 ms a start), and one
  ``lmfit.minimize(method="lbfgsb")`` polishes the best point, with the compiled −2 ln L and
  its analytic gradient as a thin objective; its result (message, success) is the fit's.
  Why this split, rather than lmfit from every start, is argued in that module's docstring:
  lmfit's per-evaluation bookkeeping, not the model, was ~95% of a fit's cost.
* **Other models** (ODEs): lmfit's L-BFGS-B from every start on the Python objective of
  :class:`~cellkin.fit.problem.SubjectProblem`, numeric gradients unless the model gives
  ``log_level_gradient``.

Both stop the multi-start early once three starts reach the same best −2 ln L
(:func:`cellkin.fit.starts.agree`); Stein fits then probe Tmax in the neighbouring
inter-sample intervals (:func:`cellkin.fit.starts.tmax_neighbours`).

The data of one subject are handled as NumPy arrays taken once from the table; a table that
:func:`cellkin.read_kinetics` returned is not validated a second time (see :func:`fit`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence

import lmfit
import numpy as np
import pandas as pd

from cellkin import models
from cellkin._version import __version__
from cellkin.errors import FitError
from cellkin.fit import _compiled, likelihood, starts
from cellkin.fit.likelihood import Observations
from cellkin.fit.problem import ParameterLayout, SubjectProblem, build_layout, central_differences
from cellkin.fit.result import FitResult, build_parameter_table
from cellkin.io import read_kinetics
from cellkin.models.base import Model
from cellkin.models.stein import _SteinFamily

__all__ = ["fit", "fit_validated"]

_MIN_QUANTIFIED = 3
_MAX_EVALUATIONS = 4000
_REQUIRED = ("subject", "time", "value", "assay", "unit", "lloq", "blq")
_DROPPED_BLQ = "BLQ sample dropped (blq='m1')"
_NO_EXCLUSIONS = pd.DataFrame(
    {
        "subject": np.empty(0, dtype=object),
        "time": np.empty(0),
        "assay": np.empty(0, dtype=object),
        "reason": np.empty(0, dtype=object),
    }
)
_OPTIMISER = {
    True: "compiled projected BFGS from each start, lmfit lbfgsb polish (L-BFGS-B on -2LL)",
    False: "lmfit lbfgsb (L-BFGS-B on -2LL) from each start",
}


def _data_table(
    rows: pd.DataFrame,
    positions: np.ndarray,
    used: np.ndarray,
    prediction: np.ndarray | None,
    residual: np.ndarray,
) -> pd.DataFrame:
    """The fitted assays' rows with ``used``, ``prediction`` and ``residual`` (NaN where not
    used), built in one go from the columns (dtypes kept)."""
    columns: dict[str, object] = {}
    for name in rows.columns:
        column = rows[name]
        if isinstance(column.dtype, np.dtype):
            columns[name] = column.to_numpy()[positions]
        else:  # an extension dtype (e.g. categorical): keep it
            columns[name] = column.array.take(positions)
    columns["used"] = used
    columns["prediction"] = _scatter(used, prediction)
    columns["residual"] = _scatter(used, residual)
    return pd.DataFrame(columns, copy=False)  # every column above is a new array


def _scatter(used: np.ndarray, values: np.ndarray | None) -> np.ndarray:
    """``values`` at the used rows, NaN elsewhere."""
    out = np.full(used.size, np.nan)
    if values is not None:
        out[used] = values
    return out


def _as_read(kinetics: object) -> bool:
    """Whether ``kinetics`` is a table :func:`read_kinetics` returned: ``attrs["cellkin"]``,
    the canonical columns and their dtypes."""
    if not isinstance(kinetics, pd.DataFrame) or "cellkin" not in kinetics.attrs:
        return False
    if not all(c in kinetics.columns for c in _REQUIRED) or kinetics["blq"].dtype != bool:
        return False
    return all(kinetics[c].dtype == np.float64 for c in ("time", "value", "lloq"))


def _sound(kinetics: pd.DataFrame) -> bool:
    """Whether a canonical table's numbers are still valid: finite times, positive finite
    LLOQs, quantified values at or above their LLOQ, one sample per subject, assay (tissue)
    and time."""
    time = kinetics["time"].to_numpy()
    value, lloq = kinetics["value"].to_numpy(), kinetics["lloq"].to_numpy()
    quantified = ~kinetics["blq"].to_numpy()
    with np.errstate(invalid="ignore"):
        if not (np.isfinite(time).all() and (np.isfinite(lloq) & (lloq > 0)).all()):
            return False
        if not (np.isfinite(value[quantified]) & (value[quantified] >= lloq[quantified])).all():
            return False
    if "tissue" in kinetics.columns or len(kinetics) > 1000:  # pandas: NaN tissue == NaN
        keys = ["subject", "assay", *(["tissue"] if "tissue" in kinetics.columns else []), "time"]
        return not kinetics.duplicated(keys).any()
    keys = ["subject", "assay", "time"]
    seen = set(zip(*(kinetics[k].to_numpy().tolist() for k in keys), strict=True))
    return len(seen) == len(kinetics)


def _validated(kinetics: object) -> pd.DataFrame:
    """``kinetics`` itself when it is a sound table :func:`read_kinetics` returned; else the
    table read (and validated) by it."""
    if _as_read(kinetics) and _sound(kinetics):  # type: ignore[arg-type]
        return kinetics  # type: ignore[return-value]
    return read_kinetics(kinetics)


def _select_subject(kinetics: pd.DataFrame, subject: str | None) -> tuple[str, pd.DataFrame]:
    ids = kinetics["subject"].to_numpy()
    subjects = pd.unique(ids)
    if subject is None:
        if subjects.size != 1:
            raise FitError(
                f"the kinetics table holds {subjects.size} subjects; pass `subject=` to fit one "
                f"of them or use `cellkin.fit_all` for all"
            )
        subject = str(subjects[0])
    if subjects.size == 1 and subjects[0] == subject:
        return subject, kinetics
    mask = ids == subject
    if not mask.any():
        raise FitError(f"subject {subject!r} is not in the kinetics table")
    return subject, kinetics.iloc[np.flatnonzero(mask)]


def _select_assays(assay: np.ndarray, assays: Sequence[str] | str | None, subject: str):
    present = list(dict.fromkeys(assay.tolist()))
    if assays is None:
        chosen = ["qpcr"] if "qpcr" in present else present[:1]
    else:
        chosen = [assays] if isinstance(assays, str) else list(assays)
    missing = [a for a in chosen if a not in present]
    if missing:
        raise FitError(
            f"subject {subject!r} has no {missing} samples (assays present: {present}); "
            f"choose `assays=` among those"
        )
    return tuple(chosen)


class _Samples:
    """One subject's samples as arrays (taken once from the table)."""

    def __init__(self, rows: pd.DataFrame) -> None:
        self.rows = rows
        self.time = rows["time"].to_numpy(dtype=float)
        self.value = rows["value"].to_numpy(dtype=float)
        self.blq = rows["blq"].to_numpy(dtype=bool)
        self.lloq = rows["lloq"].to_numpy(dtype=float)
        self.assay = rows["assay"].to_numpy()
        self.unit = rows["unit"].to_numpy()

    def codes(self, assays: tuple[str, ...]) -> np.ndarray:
        """Index of each sample's assay in ``assays`` (−1: not fitted)."""
        codes = np.full(self.time.size, -1, dtype=np.int64)
        for k, name in enumerate(assays):
            codes[self.assay == name] = k
        return codes


def _observations(
    rows: pd.DataFrame | _Samples, assays: tuple[str, ...], blq: str, subject: str
) -> tuple[Observations, tuple[np.ndarray, np.ndarray], pd.DataFrame]:
    """Samples entering the fit, ``(positions, used)`` — the rows of the fitted assays and
    which of them enter the likelihood — and the exclusions."""
    samples = rows if isinstance(rows, _Samples) else _Samples(rows)
    codes = samples.codes(assays)
    positions = np.flatnonzero(codes >= 0)
    time, censored_all = samples.time[positions], samples.blq[positions]
    used = time >= 0
    if blq == "m1":
        used &= ~censored_all
    dropped = positions[~used]
    if dropped.size:
        excluded = pd.DataFrame(
            {
                "subject": np.full(dropped.size, subject, dtype=object),
                "time": samples.time[dropped],
                "assay": samples.assay[dropped],
                "reason": np.where(
                    samples.time[dropped] < 0, "pre-infusion sample", _DROPPED_BLQ
                ).astype(object),
            }
        )
    else:
        excluded = _NO_EXCLUSIONS.copy()
    taken = positions[used]
    assay = codes[taken]
    censored = samples.blq[taken].copy()
    for k, name in enumerate(assays):
        quantified = int(np.count_nonzero((assay == k) & ~censored))
        if quantified < _MIN_QUANTIFIED:
            raise FitError(
                f"subject {subject!r}, assay {name!r}: {quantified} quantifiable "
                f"post-infusion sample(s); a fit needs at least {_MIN_QUANTIFIED}"
            )
    value = samples.value[taken].copy()
    lloq = samples.lloq[taken]
    if blq == "lloq/2":
        value[censored] = 0.5 * lloq[censored]
        censored[:] = False
    obs = Observations(
        time=samples.time[taken],
        value=value,
        censored=censored,
        lloq=lloq,
        assay=assay,
        assays=assays,
    )
    return obs, (positions, used), excluded


def _initial_values(model: Model, samples: _Samples, assays: tuple[str, ...]):
    post = (samples.time >= 0) & ~samples.blq
    first = np.flatnonzero(post & (samples.assay == assays[0]))
    first = first[np.argsort(samples.time[first], kind="stable")]
    kinetic = starts.kinetic_start(model, samples.time[first], samples.value[first])
    peaks = {a: float(samples.value[post & (samples.assay == a)].max()) for a in assays}
    scales = {a: peaks[a] / peaks[assays[0]] for a in assays[1:]}
    typical = {a: float(np.median(samples.value[post & (samples.assay == a)])) for a in assays}
    return kinetic, scales, typical


def _apply_overrides(
    layout: ParameterLayout,
    fixed: Mapping[str, float] | None,
    bounds: Mapping[str, tuple[float, float]] | None,
    initial: Mapping[str, float] | None,
) -> tuple[ParameterLayout, np.ndarray]:
    lower, upper, start = layout.lower.copy(), layout.upper.copy(), layout.initial.copy()
    free = np.ones(len(layout.names), dtype=bool)
    for label, table in (("fixed", fixed), ("bounds", bounds), ("initial", initial)):
        unknown = sorted(set(table or {}) - set(layout.names))
        if unknown:
            raise FitError(f"`{label}` names unknown parameters {unknown}; known: {layout.names}")
    for name, (lo, hi) in (bounds or {}).items():
        j = layout.index(name)
        if not lo < hi:
            raise FitError(f"bounds for `{name}` must have lower < upper, got ({lo}, {hi})")
        lower[j], upper[j] = lo, hi
    for name, value in (initial or {}).items():
        start[layout.index(name)] = value
    for name, value in (fixed or {}).items():
        j = layout.index(name)
        start[j], free[j] = value, False
    for j, name in enumerate(layout.names):
        if free[j]:
            span = upper[j] - lower[j]
            start[j] = min(max(start[j], lower[j] + 1e-6 * span), upper[j] - 1e-6 * span)
        elif not lower[j] <= start[j] <= upper[j]:
            raise FitError(f"fixed `{name}` = {start[j]} lies outside [{lower[j]}, {upper[j]}]")
    updated = ParameterLayout(layout.names, layout.kinds, layout.units, layout.scales, lower,
                              upper, start, layout.descriptions)  # fmt: skip
    return updated, free


_PARAMETERS = threading.local()  # per-thread cache of lmfit.Parameter objects


def _lmfit_params(
    problem: SubjectProblem, point: np.ndarray, free: np.ndarray
) -> list[lmfit.Parameter]:
    """The parameters as lmfit ``Parameter`` objects on the estimation scale.

    A list, which ``lmfit.minimize`` takes as it is instead of deep-copying a
    ``Parameters``. The objects are reused from fit to fit within a thread (same name and
    bounds; value and vary set afresh): building one checks its bounds with
    ``numpy.isclose``, a quarter of the cost of a Stein fit's lmfit polish.
    """
    transform, layout = problem.transform, problem.layout
    lower, upper = transform.to_search(layout.lower), transform.to_search(layout.upper)
    cache = getattr(_PARAMETERS, "cache", None)
    if cache is None or len(cache) > 512:
        cache = _PARAMETERS.cache = {}
    parameters = []
    for j, name in enumerate(layout.names):
        key = (name, float(lower[j]), float(upper[j]))
        parameter = cache.get(key)
        if parameter is None:
            parameter = cache[key] = lmfit.Parameter(name, min=lower[j], max=upper[j])
        parameter.set(value=float(point[j]), vary=bool(free[j]))
        parameters.append(parameter)
    return parameters


def _run_starts(points, minimise) -> tuple[tuple[float, np.ndarray, object], int, int]:
    """Minimise from each start in turn until enough agree (:func:`starts.agree`); the best
    wins.

    ``minimise(point)`` returns ``(value, search, outcome, evaluations)``. Returns the best
    ``(value, search, outcome)``, the evaluations and the number of starts run.
    """
    best, evaluations, values = None, 0, []
    for point in points:
        value, search, outcome, spent = minimise(point)
        evaluations += spent
        if math.isfinite(value) and value < _compiled.FAILED:
            values.append(value)
            if best is None or value < best[0] - 1e-9:
                best = (value, search, outcome)
        if starts.agree(values):
            break
    if best is None:
        raise FitError("no start gave a finite likelihood; check the data and bounds")
    return best, evaluations, len(values)


def _optimise_python(problem: SubjectProblem, free: np.ndarray, n_starts: int, seed):
    """lmfit's L-BFGS-B from every start on the Python objective (models without a compiled
    objective)."""
    transform, layout = problem.transform, problem.layout
    first = transform.to_search(layout.initial)
    lower, upper = transform.to_search(layout.lower), transform.to_search(layout.upper)

    def objective(params: lmfit.Parameters) -> float:
        search = np.fromiter(params.valuesdict().values(), float, len(layout.names))
        return problem.minus2ll(transform.to_model(search))

    def gradient(params: lmfit.Parameters) -> np.ndarray:
        """d(−2LL)/dφ of the varying parameters (lmfit applies its bounds transform)."""
        search = np.fromiter(params.valuesdict().values(), float, len(layout.names))
        natural = problem.gradient(transform.to_model(search))
        return (natural * transform.derivative(search))[free]

    options = {"jac": gradient} if problem.has_gradient else {}

    def minimise(point: np.ndarray):
        params = _lmfit_params(problem, point, free)
        outcome = lmfit.minimize(objective, params, method="lbfgsb", calc_covar=False,
                                 max_nfev=_MAX_EVALUATIONS, tol=1e-8, **options)  # fmt: skip
        search = np.fromiter(outcome.params.valuesdict().values(), float, len(layout.names))
        return problem.minus2ll(transform.to_model(search)), search, outcome, outcome.nfev

    points = starts.multistart(first, free, lower, upper, n_starts, seed)
    return _run_starts(points, minimise)


def _polish(problem: SubjectProblem, objective: _compiled.SteinObjective, search: np.ndarray, free):
    """One lmfit L-BFGS-B run from a screened point, on the compiled objective."""
    names = problem.layout.names
    point = search.copy()
    memo: dict[str, object] = {}

    def evaluate(params: lmfit.Parameters) -> tuple[float, np.ndarray]:
        for j, name in enumerate(names):
            point[j] = params[name].value
        key = point.tobytes()
        if memo.get("key") != key:
            memo["key"], memo["value"] = key, objective.value_and_gradient(point)
        return memo["value"]  # type: ignore[return-value]

    def value(params: lmfit.Parameters) -> float:
        return evaluate(params)[0]

    def gradient(params: lmfit.Parameters) -> np.ndarray:
        """d(−2LL)/dφ of the varying parameters; 0 where the model fails (lmfit refuses NaN,
        and the failure value 1e300 already rejects the point)."""
        g = evaluate(params)[1][free]
        return np.where(np.isfinite(g), g, 0.0)

    params = _lmfit_params(problem, search, free)
    outcome = lmfit.minimize(value, params, method="lbfgsb", jac=gradient, calc_covar=False,
                             max_nfev=_MAX_EVALUATIONS, tol=1e-8)  # fmt: skip
    polished = np.fromiter(outcome.params.valuesdict().values(), float, len(names))
    return polished, objective.minus2ll(polished), outcome


def _optimise_compiled(
    problem: SubjectProblem,
    objective: _compiled.SteinObjective,
    free: np.ndarray,
    n_starts: int,
    seed,
):
    """Compiled screening of the starts, then the lmfit polish of the best one."""
    transform, layout = problem.transform, problem.layout
    first = transform.to_search(layout.initial)
    lower, upper = transform.to_search(layout.lower), transform.to_search(layout.upper)

    def minimise(point: np.ndarray):
        search, value, spent, _ = _compiled.minimise(
            objective, point, free, lower, upper, max_evaluations=_MAX_EVALUATIONS
        )
        return value, search, None, spent

    points = starts.multistart(first, free, lower, upper, n_starts, seed)
    (value, search, _), evaluations, used = _run_starts(points, minimise)
    for point in starts.tmax_neighbours(problem, search, free):
        probed, spent = minimise(point)[1::2]
        evaluations += spent
        probed_value = objective.minus2ll(probed)
        if probed_value < value - 1e-9:
            value, search = probed_value, probed
    polished, polished_value, outcome = _polish(problem, objective, search, free)
    if polished_value <= value:
        value, search = polished_value, polished
    return (value, search, outcome), evaluations + outcome.nfev, used


def _optimise(problem: SubjectProblem, free: np.ndarray, n_starts: int, seed):
    """Best ``(−2LL, search, lmfit outcome)``, the evaluations, the starts run, and the
    compiled objective (None for models without one)."""
    if isinstance(problem.model, _SteinFamily):
        objective = _compiled.SteinObjective.from_problem(problem)
        return (*_optimise_compiled(problem, objective, free, n_starts, seed), objective)
    return (*_optimise_python(problem, free, n_starts, seed), None)


def _canonical(problem: SubjectProblem, search: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Apply the model's canonical labelling when it keeps fixed parameters and bounds."""
    theta = problem.transform.to_model(search)
    k = problem.n_kinetic
    relabelled = theta.copy()
    relabelled[:k] = problem.model.canonical(theta[:k])
    moved = relabelled != theta
    inside = (relabelled >= problem.layout.lower) & (relabelled <= problem.layout.upper)
    if not moved.any() or (moved & ~free).any() or not inside.all():
        return search
    return problem.transform.to_search(relabelled)


def _stationary(
    problem: SubjectProblem,
    search: np.ndarray,
    structural: np.ndarray,
    covariance: np.ndarray,
    objective: _compiled.SteinObjective | None,
) -> bool:
    """Whether the estimate is a stationary point: the Newton decrement of −2LL over the
    structural parameters, ``¼·gᵀ·Cov·g`` (``Cov ≈ I⁻¹``, g by central differences), is below
    1e-3 — the −2LL a further Newton step could still gain.

    L-BFGS-B often stops with an "abnormal line search" at the optimum itself (at the Stein
    kink, or with finite-difference gradients); this scale-free check tells such a stop from
    a real failure. For the Stein family, a coordinate along which the estimate is a local
    minimum counts 0 in ``g`` (:meth:`~cellkin.fit._compiled.SteinObjective.stationarity_gradient`):
    when Tmax sits on a sample time, −2 ln L has a kink there and its central difference is
    not 0 although no step along Tmax descends.
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


def _covariance(
    problem: SubjectProblem,
    search: np.ndarray,
    free: np.ndarray,
    objective: _compiled.SteinObjective | None,
):
    """Jacobian-based covariance of the identified kinetic/scale parameters (estimation scale).

    Parameters pinned at a bound are left out, and while the information matrix is singular
    (condition number > 1e10) the parameter with the least information is left out too (e.g.
    α once FB reaches 1, when the decline is mono-exponential). Those get no SE and are
    named in the note, so that the identified ones keep their uncertainty.
    Returns ``(structural, covariance, note, failed)``.
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
        return structural, np.full((structural.sum(),) * 2, np.nan), "model failed", True
    columns = np.flatnonzero(structural)
    keep = np.ones(columns.size, dtype=bool)
    while keep.any() and np.linalg.cond(jacobian[:, keep].T @ jacobian[:, keep]) > 1e10:
        norms = np.where(keep, np.linalg.norm(jacobian, axis=0), np.inf)
        keep[int(np.argmin(norms))] = False
    if not keep.all():
        notes.append(f"{', '.join(names[columns[~keep]])} not identifiable")
        structural[columns[~keep]] = False
    n, p = problem.obs.n, int(keep.sum())
    if p == 0:
        return structural, np.empty((0, 0)), "; ".join(notes), False
    if n <= p:
        return structural, np.full((p, p), np.nan), "too few samples for a covariance", True
    information = jacobian[:, keep].T @ jacobian[:, keep]
    return structural, np.linalg.inv(information) * n / (n - p), "; ".join(notes), False


def fit(
    kinetics: pd.DataFrame,
    model: str | Model = "stein2019",
    *,
    subject: str | None = None,
    assays: Sequence[str] | str | None = None,
    error: str = "log-additive",
    blq: str = "m3",
    fixed: Mapping[str, float] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    initial: Mapping[str, float] | None = None,
    n_starts: int = 4,
    seed: int = 0,
) -> FitResult:
    r"""Fit a kinetic model to one subject by maximum likelihood.

    Parameters
    ----------
    kinetics : DataFrame
        A kinetics table (validated with :func:`cellkin.read_kinetics`). It may hold several
        subjects when ``subject`` names one. Pre-infusion samples (``time < 0``) do not enter
        the fit; they are listed in ``FitResult.excluded`` and set the baseline of the
        model-based time back to baseline.
    model : str or Model
        Registered model name or instance (default ``"stein2019"``).
    subject : str, optional
        The subject to fit (required when the table holds several).
    assays : str or sequence of str, optional
        Assays to fit: one (default ``qpcr`` when present, else the first) or several for a
        **joint fit** sharing the kinetic parameters, with an assay-specific scale
        (``scale_<assay>``, level of that assay per unit of the first assay's level) and
        residual error.
    error : {"log-additive", "combined"}
        Residual error model, per assay (:mod:`cellkin.fit.likelihood`).
    blq : {"m3", "m1", "lloq/2"}
        Below-LLOQ samples: censored likelihood (M3, default), dropped (M1), or imputed at
        LLOQ/2 — the last two for comparison only.
    fixed : mapping, optional
        Parameters held at a value (natural scale), e.g. ``{"sigma_qpcr": 0.56}`` or
        mechanistic parameters a study cannot identify.
    bounds : mapping, optional
        ``{name: (lower, upper)}`` on the natural scale, replacing the declared bounds.
    initial : mapping, optional
        Starting values overriding the data-driven ones.
    n_starts : int
        Most starts: the data-driven start, then up to ``n_starts − 1`` seeded jitters on the
        estimation scale, run in turn until three reach the same best −2 ln L (to 1e-6
        relative; :func:`cellkin.fit.starts.agree`); the best likelihood wins.
        ``FitResult.settings["starts_run"]`` says how many ran. Stein-family fits then also
        try Tmax in the neighbouring inter-sample intervals
        (:func:`cellkin.fit.starts.tmax_neighbours`).
    seed : int
        Seed of the multi-start design; the fit is deterministic for given inputs and seed.

    Returns
    -------
    FitResult
        Frozen result: parameter table (estimate, SE, RSE%, 95% CI on the natural scale),
        covariance, −2LL, AIC, BIC, convergence, predictions and residuals.

    Notes
    -----
    Uncertainty: the covariance of the estimation-scale parameters is
    :math:`(J^\top J)^{-1}\,n/(n-p)`, with :math:`J` the Jacobian of the standardised
    residuals (and of :math:`\sqrt{-2\ln\Phi}` for censored samples) at the estimate, error
    parameters held fixed — robust to the Stein kink at Tmax, where Hessian-based SEs
    collapse when Tmax falls on a sample time. Confidence limits use t quantiles with
    ``n − p`` degrees of freedom on the estimation scale and are transformed back.

    Optimiser: Stein-family models are screened from each start by a compiled projected
    BFGS on the exact −2 ln L and gradient, and the best point is polished by lmfit's
    L-BFGS-B, whose message and success flag the result reports; other models run lmfit
    from each start (module docstring of :mod:`cellkin.fit.subject`).

    Validation: a table returned by :func:`cellkin.read_kinetics` (it carries
    ``attrs["cellkin"]`` and the canonical columns and dtypes) is not validated again; only
    the subject's rows are re-checked (finite times, positive LLOQs, quantified values at or
    above the LLOQ, one sample per assay and time). Any other table, or one failing those
    checks, is read with :func:`cellkin.read_kinetics` first, which raises
    :class:`~cellkin.errors.DataError` on invalid input.
    """
    table = None
    if _as_read(kinetics):  # read_kinetics output: re-check only this subject's numbers
        chosen, rows = _select_subject(kinetics, subject)
        table, subject = (rows, chosen) if _sound(rows) else (None, subject)
    return fit_validated(
        read_kinetics(kinetics) if table is None else table,
        model,
        subject=subject,
        assays=assays,
        error=error,
        blq=blq,
        fixed=fixed,
        bounds=bounds,
        initial=initial,
        n_starts=n_starts,
        seed=seed,
    )


def fit_validated(
    kinetics: pd.DataFrame,
    model: str | Model = "stein2019",
    *,
    subject: str | None = None,
    assays: Sequence[str] | str | None = None,
    error: str = "log-additive",
    blq: str = "m3",
    fixed: Mapping[str, float] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    initial: Mapping[str, float] | None = None,
    n_starts: int = 4,
    seed: int = 0,
) -> FitResult:
    """:func:`fit` on a table already validated by :func:`cellkin.read_kinetics`.

    For batch fitting, which validates the whole table once; the options are those of
    :func:`fit`.
    """
    if error not in likelihood.ERROR_MODELS:
        raise FitError(f"`error` must be one of {likelihood.ERROR_MODELS}, got {error!r}")
    if blq not in likelihood.BLQ_METHODS:
        raise FitError(f"`blq` must be one of {likelihood.BLQ_METHODS}, got {blq!r}")
    model = models.get(model)
    subject, rows = _select_subject(kinetics, subject)
    samples = _Samples(rows)
    chosen = _select_assays(samples.assay, assays, subject)
    obs, (positions, used), excluded = _observations(samples, chosen, blq, subject)
    units = {a: str(samples.unit[samples.assay == a][0]) for a in chosen}
    kinetic, scales, typical = _initial_values(model, samples, chosen)
    layout = build_layout(model, chosen, units, error, kinetic, scales, typical)  # type: ignore[arg-type]
    layout, free = _apply_overrides(layout, fixed, bounds, initial)
    problem = SubjectProblem(model, obs, layout, error)  # type: ignore[arg-type]
    (minus2ll, search, outcome), evaluations, starts_run, objective = _optimise(
        problem, free, n_starts, seed
    )
    search = _canonical(problem, search, free)
    structural, covariance, covariance_note, failed = _covariance(problem, search, free, objective)
    dof = obs.n - int(structural.sum())
    table = build_parameter_table(problem, search, free, structural, covariance, dof)
    theta = problem.transform.to_model(search)
    if objective is not None:
        z = objective.standardized(search)
    else:
        z, _ = problem.standardized(theta)
    data = _data_table(rows, positions, used, problem.predict(theta), z)
    n_free = int(free.sum())
    message = outcome.message + (f"; {covariance_note}" if covariance_note else "")
    stationary = bool(outcome.success) or _stationary(
        problem, search, structural, covariance, objective
    )
    return FitResult(
        subject=subject,
        model=model,
        assays=chosen,
        units=units,
        error=error,
        blq=blq,
        params=table,
        search_estimate=search,
        free=free,
        structural=structural,
        covariance_search=covariance,
        minus2ll=minus2ll,
        aic=minus2ll + 2 * n_free,
        bic=minus2ll + n_free * math.log(obs.n),
        n_obs=obs.n,
        n_censored=obs.n_censored,
        n_free=n_free,
        dof=dof,
        success=stationary and not failed,
        message=message,
        nfev=evaluations,
        data=data,
        excluded=excluded,
        settings={
            "cellkin_version": __version__,
            "model": model.name,
            "assays": chosen,
            "error": error,
            "blq": blq,
            "n_starts": n_starts,
            "starts_run": starts_run,
            "seed": seed,
            "fixed": dict(fixed or {}),
            "bounds": dict(bounds or {}),
            "optimiser": _OPTIMISER[objective is not None],
        },
        layout=layout,
    )
