"""The ODE form of the Stein 2019 model, integrated across its Tmax switch.

:class:`Stein2019ODE` has the same parameters and the same solution as the closed form
:class:`~cellkin.models.stein.Stein2019`; it exists to exercise (and test) the piecewise
integration machinery against an exact answer, and as the template for Stein-type mechanistic
extensions (the Chaudhury 2020 model adds a tumour to the same switch).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import numba

from cellkin.models.ode import ODEModel
from cellkin.models.stein import _STEIN_PARAMS, Stein2019

__all__ = ["Stein2019ODE"]

# Parameter order: cmax, tmax, foldx, alpha, fb, beta.  States: E (effector), M (memory).


@numba.njit(cache=True)
def _rhs(t, y, p, phase, dydt):  # pragma: no cover - compiled
    if phase == 0:
        dydt[0] = math.log(p[2]) / p[1] * y[0]
        dydt[1] = 0.0
    else:
        dydt[0] = -p[3] * y[0]
        dydt[1] = p[4] * (p[3] - p[5]) * y[0] - p[5] * y[1]


@numba.njit(cache=True)
def _jacobian(t, y, p, phase, jac):  # pragma: no cover - compiled
    jac[:, :] = 0.0
    if phase == 0:
        jac[0, 0] = math.log(p[2]) / p[1]
    else:
        jac[0, 0] = -p[3]
        jac[1, 0] = p[4] * (p[3] - p[5])
        jac[1, 1] = -p[5]


@numba.njit(cache=True)
def _initial_state(p, y0):  # pragma: no cover - compiled
    y0[0] = p[0] / p[2]
    y0[1] = 0.0
    return 0


@numba.njit(cache=True)
def _observe(y, p):  # pragma: no cover - compiled
    return y[0] + y[1]


@numba.njit(cache=True)
def _breakpoints(p, out):  # pragma: no cover - compiled
    out[0] = p[1]
    return 1


class Stein2019ODE(ODEModel):
    r"""Stein 2019 model of tisagenlecleucel kinetics, as ODEs with a switch at Tmax.

    States: :math:`E` effector (expanding, then contracting) and :math:`M` memory
    (persisting) CAR-T, both in copies/µg genomic DNA; observed :math:`C = E + M`.
    With :math:`\rho = \ln(\mathrm{foldx})/T_{max}`:

    .. math::

        t < T_{max}:\quad & E' = \rho E, \qquad M' = 0 \\
        t \ge T_{max}:\quad & E' = -\alpha E, \qquad
            M' = F_B(\alpha - \beta) E - \beta M

    with :math:`E(0) = C_{max}/\mathrm{foldx}`, :math:`M(0) = 0`. The solution equals the
    closed form of :class:`~cellkin.models.stein.Stein2019` (verified to 1e-8 relative in the
    tests); integration restarts at the breakpoint :math:`T_{max}` (phase 0 before, phase 1
    after). Parameters, units, typical values and variability are those of ``stein2019``
    (Stein et al. Table 1, verified via the nlmixr2lib port). An analytic Jacobian is given.

    References
    ----------
    Stein AM, Grupp SA, Levine JE, et al. Tisagenlecleucel model-based cellular kinetic
    analysis of chimeric antigen receptor-T cells. CPT Pharmacometrics Syst Pharmacol.
    2019;8(5):285-295. doi:10.1002/psp4.12388
    """

    name: ClassVar[str] = "stein2019_ode"
    citation: ClassVar[str] = Stein2019.citation
    doi: ClassVar[str] = Stein2019.doi
    params = _STEIN_PARAMS
    omega: ClassVar[Mapping[str, float]] = Stein2019.omega
    sigma: ClassVar[float] = Stein2019.sigma
    observed_unit: ClassVar[str] = "copies/ug"
    state_names: ClassVar[tuple[str, ...]] = ("effector", "memory")
    state_units: ClassVar[tuple[str, ...]] = ("copies/ug", "copies/ug")
    default_atol: ClassVar[float] = 1e-9
    max_breakpoints: ClassVar[int] = 1
    rhs = staticmethod(_rhs)
    jacobian = staticmethod(_jacobian)
    initial_state = staticmethod(_initial_state)
    observe = staticmethod(_observe)
    breakpoints = staticmethod(_breakpoints)
