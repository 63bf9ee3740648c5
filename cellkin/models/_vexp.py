"""An exponential that LLVM can vectorise, for the closed-form population kernels.

Why our own: inside a numba loop, ``math.exp`` is a call into the C library's scalar ``exp``,
and a loop containing a call cannot be vectorised. numba can swap in Intel's short-vector
math library (SVML), but only with the ``icc_rt`` runtime and an SVML-enabled llvmlite, which
pip installs of numba do not have. :func:`vexp` is written in plain arithmetic, so when it is
inlined into a loop LLVM turns the loop into AVX2/AVX-512 code (4–8 exponentials at a time),
with fused multiply–add where the caller allows it (``fastmath={"contract"}``); the speed-up
is recorded in ``benchmarks/README.md``.

Method (the classic one of Cody & Waite 1980 and fdlibm's ``e_exp.c``, written from the
formulas): ``exp(x) = 2**k · exp(r)`` with ``k = round(x / ln 2)`` and ``r = x − k·ln 2``
(``ln 2`` split into a high part with trailing zero bits and a low correction, so that
``k·ln2_hi`` is exact), ``|r| ≤ ln(2)/2``; ``exp(r)`` by its Taylor polynomial of degree 13
(truncation error ``< (ln 2/2)**14 / 14! ≈ 4e-18``, below half an ulp) in Horner form; ``2**k``
built from its IEEE-754 bits. Measured against NumPy's ``exp`` on 3·10^6 points of
[−708, 709]: at most 1 ulp (2.2e-16 relative); ``tests/models/test_vexp.py`` checks it.

Domain: finite ``x``. ``x ≤ −708.3`` (where ``exp`` reaches the subnormal range, below 2.3e-308)
gives 0.0 and ``x ≥ 709`` gives ``exp(709)`` — neither occurs for the levels of a kinetic
model, whose exponents are ``−rate·elapsed ≤ 0`` or a log fold-expansion of at most ~18.

numba's on-disk cache watches only the cached function's own file: after editing this
module, touch the modules whose kernels inline it (``stein.py``).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

__all__ = ["vexp"]

_LOG2E = 1.4426950408889634  # 1 / ln 2
_LN2_HI = 6.93147180369123816490e-01  # ln 2, high part (its last 21 bits are zero)
_LN2_LO = 1.90821492927058770002e-10  # ln 2 − _LN2_HI
_LOWEST = -708.3  # below: exp(x) < 2.3e-308 (subnormal); returns 0.0
_HIGHEST = 709.0  # exp(709) = 8.2e307; 2**k stays a normal number up to here


@intrinsic
def _float_from_bits(typingctx, bits):
    """The float64 whose IEEE-754 bit pattern is the int64 ``bits`` (an LLVM bitcast, which
    vectorises; a NumPy view would not)."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@numba.njit(inline="always", fastmath={"contract"})
def vexp(x: float) -> float:  # pragma: no cover - compiled
    """``exp(x)`` to 1 ulp for finite ``x`` in [−708.3, 709]; 0.0 below (see module notes)."""
    clipped = min(max(x, _LOWEST), _HIGHEST)
    k = math.floor(clipped * _LOG2E + 0.5)
    r = (clipped - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 / 6227020800.0  # 1/13!
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    power_of_two = _float_from_bits((np.int64(k) + 1023) << 52)
    return p * power_of_two if x > _LOWEST else 0.0
