"""Mechanistic (ODE) models: solver options, :func:`solve` and the :class:`ODEModel` base class.

This module is the Python side of :mod:`cellkin.models.solvers` (the compiled integrators):
:class:`SolverOptions` (tolerances and method, passed explicitly), :func:`solve` (one
trajectory of any right-hand side under the kernel contract) and :class:`ODEModel`.

An ODE model is declared like any cellkin model (name, citation, DOI, parameter specs,
observed unit) plus its states and a handful of numba kernels; the base class turns them into
the batch kernel of the :class:`~cellkin.models.base.Model` contract by handing them to the
shared, compiled solvers of :mod:`cellkin.models.solvers`. Nothing is compiled per model except
the model's own small functions, so adding a model costs well under a second of compilation.

Time is in days since CAR-T infusion (t = 0); the state at t = 0 comes from
``initial_state`` (typically from the dose). Before infusion (t < 0) the observed level is 0
(no CAR-T cells yet) and the states are reported as NaN: the models do not describe the
pre-infusion period.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numba
import numpy as np
import pandas as pd

from cellkin.errors import ModelError
from cellkin.models import solvers
from cellkin.models.base import Model

__all__ = ["ODEModel", "Solution", "SolverOptions", "solve"]

_EPS = float(np.finfo(np.float64).eps)

# Populations smaller than this run in the serial kernel: starting the worker threads costs
# more than it saves for a handful of subjects (and a fit simulates one subject at a time).
_PARALLEL_FROM = 8

METHOD_NAMES = ("tsit5", "dopri5", "vern7", "rodas4")
"""The integrators a user may name; ``"auto"`` chooses among them."""

DEFAULT_RTOL = 1e-6
"""The default relative tolerance of simulation and fitting with the ODE models.

Chosen from the data the models meet: qPCR and flow levels of CAR-T cells scatter with a
coefficient of variation of 20–50% (a log-scale residual SD of about 0.2–0.5), so a relative
solver error of 1e-6 lies five orders of magnitude below the residual SD and moves neither an
estimate nor its standard error (tested: estimates at this default and at rtol 1e-10 agree
within 1% of their SE, ``tests/fit/test_solver_tolerance.py``). Measured on 300 virtual
patients per model (ω 0.4 on nine or ten parameters, 13 samples to day 365), maximum relative
error of the observed level (floor 10⁻⁶ × each patient's peak) against SciPy (DOP853 at rtol
1e-13 for Kimmel 2021, Radau at rtol 1e-12 for León-Triana 2021), and ``simulate_many`` of
5,000 patients on 2 cores:

==================  ======  =====================  ================
model               rtol    error p99 (max)        patients/s
==================  ======  =====================  ================
Kimmel 2021         1e-6    5.1e-6 (5.9e-6)        36,800
Kimmel 2021         1e-8    4.1e-9 (1.2e-8)        27,200
León-Triana 2021    1e-6    1.6e-4 (8.1e-4)        33,100
León-Triana 2021    1e-8    5.4e-6 (9.7e-5)        19,500
==================  ======  =====================  ================

so the default is 1.35–1.7× faster than rtol 1e-8 and its worst error is still 250 times
below a residual SD of 0.2. Pass ``rtol`` (e.g. ``model.with_options(rtol=1e-10)``) for a
reference solution."""

TIGHT_RTOL = 1e-7
"""``method="auto"`` takes the Verner 7(6) pair below this rtol and Tsitouras 5(4) from it up
(the 7(6) pair needs fewer evaluations than a 5(4) pair from about rtol 1e-7 on the catalogue
models; ``benchmarks/bench_work_precision.py``)."""


@dataclass(frozen=True)
class SolverOptions:
    """Options of the numba integrators, passed explicitly (never global).

    Parameters
    ----------
    rtol : float
        Relative tolerance (default :data:`DEFAULT_RTOL`, 1e-6: five orders of magnitude
        below the noise of any CAR-T assay; see there for the measured cost and accuracy).
    atol : float or sequence of float, optional
        Absolute tolerance, scalar or one per state. ``None`` takes the model's
        ``default_atol`` (chosen per model from the scale of its states, see
        :class:`ODEModel`).
    method : {"auto", "tsit5", "dopri5", "vern7", "rodas4"}
        ``"auto"`` takes Rodas4 for models declared ``stiff``; otherwise the Tsitouras 5(4)
        pair at ``rtol >= TIGHT_RTOL`` and the Verner 7(6) pair below, each watching for
        stiffness during the solve and handing stiff stretches of a trajectory to Rodas4 (and
        back). ``"dopri5"`` is the Dormand–Prince 5(4) pair; a named method never switches.
    max_steps : int
        Maximum number of steps (accepted and rejected) per trajectory.
    first_step : float
        Starting step in days; 0 selects it automatically (also after every breakpoint).
    """

    rtol: float = DEFAULT_RTOL
    atol: float | tuple[float, ...] | None = None
    method: Literal["auto", "tsit5", "dopri5", "vern7", "rodas4"] = "auto"
    max_steps: int = 100_000
    first_step: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rtol) and 100 * _EPS <= self.rtol < 1.0):
            raise ModelError(f"`rtol` must lie in [{100 * _EPS:.1e}, 1), got {self.rtol!r}")
        if self.atol is not None:
            atol = np.atleast_1d(np.asarray(self.atol, dtype=np.float64))
            if atol.ndim != 1 or not (np.isfinite(atol).all() and (atol > 0).all()):
                raise ModelError(f"`atol` must be positive and finite, got {self.atol!r}")
        if self.method not in ("auto", *METHOD_NAMES):
            raise ModelError(
                f"`method` must be 'auto' or one of {sorted(METHOD_NAMES)}, got {self.method!r}"
            )
        if not (isinstance(self.max_steps, (int, np.integer)) and self.max_steps > 0):
            raise ModelError(f"`max_steps` must be a positive integer, got {self.max_steps!r}")
        if not (math.isfinite(self.first_step) and self.first_step >= 0):
            raise ModelError(f"`first_step` must be >= 0, got {self.first_step!r}")

    def atol_vector(self, n_states: int, default: float | Sequence[float]) -> np.ndarray:
        """Absolute tolerance as a contiguous vector of length ``n_states``."""
        atol = np.asarray(default if self.atol is None else self.atol, dtype=np.float64)
        atol = np.array(np.broadcast_to(np.atleast_1d(atol), (n_states,)), dtype=np.float64)
        if not (np.isfinite(atol).all() and (atol > 0).all()):
            raise ModelError(f"`atol` must be positive and finite, got {atol.tolist()}")
        return atol

    def is_stiff(self, stiff_default: bool) -> bool:
        """Whether to use the stiff method, given the model's ``stiff`` flag."""
        return solvers.METHODS[self.resolve(stiff_default)]

    def resolve(self, stiff_default: bool) -> str:
        """The compiled method to use, given the model's ``stiff`` flag (``"auto"`` resolved).

        ``"auto"`` becomes ``"rodas4"`` for a stiff model, else ``"auto-tsit5"`` or
        ``"auto-vern7"`` by :data:`TIGHT_RTOL` (the explicit pair with stiffness switching).
        """
        if self.method != "auto":
            return self.method
        if stiff_default:
            return "rodas4"
        return "auto-tsit5" if self.rtol >= TIGHT_RTOL else "auto-vern7"


@dataclass(frozen=True)
class Solution:
    """Result of :func:`solve`.

    Attributes
    ----------
    t : ndarray, shape (n_times,)
        Output times, as requested.
    y : ndarray, shape (n_times, n_states)
        States at ``t`` (NaN from the first time the solver could not reach).
    status : int
        0 on success, otherwise a code of :data:`solvers.STATUS_MESSAGES`.
    message : str
        Human-readable status.
    """

    t: np.ndarray
    y: np.ndarray
    status: int
    message: str

    @property
    def success(self) -> bool:
        """True when the solver reached the last output time."""
        return self.status == solvers.STATUS_SUCCESS


def solve(
    rhs: Callable,
    t: Sequence[float] | np.ndarray,
    y0: Sequence[float] | np.ndarray,
    p: Sequence[float] | np.ndarray = (),
    *,
    jac: Callable | None = None,
    breakpoints: Sequence[float] = (),
    t0: float = 0.0,
    options: SolverOptions | None = None,
    errors: Literal["raise", "coerce"] = "raise",
) -> Solution:
    """Integrate ``dy/dt = rhs(t, y, p, phase)`` from ``t0`` and report the states at ``t``.

    Parameters
    ----------
    rhs : numba dispatcher
        ``rhs(t, y, p, phase, dydt)`` under the kernel contract (module docstring).
    t : array_like, shape (n_times,)
        Output times, non-decreasing, all ``>= t0``.
    y0 : array_like, shape (n_states,)
        State at ``t0``.
    p : array_like, shape (n_params,)
        Parameter vector passed unchanged to ``rhs`` and ``jac``.
    jac : numba dispatcher, optional
        ``jac(t, y, p, phase, out)``; used by Rodas4 only (finite differences otherwise).
    breakpoints : sequence of float
        Times where the right-hand side changes regime; the phase index passed to ``rhs``
        counts the breakpoints at or before the current interval.
    t0 : float
        Initial time.
    options : SolverOptions, optional
        Tolerances and method (defaults: ``SolverOptions()`` with ``atol`` 1e-10 when unset;
        ``"auto"`` is the explicit pair for the tolerance, switching to Rodas4 when stiff).
    errors : {"raise", "coerce"}
        On failure, raise :class:`~cellkin.errors.ModelError` (default) or return the
        :class:`Solution` with its status.

    Returns
    -------
    Solution
    """
    options = SolverOptions() if options is None else options
    for label, function in (("rhs", rhs), ("jac", jac)):
        if function is not None and not hasattr(function, "py_func"):
            raise ModelError(f"`{label}` must be a numba.njit function, got {function!r}")
    t_out = np.ascontiguousarray(np.atleast_1d(np.asarray(t, dtype=np.float64)))
    y_start = np.ascontiguousarray(np.atleast_1d(np.asarray(y0, dtype=np.float64)))
    params = np.ascontiguousarray(np.atleast_1d(np.asarray(p, dtype=np.float64)))
    bps = np.ascontiguousarray(np.asarray(breakpoints, dtype=np.float64).reshape(-1))
    if t_out.ndim != 1 or y_start.ndim != 1 or y_start.size == 0:
        raise ModelError("`t` and `y0` must be non-empty 1-D arrays")
    if not np.isfinite(t_out).all() or (np.diff(t_out) < 0).any() or (t_out < t0).any():
        raise ModelError(f"`t` must be finite, non-decreasing and >= t0 = {t0}")
    if errors not in ("raise", "coerce"):
        raise ModelError(f"`errors` must be 'raise' or 'coerce', got {errors!r}")
    atol = options.atol_vector(y_start.size, 1e-10)
    states = np.empty((t_out.size, y_start.size))
    rhs_address, jac_address, *_ = solvers.kernel_addresses(rhs, jac)
    status = int(
        solvers._solve_one_kernel()(
            solvers.METHOD_CODES[options.resolve(False)],
            rhs_address,
            jac_address,
            jac is not None,
            float(t0),
            y_start,
            params,
            t_out,
            bps,
            bps.size,
            options.rtol,
            atol,
            options.first_step,
            int(options.max_steps),
            states,
        )
    )
    message = solvers.STATUS_MESSAGES.get(status, f"model-specific status {status}")
    if status != solvers.STATUS_SUCCESS and errors == "raise":
        raise ModelError(f"ODE integration failed (status {status}): {message}")
    return Solution(t=t_out, y=states, status=status, message=message)


class ODEModel(Model):
    """Base class of models integrated numerically (template: declare data, write kernels).

    A subclass must provide, besides the :class:`~cellkin.models.base.Model` declaration:

    1. ``state_names`` and ``state_units`` — tuples of equal length (snake_case names);
    2. ``rhs`` — ``staticmethod`` of a numba ``njit`` function ``rhs(t, y, p, phase, dydt)``
       that writes every component of ``dydt`` and never raises (``p`` holds the parameters
       in :attr:`param_names` order; ``phase`` counts the breakpoints passed, see 5);
    3. ``initial_state`` — ``njit`` ``initial_state(p, y0) -> int`` writing the state at
       infusion (t = 0) and returning 0, or a model status code >= 10 when the parameters
       admit no valid start;
    4. ``observe`` — ``njit`` ``observe(y, p) -> float``, the observed level in
       :attr:`observed_unit`;
    5. optionally ``breakpoints`` — ``njit`` ``breakpoints(p, out) -> int`` writing up to
       ``max_breakpoints`` discontinuity times (e.g. Tmax) into ``out``; the solver restarts
       at each and passes the phase index to ``rhs``;
    6. optionally ``jacobian`` — ``njit`` ``jacobian(t, y, p, phase, jac)`` (∂f/∂y), used by
       the stiff solver instead of finite differences;
    7. optionally ``derived_names`` and ``derive`` — names of constants computed once per
       subject from the parameters, and the ``njit`` ``derive(p) -> int`` that writes them
       into ``p[len(params):]`` (returning 0, or a model status code >= 10); every other
       kernel then receives ``p`` with these entries appended (:meth:`kernel_vector`), so a
       right-hand side need not recompute, say, a logarithm of two parameters at every stage;
    8. ``stiff`` (chooses Rodas4 over the explicit Tsitouras pair by default) and ``default_atol``
       (scalar or one per state, in state units; rule below).

    **Tolerances.** The relative tolerance defaults to :data:`DEFAULT_RTOL` (1e-6, from the
    assay noise). The absolute tolerance of a state (``default_atol``) is the level below which
    its value no longer matters: a small fraction of one cell in the state's unit (one cell in
    the body, or in the mouse, expressed in that unit; for a qPCR level, orders of magnitude
    below any LLOQ), so that the relative tolerance governs every level a sample can quantify
    and a state is held only to ``atol`` once it is below a single cell. One value where the
    states share a unit, one per state where they do not. The catalogue: Kimmel 2021
    (1e-10, 1e-12) cells/µL for normal and CAR-T cells (one cell in the body is 2×10⁻⁹
    cells/µL) and 1e-12 mL for the tumour (one cell is about 10⁻⁹ mL); León-Triana 2021 1e-6
    cells; Chaudhury 2020 1e-12 cells; CARTmath 1e-9 cells; Stein 2019 ODE 1e-9 copies/µg.

    The kernels must run both compiled and as plain Python on NumPy arrays (``.py_func``),
    which is what the conformance suite uses as an independent SciPy reference.

    Parameters
    ----------
    rtol : float
        Relative tolerance of the integrator (default :data:`DEFAULT_RTOL`, 1e-6).
    atol : float or sequence of float, optional
        Absolute tolerance, scalar or per state; default ``default_atol`` of the model.
    method : {"auto", "tsit5", "dopri5", "vern7", "rodas4"}
        Integrator; ``"auto"`` takes Rodas4 for models declared ``stiff`` and otherwise the
        explicit pair for the tolerance with stiffness switching (:class:`SolverOptions`).
    max_steps : int
        Step budget per trajectory; a subject that exhausts it gets status 1 and NaN rows.
    """

    abstract: ClassVar[bool] = True
    state_names: ClassVar[tuple[str, ...]]
    state_units: ClassVar[tuple[str, ...]]
    stiff: ClassVar[bool] = False
    max_breakpoints: ClassVar[int] = 0
    default_atol: ClassVar[float | tuple[float, ...]] = 1e-10
    rhs: ClassVar[Any]
    initial_state: ClassVar[Any]
    observe: ClassVar[Any]
    breakpoints: ClassVar[Any] = None
    jacobian: ClassVar[Any] = None
    derived_names: ClassVar[tuple[str, ...]] = ()
    derive: ClassVar[Any] = None

    def __init__(
        self,
        *,
        rtol: float = DEFAULT_RTOL,
        atol: float | Sequence[float] | None = None,
        method: Literal["auto", "tsit5", "dopri5", "vern7", "rodas4"] = "auto",
        max_steps: int = 100_000,
    ) -> None:
        atol_value: float | tuple[float, ...] | None
        if atol is None:
            atol_value = None
        elif np.ndim(atol) == 0:
            atol_value = float(np.asarray(atol))
        else:
            atol_value = tuple(float(value) for value in np.asarray(atol, dtype=float))
        self.options = SolverOptions(rtol=rtol, atol=atol_value, method=method, max_steps=max_steps)
        self._atol = self.options.atol_vector(len(self.state_names), self.default_atol)

    @classmethod
    def _check_declaration(cls) -> None:
        super()._check_declaration()
        where = f"model class {cls.__name__}"
        for attribute in ("state_names", "state_units", "rhs", "initial_state", "observe"):
            if getattr(cls, attribute, None) is None:
                raise ModelError(f"{where} must declare `{attribute}`")
        for attribute in ("rhs", "initial_state", "observe", "breakpoints", "jacobian", "derive"):
            kernel = getattr(cls, attribute)
            if kernel is not None and not hasattr(kernel, "py_func"):
                raise ModelError(f"{where}: `{attribute}` must be a numba.njit function")
        names = cls.state_names
        if not names or not all(isinstance(n, str) and n.isidentifier() for n in names):
            raise ModelError(f"{where}: `state_names` must be a non-empty tuple of identifiers")
        if len(set(names)) != len(names):
            raise ModelError(f"{where}: duplicated state names in {names}")
        if len(cls.state_units) != len(names):
            raise ModelError(f"{where}: `state_units` must give one unit per state")
        if cls.max_breakpoints > 0 and cls.breakpoints is None:
            raise ModelError(f"{where} declares `max_breakpoints` but no `breakpoints` kernel")
        derived = cls.derived_names
        if not all(isinstance(name, str) and name.isidentifier() for name in derived):
            raise ModelError(f"{where}: `derived_names` must be a tuple of identifiers")
        if bool(derived) != (cls.derive is not None):
            raise ModelError(f"{where} must declare both `derived_names` and `derive`, or neither")
        atol = np.atleast_1d(np.asarray(cls.default_atol, dtype=float))
        if not (np.isfinite(atol).all() and (atol > 0).all() and atol.size in (1, len(names))):
            raise ModelError(f"{where}: `default_atol` must be positive, scalar or per state")

    def with_options(self, **options: Any) -> ODEModel:
        """A copy of this model with other solver options (``rtol``, ``atol``, ...)."""
        current: dict[str, Any] = {
            "rtol": self.options.rtol,
            "atol": self.options.atol,
            "method": self.options.method,
            "max_steps": self.options.max_steps,
        }
        current.update(options)
        return type(self)(**current)

    # ------------------------------------------------------------------ declared data
    @property
    def n_states(self) -> int:
        """Number of states."""
        return len(self.state_names)

    @property
    def method(self) -> str:
        """The compiled method this instance uses (:meth:`SolverOptions.resolve`)."""
        return self.options.resolve(self.stiff)

    @property
    def solver_settings(self) -> dict[str, Any]:
        """The solver settings, as fits and simulations record them.

        ``method`` (as asked, e.g. ``"auto"``), ``integrator`` (what it resolves to,
        :attr:`method`), ``rtol``, ``atol`` (by state name, in state units) and ``max_steps``.
        """
        return {
            "method": self.options.method,
            "integrator": self.method,
            "rtol": float(self.options.rtol),
            "atol": dict(zip(self.state_names, map(float, self._atol), strict=True)),
            "max_steps": int(self.options.max_steps),
        }

    @property
    def state_table(self) -> pd.DataFrame:
        """The states and their units as a table."""
        return pd.DataFrame({"state": list(self.state_names), "unit": list(self.state_units)})

    def kernel_vector(self, params: Mapping[str, float] | None = None) -> np.ndarray:
        """The vector the model's kernels receive: the parameters, then the derived constants.

        For a model without :attr:`derived_names` this is :meth:`param_vector`. Use it to call
        ``rhs``, ``initial_state``, ``observe`` or ``jacobian`` directly (or to pass them to
        :func:`solve`).
        """
        values = self.param_vector(params)
        if not self.derived_names:
            return values
        vector = np.zeros(values.size + len(self.derived_names))
        vector[: values.size] = values
        code = int(self.derive(vector))
        if code != 0:
            raise ModelError(
                f"model `{self.name}` failed to derive its constants: {_status_message(code)}"
            )
        return vector

    def derivative(
        self,
        t: float,
        y: Sequence[float],
        params: Mapping[str, float] | None = None,
        phase: int = 0,
    ) -> np.ndarray:
        """Evaluate the right-hand side ``dy/dt`` at one state (for checks and plots)."""
        state = np.ascontiguousarray(y, dtype=np.float64)
        if state.shape != (self.n_states,):
            raise ModelError(f"`y` must have shape ({self.n_states},), got {state.shape}")
        dydt = np.empty(self.n_states)
        self.rhs(float(t), state, self.kernel_vector(params), int(phase), dydt)
        return dydt

    # ------------------------------------------------------------------ simulation
    def _batch_kernel(self, t: np.ndarray, param_matrix: np.ndarray, out: np.ndarray) -> np.ndarray:
        """The :class:`Model` batch contract: fill ``out`` and return the status per subject.

        Populations of 8 or more subjects run in parallel (``prange``), smaller ones serially.
        """
        return self._run(t, param_matrix, out, None)

    def _serial_kernel(
        self, t: np.ndarray, param_matrix: np.ndarray, out: np.ndarray
    ) -> np.ndarray:
        """As :meth:`_batch_kernel` without threads (the many one-subject calls of a fit)."""
        return self._run(t, param_matrix, out, None, parallel=False)

    @classmethod
    def _addresses(cls) -> tuple[int, ...]:
        """Native addresses of the model's kernels (resolved once per class)."""
        addresses = cls.__dict__.get("_kernel_addresses")
        if addresses is None:
            addresses = solvers.kernel_addresses(
                cls.rhs, cls.jacobian, cls.initial_state, cls.observe, cls.breakpoints, cls.derive
            )
            setattr(cls, "_kernel_addresses", addresses)  # noqa: B010 (one cache per subclass)
        return addresses

    def _run(
        self,
        t: np.ndarray,
        param_matrix: np.ndarray,
        out: np.ndarray,
        states: np.ndarray | None,
        parallel: bool | None = None,
    ) -> np.ndarray:
        n_subjects = param_matrix.shape[0]
        order = np.argsort(t, kind="stable")
        before = t[order] < 0.0
        t_after = np.ascontiguousarray(t[order][~before])
        out[:, order[before]] = 0.0
        if states is not None:
            states[:, order[before], :] = np.nan
        if t_after.size == 0 or n_subjects == 0:
            return np.zeros(n_subjects, dtype=np.int32)
        in_order = not before.any() and bool((order == np.arange(order.size)).all())
        # Sorted, post-infusion times (the usual case): the kernel writes ``out`` itself,
        # saving a second output array and a gather copy of it.
        direct = in_order and out.flags.c_contiguous and out.dtype == np.float64
        observed = out if direct else np.empty((n_subjects, t_after.size))
        keep = np.empty(
            (n_subjects, t_after.size, self.n_states) if states is not None else (0,) * 3
        )
        rhs, jac, init, observe, breakpoints, derive = self._addresses()
        if parallel is None:
            parallel = n_subjects >= _PARALLEL_FROM
        kernel = solvers.population_kernel(parallel=parallel)
        status = kernel(
            solvers.METHOD_CODES[self.method],
            rhs,
            jac,
            self.jacobian is not None,
            derive,
            len(self.derived_names),
            init,
            observe,
            breakpoints,
            self.n_states,
            int(self.max_breakpoints),
            0.0,
            t_after,
            np.ascontiguousarray(param_matrix, dtype=np.float64),
            float(self.options.rtol),
            self._atol,
            float(self.options.first_step),
            int(self.options.max_steps),
            observed,
            keep,
            numba.get_num_threads(),
        )
        if not direct:
            out[:, order[~before]] = observed
        if states is not None:
            states[:, order[~before], :] = keep
        return status

    def simulate_states(self, t: object, params: Mapping[str, float] | None = None) -> np.ndarray:
        """Simulate every state of one subject.

        Parameters
        ----------
        t : array_like, shape (n_times,)
            Days since infusion (any order; states before infusion are NaN).
        params : mapping, optional
            Parameter values by name; missing names take :attr:`defaults`.

        Returns
        -------
        numpy.ndarray, shape (n_times, n_states)
            States in :attr:`state_names` order and :attr:`state_units`.
        """
        times = self._time_vector(t)
        out = np.empty((1, times.size))
        states = np.empty((1, times.size, self.n_states))
        status = self._run(times, self.param_vector(params)[np.newaxis, :], out, states)
        if status[0] != 0:
            raise ModelError(f"model `{self.name}` failed: {_status_message(int(status[0]))}")
        return states[0]

    def simulate(self, t: object, params: Mapping[str, float] | None = None) -> np.ndarray:
        """Simulate one subject's observed level (see :meth:`Model.simulate`)."""
        times = self._time_vector(t)
        out = np.empty((1, times.size))
        status = self._run(times, self.param_vector(params)[np.newaxis, :], out, None)
        if status[0] != 0:
            raise ModelError(f"model `{self.name}` failed: {_status_message(int(status[0]))}")
        return out[0]


def _status_message(status: int) -> str:
    return f"status {status}: " + solvers.STATUS_MESSAGES.get(status, "model-specific failure")
