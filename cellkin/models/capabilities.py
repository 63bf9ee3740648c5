"""Closed-form model capabilities: their kernel signatures, and calling them from compiled code.

A model with a closed form may declare two compiled functions besides its population kernel
(capabilities 2 and 3 of the contract in :class:`~cellkin.models.base.Model`):

* ``levels(t, p, out, dlog) -> int`` — the level at each time of ``t`` into ``out`` and,
  when ``dlog`` has one row per time, ``∂ ln C(t_j)/∂θ_k`` into ``dlog[j, k]``;
* ``metrics(p, intervals, level, out) -> int`` — the closed-form metrics of one parameter
  vector into ``out`` (layout :data:`METRIC_NAMES`, one AUC per interval in their place).

Fitting and metric code compiled once for every model calls these through the model's
*native entry address* (:func:`level_address`, :func:`metrics_address`) with the intrinsics
below, exactly as the ODE integrators call a right-hand side
(:mod:`cellkin.models._native`): a new closed-form model gets the compiled fit path and the
compiled metrics by declaring the two functions, without recompiling the fitting code.
A function that raises returns ``ok = False``; one that refuses the parameters returns a
non-zero status.
"""

from __future__ import annotations

import functools
from typing import Any

from numba import types
from numba.extending import intrinsic

from cellkin.models._native import _checked, _checked_sig, kernel_address

__all__ = [
    "LEVELS_SIG",
    "METRICS_SIG",
    "METRIC_NAMES",
    "call_levels",
    "call_metrics",
    "level_address",
    "metrics_address",
]

_F8, _I8 = types.float64, types.int64
_VEC, _MAT = types.float64[::1], types.float64[:, ::1]

#: ``levels(t, p, out, dlog) -> status``
LEVELS_SIG = _I8(_VEC, _VEC, _VEC, _MAT)
#: ``metrics(p, intervals, level, out) -> status``
METRICS_SIG = _I8(_VEC, _MAT, _F8, _VEC)

#: What a ``metrics`` function writes, in order; ``"auc"`` stands for one entry per interval
#: (``intervals[q]``), so ``out`` has ``len(METRIC_NAMES) - 1 + n_intervals`` entries. An
#: entry a model cannot give is NaN.
METRIC_NAMES = (
    "cmax",
    "tmax",
    "auc",
    "auc_inf",
    "doubling_time",
    "half_life_fast",
    "half_life_terminal",
    "time_to_level",
)


@intrinsic
def call_levels(typingctx, address, t, p, out, dlog):
    """``levels(t, p, out, dlog)`` at ``address``; returns ``(ok, status)``."""
    return _checked_sig(LEVELS_SIG), _checked(LEVELS_SIG)


@intrinsic
def call_metrics(typingctx, address, p, intervals, level, out):
    """``metrics(p, intervals, level, out)`` at ``address``; returns ``(ok, status)``."""
    return _checked_sig(METRICS_SIG), _checked(METRICS_SIG)


@functools.cache
def level_address(function: Any) -> int:
    """Native address of a ``levels`` function (compiled for :data:`LEVELS_SIG` once)."""
    return kernel_address(function, LEVELS_SIG)


@functools.cache
def metrics_address(function: Any) -> int:
    """Native address of a ``metrics`` function (compiled for :data:`METRICS_SIG` once)."""
    return kernel_address(function, METRICS_SIG)
