"""Numba-compiled ODE integrators for cellkin's mechanistic models.

Why cellkin carries its own integrators
---------------------------------------
Population simulation and per-patient fitting call an ODE solver millions of times, so the
solver must be callable from numba-compiled code and must run a whole population in one
compiled, parallel call. The numba-callable solvers on PyPI do not serve: ``numbalsoda`` ships
only a source build that needs CMake and gfortran (it fails to install here), and
``numbakit-ode`` compiles for seconds per solver instance and is unmaintained. The methods below
are textbook and small enough to own and test: the explicit Runge–Kutta 5(4) pairs of
Tsitouras (``tsit5``) and Dormand–Prince (``dopri5``), in :mod:`cellkin.models._erk`; Verner's
7(6) pair (``vern7``) for tight tolerances, in :mod:`cellkin.models._verner`; and the
Rosenbrock method Rodas4 (``rodas4``) for stiff models, in :mod:`cellkin.models._rodas4` (its
small dense linear algebra in :mod:`cellkin.models._linalg`).

**Automatic switching.** ``auto-tsit5`` and ``auto-vern7`` (what ``method="auto"`` resolves to
for a non-stiff model, by tolerance) run the explicit pair with the Hairer–Wanner stiffness
test on its last two stages; when the step size is held at the pair's stability boundary for
15 accepted steps, the segment continues with Rodas4 from the reached time, and Rodas4 hands
back once ``h·‖D J D⁻¹‖_∞`` (D the error weights) is inside the explicit stability region for
6 steps in a row, like LSODA switching between Adams and BDF or DifferentialEquations.jl's
``AutoTsit5(Rosenbrock23())``.
A León-Triana patient whose tumour escapes to ~1e15 cells (eigenvalue ~ −2.6e4/day) then
costs a few hundred Rosenbrock steps instead of exhausting ``max_steps``.

The kernel contract
-------------------
Every model function is a numba ``njit`` function with one of these fixed signatures
(``float64[::1]`` is a contiguous float64 vector; parameters travel as such a vector in the
model's declared order, followed by the model's derived constants if it has any):

* ``rhs(t, y, p, phase, dydt) -> None`` — write dy/dt into ``dydt``;
* ``jac(t, y, p, phase, jac) -> None`` — write ∂f/∂y into the ``(n, n)`` matrix ``jac``
  (optional; finite differences are used otherwise);
* ``initial_state(p, y0) -> int`` — write the state at t0 into ``y0``; return 0, or a
  model-specific status code (>= 10) when the parameters admit no valid initial state;
* ``observe(y, p) -> float`` — map one state vector to the observed level;
* ``breakpoints(p, out) -> int`` — write the times of discontinuities into ``out`` and return
  how many there are;
* ``derive(p) -> int`` — fill the entries of ``p`` after the declared parameters with
  constants derived from them (say ``1/K`` or ``ln(K_1/K_2)``), once per subject before any
  other model function sees ``p``, so that the right-hand side does not recompute them at
  every stage (optional; return 0, or a model-specific status code >= 10).

**Phases.** Integration is piecewise: the solver stops exactly at each breakpoint, restarts
there with a fresh step size, and passes the *phase index* to ``rhs`` and ``jac``: phase ``k``
is the interval between the k-th and (k+1)-th breakpoint (phase 0 before the first). The
right-hand side selects its regime by this index, never by comparing ``t`` with the breakpoint,
so no stage of a step near Tmax evaluates the wrong regime. States are continuous across
breakpoints. Breakpoints at or before ``t0`` advance the starting phase.

The functions reach the solvers as the native addresses of their compiled code
(:func:`kernel_addresses`; :mod:`cellkin.models._native`), so the solvers, the population
kernels and the single-trajectory kernel are compiled once for every model (and cached on
disk with ``cache=True``); a new model only compiles its own small functions. Compiled code
never raises: it returns a status code per trajectory (:data:`STATUS_MESSAGES`), and a failing
subject leaves its rows NaN without touching the others. Each thread of the parallel
population kernel allocates its work arrays once and claims blocks of subjects from a shared
counter until none is left (so a thread slowed down by other load takes fewer).

*Development note*: numba's on-disk cache checks only the source file of the function it
caches, and a cached kernel embeds the compiled code of everything it calls. After editing
:mod:`cellkin.models._erk`, :mod:`cellkin.models._verner`, :mod:`cellkin.models._rodas4`,
:mod:`cellkin.models._linalg` or :mod:`cellkin.models._native`, touch this file (and the
modules between, e.g. ``_rodas4.py`` after ``_linalg.py``; or delete the ``__pycache__``
folder) so that the kernels here are recompiled.

Orientation: trajectories are ``(n_times, n_states)``; populations ``(n_subjects, n_times)``.
The Python front end (:class:`~cellkin.models.ode.SolverOptions`,
:func:`~cellkin.models.ode.solve` and :class:`~cellkin.models.ode.ODEModel`) lives in
:mod:`cellkin.models.ode`.

References
----------
.. [1] Tsitouras Ch. Runge–Kutta pairs of order 5(4) satisfying only the first column
       simplifying assumption. Comput Math Appl 2011;62(2):770-775.
       doi:10.1016/j.camwa.2011.06.002
.. [2] Dormand JR, Prince PJ. A family of embedded Runge-Kutta formulae. J Comput Appl Math
       1980;6(1):19-26. doi:10.1016/0771-050X(80)90013-3
.. [3] Hairer E, Nørsett SP, Wanner G. Solving Ordinary Differential Equations I, 2nd ed.
       Springer 1993 (step-size control, dense output, initial step).
       doi:10.1007/978-3-540-78862-1
.. [4] Hairer E, Wanner G. Solving Ordinary Differential Equations II, 2nd ed. Springer 1996,
       §IV.2 (stiffness detection), §IV.7 (RODAS). doi:10.1007/978-3-642-05221-7
.. [5] Verner JH. Numerically optimal Runge–Kutta pairs with interpolants. Numer Algorithms
       2010;53(2-3):383-396. doi:10.1007/s11075-009-9290-3
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from numba import types

from cellkin.models import _erk, _rodas4, _verner
from cellkin.models._native import (
    BREAKPOINTS_SIG,
    DERIVE_SIG,
    INIT_SIG,
    JAC_SIG,
    OBSERVE_SIG,
    RHS_SIG,
    STATUS_BAD_BREAKPOINTS,
    STATUS_BAD_INITIAL,
    STATUS_CALM,
    STATUS_MAX_STEPS,
    STATUS_MODEL_ERROR,
    STATUS_NONFINITE,
    STATUS_SINGULAR,
    STATUS_STEP_TOO_SMALL,
    STATUS_STIFF,
    STATUS_SUCCESS,
    all_finite,
    call_breakpoints,
    call_derive,
    call_init,
    call_observe,
    fetch_add,
    kernel_address,
)

__all__ = [
    "METHODS",
    "STATUS_MESSAGES",
    "kernel_addresses",
    "population_kernel",
]

STATUS_MESSAGES: dict[int, str] = {
    STATUS_SUCCESS: "success",
    STATUS_MAX_STEPS: "the solver took `max_steps` steps without reaching the last time",
    STATUS_STEP_TOO_SMALL: "the step size fell below the resolution of the time axis",
    STATUS_NONFINITE: "the right-hand side returned NaN or infinity (or raised)",
    STATUS_SINGULAR: "the Rosenbrock matrix I/(h·γ) − J stayed singular",
    STATUS_BAD_INITIAL: "the initial state is not finite",
    STATUS_BAD_BREAKPOINTS: "a breakpoint is not finite or more were given than declared",
    STATUS_MODEL_ERROR: "a model function raised an exception in compiled code",
}
"""Meaning of the status codes returned per trajectory (codes >= 10 are model-specific)."""

METHODS: dict[str, bool] = {
    "tsit5": False,
    "dopri5": False,
    "vern7": False,
    "rodas4": True,
    "auto-tsit5": False,
    "auto-vern7": False,
}
"""Compiled methods; the value says whether the method is meant for stiff problems.

``auto-tsit5`` and ``auto-vern7`` are the explicit pair with stiffness detection and a switch
to Rodas4 and back within one trajectory (what ``method="auto"`` resolves to).
"""

METHOD_CODES: dict[str, int] = {
    "dopri5": 0,
    "tsit5": 1,
    "rodas4": 2,
    "vern7": 3,
    "auto-tsit5": 4,
    "auto-vern7": 5,
}
"""The integer passed to the compiled kernels for each method."""

_DOPRI5, _TSIT5, _RODAS4, _VERN7, _AUTO_TSIT5, _AUTO_VERN7 = 0, 1, 2, 3, 4, 5
_WORK_ROWS = max(_verner.ROWS, _rodas4.ROWS, 9)
_STIFF_FRACTION = 0.8


# ---------------------------------------------------------------------------- driver
# The compiled plumbing below passes long argument lists; they are kept bin-packed
# (``fmt: off``) because one argument per line would triple the length of this section.
# fmt: off
@numba.njit(cache=True, error_model="numpy")
def _workspace(n_states, max_bp):  # pragma: no cover - compiled
    """Work arrays of one thread: state, stages, Jacobian, LU, pivots, dense-output weights,
    breakpoints and one observation row."""
    return (np.empty(n_states), np.empty((_WORK_ROWS, n_states)), np.empty((n_states, n_states)),
            np.empty((n_states, n_states)), np.empty(n_states, dtype=np.int64),
            np.empty(_verner.ROWS), np.empty(max(max_bp, 1)), np.empty(n_states))


@numba.njit(cache=True, error_model="numpy")
def _explicit(method, rhs, t, t_end, y, p, phase, t_out, j, states, rtol, atol, h, steps,
              max_steps, w, bt, stiff_limit):  # pragma: no cover - compiled
    """One explicit pair over (t, t_end]; returns (status, t, j, h, steps)."""
    if method == _TSIT5 or method == _AUTO_TSIT5:
        return _erk.tsit5(rhs, t, t_end, y, p, phase, t_out, j, states, rtol, atol, h, steps,
                          max_steps, w, bt, stiff_limit)
    if method == _VERN7 or method == _AUTO_VERN7:
        return _verner.vern7(rhs, t, t_end, y, p, phase, t_out, j, states, rtol, atol, h,
                             steps, max_steps, w, bt, stiff_limit)
    return _erk.dopri5(rhs, t, t_end, y, p, phase, t_out, j, states, rtol, atol, h, steps,
                       max_steps, w, bt, stiff_limit)


@numba.njit(cache=True, error_model="numpy")
def _segment(method, rhs, jac, has_jac, t, t_end, y, p, phase, t_out, j, states, rtol, atol, h,
             steps, max_steps, w, jmat, lu, piv, bt):  # pragma: no cover - compiled
    """Integrate (t, t_end] without a breakpoint inside; returns (status, j, h, steps).

    The ``auto`` codes start with the explicit pair, hand over to Rodas4 when the pair reports
    stiffness (:data:`STATUS_STIFF`) and back when Rodas4 reports calm (:data:`STATUS_CALM`),
    as often as needed, all within the one step budget.
    """
    auto = method == _AUTO_TSIT5 or method == _AUTO_VERN7
    limit = 0.0
    if auto:  # a step controller holds h·|λ| somewhat inside the boundary: test at 80% of it
        scale = _erk.TSIT5_STABILITY if method == _AUTO_TSIT5 else _verner.VERN7_STABILITY
        limit = _STIFF_FRACTION * scale
    stiff = method == _RODAS4
    while True:
        if stiff:
            status, t, j, h, steps = _rodas4.rodas4(rhs, jac, has_jac, t, t_end, y, p, phase,
                                                    t_out, j, states, rtol, atol, h, steps,
                                                    max_steps, w, jmat, lu, piv, limit)
        else:
            status, t, j, h, steps = _explicit(method, rhs, t, t_end, y, p, phase, t_out, j,
                                               states, rtol, atol, h, steps, max_steps, w, bt,
                                               limit)
        if status == STATUS_STIFF or status == STATUS_CALM:
            stiff = status == STATUS_STIFF
        else:
            return status, j, h, steps


@numba.njit(cache=True, error_model="numpy")
def _integrate(method, rhs, jac, has_jac, t0, y, p, t_out, bp, n_bp, rtol, atol, first_step,
               max_steps, states, w, jmat, lu, piv, bt):  # pragma: no cover - compiled
    """Integrate one trajectory piecewise across breakpoints; fill ``states``; return status.

    ``y`` holds the state at ``t0`` and is advanced in place; ``bp[:n_bp]`` (the breakpoints)
    is sorted in place. ``t_out`` must be sorted ascending with ``t_out[0] >= t0``; rows not
    reached are NaN.
    """
    n, n_out = y.shape[0], t_out.shape[0]
    status = STATUS_SUCCESS if all_finite(y) else STATUS_BAD_INITIAL
    for k in range(n_bp):  # insertion sort (a handful of breakpoints at most)
        value, m = bp[k], k
        if not math.isfinite(value):
            status = STATUS_BAD_BREAKPOINTS
        while m > 0 and bp[m - 1] > value:
            bp[m] = bp[m - 1]
            m -= 1
        bp[m] = value
    j = 0
    while status == STATUS_SUCCESS and j < n_out and t_out[j] <= t0:
        for i in range(n):
            states[j, i] = y[i]
        j += 1
    t, phase, k, steps, h = t0, 0, 0, 0, first_step
    while status == STATUS_SUCCESS and j < n_out:
        while k < n_bp and bp[k] <= t:  # each breakpoint passed advances the phase
            phase, k = phase + 1, k + 1
        t_end = bp[k] if k < n_bp and bp[k] < t_out[n_out - 1] else t_out[n_out - 1]
        status, j, h, steps = _segment(method, rhs, jac, has_jac, t, t_end, y, p, phase, t_out,
                                       j, states, rtol, atol, h, steps, max_steps, w, jmat, lu,
                                       piv, bt)
        if k < n_bp and t_end == bp[k]:
            h = first_step  # restart at the discontinuity with a fresh starting step
        t = t_end
    for jj in range(j, n_out):
        for i in range(n):
            states[jj, i] = np.nan
    return status


@numba.njit(cache=True, error_model="numpy")
def _simulate_subject(method, rhs, jac, has_jac, derive, init, observe, breakpoints, max_bp, t0,
                      t_out, p, rtol, atol, first_step, max_steps, observed, buffer,
                      ws):  # pragma: no cover - compiled
    """One subject of a population: derived constants, initial state, breakpoints, integration,
    observation."""
    y, w, jmat, lu, piv, bt, bps, row = ws
    n = y.shape[0]
    for i in range(n):
        y[i] = 0.0
    ok, code = call_derive(derive, p)
    if ok and code == 0:
        ok, code = call_init(init, p, y)
    n_bp = 0
    if max_bp > 0 and ok and code == 0:
        ok, n_bp = call_breakpoints(breakpoints, p, bps)
        if n_bp < 0 or n_bp > max_bp:
            code = STATUS_BAD_BREAKPOINTS
    if not ok:
        code = STATUS_MODEL_ERROR
    if code == 0:
        code = _integrate(method, rhs, jac, has_jac, t0, y, p, t_out, bps, n_bp, rtol, atol,
                          first_step, max_steps, buffer, w, jmat, lu, piv, bt)
    for j in range(t_out.shape[0]):
        if code == 0:
            for i in range(n):
                row[i] = buffer[j, i]
            ok, level = call_observe(observe, row, p)
            observed[j] = level
            if not ok:
                code = STATUS_MODEL_ERROR
    if code != 0:
        for j in range(t_out.shape[0]):
            observed[j] = np.nan
            for i in range(n):
                buffer[j, i] = np.nan
    return code


@numba.njit(cache=True, error_model="numpy")
def _worker(counter, block, method, rhs, jac, has_jac, derive, n_derived, init, observe,
            breakpoints, n_states, max_bp, t0, t_out, param_matrix, rtol, atol, first_step,
            max_steps, observed, states, status):  # pragma: no cover - compiled
    """Claim blocks of ``block`` subjects from ``counter`` until none is left.

    One thread's share of a population, with one set of work arrays. Shared arrays are read and
    written element-wise only, and the vectors passed down on every call are thread-private
    copies: passing a shared array would bounce its reference count between cores. The
    subject's parameter vector has ``n_derived`` entries after the declared parameters, which
    ``derive`` fills.
    """
    n, n_params = param_matrix.shape
    times, tol = t_out.copy(), atol.copy()
    p = np.zeros(n_params + n_derived)
    level, buffer = np.empty(times.shape[0]), np.empty((times.shape[0], n_states))
    ws = _workspace(n_states, max_bp)
    keep = states.shape[0] == n
    while True:
        first = fetch_add(counter, block)
        if first >= n:
            return
        for s in range(first, min(first + block, n)):
            for q in range(n_params):
                p[q] = param_matrix[s, q]
            status[s] = _simulate_subject(method, rhs, jac, has_jac, derive, init, observe,
                                          breakpoints, max_bp, t0, times, p, rtol, tol,
                                          first_step, max_steps, level, buffer, ws)
            for j in range(times.shape[0]):
                observed[s, j] = level[j]
                if keep:
                    for i in range(n_states):
                        states[s, j, i] = buffer[j, i]


_BLOCK = 16  # subjects claimed at a time: one atomic operation per ~0.5 ms of work


def _population_parallel_py(method, rhs, jac, has_jac, derive, n_derived, init, observe,
                            breakpoints, n_states, max_bp, t0, t_out, param_matrix, rtol, atol,
                            first_step, max_steps, observed, states,
                            threads):  # pragma: no cover - compiled
    n = param_matrix.shape[0]
    status = np.zeros(n, dtype=np.int32)
    counter = np.zeros(1, dtype=np.int64)
    block = max(1, min(_BLOCK, n // max(threads, 1)))
    for _ in numba.prange(max(1, min(threads, n))):
        _worker(counter, block, method, rhs, jac, has_jac, derive, n_derived, init, observe,
                breakpoints, n_states, max_bp, t0, t_out, param_matrix, rtol, atol, first_step,
                max_steps, observed, states, status)
    return status


def _population_serial_py(method, rhs, jac, has_jac, derive, n_derived, init, observe,
                          breakpoints, n_states, max_bp, t0, t_out, param_matrix, rtol, atol,
                          first_step, max_steps, observed, states,
                          threads):  # pragma: no cover - compiled
    # The parallel kernel without threads: a separate function, because numba's on-disk
    # cache does not tell compilation flags apart.
    status = np.zeros(param_matrix.shape[0], dtype=np.int32)
    _worker(np.zeros(1, dtype=np.int64), _BLOCK, method, rhs, jac, has_jac, derive, n_derived,
            init, observe, breakpoints, n_states, max_bp, t0, t_out, param_matrix, rtol, atol,
            first_step, max_steps, observed, states, status)
    return status


def _solve_one_py(method, rhs, jac, has_jac, t0, y0, p, t_out, bps, n_bp, rtol, atol,
                  first_step, max_steps, states):  # pragma: no cover - compiled
    y, w, jmat, lu, piv, bt, _, _ = _workspace(y0.shape[0], 0)
    for i in range(y0.shape[0]):
        y[i] = y0[i]
    return _integrate(method, rhs, jac, has_jac, t0, y, p, t_out, bps[:n_bp].copy(), n_bp,
                      rtol, atol, first_step, max_steps, states, w, jmat, lu, piv, bt)


@numba.njit(cache=True)
def _no_jacobian(t, y, p, phase, jac):  # pragma: no cover - compiled
    """Placeholder Jacobian for models without one (never called: ``has_jac`` is False)."""
    jac[:, :] = np.nan


@numba.njit(cache=True)
def _no_breakpoints(p, out):  # pragma: no cover - compiled
    """Placeholder: a model without discontinuities."""
    return 0


@numba.njit(cache=True)
def _no_derive(p):  # pragma: no cover - compiled
    """Placeholder: a model without derived constants."""
    return 0


_F8, _I8, _IP, _B1 = types.float64, types.int64, types.intp, types.boolean
_VEC, _MAT = types.float64[::1], types.float64[:, ::1]
_SOLVE_ONE_SIG = _I8(_I8, _IP, _IP, _B1, _F8, _VEC, _VEC, _VEC, _VEC, _I8, _F8, _VEC, _F8, _I8,
                     _MAT)
_POPULATION_SIG = types.int32[::1](_I8, _IP, _IP, _B1, _IP, _I8, _IP, _IP, _IP, _I8, _I8, _F8,
                                   _VEC, _MAT, _F8, _VEC, _F8, _I8, _MAT,
                                   types.float64[:, :, ::1], _I8)
# fmt: on


@functools.cache
def _solve_one_kernel() -> Callable:
    """Compile (or load from the on-disk cache) the single-trajectory kernel, once.

    Signature::

        kernel(method, rhs, jac, has_jac, t0, y0, p, t_out, breakpoints, n_breakpoints, rtol,
               atol, first_step, max_steps, states) -> int
    """
    return numba.njit(_SOLVE_ONE_SIG, cache=True, error_model="numpy")(_solve_one_py)


@functools.cache
def population_kernel(parallel: bool = True) -> Callable:
    """Return the compiled population kernel (compiled once, then loaded from disk cache).

    Signature::

        kernel(method, rhs, jac, has_jac, derive, n_derived, initial_state, observe,
               breakpoints, n_states, max_breakpoints, t0, t_out, param_matrix, rtol, atol,
               first_step, max_steps, observed, states, threads) -> int32[n_subjects]

    ``method`` is a :data:`METHOD_CODES` value; the model functions are native addresses from
    :func:`kernel_addresses`; ``derive`` fills the ``n_derived`` entries that follow each
    subject's row of ``param_matrix`` in the vector the model functions receive. ``t_out`` is
    sorted with ``t_out[0] >= t0``; ``observed`` is ``(n_subjects, n_times)``; ``states`` is
    ``(n_subjects, n_times, n_states)`` to keep trajectories, or of shape ``(0, 0, 0)`` to
    discard them. With ``parallel=True``,
    ``threads`` workers (``numba.prange``; pass ``numba.get_num_threads()``), each with its own
    work arrays, claim blocks of subjects from a shared counter until all are done; the serial
    variant ignores ``threads`` and avoids the thread start-up cost for one or a few subjects
    (a fit calls it thousands of times).
    """
    if parallel:
        kernel = numba.njit(_POPULATION_SIG, cache=True, parallel=True, error_model="numpy")
        return kernel(_population_parallel_py)
    return numba.njit(_POPULATION_SIG, cache=True, error_model="numpy")(_population_serial_py)


@functools.cache
def _address(dispatcher: Any, signature: Any) -> int:
    return kernel_address(dispatcher, signature)


def kernel_addresses(
    rhs: Any,
    jac: Any = None,
    initial_state: Any = None,
    observe: Any = None,
    breakpoints: Any = None,
    derive: Any = None,
) -> tuple[int, int, int, int, int, int]:
    """Native addresses of a model's kernels, in the order of the kernel signatures.

    ``jac``, ``breakpoints`` and ``derive`` default to placeholders (no Jacobian, no
    breakpoints, no derived constants);
    ``initial_state`` and ``observe`` are only called by the population kernels and give
    address 0 when absent. Resolved once per function (the dispatchers stay referenced).
    """
    return (
        _address(rhs, RHS_SIG),
        _address(_no_jacobian if jac is None else jac, JAC_SIG),
        0 if initial_state is None else _address(initial_state, INIT_SIG),
        0 if observe is None else _address(observe, OBSERVE_SIG),
        _address(_no_breakpoints if breakpoints is None else breakpoints, BREAKPOINTS_SIG),
        _address(_no_derive if derive is None else derive, DERIVE_SIG),
    )
