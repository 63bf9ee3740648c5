"""Rodas4 solves the escaping-tumour patients at tight tolerances (issue #19).

Where the tumour escapes to ~1e11 cells and the CAR-T cells collapse to the absolute
tolerance, the matrix ``I/(hγ) − J`` mixes rows of very different scale; partial pivoting on
the unscaled matrix then lost the small states to round-off, every step was rejected and the
solve ran out of steps (CARTmath HDLM-2: 1.2 million evaluations at rtol 1e-9 instead of
~35,000; 634 of 10,000 virtual patients failed at rtol 1e-9 in ``bench_work_precision.py``,
which LSODA solves). Rodas4 now factors the system equilibrated by the error weights. The
patients below are two of those failures (drawn by the benchmark's population); the reference
is SciPy's LSODA with a Python right-hand side at rtol 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from cellkin import models

#: CARTmath HDLM-2 patient 6 of ``bench_work_precision.population`` (300 patients): the tumour
#: escapes to 4e11 cells, the CAR-T cells fall to ~1e-12.
HDLM2 = dict(
    zip(
        ("phi", "rho", "mu_t", "epsilon", "mu_m", "theta", "alpha", "r", "gamma", "dose",
         "tumour0", "t_tumour", "b"),
        (0.21979399112823278, 0.05, 0.3, 3.0, 0.005762359147381378, 3.818571201312496e-06,
         3.388424600439854e-08, 0.07977198254198416, 2.8677955165381697e-06, 626640.4145095173,
         2014508.5181059565, 42.0, 1.404029e-12),
        strict=True,
    )
)  # fmt: skip

#: A León-Triana 2021 patient whose tumour escapes (exhausted 100,000 steps at rtol 1e-10).
LEON_TRIANA = {
    "rho_c": 0.715552898592523, "g_t": 7316850838.555591, "alpha_1": 0.04970014370928306,
    "g_c": 1002276780.375874, "tau_c": 8.006269322289818, "rho_t": 0.04051315464683324,
    "alpha_2": 1.3981267787717137e-10, "dose": 487543259.1999648,
    "tumour0": 6001032650.788769, "v_body": 5e8,
}  # fmt: skip


def _hdlm2_reference(times, q):
    net = q["phi"] - q["rho"] - q["mu_t"]

    def rhs(t, y):
        ct, cm, tumour = y
        return [
            net * ct + q["theta"] * tumour * cm - q["alpha"] * tumour * ct,
            q["epsilon"] * q["rho"] * ct - q["theta"] * tumour * cm - q["mu_m"] * cm,
            q["r"] * tumour * (1 - q["b"] * tumour) - q["gamma"] * tumour * ct,
        ]

    growth = np.exp(q["r"] * q["t_tumour"])
    tumour0 = q["tumour0"] * growth / (1 + q["b"] * q["tumour0"] * (growth - 1))
    y0 = [q["dose"], 0.0, tumour0]
    solution = solve_ivp(rhs, (0, times[-1]), y0, "LSODA", times, rtol=1e-12, atol=1e-18)
    assert solution.success
    return solution.y[0] + solution.y[1]


def _leon_triana_reference(times, q):
    def rhs(t, y):
        c, tumour = y
        return [
            q["rho_c"] * c * tumour / (q["g_t"] + tumour)
            - q["alpha_1"] * c * tumour / (q["g_c"] + c)
            - c / q["tau_c"],
            q["rho_t"] * tumour - q["alpha_2"] * c * tumour,
        ]

    y0 = [q["dose"], q["tumour0"]]
    solution = solve_ivp(rhs, (0, times[-1]), y0, "LSODA", times, rtol=1e-12, atol=1e-14)
    assert solution.success
    return solution.y[0] / q["v_body"]


def _max_error(ours, reference):
    floor = 1e-6 * np.abs(reference).max()
    return float(np.max(np.abs(ours - reference) / (np.abs(reference) + floor)))


@pytest.mark.parametrize("method", ["rodas4", "auto"])
def test_escaping_tumour_cartmath_patient_at_rtol_1e9(method):
    times = np.linspace(0.0, 158.0, 60)
    model = models.get("cartmath_hdlm2").with_options(rtol=1e-9, atol=1e-12, method=method)
    ours = model.simulate(times, HDLM2)  # raised ModelError (max_steps) before
    assert _max_error(ours, _hdlm2_reference(times, HDLM2)) < 1e-6


def test_escaping_tumour_leon_triana_patient_at_rtol_1e10():
    times = np.linspace(0.0, 365.0, 60)
    model = models.get("leon_triana2021").with_options(rtol=1e-10, atol=1e-10)
    ours = model.simulate(times, LEON_TRIANA)
    assert _max_error(ours, _leon_triana_reference(times, LEON_TRIANA)) < 1e-6
