"""One conformance suite, parametrised over every registered model.

Every model must: declare consistent, documented parameters (defaults strictly inside their
bounds); simulate finite, non-negative levels at its defaults; give the same answer through
``simulate_many`` as through a loop of ``simulate``; handle unsorted and pre-infusion times;
and carry its equations and DOI in its docstring. ODE models must in addition agree with an
independent SciPy reference — ``solve_ivp`` (Radau, rtol 1e-12) on right-hand sides written
*here*, from the published equations and by parameter name (so a wrong parameter order or a
transcription slip in a compiled kernel is caught) — to 20 × rtol relative at the models'
default rtol (1e-6, :data:`cellkin.models.ode.DEFAULT_RTOL`) and at rtol 1e-8, and their
analytic Jacobians must match finite differences.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from cellkin import models
from cellkin.models import ODEModel
from cellkin.models.ode import DEFAULT_RTOL

ALL = models.available()
ODE = [name for name in ALL if isinstance(models.get(name), ODEModel)]

# Simulation horizon (days after infusion) per model: the experiment's window where one
# exists (Raji: 8 days to the end of the preset; HDLM-2: 158 days), one year otherwise.
HORIZON = {"cartmath_raji": 8.0, "cartmath_hdlm2": 158.0}


def _times(name: str) -> np.ndarray:
    horizon = HORIZON.get(name, 365.0)
    return np.unique(np.concatenate([np.linspace(0.0, horizon, 41), [0.5, 1.0, 3.0, 7.0]]))


# ---------------------------------------------------------------- independent references
# Each entry: (rhs(t, y, q, phase) -> list, y0(q) -> list, breakpoints(q) -> list,
# observe(y, q) -> float), with q the parameters by name.
def _stein_rhs(t, y, q, phase):
    if phase == 0:
        return [math.log(q["foldx"]) / q["tmax"] * y[0], 0.0]
    return [-q["alpha"] * y[0], q["fb"] * (q["alpha"] - q["beta"]) * y[0] - q["beta"] * y[1]]


def _chaudhury_rhs(t, y, q, phase):
    ce, cp, u = y
    if phase == 0:
        d_ce, d_cp = q["rho"] * ce * u / (q["ec50_rho"] + ce + u), 0.0
    else:
        d_ce, d_cp = -(q["k_ep"] + q["k_e"]) * ce, q["k_ep"] * ce - q["beta"] * cp
    f_cure = 1.0 / (1.0 + (q["u_crit"] / u) ** q["h"]) if u > 0 else 0.0
    growth = (
        f_cure * q["g"] * u * math.log10(q["u_max"] / u) / math.log10(q["u_max"]) if u > 0 else 0
    )
    return [d_ce, d_cp, growth - q["d"] * ce * u / (q["ec50_d"] + ce + u)]


def _cartmath_rhs(t, y, q, phase):
    ct, cm, tumour = y
    b = q.get("b", 0.0)
    return [
        q["phi"] * ct - q["rho"] * ct - q["mu_t"] * ct + q["theta"] * tumour * cm
        - q["alpha"] * tumour * ct,
        q["epsilon"] * q["rho"] * ct - q["theta"] * tumour * cm - q["mu_m"] * cm,
        q["r"] * tumour * (1 - b * tumour) - q["gamma"] * tumour * ct,
    ]  # fmt: skip


def _cartmath_y0(q):
    grown = q["tumour0"] * math.exp(q["r"] * q["t_tumour"])
    b = q.get("b", 0.0)
    return [q["dose"], 0.0, grown / (1 + b * q["tumour0"] * (math.exp(q["r"] * q["t_tumour"]) - 1))]


def _kimmel_rhs(t, y, q, phase):
    n, c, tumour = y
    total = n + c
    r_c = q["rho_c"] + q["b"] * (total - q["k_n"]) ** 2 / (
        q["a"] * total**2 + (total - q["k_n"]) ** 2
    )
    return [
        -q["r_n"] * n * math.log(total / q["k_n"]),
        -r_c * c * math.log(total / q["k_c"]),
        q["r_b"] * tumour - q["gamma_b"] * tumour * c / (q["k_b"] + c),
    ]


def _leon_triana_rhs(t, y, q, phase):
    c, tumour = y
    return [
        q["rho_c"] * c * tumour / (q["g_t"] + tumour)
        - q["alpha_1"] * c * tumour / (q["g_c"] + c)
        - c / q["tau_c"],
        q["rho_t"] * tumour - q["alpha_2"] * c * tumour,
    ]


REFERENCE = {
    "stein2019_ode": (
        _stein_rhs,
        lambda q: [q["cmax"] / q["foldx"], 0.0],
        lambda q: [q["tmax"]],
        lambda y, q: y[0] + y[1],
    ),
    "chaudhury2020": (
        _chaudhury_rhs,
        lambda q: [q["ce0"], 0.0, q["u0"]],
        lambda q: [q["tmax"]],
        lambda y, q: y[0] + y[1],
    ),
    "cartmath_hdlm2": (_cartmath_rhs, _cartmath_y0, lambda q: [], lambda y, q: y[0] + y[1]),
    "cartmath_raji": (_cartmath_rhs, _cartmath_y0, lambda q: [], lambda y, q: y[0] + y[1]),
    "kimmel2021": (
        _kimmel_rhs,
        lambda q: [q["n0"], q["dose"] / q["v_body"], q["b0"]],
        lambda q: [],
        lambda y, q: y[1],
    ),
    "leon_triana2021": (
        _leon_triana_rhs,
        lambda q: [q["dose"], q["tumour0"]],
        lambda q: [],
        lambda y, q: y[0] / q["v_body"],
    ),
}


def _scipy_reference(model, t: np.ndarray, params: dict[str, float] | None = None) -> np.ndarray:
    """solve_ivp Radau (rtol 1e-12) phase by phase on the independent right-hand side, at the
    model's defaults or at ``params``."""
    rhs, y0, breakpoints, observe = REFERENCE[model.name]
    q = model.defaults if params is None else {**model.defaults, **params}
    atol = np.broadcast_to(np.asarray(model.default_atol, dtype=float), (model.n_states,))
    jac = None
    if model.jacobian is not None:  # the model's own Jacobian only speeds Radau up

        def jac(time, y, phase):
            out = np.empty((model.n_states, model.n_states))
            model.jacobian.py_func(time, np.asarray(y, float), model.param_vector(q), phase, out)
            return out

    edges = [0.0, *sorted(b for b in breakpoints(q) if 0.0 < b < t[-1]), t[-1]]
    state, out = np.asarray(y0(q), dtype=float), np.empty(t.size)
    for phase, (start, end) in enumerate(itertools.pairwise(edges)):
        inside = (t >= start) & (t <= end) if phase == len(edges) - 2 else (t >= start) & (t < end)
        solution = solve_ivp(
            lambda time, y, ph=phase: rhs(time, y, q, ph),
            (start, end),
            state,
            method="Radau",
            rtol=1e-12,
            atol=atol,
            jac=None if jac is None else (lambda time, y, ph=phase: jac(time, y, ph)),
            dense_output=True,
        )
        assert solution.success, solution.message
        out[inside] = [observe(solution.sol(time), q) for time in t[inside]]
        state = solution.y[:, -1]
    return out


# ---------------------------------------------------------------- every model
@pytest.mark.parametrize("name", ALL)
def test_declaration_is_consistent_and_documented(name):
    model = models.get(name)
    assert model.name == name
    assert len(set(model.param_names)) == len(model.param_names)
    for spec in model.params:
        assert spec.unit and spec.description, spec.name
        assert spec.lower < spec.default < spec.upper, spec.name
        assert np.isfinite(spec.default)
    doc = type(model).__doc__
    assert ".. math::" in doc, "the docstring must give the equations"
    assert model.doi in doc and "doi" in doc.lower()
    assert model.citation and model.observed_unit
    if isinstance(model, ODEModel):
        assert len(model.state_names) == len(model.state_units) == model.n_states
        dydt = np.full(model.n_states, np.nan)
        y0 = np.full(model.n_states, np.nan)
        assert model.initial_state(model.kernel_vector(), y0) == 0
        model.rhs(0.0, y0, model.kernel_vector(), 0, dydt)
        assert np.isfinite(y0).all() and np.isfinite(dydt).all(), "rhs must write every state"


@pytest.mark.parametrize("name", ALL)
def test_simulate_at_defaults_is_finite_and_non_negative(name):
    level = models.get(name).simulate(_times(name))
    assert np.isfinite(level).all()
    assert (level >= 0).all()


@pytest.mark.parametrize("name", ALL)
def test_simulate_many_equals_a_loop_of_simulate(name):
    model = models.get(name)
    rng = np.random.default_rng(20261126)
    n = 10  # above the serial/parallel threshold: the population runs the parallel kernel
    table = np.tile(model.param_vector(), (n, 1))
    for j, spec in enumerate(model.params):
        if spec.scale == "log" and spec.name not in ("tlag", "tmax"):
            table[:, j] = np.clip(table[:, j] * np.exp(0.1 * rng.standard_normal(n)), *_inner(spec))
    t = _times(name)
    together = model.simulate_many(t, table)
    one_by_one = np.vstack([model.simulate(t, dict(zip(model.param_names, row, strict=True)))
                            for row in table])  # fmt: skip
    np.testing.assert_allclose(together, one_by_one, rtol=1e-12, atol=0)
    serial = getattr(model, "_serial_kernel", None)  # the thread-free kernel, where declared
    if serial is not None:
        out = np.empty_like(together)
        assert (serial(t, table, out) == 0).all()
        np.testing.assert_allclose(out, together, rtol=1e-12, atol=0)


def _inner(spec):
    return spec.lower * (1 + 1e-9) + 1e-300, spec.upper * (1 - 1e-9)


@pytest.mark.parametrize("name", ALL)
def test_unsorted_and_pre_infusion_times(name):
    model = models.get(name)
    t = np.array([28.0, -3.0, 1.0, 7.0, 0.0, 7.0, 2.5])
    order = np.argsort(t)
    level = model.simulate(t)
    np.testing.assert_allclose(level[order], model.simulate(t[order]), rtol=1e-12)
    assert level[1] == 0.0  # no CAR-T before infusion
    assert level[3] == level[5]


# ---------------------------------------------------------------- ODE models
@functools.cache
def _reference_120(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Output times and the SciPy reference over the first 120 days.

    Radau at rtol 1e-12 takes thousands of Python-level steps: the comparisons cover the first
    120 days (expansion, switch, contraction and the start of persistence) to keep CI fast.
    """
    t = _times(name)
    t = t[t <= 120.0]
    return t, _scipy_reference(models.get(name), t)


@pytest.mark.parametrize("rtol", [None, 1e-8])  # None: the model's default
@pytest.mark.parametrize("name", ODE)
def test_ode_model_agrees_with_scipy_radau(name, rtol):
    """Within 20 × rtol (the largest error measured: 6.4e-6 at the default rtol 1e-6 and
    7.5e-8 at 1e-8, both CARTmath Raji)."""
    model = models.get(name)
    assert model.options.rtol == DEFAULT_RTOL == 1e-6
    if rtol is not None:
        model = model.with_options(rtol=rtol)
    t, reference = _reference_120(name)
    ours = model.simulate(t)
    floor = 1e-9 * np.max(np.abs(reference))
    error = np.abs(ours - reference) / (np.abs(reference) + floor)
    assert error.max() <= 20 * model.options.rtol, (
        f"max relative difference {error.max():.2e} at t={t[error.argmax()]}"
    )


@pytest.mark.parametrize("method", ["vern7", "auto"])
@pytest.mark.parametrize("name", ODE)
def test_tight_tolerance_agrees_with_scipy_radau(name, method):
    """Verner 7(6) and ``auto`` (which resolves to it at rtol 1e-10, with the stiffness
    switch armed) at rtol 1e-10 reproduce SciPy's Radau at rtol 1e-12 to 1e-7 relative."""
    model = models.get(name).with_options(rtol=1e-10, method=method, max_steps=2_000_000)
    t, reference = _reference_120(name)
    ours = model.simulate(t)
    floor = 1e-9 * np.max(np.abs(reference))
    error = np.abs(ours - reference) / (np.abs(reference) + floor)
    assert error.max() <= 1e-7, (
        f"max relative difference {error.max():.2e} at t={t[error.argmax()]}"
    )


@pytest.mark.parametrize("rtol", [None, 1e-8])  # None: the model's default
@pytest.mark.parametrize("name", ODE)
def test_both_integrators_agree(name, rtol):
    """The model's method and another at the same rtol, over the whole horizon, within
    50 × rtol (largest measured: 1.8e-5 at the default 1e-6, León-Triana against Rodas4)."""
    model = models.get(name)
    if rtol is not None:
        model = model.with_options(rtol=rtol)
    t = _times(name)
    other = "dopri5" if model.method == "rodas4" else "rodas4"
    a = model.simulate(t)
    b = model.with_options(method=other, max_steps=2_000_000).simulate(t)
    floor = 1e-9 * np.max(np.abs(a))
    assert np.max(np.abs(a - b) / (np.abs(a) + floor)) <= 50 * model.options.rtol


# ---------------------------------------------------------------- escaping tumours (#19)
#: Patients of ``benchmarks/bench_work_precision.py``'s virtual populations whose tumour
#: escapes (to ~1e11 cells) while the CAR-T cells collapse to the absolute tolerance, with the
#: tolerances at which cellkin ran out of steps on them (LSODA solved them): the rows of
#: ``I/(hγ) − J`` then differ by ~20 orders of magnitude and Rodas4 lost the small states to
#: round-off until it factored the system equilibrated by the error weights (1.25 million
#: evaluations on the HDLM-2 patient at rtol 1e-9 before, ~35,000 after).
ESCAPING = {
    "cartmath_hdlm2": (
        {"phi": 0.21979399112823278, "mu_m": 0.005762359147381378,
         "theta": 3.818571201312496e-06, "alpha": 3.388424600439854e-08,
         "r": 0.07977198254198416, "gamma": 2.8677955165381697e-06,
         "dose": 626640.4145095173, "tumour0": 2014508.5181059565},
        1e-9, 1e-12,
    ),
    "leon_triana2021": (
        {"rho_c": 0.715552898592523, "g_t": 7316850838.555591,
         "alpha_1": 0.04970014370928306, "g_c": 1002276780.375874,
         "tau_c": 8.006269322289818, "rho_t": 0.04051315464683324,
         "alpha_2": 1.3981267787717137e-10, "dose": 487543259.1999648,
         "tumour0": 6001032650.788769},
        1e-10, 1e-10,
    ),
}  # fmt: skip


@pytest.mark.parametrize("method", ["rodas4", "auto"])
@pytest.mark.parametrize("name", sorted(ESCAPING))
def test_escaping_tumour_patients_at_tight_tolerances(name, method):
    """Solved within the default step budget, within 1e-6 of SciPy's Radau (relative, with a
    floor of 1e-6 × the peak: the collapsed CAR-T level is round-off of the absolute
    tolerance in every solver)."""
    params, rtol, atol = ESCAPING[name]
    model = models.get(name).with_options(rtol=rtol, atol=atol, method=method)
    t = _times(name)
    ours = model.simulate(t, params)  # raised ModelError (out of steps) before
    reference = _scipy_reference(model, t, params)
    floor = 1e-6 * np.max(np.abs(reference))
    error = np.abs(ours - reference) / (np.abs(reference) + floor)
    assert error.max() <= 1e-6, (error.max(), t[error.argmax()])


@pytest.mark.parametrize("name", [n for n in ODE if models.get(n).jacobian is not None])
def test_analytic_jacobian_matches_finite_differences(name):
    model = models.get(name)
    p = model.param_vector()
    for time in (0.0, 2.0):
        y = model.simulate_states([time])[0]
        y = np.where(y == 0, 1.0, y)  # also probe away from the zero initial memory compartment
        for phase in range(model.max_breakpoints + 1):
            jac = np.empty((model.n_states, model.n_states))
            model.jacobian(time, y, p, phase, jac)
            for c in range(model.n_states):
                step = 1e-6 * max(abs(y[c]), 1e-3)
                up, down = y.copy(), y.copy()
                up[c] += step
                down[c] -= step
                column = (model.derivative(time, up, phase=phase)
                          - model.derivative(time, down, phase=phase)) / (2 * step)  # fmt: skip
                scale = np.abs(column) + np.abs(jac[:, c]).max() * 1e-6 + 1e-300
                np.testing.assert_array_less(np.abs(jac[:, c] - column) / scale, 1e-4)
