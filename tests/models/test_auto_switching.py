"""``method="auto"``: stiffness detection and the switch to Rodas4 within one trajectory.

The fixture ``tests/data/leon_triana_escaping.csv`` holds León-Triana 2021 patients whose
tumour escapes and whose CAR-T equation then turns stiff (its header says how they were
found). Tsitouras 5(4) alone exhausts its step budget on them; ``auto`` must solve them, and
agree with SciPy's LSODA (which switches to BDF) at rtol 1e-10 on a right-hand side written
here from the published equations.
"""

from __future__ import annotations

from pathlib import Path

import numba
import numpy as np
import pandas as pd
import pytest
from scipy.integrate import solve_ivp

from cellkin import models
from cellkin.models.ode import SolverOptions, solve

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "leon_triana_escaping.csv"
TIMES = np.linspace(0.0, 365.0, 74)


def _patients() -> pd.DataFrame:
    return pd.read_csv(FIXTURE, comment="#")


def _leon_triana(t, y, q):
    """León-Triana 2021 (BIOMD0000001013): C' and T' by parameter name."""
    c, tumour = y
    return [
        q["rho_c"] * c * tumour / (q["g_t"] + tumour)
        - q["alpha_1"] * c * tumour / (q["g_c"] + c)
        - c / q["tau_c"],
        q["rho_t"] * tumour - q["alpha_2"] * c * tumour,
    ]


def _lsoda(q: dict[str, float]) -> tuple[np.ndarray, float]:
    """Observed level (C / V_body) from SciPy LSODA at rtol 1e-10, and the largest tumour."""
    solution = solve_ivp(
        _leon_triana, (0.0, TIMES[-1]), [q["dose"], q["tumour0"]], method="LSODA",
        t_eval=TIMES, rtol=1e-10, atol=1e-6, args=(q,),
    )  # fmt: skip
    assert solution.status == 0
    return solution.y[0] / q["v_body"], float(solution.y[1].max())


@pytest.mark.parametrize("row", range(5))
def test_auto_solves_the_escaping_tumour_patients(row):
    model = models.get("leon_triana2021")
    q = {name: float(v) for name, v in _patients().iloc[row].drop("subject").items()}
    reference, tumour_max = _lsoda(q)
    assert tumour_max > 1e14  # the tumour escapes: the reason the fixture exists
    params = model.param_vector(q)[np.newaxis, :]
    out = np.empty((1, TIMES.size))
    # the case of issue #19: the explicit pair alone runs out of steps ...
    assert model.with_options(method="tsit5")._run(TIMES, params, out, None)[0] == 1
    # ... and auto (at the default rtol 1e-6 and at tighter ones) solves it; where C falls to a
    # few cells both solvers' atol (1e-6 cells) dominates, hence the same bound at rtol 1e-10
    # rtol 1e-6 runs the Tsitouras pair with the switch, the others the 7(6) pair
    assert model.options.rtol == 1e-6
    for rtol, bound in ((model.options.rtol, 2e-3), (1e-8, 2e-5), (1e-10, 2e-5)):
        ours = model.with_options(rtol=rtol).simulate(TIMES, q)
        floor = 1e-9 * np.abs(reference).max()
        error = np.abs(ours - reference) / (np.abs(reference) + floor)
        assert error.max() <= bound, (rtol, error.max(), TIMES[error.argmax()])


def test_the_population_kernel_solves_them_in_parallel():
    model = models.get("leon_triana2021")
    table = _patients()
    result = model.simulate_many(TIMES, table.drop(columns="subject"))
    values = np.asarray(result if not isinstance(result, pd.DataFrame) else result.to_numpy())
    assert np.isfinite(values).all()


@numba.njit
def _stiff_after_one(t, y, p, phase, dydt):  # pragma: no cover - compiled
    # y0' = -y0 throughout; y1 relaxes onto cos(t) at rate 1 until t = 1, at rate 1e5 after
    rate = 1.0 if t < 1.0 else 1e5
    dydt[0] = -y[0]
    dydt[1] = -rate * (y[1] - np.cos(t)) - np.sin(t)


@pytest.mark.parametrize("rtol", [1e-6, 1e-8])  # Rodas4 itself needs 1e5 steps at 1e-10
def test_auto_switches_on_a_problem_that_turns_stiff(rtol):
    """y1 = cos(t) exactly (it starts there); the rate 1e5 after t = 1 makes it stiff.

    Outputs inside the stiff stretch are left out: there Rodas4's order-3 dense output, not
    the switching, limits the accuracy (pure Rodas4 shows the same error).
    """
    t = np.array([0.0, 0.5, 1.0, 20.0])
    exact = np.column_stack([np.exp(-t), np.cos(t)])
    options = SolverOptions(rtol=rtol, atol=1e-12, method="auto")
    result = solve(_stiff_after_one, t, [1.0, 1.0], options=options)
    assert np.abs(result.y - exact).max() <= 50 * rtol
    # the explicit pair alone needs h < 5e-5 for 19 days: over 100,000 steps
    explicit = "tsit5" if rtol >= 1e-7 else "vern7"
    alone = SolverOptions(rtol=rtol, atol=1e-12, method=explicit)
    assert solve(_stiff_after_one, t, [1.0, 1.0], options=alone, errors="coerce").status == 1
