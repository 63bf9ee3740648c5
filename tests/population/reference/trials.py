r"""Simulated trials for the validation of ``cellkin.fit_population``, written without cellkin.

The reference for a recovery study is the truth the data were drawn from, so the simulator
must not share code with the estimator: the Stein 2019 closed form, the log-normal and
logit-normal individual parameters, the log-additive residual error and the censoring below
the LLOQ are written here with NumPy alone, from the paper's equations (Stein AM et al.,
CPT Pharmacometrics Syst Pharmacol 2019;8:285, doi:10.1002/psp4.12388):

.. math::

    C(t) = \frac{C_{max}}{F}\, e^{\rho t} \; (t < T_{max}), \qquad
    C(t) = C_{max}\left[(1 - f_B) e^{-\alpha (t - T_{max})}
           + f_B e^{-\beta (t - T_{max})}\right] \; (t \ge T_{max}), \qquad
    \rho = \ln F / T_{max},

:math:`y = C(t)\,e^{\sigma\varepsilon}`, reported BLQ (``value`` NaN, ``blq`` True) when
``y < LLOQ``. The two designs of the recovery study are declared in :data:`DESIGNS`, each with
the parameters its schedule cannot inform (said before any fit, reported, not hidden).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

NAMES = ("cmax", "tmax", "foldx", "alpha", "fb", "beta")
LOGIT = frozenset({"fb"})  # fractions: logit-normal; every other parameter log-normal

#: The example study's qPCR visits after infusion (``data/make_example_study.py``), days.
EXAMPLE_SCHEDULE = (1, 4, 7, 10, 14, 21, 28, 42, 56, 84, 112, 180, 270, 365)
#: A clinic's schedule: days 7, 14, 30 and 100 only (the Fandrei 2024 BCMA cohort's visits).
SPARSE_SCHEDULE = (7, 14, 30, 100)


def stein_levels(t, cmax, tmax, foldx, alpha, fb, beta) -> np.ndarray:
    """Stein 2019 level at times ``t`` (days) for one subject or arrays broadcast together."""
    t = np.asarray(t, dtype=float)
    rho = np.log(foldx) / tmax
    elapsed = np.maximum(t - tmax, 0.0)
    rising = cmax / foldx * np.exp(rho * np.minimum(t, tmax))
    falling = cmax * ((1 - fb) * np.exp(-alpha * elapsed) + fb * np.exp(-beta * elapsed))
    return np.where(t < tmax, rising, falling)


def to_estimation_scale(name: str, value):
    """ln for positive parameters, logit for fractions."""
    value = np.asarray(value, dtype=float)
    return np.log(value / (1 - value)) if name in LOGIT else np.log(value)


def from_estimation_scale(name: str, value):
    """Inverse of :func:`to_estimation_scale`."""
    value = np.asarray(value, dtype=float)
    return 1 / (1 + np.exp(-value)) if name in LOGIT else np.exp(value)


@dataclass(frozen=True)
class Design:
    """One simulated study design: truth, schedule, assay, and what the fit estimates."""

    name: str
    schedule: tuple[float, ...]
    n_subjects: int
    typical: dict[str, float]
    omega: dict[str, float]  # SD of η on the estimation scale; absent: no variability
    sigma: float
    lloq: float
    not_informed: dict[str, str] = field(default_factory=dict)  # parameter: why

    @property
    def random(self) -> list[str]:
        """Parameters with a random effect (in the truth and in the fit)."""
        return [n for n in NAMES if self.omega.get(n, 0.0) > 0]


#: True typical values of both designs (of the order of Stein 2019's, with a faster decline).
TYPICAL = {"cmax": 20000.0, "tmax": 10.0, "foldx": 1000.0, "alpha": 0.2, "fb": 0.02, "beta": 0.01}

EXAMPLE = Design(
    name="example",
    schedule=EXAMPLE_SCHEDULE,
    n_subjects=40,
    typical=TYPICAL,
    omega={"cmax": 0.6, "tmax": 0.3, "foldx": 0.5, "alpha": 0.4, "fb": 0.5, "beta": 0.4},
    sigma=0.3,
    lloq=130.0,
)

SPARSE = Design(
    name="sparse",
    schedule=SPARSE_SCHEDULE,
    n_subjects=60,
    typical=TYPICAL,
    omega={"cmax": 0.6, "tmax": 0.3, "alpha": 0.4, "fb": 0.5},
    sigma=0.3,
    lloq=500.0,
    not_informed={
        "foldx": "one sample (day 7) before the peak: the expansion rate trades off with Tmax",
        "beta": "one sample (day 100) in the terminal phase, often BLQ: its slope is not seen",
    },
)

DESIGNS = {d.name: d for d in (EXAMPLE, SPARSE)}


def draw_parameters(design: Design, rng: np.random.Generator) -> pd.DataFrame:
    """Individual parameters: ``h(h⁻¹(typical) + η)``, ``η ~ N(0, ω²)`` independently."""
    n = design.n_subjects
    columns = {"subject": [f"S{i:03d}" for i in range(1, n + 1)]}
    for name in NAMES:
        eta = design.omega.get(name, 0.0) * rng.standard_normal(n)
        columns[name] = from_estimation_scale(
            name, to_estimation_scale(name, design.typical[name]) + eta
        )
    return pd.DataFrame(columns)


def sample(
    parameters: pd.DataFrame,
    schedule,
    *,
    sigma: float,
    lloq: float,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """A canonical kinetics table (qPCR, copies/µg) of every subject at ``schedule``."""
    times = np.asarray(schedule, dtype=float)
    levels = stein_levels(times[None, :], *(parameters[n].to_numpy()[:, None] for n in NAMES))
    observed = levels * np.exp(sigma * rng.standard_normal(levels.shape))
    blq = observed < lloq
    n, m = levels.shape
    return pd.DataFrame(
        {
            "subject": np.repeat(parameters["subject"].to_numpy(), m),
            "time": np.tile(times, n),
            "value": np.where(blq, np.nan, observed).ravel(),
            "assay": "qpcr",
            "unit": "copies/ug",
            "lloq": float(lloq),
            "blq": blq.ravel(),
        }
    )


def simulate(design: Design, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One replicate trial of ``design``: its kinetics table and the true parameters."""
    rng = np.random.default_rng([seed, len(design.name)])
    parameters = draw_parameters(design, rng)
    kinetics = sample(parameters, design.schedule, sigma=design.sigma, lloq=design.lloq, rng=rng)
    return kinetics, parameters


def true_auc(parameters: pd.Series, start: float, end: float) -> float:
    """AUC of the Stein curve over [start, end] (days), integrated piecewise in closed form."""
    cmax, tmax, foldx, alpha, fb, beta = (float(parameters[n]) for n in NAMES)
    rho = np.log(foldx) / tmax
    total = 0.0
    a, b = max(start, 0.0), min(end, tmax)
    if b > a:
        total += cmax / foldx * (np.exp(rho * b) - np.exp(rho * a)) / rho
    a, b = max(start, tmax) - tmax, max(end, tmax) - tmax
    if b > a:
        total += cmax * (1 - fb) * (np.exp(-alpha * a) - np.exp(-alpha * b)) / alpha
        total += cmax * fb * (np.exp(-beta * a) - np.exp(-beta * b)) / beta
    return float(total)
