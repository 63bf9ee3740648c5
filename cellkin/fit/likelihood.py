r"""The one likelihood of cellkin's estimators: residual error models and M3 for below-LLOQ
samples.

Four error models, one per assay, with :math:`\varepsilon \sim N(0, 1)`:

* ``log-additive`` (exponential; Stein 2019): :math:`\ln y = \ln f + \sigma\varepsilon`;
* ``combined``: :math:`y = f + \sqrt{a^2 + (b f)^2}\,\varepsilon`;
* ``additive``: the combined model with :math:`b = 0`;
* ``proportional``: the combined model with :math:`a = 0`.

Below-LLOQ samples enter through Beal's M3 method,
:math:`P(y < \mathrm{LLOQ}) = \Phi((g(\mathrm{LLOQ}) - g(f))/s)` (``g = ln`` and ``s = σ`` for
the log-additive model), not by dropping or imputing them; ``blq="drop"`` (Beal's M1) and
LLOQ/2 imputation exist for comparison only and are applied to the observations before the
likelihood sees them.

:func:`subject_minus2ll` is the whole likelihood of one subject — every error model, censored
and quantified samples, joint assays (assay level = scale × model level) — compiled once with
numba. It works on the model's levels at the sample times, however they were computed: the
compiled fit path (:mod:`cellkin.fit._objective`) calls it after the model's closed-form level
function, the Python objective of a fit after the model's simulation kernel (ODE models), and
the population estimator (:mod:`cellkin.population`) for every subject of every iteration, so
all of them use the same function.

Error parameters sit in ``theta`` per assay, from ``error_start[a]``: σ (log-additive), a and
b (combined), a (additive) or b (proportional); ``error_kind[a]`` is the model's code
(:data:`ERROR_CODES`).

Terms, with all constants (so that AIC compares error models), with ``f_i`` the predicted
level of sample ``i``:

* log-additive: ``z = (ln y − ln f)/σ``; quantified ``z² + 2 ln σ + ln 2π + 2 ln y``;
  censored ``−2 ln Φ(z)`` with ``y`` replaced by the LLOQ;
* combined (additive, proportional): ``s = √(a² + (b f)²)``, ``z = (y − f)/s``; quantified
  ``z² + 2 ln s + ln 2π``; censored ``−2 ln Φ(z)``.

The gradient uses ``w_i = ∂(−2 ln L)/∂ ln f_i`` (for the log-additive model ``−2z/σ``, and
``2λ(z)/σ`` on censored samples with ``λ = φ/Φ`` the inverse Mills ratio), summed against
``∂ ln f_i/∂θ`` of the model. ``ln Φ`` is evaluated as ``ln(erfc(−z/√2)/2)`` for ``z ≤ 0``,
``log1p(−erfc(z/√2)/2)`` for ``z > 0`` and, below ``z = −37`` where ``erfc`` underflows, by
its asymptotic series.

References
----------
Beal SL. Ways to fit a PK model with some data below the quantification limit.
J Pharmacokinet Pharmacodyn 2001;28(5):481-504. doi:10.1023/A:1012299115260
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numba
import numpy as np

from cellkin.errors import OptionError

__all__ = [
    "BLQ_METHODS",
    "ERROR_CODES",
    "ERROR_MODELS",
    "ERROR_PARAMETERS",
    "FAILED",
    "Observations",
    "check_blq",
    "check_error",
    "entering",
    "error_layout",
    "information_residuals",
    "log_ndtr",
    "subject_minus2ll",
]

ERROR_MODELS = ("log-additive", "combined", "additive", "proportional")
BLQ_METHODS = ("m3", "drop", "lloq/2")
ERROR_CODES = {"log-additive": 0, "combined": 1, "additive": 2, "proportional": 3}
#: The error parameters of each model, in ``theta`` order: σ (SD of ln y), or the additive
#: SD ``a`` (level unit) and the proportional SD ``b`` (fraction of the level).
ERROR_PARAMETERS = {
    "log-additive": ("sigma",),
    "combined": ("sigma_add", "sigma_prop"),
    "additive": ("sigma_add",),
    "proportional": ("sigma_prop",),
}
SD_FLOOR = 1e-3  # lower bound of every residual SD parameter (log scale or linear)
FAILED = 1e300  # −2 ln L reported where the model fails (non-finite terms, refused parameters)
_LOG_2PI = math.log(2.0 * math.pi)
_TINY = 1e-300


def check_error(error: str | Mapping[str, str], assays: Sequence[str] = ()) -> dict[str, str]:
    """The error model of each assay, from one name for all or a mapping by assay;
    :class:`~cellkin.errors.OptionError` for an unknown model or assay."""
    chosen = dict(error) if isinstance(error, Mapping) else dict.fromkeys(assays, error)
    unknown = sorted(set(chosen) - set(assays)) if isinstance(error, Mapping) and assays else []
    if unknown:
        raise OptionError(f"`error` names assays {unknown} that are not fitted ({list(assays)})")
    for name in chosen.values():
        if name not in ERROR_CODES:
            raise OptionError(f"`error` must be one of {ERROR_MODELS}, got {name!r}")
    missing = [a for a in assays if a not in chosen]
    if missing:
        raise OptionError(f"`error` gives no error model for assay(s) {missing}")
    if not assays and not isinstance(error, Mapping) and error not in ERROR_CODES:
        raise OptionError(f"`error` must be one of {ERROR_MODELS}, got {error!r}")
    return chosen


def error_layout(errors: Mapping[str, str], assays: Sequence[str], first: int):
    """``(error_kind, error_start)`` arrays per assay for ``subject_minus2ll``, the error
    parameters of assay ``a`` starting at ``first`` + those of the assays before it."""
    kinds = np.array([ERROR_CODES[errors[a]] for a in assays], dtype=np.int64)
    sizes = [len(ERROR_PARAMETERS[errors[a]]) for a in assays]
    starts = first + np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    return kinds, starts


def check_blq(blq: str) -> str:
    """``blq`` itself when it is a fitting BLQ method; :class:`~cellkin.errors.OptionError`
    (with the way out for Beal's "m1", now called "drop") otherwise."""
    if blq not in BLQ_METHODS:
        hint = " ('drop' is Beal's M1)" if str(blq).lower() == "m1" else ""
        raise OptionError(f"`blq` must be one of {BLQ_METHODS}{hint}, got {blq!r}")
    return blq


@dataclass(frozen=True)
class Observations:
    """The samples of one fit, as arrays.

    ``value`` is NaN on censored samples; ``assay`` indexes ``assays``.
    """

    time: np.ndarray
    value: np.ndarray
    censored: np.ndarray
    lloq: np.ndarray
    assay: np.ndarray
    assays: tuple[str, ...]

    @property
    def n(self) -> int:
        """Number of samples entering the likelihood."""
        return int(self.time.size)

    @property
    def n_censored(self) -> int:
        """Number of censored (M3) samples."""
        return int(self.censored.sum())

    @property
    def target(self) -> np.ndarray:
        """The value of each quantified sample and the LLOQ of each censored one."""
        return np.ascontiguousarray(np.where(self.censored, self.lloq, self.value), dtype=float)


def entering(
    time: np.ndarray, value: np.ndarray, blq_flag: np.ndarray, lloq: np.ndarray, blq: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which samples enter a likelihood, and as what, under the BLQ method ``blq``.

    Pre-infusion samples (``time < 0``) never enter; BLQ samples enter censored (``"m3"``),
    are dropped (``"drop"``, Beal's M1) or enter as quantified at LLOQ/2 (``"lloq/2"``).
    Returns ``(used, value, censored)``: the mask of entering samples, and the value (NaN where
    censored) and censoring flag of each entering sample.
    """
    used = np.asarray(time) >= 0
    if blq == "drop":
        used &= ~blq_flag
    censored = np.asarray(blq_flag)[used].copy()
    out = np.asarray(value, dtype=float)[used].copy()
    if blq == "lloq/2":
        out[censored] = 0.5 * np.asarray(lloq, dtype=float)[used][censored]
        censored[:] = False
    return used, out, censored


@numba.njit(cache=True, error_model="numpy")
def log_ndtr(z: float) -> float:  # pragma: no cover - compiled
    """ln Φ(z), accurate in both tails."""
    if z > 0.0:
        return math.log1p(-0.5 * math.erfc(z / math.sqrt(2.0)))
    if z > -37.0:
        return math.log(0.5 * math.erfc(-z / math.sqrt(2.0)))
    # Asymptotic series: Φ(z) = φ(z)/(−z) · (1 − 1/z² + 3/z⁴ − 15/z⁶ + 105/z⁸ − …)
    q = 1.0 / (z * z)
    series = 1.0 + q * (-1.0 + q * (3.0 + q * (-15.0 + q * (105.0 - 945.0 * q))))
    return -0.5 * z * z - math.log(-z) - 0.5 * math.log(2.0 * math.pi) + math.log(series)


@numba.njit(cache=True, error_model="numpy")
def _log_additive(target, censored, f, sigma):  # pragma: no cover - compiled
    """(term, z, ∂/∂ln f, ∂/∂σ) of one sample under the log-additive model."""
    z = (math.log(target) - math.log(f)) / sigma
    if censored:
        log_cdf = log_ndtr(z)
        mills = math.exp(-0.5 * z * z - 0.5 * _LOG_2PI - log_cdf)
        return -2.0 * log_cdf, z, 2.0 * mills / sigma, 2.0 * mills * z / sigma
    term = z * z + 2.0 * math.log(sigma) + _LOG_2PI + 2.0 * math.log(target)
    return term, z, -2.0 * z / sigma, (2.0 - 2.0 * z * z) / sigma


@numba.njit(cache=True, error_model="numpy")
def _combined(target, censored, f, additive, proportional):  # pragma: no cover - compiled
    """(term, z, ∂/∂ln f, ∂/∂a, ∂/∂b) of one sample under the combined model."""
    s = math.sqrt(additive * additive + (proportional * f) ** 2)
    z = (target - f) / s
    ds_df = proportional * proportional * f / s
    ds_da = additive / s
    ds_db = proportional * f * f / s
    dz_df = -(1.0 + z * ds_df) / s
    dz_da = -z * ds_da / s
    dz_db = -z * ds_db / s
    if censored:
        log_cdf = log_ndtr(z)
        mills = math.exp(-0.5 * z * z - 0.5 * _LOG_2PI - log_cdf)
        derivative = -2.0 * mills
        return -2.0 * log_cdf, z, derivative * dz_df * f, derivative * dz_da, derivative * dz_db
    term = z * z + 2.0 * math.log(s) + _LOG_2PI
    return (term, z, (2.0 * z * dz_df + 2.0 * ds_df / s) * f, 2.0 * z * dz_da + 2.0 * ds_da / s,
            2.0 * z * dz_db + 2.0 * ds_db / s)  # fmt: skip


@numba.njit(cache=True, error_model="numpy")
def subject_minus2ll(  # pragma: no cover - compiled
    theta, level, dlog, target, censored, assay, n_kinetic, error_kind, error_start, gtheta, z_out
):
    """−2 ln L of one subject from its model levels; the gradient and residuals on request.

    Parameters (arrays contiguous)
    ----------
    theta : float64[:]
        The full natural-scale vector: kinetic parameters, ``scale_<assay>`` of each assay
        after the first, then error parameters per assay (see the module docstring).
    level : float64[:]
        The model's level (first assay's unit) at each sample time.
    dlog : float64[:, :]
        ``∂ ln C/∂θ_kinetic`` at each sample time, used when ``gtheta`` is requested.
    target, censored, assay : arrays
        Value (quantified) or LLOQ (censored), the M3 flag and the assay index per sample.
    n_kinetic : int
        Kinetic parameters (the scales follow them).
    error_kind, error_start : int64[:]
        Per assay: error model code (:data:`ERROR_CODES`) and the index of its first error
        parameter in ``theta`` (:func:`error_layout`).
    gtheta : float64[:]
        Filled with d(−2 ln L)/dθ (natural scale) when it has ``theta``'s size.
    z_out : float64[:]
        Filled with each sample's standardised residual (or M3 argument) when it has one
        entry per sample.

    Returns
    -------
    float
        −2 ln L, or :data:`FAILED` where a term is not finite.
    """
    p = theta.shape[0]
    want_grad = gtheta.shape[0] == p
    want_z = z_out.shape[0] == target.shape[0]
    if want_grad:
        for j in range(p):
            gtheta[j] = 0.0
    total = 0.0
    for i in range(target.shape[0]):
        a = assay[i]
        scale = 1.0 if a == 0 else theta[n_kinetic + a - 1]
        f = max(scale * level[i], _TINY)
        kind, first = error_kind[a], error_start[a]
        d1 = 0.0
        if kind == 0:
            term, z, weight, d0 = _log_additive(target[i], censored[i], f, theta[first])
        elif kind == 1:
            term, z, weight, d0, d1 = _combined(target[i], censored[i], f, theta[first],
                                                theta[first + 1])  # fmt: skip
        elif kind == 2:
            term, z, weight, d0, _ = _combined(target[i], censored[i], f, theta[first], 0.0)
        else:
            term, z, weight, _, d0 = _combined(target[i], censored[i], f, 0.0, theta[first])
        total += term
        if want_z:
            z_out[i] = z
        if not math.isfinite(z):
            return FAILED
        if want_grad:
            for j in range(n_kinetic):
                gtheta[j] += weight * dlog[i, j]
            if a > 0:
                gtheta[n_kinetic + a - 1] += weight / scale
            gtheta[first] += d0
            if kind == 1:
                gtheta[first + 1] += d1
    return total if math.isfinite(total) else FAILED


@numba.njit(cache=True, error_model="numpy")
def information_residuals(z, censored, out):  # pragma: no cover - compiled
    """Residuals whose Jacobian gives the Fisher information, at fixed error parameters.

    Quantified samples contribute their standardised residual ``z``; censored ones
    ``√(−2 ln Φ(z))``, so that ``JᵀJ`` is the Gauss–Newton approximation of the information
    of the kinetic parameters.
    """
    for i in range(z.shape[0]):
        out[i] = math.sqrt(max(-2.0 * log_ndtr(z[i]), 0.0)) if censored[i] else z[i]
