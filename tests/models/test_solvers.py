"""The numba integrators against closed forms, SciPy and their own contract.

Analytic cases follow ``scipy/integrate/_ivp/tests/test_ivp.py``: the error is measured
against the exact solution and scaled by the requested tolerance. The stiff references are
the Robertson chemical kinetics problem (SciPy Radau at rtol 1e-12) and a linear system with
eigenvalues spanning six decades (matrix exponential).

Right-hand sides here are plain ``numba.njit`` functions (not cached: test modules are
imported by path); only they compile per run, the solver kernels load from numba's cache.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math

import numba
import numpy as np
import pandas as pd
import pytest
from scipy.integrate import solve_ivp
from scipy.linalg import expm

from cellkin.errors import ModelError
from cellkin.models import ODEModel, ParamSpec, _erk, _verner
from cellkin.models import solvers as kernels
from cellkin.models.ode import SolverOptions, solve

METHODS = ["tsit5", "dopri5", "vern7", "rodas4", "auto"]


@numba.njit
def _decay_chain(t, y, p, phase, dydt):  # pragma: no cover - compiled
    dydt[0] = -p[0] * y[0]
    dydt[1] = p[0] * y[0] - p[1] * y[1]


def _decay_chain_exact(t, a=0.5, b=0.1):
    first = np.exp(-a * t)
    return np.column_stack([first, a / (a - b) * (np.exp(-b * t) - first)])


@numba.njit
def _logistic(t, y, p, phase, dydt):  # pragma: no cover - compiled
    dydt[0] = p[0] * y[0] * (1.0 - y[0] / p[1])


@numba.njit
def _robertson(t, y, p, phase, dydt):  # pragma: no cover - compiled
    dydt[0] = -0.04 * y[0] + 1e4 * y[1] * y[2]
    dydt[1] = 0.04 * y[0] - 1e4 * y[1] * y[2] - 3e7 * y[1] * y[1]
    dydt[2] = 3e7 * y[1] * y[1]


@numba.njit
def _robertson_jac(t, y, p, phase, jac):  # pragma: no cover - compiled
    jac[0, 0], jac[0, 1], jac[0, 2] = -0.04, 1e4 * y[2], 1e4 * y[1]
    jac[1, 0], jac[1, 1], jac[1, 2] = 0.04, -1e4 * y[2] - 6e7 * y[1], -1e4 * y[1]
    jac[2, 0], jac[2, 1], jac[2, 2] = 0.0, 6e7 * y[1], 0.0


_STIFF_MATRIX = np.array([[-1.0, 1e3, 0.0], [0.0, -1e3, 1e6], [0.0, 0.0, -1e6]])


@numba.njit
def _stiff_linear(t, y, p, phase, dydt):  # pragma: no cover - compiled
    dydt[0] = -y[0] + 1e3 * y[1]
    dydt[1] = -1e3 * y[1] + 1e6 * y[2]
    dydt[2] = -1e6 * y[2]


@numba.njit
def _switch(t, y, p, phase, dydt):  # pragma: no cover - compiled
    # phase 0: constant inflow p[0]; phase 1: first-order loss p[1]; phase 2: growth p[2]
    if phase == 0:
        dydt[0] = p[0]
    elif phase == 1:
        dydt[0] = -p[1] * y[0]
    else:
        dydt[0] = p[2] * y[0]


def _switch_exact(t, b1, b2, a=2.0, k=0.3, g=0.05, y0=1.0):
    t = np.asarray(t, dtype=float)
    at_b1 = y0 + a * b1
    at_b2 = at_b1 * np.exp(-k * (b2 - b1))
    return np.where(
        t < b1,
        y0 + a * t,
        np.where(t < b2, at_b1 * np.exp(-k * (t - b1)), at_b2 * np.exp(g * (t - b2))),
    )


@numba.njit
def _blow_up(t, y, p, phase, dydt):  # pragma: no cover - compiled
    dydt[0] = y[0] * y[0]  # y = 1/(1 - t) from y(0) = 1: infinite at t = 1


@numba.njit
def _nan_after_one(t, y, p, phase, dydt):  # pragma: no cover - compiled
    dydt[0] = -y[0] if t < 1.0 else np.nan


# ---------------------------------------------------------------- closed forms
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("rtol", [1e-5, 1e-8, 1e-11])
def test_linear_chain_error_is_proportional_to_the_tolerance(method, rtol):
    t = np.linspace(0.0, 20.0, 41)
    options = SolverOptions(rtol=rtol, atol=rtol * 1e-3, method=method)
    result = solve(_decay_chain, t, [1.0, 0.0], [0.5, 0.1], options=options)
    assert result.success and result.message == "success"
    error = np.abs(result.y - _decay_chain_exact(t)).max()
    assert error <= 20 * rtol
    if rtol >= 1e-8:  # the tolerance is not grossly over-achieved either (the order-7 pair
        # over-achieves more at loose tolerances: its error falls faster with the step)
        assert error >= (1e-5 if method in ("vern7", "auto") else 1e-3) * rtol


@pytest.mark.parametrize("method", METHODS)
def test_logistic_growth(method):
    t = np.linspace(0.0, 30.0, 61)
    options = SolverOptions(rtol=1e-8, method=method)  # the error at rtol 1e-6: 20 × rtol below
    result = solve(_logistic, t, [1e3], [0.6, 1e9], options=options)
    exact = 1e9 / (1.0 + (1e9 / 1e3 - 1.0) * np.exp(-0.6 * t))
    np.testing.assert_allclose(result.y[:, 0], exact, rtol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_error_decreases_with_tolerance(method):
    t = np.linspace(0.0, 30.0, 7)
    exact = 1e9 / (1.0 + (1e9 / 1e3 - 1.0) * np.exp(-0.6 * t))
    errors = [
        np.abs(
            solve(_logistic, t, [1e3], [0.6, 1e9], options=SolverOptions(rtol=r, method=method))
            .y[:, 0] - exact
        ).max() / 1e9
        for r in (1e-4, 1e-6, 1e-8, 1e-10)
    ]  # fmt: skip
    assert all(a > b for a, b in itertools.pairwise(errors)), errors
    # order of convergence: error ~ rtol (tolerance proportionality) within a factor 100
    assert errors[0] / errors[-1] > 1e4


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("rtol", [1e-6, 1e-10])
def test_dense_output_between_steps(method, rtol):
    """2001 output times, far more than steps: the continuous extension is as accurate as
    the step ends (the explicit pairs' interpolants are of order 4, Rodas4's of order 3)."""
    fine = np.linspace(0.0, 20.0, 2001)
    options = SolverOptions(rtol=rtol, atol=rtol * 1e-3, method=method)
    dense = solve(_decay_chain, fine, [1.0, 0.0], [0.5, 0.1], options=options).y
    coarse_t = np.array([0.0, 20.0])
    ends = solve(_decay_chain, coarse_t, [1.0, 0.0], [0.5, 0.1], options=options).y
    step_error = max(np.abs(ends - _decay_chain_exact(coarse_t)).max(), rtol * 1e-2)
    assert np.abs(dense - _decay_chain_exact(fine)).max() <= 20 * max(step_error, rtol)
    np.testing.assert_allclose(dense[-1], ends[-1], rtol=0, atol=10 * rtol)


def test_outputs_at_the_start_and_repeated_times():
    result = solve(_decay_chain, [0.0, 0.0, 1.0, 1.0, 5.0], [1.0, 0.0], [0.5, 0.1])
    np.testing.assert_array_equal(result.y[0], [1.0, 0.0])
    np.testing.assert_array_equal(result.y[2], result.y[3])
    tight = SolverOptions(rtol=1e-8)
    shifted = solve(_decay_chain, [2.0, 7.0], [1.0, 0.0], [0.5, 0.1], t0=2.0, options=tight)
    np.testing.assert_allclose(shifted.y[1], _decay_chain_exact(5.0)[0], rtol=1e-7)


# ---------------------------------------------------------------- explicit Runge–Kutta pairs
PAIRS = {
    "tsit5": (_erk.TSIT5_C, _erk.TSIT5_A, _erk.TSIT5_E, _erk.TSIT5_B),
    "dopri5": (_erk.DOPRI5_C, _erk.DOPRI5_A, _erk.DOPRI5_E, _erk.DOPRI5_B),
}


def _trees(a, c):
    """Elementary weights Φ(t) and densities γ(t) of the rooted trees t of order 1-5."""
    e, ac = np.ones_like(c), a @ c
    ac2, aac = a @ c**2, a @ ac
    return {
        1: [(e, 1)],
        2: [(c, 2)],
        3: [(c**2, 3), (ac, 6)],
        4: [(c**3, 4), (c * ac, 8), (ac2, 12), (aac, 24)],
        5: [(c**4, 5), (c**2 * ac, 10), (c * ac2, 15), (c * aac, 30), (ac**2, 20),
            (a @ c**3, 20), (a @ (c * ac), 40), (a @ ac2, 60), (a @ aac, 120)],
    }  # fmt: skip


def _dense_weights(bd, theta):
    """b_m(θ) for each θ (rows)."""
    return np.power.outer(np.atleast_1d(theta), np.arange(1, 5)) @ bd.T


@pytest.mark.parametrize("pair", PAIRS)
def test_pair_satisfies_its_order_conditions(pair):
    c, a, e, bd = PAIRS[pair]
    b, b_hat = a[-1], a[-1] - e
    trees = _trees(a, c)
    assert not np.triu(a).any()  # explicit
    np.testing.assert_allclose(a.sum(axis=1), c, rtol=0, atol=1e-15)
    for order, conditions in trees.items():
        for phi, gamma in conditions:
            assert abs(b @ phi - 1 / gamma) < 4e-15  # fifth order
            if order <= 4:
                assert abs(b_hat @ phi - 1 / gamma) < 4e-15  # embedded fourth order
    # the embedded solution is of order 4, not 5 (else the error estimate would vanish)
    assert max(abs(b_hat @ phi - 1 / gamma) for phi, gamma in trees[5]) > 1e-4
    # continuous extension: order 4 for every θ, y(θ=1) = y1, C¹ at both ends
    theta = np.linspace(0.0, 1.0, 21)
    weights = _dense_weights(bd, theta)
    for order in range(1, 5):
        for phi, gamma in trees[order]:
            np.testing.assert_allclose(weights @ phi, theta**order / gamma, rtol=0, atol=5e-14)
    np.testing.assert_allclose(bd.sum(axis=1), b, rtol=0, atol=5e-14)
    np.testing.assert_array_equal(bd[:, 0], np.eye(7)[0])  # b_m'(0) = δ_m1
    slope = bd @ [1.0, 2.0, 3.0, 4.0]  # coefficients up to ~90: rounding ~4 ulp of 4 × 90
    np.testing.assert_allclose(slope, np.eye(7)[6], rtol=0, atol=2e-13)


def _fifth_order_defect(a, c, bd):
    """∫₀¹ Σ_t (Σ_m b_m(θ) Φ_m(t) − θ⁵/γ(t))² dθ over the fifth-order trees (Gauss–Legendre)."""
    nodes, w = np.polynomial.legendre.leggauss(8)
    theta = 0.5 * (nodes + 1.0)
    weights = _dense_weights(bd, theta)
    return sum(0.5 * w @ (weights @ phi - theta**5 / gamma) ** 2 for phi, gamma in _trees(a, c)[5])


def test_tsit5_dense_output_is_the_stated_optimum():
    """The one free parameter of the C¹ order-4 extension minimises the fifth-order defect."""
    c, a, _, bd = PAIRS["tsit5"]
    # the constraints on the 28 coefficients are linear: their null space is one direction
    rows = []
    for order in range(1, 5):
        for phi, _gamma in _trees(a, c)[order]:
            for q in range(4):
                rows.append(np.outer(phi, np.eye(4)[q]).ravel())
    for m in range(7):
        for derivative_weights in (np.ones(4), np.eye(4)[0], np.arange(1.0, 5.0)):
            rows.append(np.outer(np.eye(7)[m], derivative_weights).ravel())
    _, singular, vt = np.linalg.svd(np.array(rows))
    null = vt[int((singular > 1e-10 * singular[0]).sum()) :]
    assert null.shape[0] == 1
    direction = null[0].reshape(7, 4)
    best = _fifth_order_defect(a, c, bd)
    # the defect is quadratic along the free direction: no first-order term at the optimum
    up, down = (_fifth_order_defect(a, c, bd + step * direction) - best for step in (10, -10))
    assert up > 0 and down > 0 and abs(up - down) < 1e-3 * (up + down)
    assert best < 2.5e-6  # ten times below the minimum-norm choice of the free parameter


def _rk_fixed(pair, matrix, y0, h, n_steps, weights=None):
    """n fixed steps of the pair's tableau on y' = M y (NumPy, independent of the kernels)."""
    a = PAIRS[pair][1]
    weights = a[-1] if weights is None else weights
    y = np.array(y0, dtype=float)
    for _ in range(n_steps):
        k = np.zeros((7, y.size))
        for s in range(7):
            k[s] = matrix @ (y + h * a[s, :s] @ k[:s])
        y = y + h * weights @ k
    return y


@pytest.mark.parametrize("pair", PAIRS)
def test_pair_converges_with_orders_5_and_4_on_a_linear_system(pair):
    """Global error at T = 2 on y' = M y (complex eigenvalues −1 ± 2i) against expm."""
    _, a, e, bd = PAIRS[pair]
    matrix = np.array([[-1.0, 2.0], [-2.0, -1.0]])
    y0, end = np.array([1.0, 0.5]), 2.0
    exact = expm(matrix * end) @ y0
    for weights, order in ((a[-1], 5), (a[-1] - e, 4)):
        errors = [np.abs(_rk_fixed(pair, matrix, y0, end / n, n, weights) - exact).max()
                  for n in (20, 40, 80)]  # fmt: skip
        observed = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
        np.testing.assert_allclose(observed, order, atol=0.25)
    # dense output at θ = 0.4 of one step: local error O(h^5) (order 4)
    errors = []
    for h in (0.1, 0.05, 0.025):
        k = np.zeros((7, 2))
        for s in range(7):
            k[s] = matrix @ (y0 + h * a[s, :s] @ k[:s])
        middle = y0 + h * _dense_weights(bd, 0.4)[0] @ k
        errors.append(np.abs(middle - expm(matrix * 0.4 * h) @ y0).max())
    observed = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    np.testing.assert_allclose(observed, 5.0, atol=0.3)


# ---------------------------------------------------------------- Verner 7(6)
def _vern7_fixed(matrix, y0, h, n_steps, weights):
    """n fixed steps of Verner's tableau on y' = M y (NumPy, independent of the kernels)."""
    a = _verner.VERN7_A
    y = np.array(y0, dtype=float)
    for _ in range(n_steps):
        k = np.zeros((10, y.size))
        for s in range(10):
            k[s] = matrix @ (y + h * a[s, :s] @ k[:s])
        y = y + h * weights @ k
    return y


def test_vern7_tableau_is_consistent():
    a, c, b, bh = _verner.VERN7_A, _verner.VERN7_C, _verner.VERN7_B, _verner.VERN7_BH
    assert not np.triu(a).any()
    np.testing.assert_allclose(a.sum(axis=1), c, rtol=0, atol=5e-14)
    np.testing.assert_array_equal(a[10, :10], b)  # stage 11 is f(t + h, y1)
    # quadrature conditions b·c^(q-1) = 1/q: order 7 for b, order 6 (not 7) for b̂
    for q in range(1, 8):
        assert abs(b @ c[:10] ** (q - 1) - 1 / q) < 1e-14
        if q <= 6:
            assert abs(bh @ c[:10] ** (q - 1) - 1 / q) < 1e-14
    assert abs(bh @ c[:10] ** 6 - 1 / 7) > 1e-6
    # the continuous extension reproduces the step's end and starts with slope k1
    np.testing.assert_allclose(_verner.VERN7_D.sum(axis=1)[:10], b, rtol=0, atol=2e-13)
    np.testing.assert_allclose(_verner.VERN7_D[:, 0], np.eye(16)[0], rtol=0, atol=0)


def test_vern7_converges_with_orders_7_and_6_on_a_linear_system():
    """Global error at T = 2 on y' = M y (eigenvalues −1 ± 2i) against expm, fixed steps."""
    matrix = np.array([[-1.0, 2.0], [-2.0, -1.0]])
    y0, end = np.array([1.0, 0.5]), 2.0
    exact = expm(matrix * end) @ y0
    for weights, order in ((_verner.VERN7_B, 7), (_verner.VERN7_BH, 6)):
        errors = [np.abs(_vern7_fixed(matrix, y0, end / n, n, weights) - exact).max()
                  for n in (16, 32, 64)]  # fmt: skip
        observed = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
        np.testing.assert_allclose(observed, order, atol=0.3)
    # continuous extension at θ = 0.4 of one step: local error O(h^8) (order 7)
    errors = []
    a, d = _verner.VERN7_A, _verner.VERN7_D
    for h in (0.4, 0.2, 0.1):
        k = np.zeros((16, 2))
        for s in range(16):
            k[s] = matrix @ (y0 + h * a[s, :s] @ k[:s])
        middle = y0 + h * (0.4 ** np.arange(1, 8) @ d.T) @ k
        errors.append(np.abs(middle - expm(matrix * 0.4 * h) @ y0).max())
    observed = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    # 9.1 then 8.6: approaching 8 from above as h falls (an order-6 extension would give 7)
    assert (observed > 7.6).all() and observed[-1] < observed[0], observed


@pytest.mark.parametrize(
    ("tableau", "declared"),
    [
        ((_erk.TSIT5_A[:, :], _erk.TSIT5_A[-1]), _erk.TSIT5_STABILITY),
        ((_verner.VERN7_A[:10, :10], _verner.VERN7_B), _verner.VERN7_STABILITY),
    ],
)
def test_stability_boundaries_used_by_the_stiffness_test(tableau, declared):
    """|R(z)| = 1 on the negative real axis where the stiffness test says it is (±3%)."""
    a, b = tableau
    ones = np.ones(b.size)

    def growth(z):
        return abs(1.0 + z * b @ np.linalg.solve(np.eye(b.size) - z * a, ones))

    z = np.linspace(-0.5, -8.0, 7501)
    boundary = z[np.argmax([growth(x) > 1.0 for x in z])]
    assert abs(-boundary - declared) <= 0.03 * declared, boundary


def test_vern7_needs_fewer_evaluations_than_tsit5_at_tight_tolerance():
    """At rtol 1e-10 the 7(6) pair takes at least 2× fewer steps (× 10/6 evaluations)."""
    t = np.linspace(0.0, 20.0, 3)
    steps = {
        m: _steps(_decay_chain, t, [1.0, 0.0], [0.5, 0.1],
                  SolverOptions(rtol=1e-10, atol=1e-14, method=m))
        for m in ("tsit5", "vern7")
    }  # fmt: skip
    assert steps["vern7"] * 10 < steps["tsit5"] * 6 * 0.8, steps


def _steps(rhs, t, y0, p, options):
    """Steps the kernel takes (accepted + rejected): the smallest `max_steps` that succeeds."""
    low, high = 1, 100_000
    while low < high:
        middle = (low + high) // 2
        budget = dataclasses.replace(options, max_steps=middle)
        if solve(rhs, t, y0, p, options=budget, errors="coerce").success:
            high = middle
        else:
            low = middle + 1
    return low


@pytest.mark.parametrize("method", ["tsit5", "dopri5"])
def test_step_counts_follow_the_order_of_the_error_estimate(method):
    """Steps grow like rtol^(-1/5) (error estimate of order 4); no runaway rejections."""
    t = np.array([0.0, 20.0])
    steps = [_steps(_decay_chain, t, [1.0, 0.0], [0.5, 0.1],
                    SolverOptions(rtol=rtol, atol=rtol * 1e-3, method=method))
             for rtol in (1e-4, 1e-6, 1e-8, 1e-10)]  # fmt: skip
    assert 5 <= steps[0] <= 40, steps
    growth = np.array(steps[1:]) / np.array(steps[:-1])  # per factor 100 in rtol: 100^(1/5)
    assert ((growth > 1.8) & (growth < 3.3)).all(), steps


def test_tsit5_takes_fewer_steps_than_dopri5_at_equal_accuracy():
    """On the Kimmel model at rtol 1e-6 (the population benchmark's setting)."""
    from cellkin.models.kimmel import Kimmel2021

    model = Kimmel2021()
    p = model.kernel_vector()
    y0 = np.empty(model.n_states)
    Kimmel2021.initial_state(p, y0)
    t = np.linspace(0.0, 365.0, 60)
    reference = solve_ivp(lambda time, y: model.derivative(time, y), (0.0, 365.0), y0,
                          method="DOP853", rtol=1e-13, atol=1e-16, t_eval=t).y.T  # fmt: skip
    steps, errors = {}, {}
    for method in ("tsit5", "dopri5"):
        options = SolverOptions(rtol=1e-6, atol=(1e-7, 1e-9, 1e-7), method=method)
        steps[method] = _steps(Kimmel2021.rhs, t, y0, p, options)
        ours = solve(Kimmel2021.rhs, t, y0, p, options=options).y
        errors[method] = np.abs(ours[:, 1] - reference[:, 1]).max() / reference[:, 1].max()
    assert steps["tsit5"] < 0.95 * steps["dopri5"], steps
    assert errors["tsit5"] < 3 * errors["dopri5"] and errors["tsit5"] < 1e-5, errors


# ---------------------------------------------------------------- stiff references
@pytest.mark.parametrize("analytic_jacobian", [True, False])
def test_rodas4_on_robertson_matches_scipy_radau(analytic_jacobian):
    t = np.array([1e-5, 1e-3, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 4e4])
    options = SolverOptions(rtol=1e-8, atol=(1e-12, 1e-16, 1e-12), method="rodas4")
    jac = _robertson_jac if analytic_jacobian else None
    ours = solve(_robertson, t, [1.0, 0.0, 0.0], jac=jac, options=options).y
    reference = _robertson_reference(tuple(t))
    np.testing.assert_allclose(ours, reference, rtol=1e-5)
    np.testing.assert_allclose(ours.sum(axis=1), 1.0, rtol=1e-10)  # mass balance


@functools.cache
def _robertson_reference(t: tuple[float, ...]) -> np.ndarray:
    return solve_ivp(
        lambda time, y: [
            -0.04 * y[0] + 1e4 * y[1] * y[2],
            0.04 * y[0] - 1e4 * y[1] * y[2] - 3e7 * y[1] ** 2,
            3e7 * y[1] ** 2,
        ],
        (0.0, t[-1]),
        [1.0, 0.0, 0.0],
        method="Radau",
        rtol=1e-12,
        atol=[1e-16, 1e-20, 1e-16],
        t_eval=t,
    ).y.T


def test_stiff_linear_system_rodas4_vs_matrix_exponential_and_dopri5_budget():
    t = np.array([1e-6, 1e-3, 0.5, 2.0, 10.0])
    y0 = np.array([1.0, 1.0, 1.0])
    exact = np.array([expm(_STIFF_MATRIX * time) @ y0 for time in t])
    stiff = solve(_stiff_linear, t, y0, options=SolverOptions(rtol=1e-9, method="rodas4"))
    np.testing.assert_allclose(stiff.y, exact, rtol=1e-6, atol=1e-12)
    # the explicit method needs ~|λ|·T steps: with a budget of 1000 it reports status 1
    budget = SolverOptions(rtol=1e-9, method="dopri5", max_steps=1000)
    capped = solve(_stiff_linear, t, y0, options=budget, errors="coerce")
    assert capped.status == kernels.STATUS_MAX_STEPS and not capped.success
    assert np.isnan(capped.y[-1]).all()
    with pytest.raises(ModelError, match="status 1"):
        solve(_stiff_linear, t, y0, options=budget)


# ---------------------------------------------------------------- breakpoints
@pytest.mark.parametrize("method", METHODS)
def test_piecewise_integration_restarts_at_breakpoints(method):
    b1, b2 = 1.7, 6.25
    t = np.array([0.0, 0.5, b1, 1.7 + 1e-9, 3.0, b2, 9.0, 20.0])
    options = SolverOptions(rtol=1e-10, atol=1e-12, method=method)
    result = solve(_switch, t, [1.0], [2.0, 0.3, 0.05], breakpoints=[b2, b1], options=options)
    np.testing.assert_allclose(result.y[:, 0], _switch_exact(t, b1, b2), rtol=1e-8)
    # breakpoints at or before t0 advance the starting phase
    late = solve(_switch, [7.0, 8.0], [1.0], [2.0, 0.3, 0.05], breakpoints=[b1, b2], t0=7.0)
    np.testing.assert_allclose(late.y[1, 0], math.exp(0.05), rtol=1e-8)


# ---------------------------------------------------------------- failures and inputs
def test_failures_become_status_codes():
    tight = SolverOptions(rtol=1e-8)  # y(0.5) = 2 is checked to 1e-6 below
    finite_time = solve(_blow_up, [0.5, 2.0], [1.0], errors="coerce", options=tight)
    assert finite_time.status in (kernels.STATUS_NONFINITE, kernels.STATUS_STEP_TOO_SMALL)
    assert finite_time.y[0, 0] == pytest.approx(2.0, rel=1e-6) and np.isnan(finite_time.y[1, 0])
    nan = solve(_nan_after_one, [0.5, 2.0], [1.0], errors="coerce")
    assert nan.status == kernels.STATUS_NONFINITE
    assert nan.message == kernels.STATUS_MESSAGES[kernels.STATUS_NONFINITE]
    bad_start = solve(_decay_chain, [1.0], [np.nan, 0.0], [0.5, 0.1], errors="coerce")
    assert bad_start.status == kernels.STATUS_BAD_INITIAL


@numba.njit
def _divide_by_parameter(t, y, p, phase, dydt):  # pragma: no cover - compiled
    dydt[0] = 1.0 / p[0]  # numba raises ZeroDivisionError when p[0] == 0


@pytest.mark.parametrize("method", METHODS)
def test_a_right_hand_side_that_raises_becomes_a_status_code(method):
    options = SolverOptions(method=method)
    fine = solve(_divide_by_parameter, [0.0, 1.0], [1.0], [2.0], options=options)
    np.testing.assert_allclose(fine.y[:, 0], [1.0, 1.5], rtol=1e-12)
    failed = solve(_divide_by_parameter, [0.0, 1.0], [1.0], [0.0], options=options,
                   errors="coerce")  # fmt: skip
    assert failed.status == kernels.STATUS_NONFINITE and np.isnan(failed.y[1]).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"t": [2.0, 1.0]}, "non-decreasing"),
        ({"t": [-1.0, 1.0]}, ">= t0"),
        ({"y0": []}, "non-empty"),
        ({"errors": "ignore"}, "errors"),
        ({"rhs": lambda t, y, p, phase, dydt: None}, r"numba\.njit"),
    ],
)
def test_solve_validates_its_inputs(kwargs, message):
    arguments = {"rhs": _decay_chain, "t": [1.0], "y0": [1.0, 0.0], "p": [0.5, 0.1]}
    arguments.update(kwargs)
    with pytest.raises(ModelError, match=message):
        solve(**arguments)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rtol": 0.0}, "rtol"),
        ({"rtol": 2.0}, "rtol"),
        ({"atol": -1.0}, "atol"),
        ({"atol": (1e-9, np.nan)}, "atol"),
        ({"method": "rk4"}, "method"),
        ({"max_steps": 0}, "max_steps"),
        ({"first_step": -1.0}, "first_step"),
    ],
)
def test_solver_options_are_validated(options, message):
    with pytest.raises(ModelError, match=message):
        SolverOptions(**options)


# ---------------------------------------------------------------- population kernel
@numba.njit
def _growth_rhs(t, y, p, phase, dydt):  # pragma: no cover - compiled
    dydt[0] = p[0] * y[0]


@numba.njit
def _growth_start(p, y0):  # pragma: no cover - compiled
    y0[0] = 1.0
    return 0 if p[1] < 5.0 else 17  # a model-specific refusal, status >= 10


@numba.njit
def _growth_observe(y, p):  # pragma: no cover - compiled
    return y[0]


class _Growth(ODEModel):
    r"""Exponential growth :math:`y' = k y`, a test model. doi:10.0000/none

    .. math:: y' = k y
    """

    name = "test_growth"
    citation = "none"
    doi = "10.0000/none"
    observed_unit = "cells"
    params = (
        ParamSpec("k", "1/day", 0.1, -10.0, 200.0, "linear", "rate"),
        ParamSpec("flag", "1", 1.0, 0.0, 10.0, "linear", "values >= 5 are refused"),
    )
    state_names = ("y",)
    state_units = ("cells",)
    rhs = staticmethod(_growth_rhs)
    initial_state = staticmethod(_growth_start)
    observe = staticmethod(_growth_observe)


def test_a_failing_subject_never_poisons_the_others():
    model = _Growth(rtol=1e-8, max_steps=2000)  # compared with exp(kt) to 1e-7 below
    table = pd.DataFrame(
        {
            "subject": [f"S{i}" for i in range(12)],
            "k": [0.1, 150.0, -0.2, 0.1, 0.3, 0.1, 0.1, 0.1, 0.2, 0.1, 0.1, 0.1],
            "flag": [1.0, 1.0, 1.0, 7.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        }
    )
    t = np.array([0.0, 1.0, 10.0])
    out = model.simulate_many(t, table)
    good = np.ones(12, dtype=bool)
    good[[1, 3]] = False  # overflow (k = 150 /day for 10 days) and a refused start
    np.testing.assert_allclose(out[good], np.exp(np.outer(table["k"][good], t)), rtol=1e-7)
    assert np.isnan(out[~good]).all()
    status = model._batch_kernel(t, model.param_matrix(table), np.empty((12, 3)))
    assert status[3] == 17 and status[1] != 0 and (status[good] == 0).all()
    with pytest.raises(ModelError, match="status 17"):
        model.simulate(t, {"flag": 7.0})


@numba.njit
def _fragile_start(p, y0):  # pragma: no cover - compiled
    y0[0] = 1.0 + 0.0 / (p[1] - 2.0)  # ZeroDivisionError when flag == 2
    return 0


@numba.njit
def _fragile_observe(y, p):  # pragma: no cover - compiled
    return y[0] + 0.0 / (p[1] - 3.0)  # ZeroDivisionError when flag == 3


class _Fragile(_Growth):
    """Exponential growth whose start and observation raise for some flags. doi:10.0000/none

    .. math:: y' = k y
    """

    name = "test_fragile"
    initial_state = staticmethod(_fragile_start)
    observe = staticmethod(_fragile_observe)


@pytest.mark.parametrize("parallel", [False, True])
def test_model_functions_that_raise_fail_only_their_subject(parallel):
    model = _Fragile()
    table = np.column_stack([np.full(12, 0.1), np.ones(12)])
    table[4, 1], table[9, 1] = 2.0, 3.0
    t = np.array([0.0, 1.0, 10.0])
    out = np.empty((12, 3))
    status = model._run(t, table, out, None, parallel=parallel)
    assert status[4] == status[9] == kernels.STATUS_MODEL_ERROR
    assert np.isnan(out[[4, 9]]).all()
    good = np.ones(12, dtype=bool)
    good[[4, 9]] = False
    assert (status[good] == 0).all()
    np.testing.assert_allclose(out[good], np.exp(np.outer(table[good, 0], t)), rtol=1e-7)


@numba.njit
def _doubling_derive(p):  # pragma: no cover - compiled
    if p[1] >= 5.0:
        return 23  # a model-specific refusal, status >= 10
    p[2] = math.log(2.0) / p[0] + 0.0 / (p[1] - 3.0)  # ZeroDivisionError when flag == 3
    return 0


@numba.njit
def _doubling_rhs(t, y, p, phase, dydt):  # pragma: no cover - compiled
    dydt[0] = p[2] * y[0]  # the derived rate, never recomputed here


class _Doubling(_Growth):
    r"""Exponential growth declared by its doubling time :math:`t_d`. doi:10.0000/none

    .. math:: y' = (\ln 2 / t_d)\, y
    """

    name = "test_doubling"
    params = (
        ParamSpec("doubling_time", "day", 2.0, 0.01, 100.0, "log", "doubling time"),
        ParamSpec("flag", "1", 1.0, 0.0, 10.0, "linear", "3 raises, values >= 5 are refused"),
    )
    derived_names = ("rate",)
    derive = staticmethod(_doubling_derive)
    rhs = staticmethod(_doubling_rhs)


@pytest.mark.parametrize("parallel", [False, True])
def test_derived_constants_are_computed_per_subject(parallel):
    """Each subject's kernels see its own derived constant; a refusal or a raise fails only it."""
    model = _Doubling(rtol=1e-10)
    doubling = np.linspace(0.5, 8.0, 12)
    table = np.column_stack([doubling, np.ones(12)])
    table[4, 1], table[9, 1] = 7.0, 3.0
    t = np.array([0.0, 1.0, 10.0])
    out = np.empty((12, 3))
    status = model._run(t, table, out, None, parallel=parallel)
    assert status[4] == 23 and status[9] == kernels.STATUS_MODEL_ERROR
    assert np.isnan(out[[4, 9]]).all()
    good = np.ones(12, dtype=bool)
    good[[4, 9]] = False
    assert (status[good] == 0).all()
    expected = 2.0 ** (np.outer(1.0 / doubling[good], t))
    np.testing.assert_allclose(out[good], expected, rtol=1e-8)


def test_kernel_vector_appends_the_derived_constants():
    model = _Doubling()
    np.testing.assert_allclose(model.kernel_vector({"doubling_time": 4.0}),
                               [4.0, 1.0, math.log(2.0) / 4.0])  # fmt: skip
    np.testing.assert_allclose(model.derivative(0.0, [3.0], {"doubling_time": 4.0}),
                               [3.0 * math.log(2.0) / 4.0])  # fmt: skip
    assert _Growth().kernel_vector().size == 2  # no derived constants: the parameters
    with pytest.raises(ModelError, match=r"derive its constants.*status 23"):
        model.kernel_vector({"flag": 6.0})


def test_parallel_blocks_equal_the_serial_kernel():
    """37 subjects split into uneven blocks of threads: identical states and levels."""
    model = _Growth(rtol=1e-9)
    table = np.column_stack([np.linspace(-0.5, 0.5, 37), np.ones(37)])
    t = np.linspace(0.0, 5.0, 11)
    results = []
    for parallel in (True, False):
        out, states = np.empty((37, 11)), np.empty((37, 11, 1))
        assert (model._run(t, table, out, states, parallel=parallel) == 0).all()
        results.append((out, states))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    np.testing.assert_allclose(results[0][0], np.exp(np.outer(table[:, 0], t)), rtol=1e-7)


def test_states_and_options_api():
    model = _Growth(rtol=1e-10, atol=1e-12)
    states = model.simulate_states([-1.0, 0.0, 2.0])
    assert np.isnan(states[0]).all()
    np.testing.assert_allclose(states[1:, 0], [1.0, math.exp(0.2)], rtol=1e-9)
    assert model.simulate([-1.0])[0] == 0.0
    # "auto": the 7(6) pair below rtol 1e-7, Tsitouras 5(4) from it up, both with switching
    assert model.method == "auto-vern7" and model.with_options(rtol=1e-6).method == "auto-tsit5"
    assert model.with_options(method="rodas4").method == "rodas4"
    assert model.with_options(method="dopri5").method == "dopri5"
    assert model.with_options(rtol=1e-6).options.atol == 1e-12
    np.testing.assert_allclose(model.derivative(0.0, [2.0]), [0.2])
    assert list(model.state_table["state"]) == ["y"]
    with pytest.raises(ModelError, match="shape"):
        model.derivative(0.0, [1.0, 2.0])
    assert model.simulate_many([1.0], np.empty((0, 2))).shape == (0, 1)


def test_ode_declarations_are_checked():
    base = {k: v for k, v in vars(_Growth).items() if not k.startswith("__") or k == "__doc__"}
    with pytest.raises(ModelError, match="state_units"):
        type("Bad", (ODEModel,), {**base, "state_units": ()})
    with pytest.raises(ModelError, match="duplicated state"):
        type("Bad", (ODEModel,), {**base, "state_names": ("y", "y"), "state_units": ("a", "a")})
    with pytest.raises(ModelError, match="breakpoints"):
        type("Bad", (ODEModel,), {**base, "max_breakpoints": 1})
    with pytest.raises(ModelError, match="default_atol"):
        type("Bad", (ODEModel,), {**base, "default_atol": (1e-9, 1e-9)})
    with pytest.raises(ModelError, match=r"numba\.njit"):
        type("Bad", (ODEModel,), {**base, "observe": staticmethod(lambda y, p: y[0])})
    with pytest.raises(ModelError, match="both `derived_names` and `derive`"):
        type("Bad", (ODEModel,), {**base, "derived_names": ("rate",)})
    with pytest.raises(ModelError, match="both `derived_names` and `derive`"):
        type("Bad", (ODEModel,), {**base, "derive": staticmethod(_doubling_derive)})
    with pytest.raises(ModelError, match="identifiers"):
        type("Bad", (ODEModel,), {**base, "derived_names": ("a rate",),
                                  "derive": staticmethod(_doubling_derive)})  # fmt: skip
