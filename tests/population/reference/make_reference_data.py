r"""Write the two data sets on which cellkin's population fit is compared with other estimators.

Usage (from the repository root; seconds)::

    python tests/population/reference/make_reference_data.py

Written without cellkin (NumPy and SciPy only), seeded, beside this script:

* ``rich_stein.csv`` — a rich Stein 2019 trial for the numpyro (NUTS) reference: 30 subjects,
  the example study's schedule to day 180 (12 samples each), no sample below the LLOQ; truth
  and variability of the example design of :mod:`trials`.
* ``smooth_kimmel.csv`` — a smooth-model trial for the R ``nlme`` reference: the T-cell
  competition model of Kimmel, Locke & Altrock 2021 (Proc R Soc B 288:20210229,
  doi:10.1098/rspb.2021.0229; ZUMA-1 parameters, cells/µL) with log-normal variability
  (ω = 0.3) on the CAR-T capacity ``k_c``, the basal CAR-T growth rate ``rho_c`` and the
  immune-reconstitution effect ``b``, every other parameter at its published value; 30
  subjects, days 1–84 (10 samples), log-additive error σ = 0.2, no BLQ. The ODE is integrated
  by SciPy ``solve_ivp`` (LSODA, rtol 1e-10), from the paper's equations:

  .. math::

      N' = -r_N N \ln\frac{N + C}{K_N}, \qquad
      C' = -r_C(T) C \ln\frac{N + C}{K_C}, \qquad
      r_C(T) = \rho_C + \frac{b (T - K_N)^2}{a T^2 + (T - K_N)^2},\; T = N + C,

  with :math:`N(0) = 6` and :math:`C(0) = \text{dose}/V = 1.8\times10^8 / 5\times10^8`
  cells/µL (the tumour does not feed back on the T cells and is left out).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.integrate import solve_ivp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import trials  # noqa: E402

RICH_SCHEDULE = (1, 4, 7, 10, 14, 21, 28, 42, 56, 84, 112, 180)
KIMMEL_SCHEDULE = (1, 4, 7, 10, 14, 21, 28, 42, 56, 84)
#: Kimmel 2021 ZUMA-1 values (BioModels BIOMD0000001041, per µL of blood).
KIMMEL = {"k_n": 500.0, "k_c": 139.0, "r_n": 0.17, "rho_c": 0.0251, "a": 0.423, "b": 0.525}
KIMMEL_START = {"n0": 6.0, "c0": 1.8e8 / 5e8}
KIMMEL_RANDOM = {"k_c": 0.3, "rho_c": 0.3, "b": 0.3}
KIMMEL_SIGMA = 0.2


def rich_stein(seed: int = 20240) -> pd.DataFrame:
    """The numpyro reference data set (see the module docstring)."""
    design = trials.Design(
        name="rich",
        schedule=RICH_SCHEDULE,
        n_subjects=30,
        typical=trials.EXAMPLE.typical,
        omega=trials.EXAMPLE.omega,
        sigma=trials.EXAMPLE.sigma,
        lloq=0.01,
    )
    rng = np.random.default_rng(seed)
    parameters = trials.draw_parameters(design, rng)
    table = trials.sample(parameters, RICH_SCHEDULE, sigma=design.sigma, lloq=0.01, rng=rng)
    assert not table["blq"].any()
    return table


def kimmel_levels(times, k_n, k_c, r_n, rho_c, a, b, n0, c0) -> np.ndarray:
    """CAR-T cells/µL of the Kimmel 2021 model at ``times`` (days)."""

    def rhs(t, y):
        n, c = y
        total = n + c
        shortfall = (total - k_n) ** 2
        r_c = rho_c + b * shortfall / (a * total**2 + shortfall)
        return [-r_n * n * np.log(total / k_n), -r_c * c * np.log(total / k_c)]

    solution = solve_ivp(
        rhs, (0.0, max(times)), [n0, c0], method="LSODA", t_eval=times, rtol=1e-10, atol=1e-12
    )
    assert solution.success, solution.message
    return solution.y[1]


def smooth_kimmel(seed: int = 20241, n: int = 30) -> pd.DataFrame:
    """The nlme reference data set (see the module docstring)."""
    rng = np.random.default_rng(seed)
    times = np.asarray(KIMMEL_SCHEDULE, dtype=float)
    pieces = []
    for i in range(1, n + 1):
        values = dict(KIMMEL)
        for name, omega in KIMMEL_RANDOM.items():
            values[name] = KIMMEL[name] * np.exp(omega * rng.standard_normal())
        levels = kimmel_levels(times, **values, **KIMMEL_START)
        observed = levels * np.exp(KIMMEL_SIGMA * rng.standard_normal(times.size))
        pieces.append(
            pd.DataFrame(
                {
                    "subject": f"K{i:03d}",
                    "time": times,
                    "value": observed,
                    "assay": "flow",
                    "unit": "cells/uL",
                    "lloq": 1e-6,
                    "blq": False,
                }
            )
        )
    return pd.concat(pieces, ignore_index=True)


def main() -> int:
    rich_stein().to_csv(HERE / "rich_stein.csv", index=False, float_format="%.10g")
    smooth_kimmel().to_csv(HERE / "smooth_kimmel.csv", index=False, float_format="%.10g")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
