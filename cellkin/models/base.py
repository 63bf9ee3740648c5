"""The model contract: parameter specifications and the declarative :class:`Model` base class.

A cellkin model is a class whose *data* are declared on the class — its name, citation,
parameter specifications (:class:`ParamSpec`), observed unit and published between-subject
variability — and whose *behaviour* lives in one compiled batch kernel. The base class checks
the declaration when the subclass is defined, so a model with a default outside its bounds or
a duplicated parameter name cannot even be imported.

Models never see observations and never fit themselves (``cellkin.fit`` does that); they only
turn parameters into predicted levels.

Orientation: ``simulate_many`` returns an array of shape ``(n_subjects, n_times)``; parameters
travel as a contiguous float64 matrix ``(n_subjects, n_params)`` in :attr:`Model.param_names`
order, converted once at the Python boundary.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numba
import numpy as np
import pandas as pd

from cellkin.errors import ModelError
from cellkin.models.transforms import Transform

__all__ = ["Model", "ParamSpec", "describe_solver"]


@numba.njit(cache=True)
def _first_outside(matrix, lower, upper):  # pragma: no cover - compiled
    """``(row, column)`` of the first value that is not finite or outside its column's
    ``[lower, upper]``, or ``(-1, -1)``: one pass, no temporaries (a population of 10^6
    subjects is checked in milliseconds)."""
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            value = matrix[i, j]
            if not (math.isfinite(value) and lower[j] <= value <= upper[j]):
                return i, j
    return -1, -1


Scale = Literal["log", "logit", "linear"]
_SCALES = ("log", "logit", "linear")


def describe_solver(settings: Mapping[str, Any] | None) -> str:
    """One line of words for :attr:`Model.solver_settings` (as results and reports show it).

    >>> from cellkin import models
    >>> describe_solver(models.get("stein2019").solver_settings)
    'closed form (no ODE solver)'
    >>> describe_solver(models.get("kimmel2021").solver_settings)
    'ODE solver auto (auto-tsit5), rtol 1e-06, atol normal_t 1e-10, car_t 1e-12, tumour 1e-12'
    """
    if not settings or settings.get("method") in (None, "none"):
        return "closed form (no ODE solver)"
    atol = settings.get("atol")
    if isinstance(atol, Mapping):
        atol = ", ".join(f"{state} {value:g}" for state, value in atol.items())
    return (
        f"ODE solver {settings['method']} ({settings.get('integrator', settings['method'])}), "
        f"rtol {settings['rtol']:g}, atol {atol}"
    )


@dataclass(frozen=True)
class ParamSpec:
    """Specification of one model parameter.

    Parameters
    ----------
    name : str
        Identifier (snake_case), unique within a model.
    unit : str
        Unit of the parameter, e.g. ``"1/day"``, ``"copies/ug"``, ``"day"``, ``"1"``
        (dimensionless).
    default : float
        Typical (published) value; must lie strictly inside ``(lower, upper)``.
    lower, upper : float
        Bounds used in fitting and checked on simulation input.
    scale : {"log", "logit", "linear"}
        Scale on which the parameter is estimated and on which between-subject variability
        is log-normal (``log``), logit-normal (``logit``, for fractions in (0, 1)) or normal.
    description : str
        One line saying what the parameter means.
    """

    name: str
    unit: str
    default: float
    lower: float
    upper: float
    scale: Scale = "log"
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ModelError(f"parameter name {self.name!r} must be a snake_case identifier")
        if self.scale not in _SCALES:
            raise ModelError(
                f"parameter `{self.name}`: scale {self.scale!r} is not one of {_SCALES}"
            )
        for label, value in (("default", self.default), ("lower", self.lower)):
            if not math.isfinite(value):
                raise ModelError(f"parameter `{self.name}`: {label} must be finite, got {value}")
        if not self.lower < self.upper:
            raise ModelError(
                f"parameter `{self.name}`: lower bound {self.lower} must be below upper "
                f"bound {self.upper}"
            )
        if not self.lower < self.default < self.upper:
            raise ModelError(
                f"parameter `{self.name}`: default {self.default} lies outside its bounds "
                f"({self.lower}, {self.upper})"
            )
        if self.scale == "log" and self.lower < 0:
            raise ModelError(
                f"parameter `{self.name}` is on log scale, so its lower bound must be >= 0, "
                f"got {self.lower}"
            )
        if self.scale == "logit" and (self.lower < 0 or self.upper > 1):
            raise ModelError(
                f"parameter `{self.name}` is on logit scale, so its bounds must lie in [0, 1], "
                f"got ({self.lower}, {self.upper})"
            )


class Model:
    """Base class of every cellkin model.

    A model declares data on the class and provides behaviour through a few compiled
    functions. The contract, checked in :meth:`__init_subclass__` (a subclass that sets
    ``abstract = True`` is exempt, for intermediate base classes):

    **Declaration (required)**

    1. ``name`` — registry key (snake_case), e.g. ``"stein2019"``;
    2. ``citation`` and ``doi`` — the source of the equations and parameter values (the
       docstring must give the equations and the DOI);
    3. ``params`` — a tuple of :class:`ParamSpec` in kernel order; each spec's ``scale``
       (log, logit, linear) is the parameter's estimation scale, and the transform of its
       between-subject variability (log-normal, logit-normal, normal);
    4. ``observed_unit`` — unit of the simulated level, e.g. ``"copies/ug"``;
    5. ``omega`` — published between-subject variability as a standard deviation on each
       parameter's estimation scale (``{}`` when none is published);
    6. ``_batch_kernel`` — a numba-compiled function ``kernel(t, param_matrix, out)`` that
       fills ``out`` (``(n_subjects, n_times)``) and returns an int32 status per subject
       (0 = success), never raising inside compiled code; optionally ``_serial_kernel``
       with the same contract and no threads, used for the many one-subject calls of a fit
       (it defaults to ``_batch_kernel``).

    **Capabilities (optional)** — fitting, start values and metrics ask for these
    (:attr:`capabilities`), never for a model class:

    7. ``level_kernel`` — a closed-form level function, numba ``njit``
       ``levels(t, p, out, dlog) -> int`` (signature
       :data:`~cellkin.models.capabilities.LEVELS_SIG`): the level at each time of ``t``
       (any order; 0 before infusion) into ``out`` and, when ``dlog`` has one row per time,
       ``∂ ln C(t_j)/∂θ_k`` (natural scale, kernel order; one-sided at kinks; 0 where the
       level is 0) into ``dlog[j, k]``; returns 0 or a model status code. Set
       ``level_gradient = True`` when ``dlog`` is filled analytically (otherwise the fit
       differentiates ``ln C`` by central differences in compiled code). A model with a
       level function gets the compiled fit path (compiled −2 ln L, its gradient and start
       screening); one without (the ODE models) is fitted through ``serial_kernel``.
    8. ``metrics_kernel`` — closed-form metrics, numba ``njit``
       ``metrics(p, intervals, level, out) -> int`` (signature
       :data:`~cellkin.models.capabilities.METRICS_SIG`, layout
       :data:`~cellkin.models.capabilities.METRIC_NAMES`): Cmax, Tmax, the AUC over each
       interval, AUC∞, doubling time, phase half-lives, and the time after the peak at which
       the curve falls to ``level`` (NaN for what the model cannot give). Without it,
       model-based metrics integrate the simulated curve on a dense grid.
    9. :meth:`start_values` — starting values for a fit from one subject's quantified
       post-infusion samples (default: the published values, :attr:`defaults`).
    10. ``kink_time_parameter`` — the name of a parameter that is the time of a kink of the
        curve (Stein's Tmax): the likelihood is kinked wherever it crosses a sample time, so
        fits also probe the neighbouring inter-sample intervals along it (default None).
    11. :meth:`canonical` — one labelling among equivalent parameter vectors (default: the
        identity).
    """

    name: ClassVar[str]
    citation: ClassVar[str]
    doi: ClassVar[str]
    params: ClassVar[tuple[ParamSpec, ...]]
    observed_unit: ClassVar[str]
    omega: ClassVar[Mapping[str, float]] = {}
    abstract: ClassVar[bool] = False
    level_kernel: ClassVar[Any] = None
    level_gradient: ClassVar[bool] = False
    metrics_kernel: ClassVar[Any] = None
    kink_time_parameter: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("abstract", False):
            return
        cls._check_declaration()

    @classmethod
    def _check_declaration(cls) -> None:
        where = f"model class {cls.__name__}"
        for attribute in ("name", "citation", "doi", "params", "observed_unit"):
            if not hasattr(cls, attribute):
                raise ModelError(f"{where} must declare `{attribute}`")
        if not cls.name.isidentifier() or cls.name != cls.name.lower():
            raise ModelError(f"{where}: name {cls.name!r} must be a snake_case identifier")
        if not cls.params or not all(isinstance(p, ParamSpec) for p in cls.params):
            raise ModelError(f"{where}: `params` must be a non-empty tuple of ParamSpec")
        names = [p.name for p in cls.params]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ModelError(f"{where}: duplicated parameter names {duplicated}")
        unknown = sorted(set(cls.omega) - set(names))
        if unknown:
            raise ModelError(f"{where}: `omega` names unknown parameters {unknown}")
        negative = sorted(k for k, v in cls.omega.items() if not v >= 0)
        if negative:
            raise ModelError(f"{where}: `omega` must be >= 0, check {negative}")
        if not callable(getattr(cls, "_batch_kernel", None)):
            raise ModelError(f"{where} must provide a compiled `_batch_kernel`")
        if not cls.__doc__ or "doi" not in cls.__doc__.lower():
            raise ModelError(f"{where}: the docstring must give the equations and the DOI")
        for attribute in ("level_kernel", "metrics_kernel"):
            kernel = getattr(cls, attribute)
            if kernel is not None and not hasattr(kernel, "py_func"):
                raise ModelError(f"{where}: `{attribute}` must be a numba.njit function")
        if cls.level_gradient and cls.level_kernel is None:
            raise ModelError(f"{where} declares `level_gradient` but no `level_kernel`")
        kink = cls.kink_time_parameter
        if kink is not None and kink not in names:
            raise ModelError(f"{where}: `kink_time_parameter` {kink!r} is not a parameter")

    # ------------------------------------------------------------------ declared data
    @property
    def param_names(self) -> tuple[str, ...]:
        """Parameter names in kernel order."""
        return tuple(p.name for p in self.params)

    @property
    def defaults(self) -> dict[str, float]:
        """Published typical values, ``{name: value}``."""
        return {p.name: p.default for p in self.params}

    @property
    def param_table(self) -> pd.DataFrame:
        """The parameter declarations as a table (one row per parameter)."""
        return pd.DataFrame(
            {
                "parameter": [p.name for p in self.params],
                "unit": [p.unit for p in self.params],
                "default": [p.default for p in self.params],
                "lower": [p.lower for p in self.params],
                "upper": [p.upper for p in self.params],
                "scale": [p.scale for p in self.params],
                "omega": [self.omega.get(p.name, 0.0) for p in self.params],
                "description": [p.description for p in self.params],
            }
        )

    def spec(self, name: str) -> ParamSpec:
        """Return the :class:`ParamSpec` called ``name``."""
        for p in self.params:
            if p.name == name:
                return p
        raise ModelError(
            f"model `{self.name}` has no parameter `{name}`; its parameters are "
            f"{list(self.param_names)}"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, params={list(self.param_names)})"

    # ------------------------------------------------------------------ capabilities
    @property
    def capabilities(self) -> frozenset[str]:
        """The optional capabilities this model declares (contract items 7-10):
        ``"levels"``, ``"level_gradient"``, ``"metrics"``, ``"kink_time"``."""
        declared = {
            "levels": self.level_kernel is not None,
            "level_gradient": self.level_gradient,
            "metrics": self.metrics_kernel is not None,
            "kink_time": self.kink_time_parameter is not None,
        }
        return frozenset(name for name, present in declared.items() if present)

    def levels(
        self, t: object, params: Mapping[str, float] | None = None, *, gradient: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Levels from the closed-form level function (capability 7), and ``∂ ln C/∂θ``.

        Returns the levels at ``t`` (shape ``(n_times,)``) or, with ``gradient=True``, the
        levels and the ``(n_times, n_params)`` matrix of ``∂ ln C(t_j)/∂θ_k``. Raises
        :class:`~cellkin.errors.ModelError` for a model without a level function.
        """
        if self.level_kernel is None:
            raise ModelError(f"model `{self.name}` has no closed-form level function")
        times = self._time_vector(t)
        vector = self.param_vector(params)
        out = np.empty(times.size)
        dlog = np.zeros((times.size if gradient else 0, vector.size))
        status = self.level_kernel(times, vector, out, dlog)
        if status != 0:
            raise ModelError(f"model `{self.name}` failed with status {int(status)}")
        return (out, dlog) if gradient else out

    def start_values(self, t: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """Starting parameter values for a fit (capability 9).

        ``t`` and ``y`` are one subject's quantified post-infusion samples, sorted by time.
        The default ignores them and returns :attr:`defaults`; models whose parameters can be
        read off a profile (peak, slopes) override this.
        """
        return dict(self.defaults)

    @property
    def transform(self) -> Transform:
        """The transform between each parameter's natural and estimation scale (its
        :attr:`ParamSpec.scale`), bounded by the declared bounds."""
        lower = np.array([p.lower for p in self.params])
        upper = np.array([p.upper for p in self.params])
        return Transform(tuple(p.scale for p in self.params), lower, upper)

    def clip_to_bounds(self, values: Mapping[str, float]) -> dict[str, float]:
        """``values`` moved just inside each parameter's bounds (by 10⁻⁶ of the range)."""
        clipped = dict(values)
        for spec in self.params:
            margin = 1e-6 * (spec.upper - spec.lower)
            value = float(clipped[spec.name])
            clipped[spec.name] = min(max(value, spec.lower + margin), spec.upper - margin)
        return clipped

    # ------------------------------------------------------------------ conversions
    def param_vector(self, params: Mapping[str, float] | None = None) -> np.ndarray:
        """Return the parameters as a float64 vector in kernel order.

        Missing names take their default; unknown names, non-finite values and values
        outside the declared bounds raise :class:`~cellkin.errors.ModelError`.
        """
        values = dict(self.defaults)
        if params is not None:
            unknown = sorted(set(params) - set(values))
            if unknown:
                raise ModelError(
                    f"model `{self.name}` has no parameter(s) {unknown}; expected a subset of "
                    f"{list(self.param_names)}"
                )
            values.update({k: float(v) for k, v in params.items()})
        vector = np.array([values[n] for n in self.param_names], dtype=np.float64)
        self._check_values(vector[np.newaxis, :], subjects=None)
        return vector

    def param_matrix(self, params_table: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Return a contiguous ``(n_subjects, n_params)`` float64 matrix.

        ``params_table`` is a DataFrame with one column per parameter (other columns, such as
        ``subject``, are ignored) or an array already in kernel order.
        """
        if isinstance(params_table, pd.DataFrame):
            missing = [n for n in self.param_names if n not in params_table.columns]
            if missing:
                raise ModelError(
                    f"parameter table lacks column(s) {missing} needed by model `{self.name}`; "
                    f"add them or start from `model.defaults`"
                )
            try:
                matrix = params_table.loc[:, list(self.param_names)].to_numpy(dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ModelError(
                    f"parameter table for model `{self.name}` has non-numeric values: {exc}"
                ) from exc
            subjects = params_table["subject"] if "subject" in params_table else None
        else:
            matrix = np.asarray(params_table, dtype=np.float64)
            subjects = None
            if matrix.ndim != 2 or matrix.shape[1] != len(self.params):
                raise ModelError(
                    f"parameter matrix must have shape (n_subjects, {len(self.params)}) for "
                    f"model `{self.name}`, got {matrix.shape}"
                )
        matrix = np.ascontiguousarray(matrix)
        self._check_values(matrix, subjects=subjects)
        return matrix

    def _check_values(self, matrix: np.ndarray, subjects: pd.Series | None) -> None:
        lower = np.array([spec.lower for spec in self.params], dtype=np.float64)
        upper = np.array([spec.upper for spec in self.params], dtype=np.float64)
        if _first_outside(matrix, lower, upper)[0] < 0:
            return
        for j, spec in enumerate(self.params):  # the error names the first bad column
            column = matrix[:, j]
            bad = ~(np.isfinite(column) & (column >= spec.lower) & (column <= spec.upper))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                who = f"subject {subjects.iloc[i]!r}" if subjects is not None else f"row {i}"
                raise ModelError(
                    f"model `{self.name}`: parameter `{spec.name}` = {float(column[i])!r} ({who}, "
                    f"{int(bad.sum())} value(s) in all) is outside its bounds "
                    f"[{spec.lower}, {spec.upper}] {spec.unit}"
                )

    @staticmethod
    def _time_vector(t: object) -> np.ndarray:
        times = np.ascontiguousarray(np.atleast_1d(np.asarray(t, dtype=np.float64)))
        if times.ndim != 1:
            raise ModelError(f"times must be a 1-D array, got shape {times.shape}")
        if not np.isfinite(times).all():
            raise ModelError("times must be finite numbers of days since infusion")
        return times

    # ------------------------------------------------------------------ simulation
    def simulate(self, t: object, params: Mapping[str, float] | None = None) -> np.ndarray:
        """Simulate one subject.

        Parameters
        ----------
        t : array_like, shape (n_times,)
            Days since infusion (any order; negative times are before infusion).
        params : mapping, optional
            Parameter values by name; missing names take :attr:`defaults`.

        Returns
        -------
        numpy.ndarray, shape (n_times,)
            Predicted level in :attr:`observed_unit`.
        """
        times = self._time_vector(t)
        out = np.empty((1, times.size), dtype=np.float64)
        status = self._batch_kernel(times, self.param_vector(params)[np.newaxis, :], out)
        if status[0] != 0:
            raise ModelError(f"model `{self.name}` failed with status {int(status[0])}")
        return out[0]

    def simulate_many(self, t: object, params_table: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Simulate a population in one compiled, parallel call.

        Parameters
        ----------
        t : array_like, shape (n_times,)
            Days since infusion, shared by all subjects.
        params_table : DataFrame or ndarray
            One row per subject, one column per parameter (see :meth:`param_matrix`).

        Returns
        -------
        numpy.ndarray, shape (n_subjects, n_times)
            Predicted levels; rows whose kernel reported a failure are NaN.
        """
        times = self._time_vector(t)
        matrix = self.param_matrix(params_table)
        out = np.empty((matrix.shape[0], times.size), dtype=np.float64)
        status = self._batch_kernel(times, matrix, out)
        out[status != 0, :] = np.nan
        return out

    # Subclasses provide these as staticmethods wrapping numba functions.
    _batch_kernel: ClassVar[Callable[..., np.ndarray]]

    def canonical(self, vector: np.ndarray) -> np.ndarray:
        """Map a parameter vector to its canonical form among equivalent ones.

        Models with a symmetry (e.g. two exchangeable exponential phases) override this so
        that fits report one labelling; the default is the identity.
        """
        return vector

    @property
    def solver_settings(self) -> dict[str, Any]:
        """How the levels are computed, as fits and simulations record it.

        ``{"method": "none", "rtol": None, "atol": None}`` here: the model's own kernel gives
        the level (the closed forms of the Stein models), no ODE solver is involved. ODE
        models (:class:`~cellkin.models.ODEModel`) report their method and tolerances.
        """
        return {"method": "none", "rtol": None, "atol": None}

    @property
    def serial_kernel(self) -> Callable[..., np.ndarray]:
        """The thread-free kernel for one-subject calls (``_serial_kernel`` or the batch one)."""
        return getattr(self, "_serial_kernel", None) or self._batch_kernel
