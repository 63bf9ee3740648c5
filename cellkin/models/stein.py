"""Stein-type piecewise closed-form models of CAR-T expansion, contraction and persistence.

Two models share one compiled kernel:

* :class:`Stein2019` — exponential expansion to ``Tmax``, then a bi-exponential decline
  (tisagenlecleucel, Stein et al. 2019, doi:10.1002/psp4.12388);
* :class:`Stein2019Lag` — the same with a lag phase before expansion (lisocabtagene
  maraleucel population model, Clin Pharmacokinet 2021, doi:10.1007/s40262-021-01039-5).

Besides simulation, the family offers the closed-form quantities clinical pharmacologists
quote: doubling time, phase half-lives, exact AUC over any interval and the time at which the
curve falls to a given level (e.g. back to baseline or below the LLOQ).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import numba
import numpy as np
from scipy.optimize import brentq

from cellkin.errors import ModelError
from cellkin.models._vexp import vexp
from cellkin.models.base import Model, ParamSpec

__all__ = ["Stein2019", "Stein2019Lag"]

# Kernel status codes (0 = success).
STATUS_TLAG_NOT_BEFORE_TMAX = 1


@numba.njit(cache=True, fastmath={"contract"})
def _stein_fill(t, p, out):  # pragma: no cover - compiled
    """Fill one subject's row (``p``: cmax..beta[, tlag]); returns its status.

    ``C(t) = 0`` before infusion, ``C0 = Cmax/foldx`` until ``tlag``,
    ``C0·exp(ρ(t − tlag))`` with ``ρ = ln(foldx)/(Tmax − tlag)`` until Tmax, then
    ``Cmax·((1 − FB)·e^{−α(t−Tmax)} + FB·e^{−β(t−Tmax)})``. The per-subject constants are
    computed once; the loop over times has no branches and no calls (both exponentials are
    always evaluated, on clamped arguments, and the phase is a select), so that LLVM
    vectorises it with :func:`~cellkin.models._vexp.vexp` — about 2× the speed of a
    branching loop around ``math.exp``.
    """
    cmax, tmax, foldx, alpha, fb, beta = p[0], p[1], p[2], p[3], p[4], p[5]
    tlag = p[6] if p.shape[0] > 6 else 0.0
    if tlag >= tmax:
        return STATUS_TLAG_NOT_BEFORE_TMAX
    c0 = cmax / foldx
    rho = math.log(foldx) / (tmax - tlag)
    fast = cmax * (1.0 - fb)
    slow = cmax * fb
    for j in range(t.shape[0]):
        tj = t[j]
        declining = tj >= tmax
        elapsed = max(tj - tmax, 0.0)
        first = vexp(-alpha * elapsed if declining else rho * max(tj - tlag, 0.0))
        second = vexp(-beta * elapsed)
        level = fast * first + slow * second if declining else c0 * first
        out[j] = level if tj >= 0.0 else 0.0
    return 0


@numba.njit(cache=True, parallel=True)
def _stein_batch(t, param_matrix, out):  # pragma: no cover - compiled
    """Fill ``out[i, j]`` for subjects ``i`` and times ``j`` in parallel."""
    status = np.zeros(param_matrix.shape[0], dtype=np.int32)
    for i in numba.prange(param_matrix.shape[0]):
        status[i] = _stein_fill(t, param_matrix[i], out[i])
    return status


@numba.njit(cache=True)
def _stein_serial(t, param_matrix, out):  # pragma: no cover - compiled
    """As :func:`_stein_batch` without threads: for the many small calls of a fit."""
    status = np.zeros(param_matrix.shape[0], dtype=np.int32)
    for i in range(param_matrix.shape[0]):
        status[i] = _stein_fill(t, param_matrix[i], out[i])
    return status


_STEIN_PARAMS = (
    ParamSpec("cmax", "copies/ug", 24_000.0, 1e-3, 1e9, "log", "peak level at Tmax"),
    ParamSpec("tmax", "day", 9.3, 0.05, 365.0, "log", "time of the peak"),
    ParamSpec("foldx", "1", 3_900.0, 1.0 + 1e-6, 1e8, "log", "fold expansion C0 -> Cmax"),
    ParamSpec("alpha", "1/day", 0.16, 1e-4, 20.0, "log", "rate of the fast (contraction) decline"),
    ParamSpec("fb", "1", 0.0079, 1e-7, 1.0 - 1e-7, "logit", "fraction of Cmax in the slow phase"),
    ParamSpec("beta", "1/day", 0.0032, 1e-5, 20.0, "log", "rate of the slow (persistence) decline"),
)


class _SteinFamily(Model):
    """Shared closed-form machinery of the Stein-type models."""

    abstract: ClassVar[bool] = True
    observed_unit: ClassVar[str] = "copies/ug"
    _batch_kernel = staticmethod(_stein_batch)
    _serial_kernel = staticmethod(_stein_serial)

    def _named(self, params: Mapping[str, float] | None) -> dict[str, float]:
        vector = self.param_vector(params).tolist()
        values = dict(zip(self.param_names, vector, strict=True))
        values.setdefault("tlag", 0.0)
        if values["tlag"] >= values["tmax"]:
            raise ModelError(
                f"model `{self.name}`: tlag ({values['tlag']}) must be before tmax "
                f"({values['tmax']})"
            )
        return values

    def canonical(self, vector: np.ndarray) -> np.ndarray:
        """Order the phases so that α ≥ β: the curve is unchanged under
        (α, β, FB) → (β, α, 1 − FB), so a fit can land on either labelling."""
        out = np.array(vector, dtype=float)
        alpha, fb, beta = out[3], out[4], out[5]
        if alpha < beta:
            out[3], out[4], out[5] = beta, 1.0 - fb, alpha
        return out

    def log_level_gradient(self, t: np.ndarray, kinetic: np.ndarray) -> np.ndarray:
        """∂ ln C(t)/∂θ for the kinetic vector ``kinetic`` (natural scale, kernel order), at
        post-infusion times ``t`` (``t ≥ 0``): shape ``(len(t), n_params)``.

        Piecewise closed forms; at ``t = Tmax`` the decline branch is used (one-sided
        derivative of the kink). Used by the fitting code for an analytic likelihood gradient.
        """
        cmax, tmax, foldx, alpha, fb, beta = kinetic[:6]
        tlag = kinetic[6] if kinetic.size > 6 else 0.0
        t = np.asarray(t, dtype=float)
        out = np.zeros((t.size, kinetic.size))
        out[:, 0] = 1.0 / cmax
        span = tmax - tlag
        rho = np.log(foldx) / span
        lag = t < tlag
        grow = (t >= tlag) & (t < tmax)
        fraction = (t[grow] - tlag) / span
        out[lag, 2] = -1.0 / foldx
        out[grow, 2] = (fraction - 1.0) / foldx
        out[grow, 1] = -rho * fraction
        if kinetic.size > 6:
            out[grow, 6] = rho * (fraction - 1.0)
        down = t >= tmax
        elapsed = t[down] - tmax
        fast, slow = np.exp(-alpha * elapsed), np.exp(-beta * elapsed)
        level = (1 - fb) * fast + fb * slow
        with np.errstate(divide="ignore", invalid="ignore"):  # level underflows far out
            out[down, 1] = ((1 - fb) * alpha * fast + fb * beta * slow) / level
            out[down, 3] = -(1 - fb) * elapsed * fast / level
            out[down, 4] = (slow - fast) / level
            out[down, 5] = -fb * elapsed * slow / level
        return np.where(np.isfinite(out), out, 0.0)

    def expansion_rate(self, params: Mapping[str, float] | None = None) -> float:
        """Expansion rate ρ = ln(foldx) / (Tmax − tlag), in 1/day."""
        p = self._named(params)
        return math.log(p["foldx"]) / (p["tmax"] - p["tlag"])

    def doubling_time(self, params: Mapping[str, float] | None = None) -> float:
        """Doubling time during expansion, ln 2 / ρ, in days."""
        return math.log(2.0) / self.expansion_rate(params)

    def half_lives(self, params: Mapping[str, float] | None = None) -> dict[str, float]:
        """Half-lives of the contraction (ln 2/α) and persistence (ln 2/β) phases, in days."""
        p = self._named(params)
        return {"fast": math.log(2.0) / p["alpha"], "terminal": math.log(2.0) / p["beta"]}

    def auc(self, start: float, end: float, params: Mapping[str, float] | None = None) -> float:
        """Exact area under the curve from ``start`` to ``end`` (days), in unit·day.

        ``end`` may be ``math.inf``. Each phase is integrated in closed form:
        ``C0·Δt`` in the lag, ``ΔC/ρ`` during expansion and
        ``Cmax[(1−FB)(e^{−αa}−e^{−αb})/α + FB(e^{−βa}−e^{−βb})/β]`` during the decline.
        """
        if not start <= end:
            raise ModelError(f"AUC interval must have start <= end, got ({start}, {end})")
        p = self._named(params)
        c0, rho = p["cmax"] / p["foldx"], self.expansion_rate(params)
        lo, hi = max(start, 0.0), end
        total = 0.0
        a, b = max(lo, 0.0), min(hi, p["tlag"])
        if b > a:
            total += c0 * (b - a)
        a, b = max(lo, p["tlag"]), min(hi, p["tmax"])
        if b > a:
            total += c0 * (math.exp(rho * (b - p["tlag"])) - math.exp(rho * (a - p["tlag"]))) / rho
        a, b = max(lo, p["tmax"]) - p["tmax"], hi - p["tmax"]
        if b > a:
            for weight, rate in ((1.0 - p["fb"], p["alpha"]), (p["fb"], p["beta"])):
                total += p["cmax"] * weight * (math.exp(-rate * a) - math.exp(-rate * b)) / rate
        return total

    def time_to_level(self, level: float, params: Mapping[str, float] | None = None) -> float:
        """First time after Tmax at which the curve has fallen to ``level``, in days.

        Returns Tmax when ``level >= Cmax``; ``math.inf`` when ``level <= 0`` (the curve never
        reaches zero). The decline is monotone, so the root is bracketed and found with
        :func:`scipy.optimize.brentq` to 1e-10 relative precision.
        """
        p = self._named(params)
        if level >= p["cmax"]:
            return p["tmax"]
        if level <= 0.0:
            return math.inf

        def excess(elapsed: float) -> float:
            decline = (1 - p["fb"]) * math.exp(-p["alpha"] * elapsed)
            decline += p["fb"] * math.exp(-p["beta"] * elapsed)
            return math.log(p["cmax"] * decline) - math.log(level)

        upper = math.log(p["cmax"] / level) / min(p["alpha"], p["beta"])
        elapsed = brentq(excess, 0.0, upper * (1 + 1e-12) + 1e-12, xtol=1e-12, rtol=1e-12)
        return p["tmax"] + elapsed


class Stein2019(_SteinFamily):
    r"""Stein 2019 piecewise model of tisagenlecleucel cellular kinetics.

    With :math:`\rho = \ln(\mathrm{foldx})/T_{max}` and :math:`C_0 = C_{max}/\mathrm{foldx}`:

    .. math::

        C(t) = \begin{cases}
            0 & t < 0 \\
            C_0\, e^{\rho t} & 0 \le t < T_{max} \\
            C_{max}\left[(1-F_B)e^{-\alpha(t-T_{max})} + F_B e^{-\beta(t-T_{max})}\right]
              & t \ge T_{max}
        \end{cases}

    equivalent to the ODEs :math:`E' = \rho E` before :math:`T_{max}`, then
    :math:`E' = -\alpha E`, :math:`M' = F_B(\alpha-\beta)E - \beta M`, :math:`C = E + M`
    with :math:`E(0) = C_0`, :math:`M(0) = 0`. Before infusion (:math:`t<0`) the level is 0.

    Parameters (units): ``cmax`` (copies/µg), ``tmax`` (day), ``foldx`` (1), ``alpha``
    (1/day), ``fb`` (1), ``beta`` (1/day). Defaults are the typical values of Stein et al.
    Table 1 (90 paediatric/young-adult r/r B-ALL patients, ELIANA + ENSIGN); ``omega`` holds
    the published between-subject variability, read as variances on the log scale (ω²) as
    the nlmixr2lib port does, i.e. SD = sqrt(ω²). Residual error: additive on ln scale,
    σ = 0.56 (:attr:`sigma`).

    References
    ----------
    Stein AM, Grupp SA, Levine JE, et al. Tisagenlecleucel model-based cellular kinetic
    analysis of chimeric antigen receptor-T cells. CPT Pharmacometrics Syst Pharmacol.
    2019;8(5):285-295. doi:10.1002/psp4.12388
    """

    name: ClassVar[str] = "stein2019"
    citation: ClassVar[str] = "Stein AM et al. CPT Pharmacometrics Syst Pharmacol 2019;8(5):285-295"
    doi: ClassVar[str] = "10.1002/psp4.12388"
    params: ClassVar[tuple[ParamSpec, ...]] = _STEIN_PARAMS
    omega: ClassVar[Mapping[str, float]] = {
        "cmax": math.sqrt(0.65),
        "tmax": math.sqrt(0.38),
        "foldx": math.sqrt(2.4),
        "alpha": math.sqrt(0.91),
        "fb": math.sqrt(0.80),
        "beta": math.sqrt(0.86),
    }
    sigma: ClassVar[float] = 0.56


def _lisocel_foldx(tlag: float, tmax: float, doubling_time: float) -> float:
    return 2.0 ** ((tmax - tlag) / doubling_time)


class Stein2019Lag(_SteinFamily):
    r"""Stein-type model with a lag before expansion (liso-cel population CK model).

    With :math:`\rho = \ln(\mathrm{foldx})/(T_{max} - t_{lag})`:

    .. math::

        C(t) = \begin{cases}
            0 & t < 0 \\
            C_0 & 0 \le t < t_{lag} \\
            C_0\, e^{\rho (t - t_{lag})} & t_{lag} \le t < T_{max} \\
            C_{max}\left[(1-F_B)e^{-\alpha(t-T_{max})} + F_B e^{-\beta(t-T_{max})}\right]
              & t \ge T_{max}
        \end{cases}

    Parameters are those of :class:`Stein2019` plus ``tlag`` (day), which must be below
    ``tmax`` (the kernel reports status 1 otherwise). Defaults from the published population
    means (261 LBCL patients, TRANSCEND): lag 3.27 d, doubling time 0.755 d (so
    foldx = 2^((9.29 − 3.27)/0.755) ≈ 251), Tmax 9.29 d, initial-decline t½ 5.00 d
    (α = ln2/5.00), terminal t½ 352 d (β = ln2/352). Cmax and FB are not in the abstract and
    are borrowed from Stein 2019 (placeholders; check the paper before relying on them).
    No between-subject variability is declared.

    References
    ----------
    Population cellular kinetics of lisocabtagene maraleucel. Clin Pharmacokinet 2021.
    doi:10.1007/s40262-021-01039-5
    """

    name: ClassVar[str] = "stein2019_lag"
    citation: ClassVar[str] = "Liso-cel population cellular kinetics, Clin Pharmacokinet 2021"
    doi: ClassVar[str] = "10.1007/s40262-021-01039-5"
    params: ClassVar[tuple[ParamSpec, ...]] = (
        _STEIN_PARAMS[0],
        ParamSpec("tmax", "day", 9.29, 0.05, 365.0, "log", "time of the peak"),
        ParamSpec(
            "foldx",
            "1",
            _lisocel_foldx(3.27, 9.29, 0.755),
            1.0 + 1e-6,
            1e8,
            "log",
            "fold expansion C0 -> Cmax",
        ),
        ParamSpec("alpha", "1/day", math.log(2) / 5.00, 1e-4, 20.0, "log", "fast decline rate"),
        _STEIN_PARAMS[4],
        ParamSpec("beta", "1/day", math.log(2) / 352.0, 1e-5, 20.0, "log", "slow decline rate"),
        ParamSpec("tlag", "day", 3.27, 0.0, 365.0, "linear", "lag before expansion starts"),
    )
