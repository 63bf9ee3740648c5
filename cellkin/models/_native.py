"""Calling model kernels by native address, status codes and helpers shared by the integrators.

The integrators of :mod:`cellkin.models.solvers` are compiled once for every model. A model's
kernels reach them as the *native entry addresses* of the model's compiled functions
(:func:`kernel_address`), and compiled code calls them through the intrinsics below: one
indirect call in numba's own calling convention, with no C wrapper, no Python object and no
reference counting in between (numba's first-class function values go through a C wrapper,
which costs about as much as the Kimmel right-hand side itself). The signatures are fixed by
the kernel contract (:mod:`cellkin.models.solvers`); :func:`kernel_address` compiles the
function for exactly that signature, so caller and callee always agree.

A model function that raises inside compiled code (numba's ``error_model="python"`` turns a
float division by zero into ``ZeroDivisionError``) returns an error status instead of a value;
the intrinsics return a success flag with the value (the integrators treat a failed
right-hand side like a non-finite one; a failed ``derive``, ``initial_state``,
``breakpoints`` or ``observe`` gives the subject :data:`STATUS_MODEL_ERROR`), so that compiled
code never propagates an exception. (Numba allocates the exception's details, which are then
dropped: a model that raises on every call of a large population leaks a little memory.)
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

# ---------------------------------------------------------------------------- status codes
STATUS_SUCCESS = 0
STATUS_MAX_STEPS = 1
STATUS_STEP_TOO_SMALL = 2
STATUS_NONFINITE = 3
STATUS_SINGULAR = 4
STATUS_BAD_INITIAL = 5
STATUS_BAD_BREAKPOINTS = 6
STATUS_MODEL_ERROR = 7
STATUS_STIFF = -1  # internal: an explicit pair hands over to Rodas4 (never reported)
STATUS_CALM = -2  # internal: Rodas4 hands back to the explicit pair (never reported)

_EPS = float(np.finfo(np.float64).eps)

# ---------------------------------------------------------------------------- signatures
_F8, _I8 = types.float64, types.int64
_VEC, _MAT = types.float64[::1], types.float64[:, ::1]
RHS_SIG = types.void(_F8, _VEC, _VEC, _I8, _VEC)
JAC_SIG = types.void(_F8, _VEC, _VEC, _I8, _MAT)
INIT_SIG = _I8(_VEC, _VEC)
OBSERVE_SIG = _F8(_VEC, _VEC)
BREAKPOINTS_SIG = _I8(_VEC, _VEC)
DERIVE_SIG = _I8(_VEC)


def kernel_address(dispatcher: Any, signature: Any) -> int:
    """Native entry address of ``dispatcher`` compiled for ``signature``.

    The address stays valid as long as the dispatcher lives (model kernels are module-level
    functions held by their class).
    """
    dispatcher.compile(signature)
    compiled = dispatcher.overloads[signature.args]
    return int(compiled.library.get_pointer_to_function(compiled.fndesc.llvm_func_name))


def _call(context, builder, signature, args):
    """Call ``args[0]`` (an address) with ``args[1:]``; return (failed flag, value)."""
    fnty = context.call_conv.get_function_type(signature.return_type, signature.args)
    callee = builder.inttoptr(args[0], fnty.as_pointer())
    status, value = context.call_conv.call_function(
        builder, callee, signature.return_type, signature.args, args[1:]
    )
    return status.is_error, value


@intrinsic
def call_rhs(typingctx, address, t, y, p, phase, dydt):
    """``rhs(t, y, p, phase, dydt)`` at ``address``; False if it raised."""

    def codegen(context, builder, sig, args):
        failed, _ = _call(context, builder, RHS_SIG, args)
        return builder.not_(failed)

    return types.boolean(types.intp, *RHS_SIG.args), codegen


@intrinsic
def call_jac(typingctx, address, t, y, p, phase, jac):
    """``jac(t, y, p, phase, jac)`` at ``address``; False if it raised."""

    def codegen(context, builder, sig, args):
        failed, _ = _call(context, builder, JAC_SIG, args)
        return builder.not_(failed)

    return types.boolean(types.intp, *JAC_SIG.args), codegen


def _checked(kernel_sig):
    """Codegen of a call that returns ``(ok, value)``; ``ok`` is False if the kernel raised."""

    def codegen(context, builder, sig, args):
        failed, value = _call(context, builder, kernel_sig, args)
        return context.make_tuple(builder, sig.return_type, [builder.not_(failed), value])

    return codegen


def _checked_sig(kernel_sig):
    return types.Tuple((types.boolean, kernel_sig.return_type))(types.intp, *kernel_sig.args)


@intrinsic
def call_init(typingctx, address, p, y0):
    """``initial_state(p, y0)`` at ``address``; returns ``(ok, code)``."""
    return _checked_sig(INIT_SIG), _checked(INIT_SIG)


@intrinsic
def call_observe(typingctx, address, y, p):
    """``observe(y, p)`` at ``address``; returns ``(ok, level)``."""
    return _checked_sig(OBSERVE_SIG), _checked(OBSERVE_SIG)


@intrinsic
def call_breakpoints(typingctx, address, p, out):
    """``breakpoints(p, out)`` at ``address``; returns ``(ok, count)``."""
    return _checked_sig(BREAKPOINTS_SIG), _checked(BREAKPOINTS_SIG)


@intrinsic
def call_derive(typingctx, address, p):
    """``derive(p)`` at ``address``; returns ``(ok, code)``."""
    return _checked_sig(DERIVE_SIG), _checked(DERIVE_SIG)


@intrinsic
def fetch_add(typingctx, counter, increment):
    """Atomically add ``increment`` to ``counter[0]``; return the previous value.

    The work queue of the parallel population kernel: threads claim blocks of subjects from a
    shared counter, so a thread slowed down by other load on the machine takes fewer blocks
    (numba's own ``prange`` schedule splits the work into equal parts up front).
    """
    signature = types.int64(types.int64[::1], types.int64)

    def codegen(context, builder, sig, args):
        array = context.make_array(sig.args[0])(context, builder, args[0])
        return builder.atomic_rmw("add", array.data, args[1], "monotonic")

    return signature, codegen


# ---------------------------------------------------------------------------- helpers
@numba.njit(inline="always", error_model="numpy")
def all_finite(x):  # pragma: no cover - compiled
    """Whether every entry of the vector ``x`` is finite."""
    for i in range(x.shape[0]):
        if not math.isfinite(x[i]):
            return False
    return True


@numba.njit(inline="always", error_model="numpy")
def too_small(h, t, t_end):  # pragma: no cover - compiled
    """Whether the step ``h`` is below the resolution of the time axis."""
    return h < 10.0 * _EPS * max(abs(t), abs(t_end), 1.0)


@numba.njit(cache=True, error_model="numpy")
def initial_step(rhs, t, t_end, y, p, phase, f0, rtol, atol, order, y1, f1):  # pragma: no cover
    """Starting step size of a method of order ``order`` (Hairer et al. I, §II.4).

    With the weighted RMS norm ‖·‖ of the error test, ``d0 = ‖y0‖``, ``d1 = ‖f(t0, y0)‖``,
    ``h0 = 0.01 d0/d1`` (1e-6 if either is tiny), one explicit Euler step of ``h0`` gives
    ``d2 = ‖f(t0 + h0, y0 + h0 f0) − f0‖/h0`` and ``h1 = (0.01/max(d1, d2))^(1/(order+1))``;
    the step is ``min(100 h0, h1, t_end − t0)``. ``rhs`` is the model's native address.
    """
    n = y.shape[0]
    d0, d1 = 0.0, 0.0
    for i in range(n):
        scale = atol[i] + rtol * abs(y[i])
        d0 += (y[i] / scale) ** 2
        d1 += (f0[i] / scale) ** 2
    d0, d1 = math.sqrt(d0 / n), math.sqrt(d1 / n)
    h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
    h0 = min(h0, t_end - t)
    for i in range(n):
        y1[i] = y[i] + h0 * f0[i]
    if not call_rhs(rhs, t + h0, y1, p, phase, f1):
        return h0 * 1e-3
    d2 = 0.0
    for i in range(n):
        d2 += ((f1[i] - f0[i]) / (atol[i] + rtol * abs(y[i]))) ** 2
    d2 = math.sqrt(d2 / n) / h0
    if not math.isfinite(d2):
        return h0 * 1e-3
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1.0 / (order + 1))
    return min(100.0 * h0, h1, t_end - t)
