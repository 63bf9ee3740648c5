"""Stein-type piecewise closed-form models of CAR-T expansion, contraction and persistence.

Two models share one set of compiled functions:

* :class:`Stein2019` — exponential expansion to ``Tmax``, then a bi-exponential decline
  (tisagenlecleucel, Stein et al. 2019, doi:10.1002/psp4.12388);
* :class:`Stein2019Lag` — the same with a lag phase before expansion (lisocabtagene
  maraleucel population model, Clin Pharmacokinet 2021, doi:10.1007/s40262-021-01039-5).

Every formula of the family exists once, here, compiled with numba:

* :func:`_stein_fill` — the level (the population kernels, :func:`stein_levels`);
* :func:`_stein_log_gradient` — ``∂ ln C/∂θ`` (the analytic gradient of a fit's likelihood);
* :func:`_stein_auc` — the exact AUC over any interval;
* :func:`_stein_time_to` — the time after Tmax at which the curve falls to a level;
* :func:`stein_metrics` — the closed-form metrics of one parameter vector.

The models declare them as their capabilities (:class:`~cellkin.models.base.Model`):
``level_kernel`` (with its gradient), ``metrics_kernel``, ``start_values`` and
``kink_time_parameter``; fitting and metric code ask for those, never for a Stein class.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import numba
import numpy as np

from cellkin.errors import ModelError
from cellkin.models._vexp import vexp
from cellkin.models.base import Model, ParamSpec

__all__ = ["Stein2019", "Stein2019Lag", "stein_levels", "stein_metrics"]

# Kernel status codes (0 = success).
STATUS_TLAG_NOT_BEFORE_TMAX = 1
_LN2 = math.log(2.0)


@numba.njit(inline="always")
def _unpack(p):  # pragma: no cover - compiled
    """``(cmax, tmax, foldx, alpha, fb, beta, tlag)`` of a parameter vector (``tlag`` 0 when
    the model has none)."""
    tlag = p[6] if p.shape[0] > 6 else 0.0
    return p[0], p[1], p[2], p[3], p[4], p[5], tlag


@numba.njit(cache=True)
def expansion_rate_of(foldx, tmax, tlag):  # pragma: no cover - compiled
    """Expansion rate ρ = ln(foldx) / (Tmax − tlag), in 1/day."""
    return math.log(foldx) / (tmax - tlag)


@numba.njit(cache=True, fastmath={"contract"})
def _stein_fill(t, p, out):  # pragma: no cover - compiled
    """Fill one subject's levels at times ``t`` (``p``: cmax..beta[, tlag]); returns its status.

    ``C(t) = 0`` before infusion, ``C0 = Cmax/foldx`` until ``tlag``,
    ``C0·exp(ρ(t − tlag))`` with ``ρ = ln(foldx)/(Tmax − tlag)`` until Tmax, then
    ``Cmax·((1 − FB)·e^{−α(t−Tmax)} + FB·e^{−β(t−Tmax)})``. The per-subject constants are
    computed once; the loop over times has no branches and no calls (both exponentials are
    always evaluated, on clamped arguments, and the phase is a select), so that LLVM
    vectorises it with :func:`~cellkin.models._vexp.vexp` — about 2× the speed of a
    branching loop around ``math.exp``.
    """
    cmax, tmax, foldx, alpha, fb, beta, tlag = _unpack(p)
    if tlag >= tmax:
        return STATUS_TLAG_NOT_BEFORE_TMAX
    c0 = cmax / foldx
    rho = expansion_rate_of(foldx, tmax, tlag)
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


@numba.njit(cache=True, error_model="numpy")
def _stein_log_gradient(t, p, dlog):  # pragma: no cover - compiled
    """``dlog[j, k] = ∂ ln C(t_j)/∂θ_k`` in kernel order (natural scale).

    Piecewise closed forms: in the lag ``∂/∂Cmax = 1/Cmax``, ``∂/∂foldx = −1/foldx``; during
    expansion (``f = (t − tlag)/(Tmax − tlag)``) ``∂/∂foldx = (f − 1)/foldx``,
    ``∂/∂Tmax = −ρf``, ``∂/∂tlag = ρ(f − 1)``; in the decline, with
    ``D = (1 − FB)e^{−αe} + FB e^{−βe}`` and ``e = t − Tmax``, ``∂/∂Tmax = ((1 − FB)αe^{−αe} +
    FB βe^{−βe})/D``, ``∂/∂α = −(1 − FB)e·e^{−αe}/D``, ``∂/∂FB = (e^{−βe} − e^{−αe})/D``,
    ``∂/∂β = −FB e·e^{−βe}/D``. At ``t = Tmax`` the decline branch is used (one-sided
    derivative of the kink); before infusion, and where ``D`` underflows, the row is 0.
    """
    cmax, tmax, foldx, alpha, fb, beta, tlag = _unpack(p)
    rho = expansion_rate_of(foldx, tmax, tlag)
    span = tmax - tlag
    n_params = dlog.shape[1]
    for j in range(t.shape[0]):
        for k in range(n_params):
            dlog[j, k] = 0.0
        tj = t[j]
        if tj < 0.0:
            continue
        dlog[j, 0] = 1.0 / cmax
        if tj < tlag:
            dlog[j, 2] = -1.0 / foldx
        elif tj < tmax:
            fraction = (tj - tlag) / span
            dlog[j, 2] = (fraction - 1.0) / foldx
            dlog[j, 1] = -rho * fraction
            if n_params > 6:
                dlog[j, 6] = rho * (fraction - 1.0)
        else:
            elapsed = tj - tmax
            fast, slow = math.exp(-alpha * elapsed), math.exp(-beta * elapsed)
            decline = (1.0 - fb) * fast + fb * slow
            if decline > 0.0:
                dlog[j, 1] = ((1.0 - fb) * alpha * fast + fb * beta * slow) / decline
                dlog[j, 3] = -(1.0 - fb) * elapsed * fast / decline
                dlog[j, 4] = (slow - fast) / decline
                dlog[j, 5] = -fb * elapsed * slow / decline
            for k in range(n_params):
                if not math.isfinite(dlog[j, k]):
                    dlog[j, k] = 0.0


@numba.njit(cache=True, error_model="numpy")
def stein_levels(t, p, out, dlog):  # pragma: no cover - compiled
    """The family's ``levels`` capability: levels into ``out`` and, when ``dlog`` has one row
    per time, ``∂ ln C/∂θ`` into it; returns the kernel status."""
    status = _stein_fill(t, p, out)
    if status == 0 and dlog.shape[0] == t.shape[0] and dlog.shape[0] > 0:
        _stein_log_gradient(t, p, dlog)
    return status


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


@numba.njit(cache=True, error_model="numpy")
def _stein_auc(p, start, end):  # pragma: no cover - compiled
    """Exact AUC of the Stein curve over ``[start, end]`` (``end`` may be inf), unit·day.

    Each phase integrated in closed form: ``C0·Δt`` in the lag, ``ΔC/ρ`` during expansion and
    ``Cmax[(1−FB)(e^{−αa}−e^{−αb})/α + FB(e^{−βa}−e^{−βb})/β]`` during the decline.
    """
    cmax, tmax, foldx, alpha, fb, beta, tlag = _unpack(p)
    c0 = cmax / foldx
    rho = expansion_rate_of(foldx, tmax, tlag)
    total = 0.0
    a, b = max(start, 0.0), min(end, tlag)
    if b > a:
        total += c0 * (b - a)
    a, b = max(start, tlag, 0.0), min(end, tmax)
    if b > a:
        total += c0 * (math.exp(rho * (b - tlag)) - math.exp(rho * (a - tlag))) / rho
    a, b = max(start, tmax) - tmax, end - tmax
    if b > a:
        total += cmax * (1.0 - fb) * (math.exp(-alpha * a) - math.exp(-alpha * b)) / alpha
        total += cmax * fb * (math.exp(-beta * a) - math.exp(-beta * b)) / beta
    return total


@numba.njit(cache=True, error_model="numpy")
def _stein_time_to(p, level):  # pragma: no cover - compiled
    """First time after Tmax at which the Stein curve equals ``level``: Tmax when
    ``level >= Cmax``, ``inf`` when ``level <= 0`` (the curve never reaches 0), NaN for NaN.

    Newton's method on ``h(e) = ln C(Tmax + e) − ln level``: ``ln C`` of a sum of decaying
    exponentials is convex and decreasing, so from any point left of the root the iterates
    rise monotonically to it (quadratic convergence, no overshoot). The start is the later of
    the two single-phase roots, ``ln((1 − FB)·Cmax/level)/α`` and ``ln(FB·Cmax/level)/β``
    (and 0): each phase alone is below the curve, so both lie left of the root, and the later
    one is within ``ln 2/min(α, β)`` of it. Bisection on the bracket
    ``[0, ln(Cmax/level)/min(α, β)]`` takes over if Newton stalls.
    """
    cmax, tmax, _, alpha, fb, beta, _ = _unpack(p)
    if math.isnan(level):
        return math.nan
    if not cmax > level:
        return tmax
    if level <= 0.0:
        return math.inf
    slowest = min(alpha, beta)
    target = math.log(level / cmax)
    hi = -target / slowest
    elapsed = max(0.0, (math.log1p(-fb) - target) / alpha, (math.log(fb) - target) / beta)
    for _ in range(100):
        fast = (1.0 - fb) * math.exp(-(alpha - slowest) * elapsed)
        slow = fb * math.exp(-(beta - slowest) * elapsed)
        h = -slowest * elapsed + math.log(fast + slow) - target
        slope = -(alpha * fast + beta * slow) / (fast + slow)
        step = -h / slope
        elapsed += step
        if not abs(step) > 1e-14 * max(1.0, elapsed):
            return tmax + elapsed
    lo = 0.0
    for _ in range(200):  # Newton stalled (not expected): bisection
        mid = 0.5 * (lo + hi)
        level_mid = (1.0 - fb) * math.exp(-alpha * mid) + fb * math.exp(-beta * mid)
        if math.log(level_mid) > target:
            lo = mid
        else:
            hi = mid
    return tmax + 0.5 * (lo + hi)


@numba.njit(cache=True, error_model="numpy")
def stein_metrics(p, intervals, level, out):  # pragma: no cover - compiled
    """The family's ``metrics`` capability (layout ``cellkin.models.capabilities.METRIC_NAMES``):
    Cmax, Tmax, the AUC of each interval, AUC∞, doubling time ln 2/ρ, phase half-lives
    ln 2/α and ln 2/β, and the time after Tmax at which the curve falls to ``level``."""
    cmax, tmax, foldx, alpha, _, beta, tlag = _unpack(p)
    if tlag >= tmax:
        return STATUS_TLAG_NOT_BEFORE_TMAX
    n = intervals.shape[0]
    out[0], out[1] = cmax, tmax
    for q in range(n):
        out[2 + q] = _stein_auc(p, intervals[q, 0], intervals[q, 1])
    out[2 + n] = _stein_auc(p, 0.0, np.inf)
    out[3 + n] = _LN2 / expansion_rate_of(foldx, tmax, tlag)
    out[4 + n] = _LN2 / alpha
    out[5 + n] = _LN2 / beta
    out[6 + n] = _stein_time_to(p, level)
    return 0


def _terminal_slope(t: np.ndarray, y: np.ndarray) -> float:
    """Least-squares log-linear slope (1/day, positive when declining) of the last ≤ 3 points."""
    if t.size < 2:
        return math.nan
    x, z = t[-3:], np.log(y[-3:])
    dx = x - x.mean()
    return float(-(dx @ (z - z.mean())) / (dx @ dx))


_STEIN_PARAMS = (
    ParamSpec("cmax", "copies/ug", 24_000.0, 1e-3, 1e9, "log", "peak level at Tmax"),
    ParamSpec("tmax", "day", 9.3, 0.05, 365.0, "log", "time of the peak"),
    ParamSpec("foldx", "1", 3_900.0, 1.0 + 1e-6, 1e8, "log", "fold expansion C0 -> Cmax"),
    ParamSpec("alpha", "1/day", 0.16, 1e-4, 20.0, "log", "rate of the fast (contraction) decline"),
    ParamSpec("fb", "1", 0.0079, 1e-7, 1.0 - 1e-7, "logit", "fraction of Cmax in the slow phase"),
    ParamSpec("beta", "1/day", 0.0032, 1e-5, 20.0, "log", "rate of the slow (persistence) decline"),
)


class _SteinFamily(Model):
    """Shared closed-form machinery of the Stein-type models (declares their capabilities)."""

    abstract: ClassVar[bool] = True
    observed_unit: ClassVar[str] = "copies/ug"
    _batch_kernel = staticmethod(_stein_batch)
    _serial_kernel = staticmethod(_stein_serial)
    level_kernel = staticmethod(stein_levels)
    level_gradient: ClassVar[bool] = True
    metrics_kernel = staticmethod(stein_metrics)
    kink_time_parameter: ClassVar[str | None] = "tmax"

    def _vector(self, params: Mapping[str, float] | None) -> np.ndarray:
        vector = self.param_vector(params)
        tlag = vector[6] if vector.size > 6 else 0.0
        if tlag >= vector[1]:
            raise ModelError(
                f"model `{self.name}`: tlag ({tlag}) must be before tmax ({vector[1]})"
            )
        return vector

    def canonical(self, vector: np.ndarray) -> np.ndarray:
        """Order the phases so that α ≥ β: the curve is unchanged under
        (α, β, FB) → (β, α, 1 − FB), so a fit can land on either labelling."""
        out = np.array(vector, dtype=float)
        alpha, fb, beta = out[3], out[4], out[5]
        if alpha < beta:
            out[3], out[4], out[5] = beta, 1.0 - fb, alpha
        return out

    def start_values(self, t: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """Starting values read off one subject's profile, as an NCA would.

        From the quantified post-infusion samples ``(t, y)`` (time-sorted): Cmax and Tmax at
        the highest sample, the fold expansion from the rise before it, α from the first
        decline after it, β and FB from the log-linear slope of the last (up to) three
        samples. Fewer than two samples: the published defaults.
        """
        start = dict(self.defaults)
        if t.size < 2:
            return start
        peak = int(np.argmax(y))
        cmax, tmax = float(y[peak]), float(max(t[peak], 0.5))
        start["cmax"], start["tmax"] = cmax, tmax
        tlag = 0.0
        if "tlag" in start:
            tlag = start["tlag"] = min(start["tlag"], 0.5 * tmax)
        if peak > 0 and y[0] < cmax and t[0] < tmax:
            rho = math.log(cmax / y[0]) / (tmax - t[0])
            start["foldx"] = math.exp(rho * (tmax - tlag))
        after_t, after_y = t[peak + 1 :], y[peak + 1 :]
        if after_t.size:
            alpha = math.log(cmax / after_y[0]) / (after_t[0] - tmax)
            start["alpha"] = alpha if alpha > 0 else start["alpha"]
        beta = _terminal_slope(after_t, after_y)
        if math.isfinite(beta) and beta > 0:
            start["beta"] = min(beta, 0.5 * start["alpha"])
            intercept = math.log(after_y[-1]) + start["beta"] * (after_t[-1] - tmax)
            start["fb"] = math.exp(intercept) / cmax
        return self.clip_to_bounds(start)

    def expansion_rate(self, params: Mapping[str, float] | None = None) -> float:
        """Expansion rate ρ = ln(foldx) / (Tmax − tlag), in 1/day."""
        vector = self._vector(params)
        tlag = vector[6] if vector.size > 6 else 0.0
        return float(expansion_rate_of(vector[2], vector[1], tlag))

    def doubling_time(self, params: Mapping[str, float] | None = None) -> float:
        """Doubling time during expansion, ln 2 / ρ, in days."""
        return _LN2 / self.expansion_rate(params)

    def half_lives(self, params: Mapping[str, float] | None = None) -> dict[str, float]:
        """Half-lives of the contraction (ln 2/α) and persistence (ln 2/β) phases, in days."""
        vector = self._vector(params)
        return {"fast": _LN2 / vector[3], "terminal": _LN2 / vector[5]}

    def auc(self, start: float, end: float, params: Mapping[str, float] | None = None) -> float:
        """Exact area under the curve from ``start`` to ``end`` (days), in unit·day.

        ``end`` may be ``math.inf``; see :func:`_stein_auc` for the closed forms.
        """
        if not start <= end:
            raise ModelError(f"AUC interval must have start <= end, got ({start}, {end})")
        return float(_stein_auc(self._vector(params), float(start), float(end)))

    def time_to_level(self, level: float, params: Mapping[str, float] | None = None) -> float:
        """First time after Tmax at which the curve has fallen to ``level``, in days.

        Returns Tmax when ``level >= Cmax``; ``math.inf`` when ``level <= 0`` (the curve never
        reaches zero). The decline is monotone; the root is found by a monotone Newton
        iteration to ~1e-14 relative (:func:`_stein_time_to`).
        """
        return float(_stein_time_to(self._vector(params), float(level)))


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
