"""Finding the maximum-likelihood estimate of one subject (private).

Two paths, chosen by what the model declares (:class:`~cellkin.models.base.Model`):

* **closed-form level function** (``level_kernel``; the Stein models): each multi-start point
  is minimised by the compiled projected BFGS of :mod:`cellkin.fit._minimise` on the
  compiled objective of :mod:`cellkin.fit._objective`, and one
  ``lmfit.minimize(method="lbfgsb")`` polishes the best point with the compiled −2 ln L and
  its gradient as a thin objective; its result (message, success) is the fit's. Why this split,
  rather than lmfit from every start, is measured in ``benchmarks/README.md``.
* **otherwise** (the ODE models): lmfit's L-BFGS-B from every start on the objective of
  :class:`~cellkin.fit._problem.SubjectProblem` (the same compiled likelihood on levels from
  the model's solver), with numeric gradients.

Both stop the multi-start early once three starts reach the same best −2 ln L
(:func:`cellkin.fit._starts.agree`); models that declare a kink time then probe it in the
neighbouring inter-sample intervals (:func:`cellkin.fit._starts.kink_neighbours`).
"""

from __future__ import annotations

import math
import threading

import lmfit
import numpy as np

from cellkin.errors import FitError
from cellkin.fit import _minimise, _starts
from cellkin.fit._objective import CompiledObjective
from cellkin.fit._problem import SubjectProblem
from cellkin.fit.likelihood import FAILED

__all__ = ["OPTIMISERS", "canonical", "optimise"]

MAX_EVALUATIONS = 4000
#: The optimiser of each path, as results record it.
OPTIMISERS = {
    True: "compiled projected BFGS from each start, lmfit lbfgsb polish (L-BFGS-B on -2LL)",
    False: "lmfit lbfgsb (L-BFGS-B on -2LL) from each start",
}


_PARAMETERS = threading.local()  # per-thread cache of lmfit.Parameter objects


def _lmfit_name(name: str) -> str:
    """A valid lmfit (Python identifier) name for a parameter name such as
    ``sigma_car-t qpcr``: any assay label works (hex of the UTF-8 bytes; one-to-one)."""
    return name if name.isidentifier() else f"p_{name.encode().hex()}"


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
            parameter = cache[key] = lmfit.Parameter(_lmfit_name(name), min=lower[j], max=upper[j])
        parameter.set(value=float(point[j]), vary=bool(free[j]))
        parameters.append(parameter)
    return parameters


def _run_starts(points, minimise) -> tuple[tuple[float, np.ndarray, object], int, int]:
    """Minimise from each start in turn until enough agree (:func:`_starts.agree`); the best
    wins.

    ``minimise(point)`` returns ``(value, search, outcome, evaluations)``. Returns the best
    ``(value, search, outcome)``, the evaluations and the number of starts run.
    """
    best, evaluations, values = None, 0, []
    for point in points:
        value, search, outcome, spent = minimise(point)
        evaluations += spent
        if math.isfinite(value) and value < FAILED:
            values.append(value)
            if best is None or value < best[0] - 1e-9:
                best = (value, search, outcome)
        if _starts.agree(values):
            break
    if best is None:
        raise FitError("no start gave a finite likelihood; check the data and bounds")
    return best, evaluations, len(values)


def _optimise_python(problem: SubjectProblem, free: np.ndarray, n_starts: int, seed):
    """lmfit's L-BFGS-B from every start on the objective of ``problem`` (models without a
    closed-form level function), numeric gradients."""
    transform, layout = problem.transform, problem.layout
    first = transform.to_search(layout.initial)
    lower, upper = transform.to_search(layout.lower), transform.to_search(layout.upper)

    def objective(params: lmfit.Parameters) -> float:
        search = np.fromiter(params.valuesdict().values(), float, len(layout.names))
        return problem.minus2ll(transform.to_model(search))

    def minimise(point: np.ndarray):
        params = _lmfit_params(problem, point, free)
        outcome = lmfit.minimize(objective, params, method="lbfgsb", calc_covar=False,
                                 max_nfev=MAX_EVALUATIONS, tol=1e-8)  # fmt: skip
        search = np.fromiter(outcome.params.valuesdict().values(), float, len(layout.names))
        return problem.minus2ll(transform.to_model(search)), search, outcome, outcome.nfev

    points = _starts.multistart(first, free, lower, upper, n_starts, seed)
    return _run_starts(points, minimise)


def _polish(
    problem: SubjectProblem, objective: CompiledObjective, search: np.ndarray, free: np.ndarray
):
    """One lmfit L-BFGS-B run from a screened point, on the compiled objective."""
    names = problem.layout.names
    point = search.copy()
    memo: dict[str, object] = {}

    def evaluate(params: lmfit.Parameters) -> tuple[float, np.ndarray]:
        for j, name in enumerate(names):
            point[j] = params[_lmfit_name(name)].value
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
                             max_nfev=MAX_EVALUATIONS, tol=1e-8)  # fmt: skip
    polished = np.fromiter(outcome.params.valuesdict().values(), float, len(names))
    return polished, objective.minus2ll(polished), outcome


def _optimise_compiled(
    problem: SubjectProblem,
    objective: CompiledObjective,
    free: np.ndarray,
    n_starts: int,
    seed,
):
    """Compiled screening of the starts, then the lmfit polish of the best one."""
    transform, layout = problem.transform, problem.layout
    first = transform.to_search(layout.initial)
    lower, upper = transform.to_search(layout.lower), transform.to_search(layout.upper)

    def minimise(point: np.ndarray):
        search, value, spent, _ = _minimise.minimise(
            objective, point, free, lower, upper, max_evaluations=MAX_EVALUATIONS
        )
        return value, search, None, spent

    points = _starts.multistart(first, free, lower, upper, n_starts, seed)
    (value, search, _), evaluations, used = _run_starts(points, minimise)
    for point in _starts.kink_neighbours(problem, search, free):
        probed, spent = minimise(point)[1::2]
        evaluations += spent
        probed_value = objective.minus2ll(probed)
        if probed_value < value - 1e-9:
            value, search = probed_value, probed
    polished, polished_value, outcome = _polish(problem, objective, search, free)
    if polished_value <= value:
        value, search = polished_value, polished
    return (value, search, outcome), evaluations + outcome.nfev, used


def optimise(problem: SubjectProblem, free: np.ndarray, n_starts: int, seed):
    """Best ``(−2LL, search, lmfit outcome)``, the evaluations, the starts run, and the
    compiled objective (None for models without a closed-form level function)."""
    if CompiledObjective.available(problem.model):
        objective = CompiledObjective.from_problem(problem)
        return (*_optimise_compiled(problem, objective, free, n_starts, seed), objective)
    return (*_optimise_python(problem, free, n_starts, seed), None)


def canonical(problem: SubjectProblem, search: np.ndarray, free: np.ndarray) -> np.ndarray:
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
