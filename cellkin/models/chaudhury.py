"""Chaudhury et al. 2020: antigen-driven (EC50) CAR-T expansion with tumour killing.

The second of the three reference cellular-kinetic/pharmacodynamic models of the Chaudhury
2020 review (BioModels BIOMD0000001025): a Stein-type effector/persistent split switched at
Tmax, with expansion and tumour killing saturating in an EC50 of total cells.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numba

from cellkin.models.base import ParamSpec
from cellkin.models.ode import ODEModel

__all__ = ["Chaudhury2020"]

# Parameter order (kernel): see Chaudhury2020.params.
_RHO, _KE, _EC50_RHO, _G, _D, _KEP, _BETA, _UCRIT, _UMAX, _H, _EC50_D, _TMAX, _CE0, _U0 = range(14)


@numba.njit(cache=True)
def _rhs(t, y, p, phase, dydt):  # pragma: no cover - compiled
    ce, cp, u = y[0], y[1], y[2]
    if phase == 0:
        dydt[0] = p[_RHO] * ce * u / (p[_EC50_RHO] + ce + u)
        dydt[1] = 0.0
    else:
        dydt[0] = -(p[_KEP] + p[_KE]) * ce
        dydt[1] = p[_KEP] * ce - p[_BETA] * cp
    growth = 0.0
    if u > 0.0:
        f_cure = 1.0 / (1.0 + (p[_UCRIT] / u) ** p[_H])
        growth = f_cure * p[_G] * u * math.log(p[_UMAX] / u) / math.log(p[_UMAX])
    dydt[2] = growth - p[_D] * ce * u / (p[_EC50_D] + ce + u)


@numba.njit(cache=True)
def _initial_state(p, y0):  # pragma: no cover - compiled
    y0[0] = p[_CE0]
    y0[1] = 0.0
    y0[2] = p[_U0]
    return 0


@numba.njit(cache=True)
def _observe(y, p):  # pragma: no cover - compiled
    return y[0] + y[1]


@numba.njit(cache=True)
def _breakpoints(p, out):  # pragma: no cover - compiled
    out[0] = p[_TMAX]
    return 1


class Chaudhury2020(ODEModel):
    r"""Antigen-driven CAR-T expansion (EC50) with tumour killing and a Tmax switch.

    States (arbitrary cell units of "whole-organism blood", as in the source): :math:`C_E`
    effector CAR-T, :math:`C_P` persistent (memory) CAR-T, :math:`U` tumour; observed
    :math:`C = C_E + C_P`. Before :math:`T_{max}` (phase 0):

    .. math::

        C_E' = \frac{\rho\, C_E U}{EC50_\rho + C_E + U}, \qquad C_P' = 0

    after :math:`T_{max}` (phase 1):

    .. math::

        C_E' = -(k_{EP} + k_E) C_E, \qquad C_P' = k_{EP} C_E - \beta C_P

    and throughout

    .. math::

        U' = F_{cure}\, g\, U \frac{\log_{10}(U_{max}/U)}{\log_{10} U_{max}}
             - \frac{d\, C_E U}{EC50_d + C_E + U}, \qquad
        F_{cure} = \frac{1}{1 + (U_{crit}/U)^h}

    so tumour growth switches off as :math:`U \to 0`. The right-hand side is discontinuous
    at :math:`T_{max}`; the solver restarts there. Initial state from the dose:
    :math:`C_E(0) = C_{E,0}` (``ce0``), :math:`C_P(0) = 0`, :math:`U(0) = U_0` (``u0``).

    Verification: equations and values from the BioModels SBML→Octave export of
    BIOMD0000001025 (the cellkin literature notes, §2.1, tagged verified), **except** the
    Gompertz-type growth term, which is garbled in the auto-converted file; the
    :math:`\log_{10}(U_{max}/U)/\log_{10}U_{max}` form is our reading (unverified). ``h``
    is the exponent of :math:`F_{cure}` (the export also lists an unused ``h_T = 3``).
    :math:`k_E` and :math:`\beta` are Stein 2019's α and β. The volume, page numbers and
    DOI of the review below were not checked against the journal (author list verified).

    References
    ----------
    Chaudhury A, Zhu X, Chu L, Goliaei A, June CH, Kearns JD, Stein AM. Chimeric antigen
    receptor T cell therapies: a review of cellular kinetic-pharmacodynamic modeling
    approaches. J Clin Pharmacol. 2020;60(S1):S147-S159. doi:10.1002/jcph.1691
    (BioModels BIOMD0000001025).
    """

    name: ClassVar[str] = "chaudhury2020"
    citation: ClassVar[str] = "Chaudhury A et al. J Clin Pharmacol 2020;60(S1):S147-S159"
    doi: ClassVar[str] = "10.1002/jcph.1691"
    observed_unit: ClassVar[str] = "cells (arbitrary units)"
    params: ClassVar[tuple[ParamSpec, ...]] = (
        ParamSpec("rho", "1/day", 8.8, 1e-3, 100.0, "log", "maximal expansion rate"),
        ParamSpec("k_e", "1/day", 0.16, 1e-4, 10.0, "log", "effector decline after Tmax"),
        ParamSpec("ec50_rho", "cells", 1.0, 1e-6, 1e6, "log", "EC50 of expansion"),
        ParamSpec("g", "1/day", 0.2, 1e-4, 10.0, "log", "tumour growth rate"),
        ParamSpec("d", "1/day", 0.35, 1e-4, 10.0, "log", "maximal killing rate"),
        ParamSpec("k_ep", "1/day", 0.0012, 1e-7, 1.0, "log", "effector -> persistent rate"),
        ParamSpec("beta", "1/day", 0.0032, 1e-7, 1.0, "log", "persistent-cell decline"),
        ParamSpec("u_crit", "cells", 0.1, 1e-6, 1e3, "log", "tumour level where growth stops"),
        ParamSpec("u_max", "cells", 1000.0, 1.0 + 1e-6, 1e12, "log", "tumour capacity"),
        ParamSpec("h", "1", 3.0, 0.1, 20.0, "log", "steepness of the cure switch"),
        ParamSpec("ec50_d", "cells", 10.0, 1e-6, 1e6, "log", "EC50 of killing"),
        ParamSpec("tmax", "day", 9.3, 0.05, 365.0, "log", "end of expansion (switch time)"),
        ParamSpec("ce0", "cells", 10.0, 1e-9, 1e12, "log", "infused effector cells (dose)"),
        ParamSpec("u0", "cells", 900.0, 1e-9, 1e12, "log", "tumour at infusion"),
    )
    state_names: ClassVar[tuple[str, ...]] = ("effector", "persistent", "tumour")
    state_units: ClassVar[tuple[str, ...]] = ("cells", "cells", "cells")
    default_atol: ClassVar[float] = 1e-12
    max_breakpoints: ClassVar[int] = 1
    rhs = staticmethod(_rhs)
    initial_state = staticmethod(_initial_state)
    observe = staticmethod(_observe)
    breakpoints = staticmethod(_breakpoints)
