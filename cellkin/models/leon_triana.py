"""León-Triana et al. 2021: antigen-driven CAR-T expansion against a solid tumour.

The single-target model of the dual-target CAR-T study (BioModels BIOMD0000001013): CAR-T
cells expand on contact with antigen-positive tumour cells, are inactivated by the tumour
(immunosuppressive microenvironment) and die; the tumour grows exponentially and is killed
by mass action. It is the closest published structure to an NKG2DL⁺ solid tumour treated
with an NKG2D CAR-T product, hence cellkin's default mechanistic model for such studies.
"""

from __future__ import annotations

from typing import ClassVar

import numba

from cellkin.models.base import ParamSpec
from cellkin.models.ode import ODEModel

__all__ = ["LeonTriana2021"]

# Kernel order: rho_c, g_t, alpha_1, g_c, tau_c, rho_t, alpha_2, dose, tumour0, v_body.
_RHO_C, _G_T, _ALPHA_1, _G_C, _TAU_C, _RHO_T, _ALPHA_2, _DOSE, _TUMOUR0, _V_BODY = range(10)


@numba.njit(cache=True)
def _rhs(t, y, p, phase, dydt):  # pragma: no cover - compiled
    c, tumour = y[0], y[1]
    dydt[0] = (
        p[_RHO_C] * c * tumour / (p[_G_T] + tumour)
        - p[_ALPHA_1] * c * tumour / (p[_G_C] + c)
        - c / p[_TAU_C]
    )
    dydt[1] = p[_RHO_T] * tumour - p[_ALPHA_2] * c * tumour


@numba.njit(cache=True)
def _jacobian(t, y, p, phase, jac):  # pragma: no cover - compiled
    c, tumour = y[0], y[1]
    g_t, g_c = p[_G_T] + tumour, p[_G_C] + c
    jac[0, 0] = (
        p[_RHO_C] * tumour / g_t - p[_ALPHA_1] * tumour * p[_G_C] / (g_c * g_c) - 1.0 / p[_TAU_C]
    )
    jac[0, 1] = p[_RHO_C] * c * p[_G_T] / (g_t * g_t) - p[_ALPHA_1] * c / g_c
    jac[1, 0] = -p[_ALPHA_2] * tumour
    jac[1, 1] = p[_RHO_T] - p[_ALPHA_2] * c


@numba.njit(cache=True)
def _initial_state(p, y0):  # pragma: no cover - compiled
    y0[0] = p[_DOSE]
    y0[1] = p[_TUMOUR0]
    return 0


@numba.njit(cache=True)
def _observe(y, p):  # pragma: no cover - compiled
    return y[0] / p[_V_BODY]


class LeonTriana2021(ODEModel):
    r"""Antigen-driven CAR-T expansion and tumour-induced inactivation in a solid tumour.

    States (whole-body cells): :math:`C` CAR-T cells, :math:`T` antigen-positive tumour
    cells. Observed level: CAR-T cells per µL of blood, :math:`C / V_{body}`.

    .. math::

        C' &= \rho_C \frac{C\,T}{g_T + T} - \alpha_1 \frac{C\,T}{g_C + C} - \frac{C}{\tau_C} \\
        T' &= \rho_T T - \alpha_2 C\,T

    Time is days since infusion; :math:`C(0)` is the dose (CAR-T cells),
    :math:`T(0) = T_0`. An analytic Jacobian is given.

    Observation. The model counts cells in the whole body; blood flow cytometry reports
    cells/µL. :math:`V_{body}` (default 5×10⁸ µL) is the ratio of whole-body to per-µL values
    implied by the Kimmel 2021 parameter sets (see :class:`~cellkin.models.kimmel.Kimmel2021`),
    i.e. about 1% of T cells circulating in 5 L of blood. It is an assumption, not part of the
    source model: for a solid tumour most CAR-T cells may sit in tissue, so fix it from
    the study design or treat it as a scale to estimate (it is confounded with the dose).

    Verification: equations and values from the BioModels export of BIOMD0000001013
    (cellkin literature notes §2.9, verified): :math:`\rho_C` 0.9 /day, :math:`g_T` 10¹⁰,
    :math:`\alpha_1` 0.04 /day, :math:`g_C` 2×10⁹, :math:`\tau_C` 7 day, :math:`\rho_T`
    0.02 /day, :math:`\alpha_2` 2.5×10⁻¹⁰ /(cell·day), :math:`C(0)` 4×10⁸,
    :math:`T(0)` 6.7×10⁹ cells. The journal citation below (title, volume, DOI) is from
    memory and not verified; the BioModels identifier is.

    References
    ----------
    León-Triana O, Pérez-Martínez A, Ramírez-Orellana M, Pérez-García VM. Dual-target
    CAR-Ts with on- and off-tumour activity may override immune suppression in solid
    cancers: a mathematical proof of concept. Cancers. 2021;13(4):703.
    doi:10.3390/cancers13040703 (BioModels BIOMD0000001013).
    """

    name: ClassVar[str] = "leon_triana2021"
    citation: ClassVar[str] = "León-Triana O et al. Cancers 2021;13(4):703 (BIOMD0000001013)"
    doi: ClassVar[str] = "10.3390/cancers13040703"
    observed_unit: ClassVar[str] = "cells/uL"
    params: ClassVar[tuple[ParamSpec, ...]] = (
        ParamSpec("rho_c", "1/day", 0.9, 1e-6, 20.0, "log", "maximal antigen-driven expansion"),
        ParamSpec("g_t", "cells", 1e10, 1.0, 1e15, "log", "tumour level of half-max expansion"),
        ParamSpec("alpha_1", "1/day", 0.04, 1e-9, 20.0, "log", "tumour-induced inactivation"),
        ParamSpec("g_c", "cells", 2e9, 1.0, 1e15, "log", "CAR-T level of half-max inactivation"),
        ParamSpec("tau_c", "day", 7.0, 0.01, 1e4, "log", "CAR-T mean lifetime"),
        ParamSpec("rho_t", "1/day", 0.02, 1e-9, 5.0, "log", "tumour growth rate"),
        ParamSpec("alpha_2", "1/(cell*day)", 2.5e-10, 1e-20, 1e-3, "log", "killing rate"),
        ParamSpec("dose", "cells", 4e8, 1.0, 1e13, "log", "CAR-T cells infused"),
        ParamSpec("tumour0", "cells", 6.7e9, 1.0, 1e14, "log", "tumour cells at infusion"),
        ParamSpec("v_body", "uL", 5e8, 1e3, 1e12, "log", "whole-body cells per cell/uL blood"),
    )
    state_names: ClassVar[tuple[str, ...]] = ("car_t", "tumour")
    state_units: ClassVar[tuple[str, ...]] = ("cells", "cells")
    default_atol: ClassVar[float] = 1e-6
    rhs = staticmethod(_rhs)
    jacobian = staticmethod(_jacobian)
    initial_state = staticmethod(_initial_state)
    observe = staticmethod(_observe)
