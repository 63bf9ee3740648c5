"""Kimmel, Locke & Altrock 2021: CAR-T expansion as T-cell competition after lymphodepletion.

Normal T cells and CAR-T cells regrow after lymphodepletion towards a shared Gompertzian
capacity; CAR-T cells grow fast while the T-cell compartment is empty and acquire a growth
disadvantage as normal T cells reconstitute, which produces expansion and contraction without
a switch time. Parameterised on the ZUMA-1 (axicabtagene ciloleucel) medians, in cells/µL.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numba

from cellkin.models.base import ParamSpec
from cellkin.models.ode import ODEModel

__all__ = ["Kimmel2021"]

# Kernel order: k_n, k_c, r_n, rho_c, a, b, r_b, gamma_b, k_b, n0, dose, v_body, b0, then the
# derived constants 1/k_n and ln(k_n/k_c).
_K_N, _K_C, _R_N, _RHO_C, _A, _B, _R_B, _GAMMA_B, _K_B, _N0, _DOSE, _V_BODY, _B0 = range(13)
_INV_K_N, _LOG_K_N_OVER_K_C = 13, 14
_TINY = 1e-300  # keeps ln((N + C)/K) finite if a trial step drives N + C to zero


@numba.njit(cache=True, error_model="numpy")
def _derive(p):  # pragma: no cover - compiled
    p[_INV_K_N] = 1.0 / p[_K_N]
    p[_LOG_K_N_OVER_K_C] = math.log(p[_K_N] / p[_K_C])
    return 0


# error_model="numpy": no zero-division checks in the hot loop (every divisor is positive for
# parameters within their bounds; a non-finite derivative is caught by the solver). One
# logarithm per call: ln(T/K_C) = ln(T/K_N) + ln(K_N/K_C), with the constant derived once per
# subject (half the cost of the right-hand side is in its logarithms).
@numba.njit(cache=True, error_model="numpy")
def _rhs(t, y, p, phase, dydt):  # pragma: no cover - compiled
    n, c, tumour = y[0], y[1], y[2]
    total = max(n + c, _TINY)
    shortfall = (total - p[_K_N]) ** 2
    r_c = p[_RHO_C] + p[_B] * shortfall / (p[_A] * total * total + shortfall)
    log_total_over_k_n = math.log(total * p[_INV_K_N])
    dydt[0] = -p[_R_N] * n * log_total_over_k_n
    dydt[1] = -r_c * c * (log_total_over_k_n + p[_LOG_K_N_OVER_K_C])
    dydt[2] = p[_R_B] * tumour - p[_GAMMA_B] * tumour * c / (p[_K_B] + c)


@numba.njit(cache=True)
def _initial_state(p, y0):  # pragma: no cover - compiled
    y0[0] = p[_N0]
    y0[1] = p[_DOSE] / p[_V_BODY]
    y0[2] = p[_B0]
    return 0


@numba.njit(cache=True)
def _observe(y, p):  # pragma: no cover - compiled
    return y[1]


class Kimmel2021(ODEModel):
    r"""T-cell competition model of CAR-T expansion (axicabtagene ciloleucel, ZUMA-1).

    States: :math:`N` normal T cells and :math:`C` CAR-T cells (cells/µL of blood),
    :math:`B` antigen-positive tumour (mL); observed level :math:`C` (CAR+ cells/µL, flow).
    With :math:`T = N + C`:

    .. math::

        N' &= -r_N\, N \ln\frac{N + C}{K_N} \\
        C' &= -r_C(T)\, C \ln\frac{N + C}{K_C}, \qquad
            r_C(T) = \rho_C + \frac{b\,(T - K_N)^2}{a T^2 + (T - K_N)^2} \\
        B' &= r_B B - \gamma_B B \frac{C}{k_B + C}

    Time is days since infusion. :math:`N(0) = N_0` (after lymphodepletion),
    :math:`C(0) = \mathrm{dose}/V_{body}`, :math:`B(0) = B_0`. :math:`V_{body}` = 5×10⁸ µL
    converts whole-body cells to cells/µL of blood: it is the ratio implied by the paper's
    Table 1 (whole-body cells) and the BioModels entry (per µL) for every pair of values
    (:math:`K_N` 2.5×10¹¹ ↔ 500, :math:`K_C` 6.96×10¹⁰ ↔ 139, :math:`k_B` 2.024×10⁹ ↔ 4.05,
    dose 1.8×10⁸ ↔ 0.36) — our derivation. The tumour does not feed back on the T cells.

    Verification: equations, the published fit (:math:`K_C, \rho_C, a, b, \gamma_B, k_B`
    and :math:`r_N` fitted to the ZUMA-1 medians of 101 patients' CAR+ counts and 55 patients'
    lymphocyte counts; 7 parameters, 11 medians) and initial conditions verified from a
    transcription of the paper and the BioModels export (BIOMD0000001041). The model
    reproduces the Moffitt ZUMA-1 medians within their interquartile ranges (tests).
    The paper models cure as a stochastic event below ~100 tumour cells; this deterministic
    version lets :math:`B` fall to arbitrarily small values.

    References
    ----------
    Kimmel GJ, Locke FL, Altrock PM. The roles of T cell competition and stochastic
    extinction events in chimeric antigen receptor T cell therapy. Proc R Soc B.
    2021;288:20210229. doi:10.1098/rspb.2021.0229
    """

    name: ClassVar[str] = "kimmel2021"
    citation: ClassVar[str] = "Kimmel GJ, Locke FL, Altrock PM. Proc R Soc B 2021;288:20210229"
    doi: ClassVar[str] = "10.1098/rspb.2021.0229"
    observed_unit: ClassVar[str] = "cells/uL"
    params: ClassVar[tuple[ParamSpec, ...]] = (
        ParamSpec("k_n", "cells/uL", 500.0, 1.0, 1e5, "log", "normal T-cell capacity"),
        ParamSpec("k_c", "cells/uL", 139.0, 1e-3, 1e5, "log", "CAR-T capacity"),
        ParamSpec("r_n", "1/day", 0.17, 1e-4, 10.0, "log", "normal T-cell growth rate"),
        ParamSpec("rho_c", "1/day", 0.0251, 1e-6, 10.0, "log", "baseline CAR-T growth rate"),
        ParamSpec("a", "1", 0.423, 1e-4, 100.0, "log", "signalling inefficiency"),
        ParamSpec("b", "1/day", 0.525, 1e-6, 10.0, "log", "impact of immune reconstitution"),
        ParamSpec("r_b", "1/day", 0.01, 1e-6, 5.0, "log", "tumour growth rate"),
        ParamSpec("gamma_b", "1/day", 1.15, 1e-6, 100.0, "log", "maximal killing rate"),
        ParamSpec("k_b", "cells/uL", 4.05, 1e-6, 1e5, "log", "CAR-T level of half-maximal killing"),
        ParamSpec("n0", "cells/uL", 6.0, 1e-6, 1e5, "log", "normal T cells after lymphodepletion"),
        ParamSpec("dose", "cells", 1.8e8, 1.0, 1e12, "log", "CAR-T cells infused"),
        ParamSpec("v_body", "uL", 5e8, 1e3, 1e12, "log", "whole-body cells per cell/uL blood"),
        ParamSpec("b0", "mL", 94.86, 1e-9, 1e5, "log", "tumour burden at infusion"),
    )
    state_names: ClassVar[tuple[str, ...]] = ("normal_t", "car_t", "tumour")
    state_units: ClassVar[tuple[str, ...]] = ("cells/uL", "cells/uL", "mL")
    default_atol: ClassVar[tuple[float, ...]] = (1e-10, 1e-12, 1e-12)
    derived_names: ClassVar[tuple[str, ...]] = ("inv_k_n", "log_k_n_over_k_c")
    derive = staticmethod(_derive)
    rhs = staticmethod(_rhs)
    initial_state = staticmethod(_initial_state)
    observe = staticmethod(_observe)
