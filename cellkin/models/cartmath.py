"""CARTmath (Barros et al. 2021): effector and memory CAR-T against a haematological tumour.

Two registered parameter sets of one model, from the preclinical experiments the authors
calibrated against (immunodeficient mice): :class:`CARTmathHDLM2` (Hodgkin lymphoma HDLM-2
treated with CAR-T123) and :class:`CARTmathRaji` (Burkitt lymphoma Raji treated with CD19
CAR-T; stiff). Values are the defaults of the authors' Shiny application that accompanies
the paper (``tmglncc/CARTmath`` ``server.R``, presets "ex1" and "ex4"); the paper's figures
themselves were not available to check them against.

Re-dosing, fractionated doses and tumour re-challenge (the application's presets "ex2" and
"ex3") need jumps in the states at given times, which the solvers do not offer yet
(breakpoints keep the states continuous).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numba

from cellkin.models.base import ParamSpec
from cellkin.models.ode import ODEModel

__all__ = ["CARTmathHDLM2", "CARTmathRaji"]

# Kernel order: phi, rho, mu_t, epsilon, mu_m, theta, alpha, r, gamma, dose, tumour0,
# t_tumour[, b].  States: C_T (effector), C_M (memory), T (tumour), all in cells.
_PHI, _RHO, _MU_T, _EPS, _MU_M, _THETA, _ALPHA, _R, _GAMMA, _DOSE, _T0, _T_TUMOUR, _B = range(13)


@numba.njit(cache=True)
def _capacity_inverse(p):  # pragma: no cover - compiled
    """b (1/carrying capacity); the Raji set has no ``b`` (exponential tumour growth)."""
    return p[_B] if p.shape[0] > _B else 0.0


@numba.njit(cache=True)
def _rhs(t, y, p, phase, dydt):  # pragma: no cover - compiled
    ct, cm, tumour = y[0], y[1], y[2]
    net = p[_PHI] - p[_RHO] - p[_MU_T]
    dydt[0] = net * ct + p[_THETA] * tumour * cm - p[_ALPHA] * tumour * ct
    dydt[1] = p[_EPS] * p[_RHO] * ct - p[_THETA] * tumour * cm - p[_MU_M] * cm
    dydt[2] = p[_R] * tumour * (1.0 - _capacity_inverse(p) * tumour) - p[_GAMMA] * tumour * ct


@numba.njit(cache=True)
def _jacobian(t, y, p, phase, jac):  # pragma: no cover - compiled
    ct, cm, tumour = y[0], y[1], y[2]
    b = _capacity_inverse(p)
    jac[0, 0] = p[_PHI] - p[_RHO] - p[_MU_T] - p[_ALPHA] * tumour
    jac[0, 1] = p[_THETA] * tumour
    jac[0, 2] = p[_THETA] * cm - p[_ALPHA] * ct
    jac[1, 0] = p[_EPS] * p[_RHO]
    jac[1, 1] = -p[_THETA] * tumour - p[_MU_M]
    jac[1, 2] = -p[_THETA] * cm
    jac[2, 0] = -p[_GAMMA] * tumour
    jac[2, 1] = 0.0
    jac[2, 2] = p[_R] * (1.0 - 2.0 * b * tumour) - p[_GAMMA] * ct


@numba.njit(cache=True)
def _initial_state(p, y0):  # pragma: no cover - compiled
    """Effector dose at infusion; the tumour has grown logistically since inoculation."""
    growth = math.exp(p[_R] * p[_T_TUMOUR])
    y0[0] = p[_DOSE]
    y0[1] = 0.0
    y0[2] = p[_T0] * growth / (1.0 + _capacity_inverse(p) * p[_T0] * (growth - 1.0))
    return 0


@numba.njit(cache=True)
def _observe(y, p):  # pragma: no cover - compiled
    # Total CAR-T; after a collapse to ~1e-14 cells, solver noise at the absolute tolerance
    # can be slightly negative: a cell count is reported as 0 then.
    return max(y[0] + y[1], 0.0)


def _car_params(
    phi: float, rho: float, mu_t: float, epsilon: float, mu_m: float, theta: float, alpha: float
) -> tuple[ParamSpec, ...]:
    return (
        ParamSpec("phi", "1/day", phi, 1e-9, 10.0, "log", "effector CAR-T proliferation rate"),
        ParamSpec("rho", "1/day", rho, 1e-9, 10.0, "log", "effector -> memory conversion rate"),
        ParamSpec("mu_t", "1/day", mu_t, 1e-9, 10.0, "log", "effector CAR-T death rate"),
        ParamSpec("epsilon", "1", epsilon, 1e-6, 100.0, "log", "memory cells per conversion"),
        ParamSpec("mu_m", "1/day", mu_m, 1e-12, 10.0, "log", "memory CAR-T death rate"),
        ParamSpec(
            "theta", "1/(cell*day)", theta, 1e-15, 1.0, "log", "memory -> effector on contact"
        ),
        ParamSpec("alpha", "1/(cell*day)", alpha, 1e-18, 1e-3, "log", "tumour-induced inhibition"),
    )


def _tumour_params(
    r: float, gamma: float, dose: float, tumour0: float, t_tumour: float
) -> tuple[ParamSpec, ...]:
    return (
        ParamSpec("r", "1/day", r, 1e-9, 10.0, "log", "tumour proliferation rate"),
        ParamSpec("gamma", "1/(cell*day)", gamma, 1e-18, 1e-2, "log", "killing by effector CAR-T"),
        ParamSpec(
            "dose", "cells", dose, 0.0, 1e12, "log", "CAR-T cells infused at t = 0 (0: control)"
        ),
        ParamSpec("tumour0", "cells", tumour0, 1e-3, 1e12, "log", "tumour cells inoculated"),
        ParamSpec("t_tumour", "day", t_tumour, 0.0, 365.0, "linear", "inoculation -> infusion"),
    )


_DOC_EQUATIONS = r"""
    States (cells per mouse): :math:`C_T` effector CAR-T, :math:`C_M` memory CAR-T,
    :math:`T` tumour; observed level :math:`C_T + C_M` (cells).

    .. math::

        C_T' &= \phi C_T - \rho C_T - \mu_T C_T + \theta T C_M - \alpha T C_T \\
        C_M' &= \varepsilon \rho C_T - \theta T C_M - \mu_M C_M \\
        T'   &= r T (1 - b T) - \gamma T C_T

    Time is days since CAR-T infusion. The tumour is inoculated ``t_tumour`` days before
    (``tumour0`` cells) and grows logistically until infusion, so
    :math:`T(0) = T_0 e^{r t_T} / (1 + b T_0 (e^{r t_T} - 1))`; :math:`C_T(0)` is the dose,
    :math:`C_M(0) = 0`. An analytic Jacobian is given. The observed level is clipped at 0
    (after a collapse of the CAR-T cells, solver noise at the absolute tolerance can be
    slightly negative). Only :math:`\phi - \rho - \mu_T` and
    :math:`\varepsilon\rho` are identifiable from CAR-T and tumour data; fix ``mu_t`` and
    ``epsilon`` when fitting. The authors' application zeroes any population below 1e-6
    cells after each RK4 step; cellkin integrates the equations as written (a state below one
    cell is below the model's resolution).

    Verification: equations and parameter values from the authors' code (``rk4.R`` and
    ``server.R`` of ``tmglncc/CARTmath``, read for this model; they agree with the reduced
    values in the cellkin literature notes §2.4, where ``rho`` + ``mu_t`` and
    ``epsilon``·``rho`` are lumped). Doses and schedules are the application's presets;
    the qualitative outcomes tested (eradication vs escape, dose threshold, IDO ordering)
    are what the equations give at those presets, cross-checked with SciPy Radau.
    """


class CARTmathHDLM2(ODEModel):
    __doc__ = (
        r"""CARTmath with the HDLM-2 (Hodgkin lymphoma, CAR-T123) parameter set.
    """
        + _DOC_EQUATIONS
        + r"""
    Defaults: preset "ex1" — 2×10⁶ HDLM-2 cells inoculated, 10⁶ CAR-T123 cells infused on
    day 42; b = 1.404029e-12 /cell (capacity ≈ 7.1×10¹¹ cells). Integrated with Rodas4
    (θT reaches ~10² /day while the tumour is large).

    References
    ----------
    Barros LRC, Paixão EA, Valli AMP, Naozuka GT, Fassoni AC, Almeida RC. CARTmath—a
    mathematical model of CAR-T immunotherapy in preclinical studies of hematological
    cancers. Cancers. 2021;13(12):2941. doi:10.3390/cancers13122941 (code:
    doi:10.5281/zenodo.4450376; BioModels BIOMD0000001019).
    """
    )

    name: ClassVar[str] = "cartmath_hdlm2"
    citation: ClassVar[str] = "Barros LRC et al. Cancers 2021;13(12):2941 (HDLM-2 set)"
    doi: ClassVar[str] = "10.3390/cancers13122941"
    observed_unit: ClassVar[str] = "cells"
    params: ClassVar[tuple[ParamSpec, ...]] = (
        *_car_params(0.265, 0.05, 0.3, 3.0, 5.0e-3, 6.0e-6, 4.5e-8),
        *_tumour_params(5.650026e-2, 3.715843e-6, 1.0e6, 2.0e6, 42.0),
        ParamSpec("b", "1/cell", 1.404029e-12, 1e-20, 1e-3, "log", "inverse tumour capacity"),
    )
    state_names: ClassVar[tuple[str, ...]] = ("effector", "memory", "tumour")
    state_units: ClassVar[tuple[str, ...]] = ("cells", "cells", "cells")
    stiff: ClassVar[bool] = True
    default_atol: ClassVar[float] = 1e-9
    rhs = staticmethod(_rhs)
    jacobian = staticmethod(_jacobian)
    initial_state = staticmethod(_initial_state)
    observe = staticmethod(_observe)


class CARTmathRaji(ODEModel):
    __doc__ = (
        r"""CARTmath with the Raji (Burkitt lymphoma, CD19 CAR-T) parameter set — stiff.
    """
        + _DOC_EQUATIONS
        + r"""
    Raji grows exponentially (:math:`b = 0`, so the set has no ``b`` parameter). Defaults:
    preset "ex4" (IDO-negative tumour) — 3×10⁶ Raji cells inoculated, 10⁷ CAR-T19 cells
    infused on day 7; the application's other presets change only ``alpha``: 1.461699e-8
    (IDO-positive, "ex5") and 1.261662e-8 (IDO-positive with 1-MT, "ex6"). The problem is
    stiff (θT ≈ 2×10⁴–10⁶ /day; the authors used RK4 with Δt = 10⁻⁵ day): integrated with
    Rodas4 and the analytic Jacobian.

    References
    ----------
    Barros LRC, Paixão EA, Valli AMP, Naozuka GT, Fassoni AC, Almeida RC. CARTmath—a
    mathematical model of CAR-T immunotherapy in preclinical studies of hematological
    cancers. Cancers. 2021;13(12):2941. doi:10.3390/cancers13122941 (code:
    doi:10.5281/zenodo.4450376; BioModels BIOMD0000001020).
    """
    )

    name: ClassVar[str] = "cartmath_raji"
    citation: ClassVar[str] = "Barros LRC et al. Cancers 2021;13(12):2941 (Raji set)"
    doi: ClassVar[str] = "10.3390/cancers13122941"
    observed_unit: ClassVar[str] = "cells"
    params: ClassVar[tuple[ParamSpec, ...]] = (
        *_car_params(0.83, 0.53, 0.3000536, 3.015, 6.89e-7, 2.3e-4, 1.248506e-8),
        *_tumour_params(5.071721e-1, 3.365388e-8, 1.0e7, 3.0e6, 7.0),
    )
    state_names: ClassVar[tuple[str, ...]] = ("effector", "memory", "tumour")
    state_units: ClassVar[tuple[str, ...]] = ("cells", "cells", "cells")
    stiff: ClassVar[bool] = True
    default_atol: ClassVar[float] = 1e-9
    rhs = staticmethod(_rhs)
    jacobian = staticmethod(_jacobian)
    initial_state = staticmethod(_initial_state)
    observe = staticmethod(_observe)
