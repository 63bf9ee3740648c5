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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

import numba
import numpy as np
import pandas as pd

from cellkin.errors import ModelError

__all__ = ["Model", "ParamSpec"]


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

    Subclasses declare, as class attributes:

    1. ``name`` — registry key (snake_case), e.g. ``"stein2019"``;
    2. ``citation`` and ``doi`` — the source of the equations and parameter values;
    3. ``params`` — a tuple of :class:`ParamSpec` in kernel order;
    4. ``observed_unit`` — unit of the simulated level, e.g. ``"copies/ug"``;
    5. ``omega`` — published between-subject variability as a standard deviation on each
       parameter's estimation scale (``{}`` when none is published);
    6. ``_batch_kernel`` — a numba-compiled function ``kernel(t, param_matrix, out)`` that
       fills ``out`` (``(n_subjects, n_times)``) and returns an int32 status per subject
       (0 = success), never raising inside compiled code; optionally ``_serial_kernel``
       with the same contract and no threads, used for the many one-subject calls of a fit
       (it defaults to ``_batch_kernel``).

    The declaration is checked in :meth:`__init_subclass__`; a subclass that sets
    ``abstract = True`` is exempt (for intermediate base classes).
    """

    name: ClassVar[str]
    citation: ClassVar[str]
    doi: ClassVar[str]
    params: ClassVar[tuple[ParamSpec, ...]]
    observed_unit: ClassVar[str]
    omega: ClassVar[Mapping[str, float]] = {}
    abstract: ClassVar[bool] = False

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
    _batch_kernel: ClassVar[object]

    def canonical(self, vector: np.ndarray) -> np.ndarray:
        """Map a parameter vector to its canonical form among equivalent ones.

        Models with a symmetry (e.g. two exchangeable exponential phases) override this so
        that fits report one labelling; the default is the identity.
        """
        return vector

    @property
    def serial_kernel(self):
        """The thread-free kernel for one-subject calls (``_serial_kernel`` or the batch one)."""
        return getattr(self, "_serial_kernel", None) or self._batch_kernel
