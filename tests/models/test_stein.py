"""Stein 2019 closed-form models against published numbers and independent references.

References used here:

* Stein et al. 2019 (doi:10.1002/psp4.12388), abstract and Table 1 typical values: doubling
  time 0.78 d, initial-decline t½ 4.3 d, terminal t½ ≈ 220 d (ln2/0.0032 = 216.6 d).
* Typical-patient integrals recomputed from the published closed form in
  ``shared/reference/ck-models-literature.md`` §1.4 (AUC0–28 1.72e5, AUC0–84 1.88e5 copies/µg·d,
  below 50 copies/µg at ≈ 426 d), consistent with the nlmixr2lib/PKNCA dense-grid AUC0–28
  = 172 000.
* SciPy ``solve_ivp`` (Radau, rtol 1e-12) on the ODE form of the model, integrated phase by
  phase, and ``scipy.integrate.quad`` for the AUCs.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad, solve_ivp

from cellkin import models
from cellkin.errors import ModelError

STEIN = models.get("stein2019")
STEIN_LAG = models.get("stein2019_lag")


def test_defaults_are_the_published_typical_values():
    assert STEIN.defaults == {
        "cmax": 24_000.0,
        "tmax": 9.3,
        "foldx": 3_900.0,
        "alpha": 0.16,
        "fb": 0.0079,
        "beta": 0.0032,
    }
    assert STEIN.param_names == ("cmax", "tmax", "foldx", "alpha", "fb", "beta")
    assert STEIN_LAG.param_names[-1] == "tlag"


def test_published_derived_quantities():
    assert STEIN.doubling_time() == pytest.approx(0.78, abs=0.005)
    half_lives = STEIN.half_lives()
    assert half_lives["fast"] == pytest.approx(4.3, abs=0.05)
    assert half_lives["terminal"] == pytest.approx(217, abs=0.5)


def test_published_typical_patient_auc_and_time_below_50():
    assert STEIN.auc(0, 28) == pytest.approx(1.72e5, rel=0.005)
    assert STEIN.auc(0, 84) == pytest.approx(1.88e5, rel=0.005)
    assert STEIN.auc(0, math.inf) == pytest.approx(2.35e5, rel=0.005)
    assert STEIN.time_to_level(50.0) == pytest.approx(426, abs=1.0)
    # Reference levels quoted in the notes: C(28) = 1374, C(84) = 149, C(365) = 61 copies/µg.
    np.testing.assert_allclose(STEIN.simulate([28, 84, 365]), [1374, 149, 61], rtol=0.01)


def test_lisocel_lag_variant_reproduces_published_means():
    """The simulated typical curve against the published population means (liso-cel,
    doi:10.1007/s40262-021-01039-5, abstract; shared/reference/ck-models-literature.md §2.9):
    lag 3.27 d, doubling time 0.755 d, Tmax 9.29 d, initial-decline t½ 5.00 d, terminal t½
    352 d. Each is read off the curve ``simulate`` draws — plateau, growth ratio, arg-max and
    log-slopes — not from the model's own closed-form methods."""
    grid = np.linspace(0.0, 20.0, 200_001)
    curve = STEIN_LAG.simulate(grid)
    plateau = grid[curve <= curve[0] * (1 + 1e-12)]
    assert plateau.max() == pytest.approx(3.27, abs=2e-4)  # lag: flat until then
    growth = STEIN_LAG.simulate([5.0, 6.0])
    assert 1.0 / np.log2(growth[1] / growth[0]) == pytest.approx(0.755, rel=1e-9)
    assert grid[np.argmax(curve)] == pytest.approx(9.29, abs=2e-4)
    late = STEIN_LAG.simulate([20_000.0, 20_001.0])  # only the slow phase is left
    assert np.log(2) / np.log(late[0] / late[1]) == pytest.approx(352.0, rel=1e-6)
    # just after Tmax: d ln C/dt = -((1 - FB)·α + FB·β); α from it with FB and the β above
    tmax, fb = 9.29, STEIN_LAG.defaults["fb"]
    after = STEIN_LAG.simulate([tmax + 1e-7, tmax + 2e-7])
    slope = -np.log(after[1] / after[0]) / 1e-7
    alpha = (slope - fb * np.log(late[0] / late[1])) / (1 - fb)
    assert np.log(2) / alpha == pytest.approx(5.00, rel=1e-5)


def _ode_reference(params: dict[str, float], t_eval: np.ndarray, tlag: float = 0.0):
    """Integrate E' = rho E (after the lag), then E' = -alpha E, M' = FB(alpha-beta)E - beta M."""
    c0 = params["cmax"] / params["foldx"]
    rho = math.log(params["foldx"]) / (params["tmax"] - tlag)
    k = params["fb"] * (params["alpha"] - params["beta"])
    out = np.empty_like(t_eval)
    out[t_eval < tlag] = c0
    grow = (t_eval >= tlag) & (t_eval < params["tmax"])
    first = solve_ivp(
        lambda t, y: [rho * y[0]],
        (tlag, params["tmax"]),
        [c0],
        method="Radau",
        rtol=1e-12,
        atol=1e-12,
        dense_output=True,
    )
    out[grow] = first.sol(t_eval[grow])[0]
    e_tmax = first.y[0, -1]
    decline = t_eval >= params["tmax"]
    second = solve_ivp(
        lambda t, y: [-params["alpha"] * y[0], k * y[0] - params["beta"] * y[1]],
        (params["tmax"], t_eval.max()),
        [e_tmax, 0.0],
        method="Radau",
        rtol=1e-12,
        atol=1e-16,
        t_eval=t_eval[decline],
    )
    out[decline] = second.y.sum(axis=0)
    return out


@pytest.mark.parametrize(
    "params",
    [
        STEIN.defaults,
        {"cmax": 500.0, "tmax": 14.0, "foldx": 40.0, "alpha": 0.5, "fb": 0.05, "beta": 0.02},
        {"cmax": 1e5, "tmax": 6.0, "foldx": 2e4, "alpha": 0.08, "fb": 0.3, "beta": 0.001},
    ],
)
def test_closed_form_matches_scipy_radau_on_the_ode_form(params):
    t = np.concatenate([np.linspace(0, params["tmax"] * 0.999, 40), np.geomspace(10, 700, 60)])
    t = np.sort(np.append(t, params["tmax"]))
    np.testing.assert_allclose(STEIN.simulate(t, params), _ode_reference(params, t), rtol=1e-8)


def test_lag_closed_form_matches_scipy_radau():
    params = STEIN_LAG.defaults
    t = np.sort(np.concatenate([[0.0, 1.0, 3.0], np.linspace(3.3, 9.2, 20), [9.29, 30, 365]]))
    expected = _ode_reference(params, t, tlag=params["tlag"])
    np.testing.assert_allclose(STEIN_LAG.simulate(t, params), expected, rtol=1e-8)


@pytest.mark.parametrize("model", [STEIN, STEIN_LAG], ids=lambda m: m.name)
@pytest.mark.parametrize("interval", [(0, 28), (0, 84), (3, 9), (5, 400), (20, 21), (0, 2)])
def test_auc_matches_numerical_quadrature(model, interval):
    params = model.defaults
    breaks = [b for b in (params.get("tlag", 0.0), params["tmax"]) if interval[0] < b < interval[1]]
    expected, _ = quad(
        lambda t: model.simulate([t])[0],
        *interval,
        points=breaks or None,
        epsabs=0,
        epsrel=1e-11,
        limit=200,
    )
    assert model.auc(*interval) == pytest.approx(expected, rel=1e-9)


def test_auc_is_additive_and_monotone():
    assert STEIN.auc(0, 28) + STEIN.auc(28, 84) == pytest.approx(STEIN.auc(0, 84), rel=1e-12)
    ends = [1, 5, 9.3, 20, 84, 365]
    values = [STEIN.auc(0, end) for end in ends]
    assert all(np.diff(values) > 0)
    assert STEIN.auc(-5, 0) == 0.0
    with pytest.raises(ModelError, match="start <= end"):
        STEIN.auc(28, 0)


@pytest.mark.parametrize("level", [20_000.0, 1_000.0, 50.0, 1.0])
def test_time_to_level_is_the_root_of_the_curve(level):
    t = STEIN.time_to_level(level)
    assert t > STEIN.defaults["tmax"]
    assert STEIN.simulate([t])[0] == pytest.approx(level, rel=1e-9)
    assert STEIN.simulate([t * (1 - 1e-6)])[0] > level


def test_time_to_level_edge_cases():
    assert STEIN.time_to_level(1e6) == STEIN.defaults["tmax"]
    assert STEIN.time_to_level(0.0) == math.inf


def test_invariants_positivity_continuity_and_monotone_phases():
    t = np.linspace(0, 1000, 20001)
    level = STEIN.simulate(t)
    assert (level > 0).all()
    tmax = STEIN.defaults["tmax"]
    assert (np.diff(level[t < tmax]) > 0).all()
    assert (np.diff(level[t >= tmax]) < 0).all()
    left = STEIN.simulate([tmax * (1 - 1e-12)])[0]
    assert left == pytest.approx(STEIN.defaults["cmax"], rel=1e-9)
    assert STEIN.simulate([-3.0, -0.01])[0] == 0.0


def test_simulate_many_equals_a_loop_of_simulate():
    rng = np.random.default_rng(7)
    table = pd.DataFrame(
        {
            "subject": [f"S{i}" for i in range(25)],
            "cmax": rng.uniform(100, 1e5, 25),
            "tmax": rng.uniform(5, 20, 25),
            "foldx": rng.uniform(10, 1e4, 25),
            "alpha": rng.uniform(0.05, 0.5, 25),
            "fb": rng.uniform(0.001, 0.2, 25),
            "beta": rng.uniform(0.001, 0.02, 25),
        }
    )
    t = np.array([0, 1, 4, 7, 14, 28, 56, 84, 180, 365.0])
    batch = STEIN.simulate_many(t, table)
    assert batch.shape == (25, t.size)
    for i, row in table.drop(columns="subject").iterrows():
        np.testing.assert_array_equal(batch[i], STEIN.simulate(t, row.to_dict()))
    np.testing.assert_array_equal(STEIN.simulate_many(t, table.iloc[:, 1:].to_numpy()), batch)


def test_a_failing_subject_does_not_poison_the_population():
    table = pd.DataFrame([STEIN_LAG.defaults] * 3)
    table.loc[1, "tlag"] = 20.0  # after tmax: invalid for this subject only
    out = STEIN_LAG.simulate_many([1.0, 10.0], table)
    assert np.isnan(out[1]).all()
    assert np.isfinite(out[[0, 2]]).all()
    with pytest.raises(ModelError, match="tlag"):
        STEIN_LAG.auc(0, 28, {"tlag": 20.0})
    with pytest.raises(ModelError, match="status 1"):
        STEIN_LAG.simulate([1.0], {"tlag": 20.0})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"cmax": -5.0}, r"`cmax` = -5.0 .* outside its bounds"),
        ({"fb": 1.5}, r"`fb` = 1.5"),
        ({"alpha": float("nan")}, r"`alpha` = nan"),
        ({"kel": 0.1}, r"no parameter\(s\) \['kel'\]"),
    ],
)
def test_bad_parameters_raise_model_error_naming_the_parameter(params, message):
    with pytest.raises(ModelError, match=message):
        STEIN.simulate([1.0], params)


def test_bad_parameter_table_names_the_subject():
    table = pd.DataFrame([STEIN.defaults] * 2).assign(subject=["A", "B"])
    table.loc[1, "tmax"] = 0.0
    with pytest.raises(ModelError, match=r"`tmax` = 0.0 \(subject 'B'"):
        STEIN.simulate_many([1.0], table)
    with pytest.raises(ModelError, match=r"lacks column\(s\) \['beta'\]"):
        STEIN.simulate_many([1.0], table.drop(columns="beta"))
    with pytest.raises(ModelError, match=r"shape \(n_subjects, 6\)"):
        STEIN.simulate_many([1.0], np.ones((2, 5)))


def test_population_bounds_check_finds_every_kind_of_bad_value():
    """The compiled one-pass check against the plain NumPy rule (finite, lower ≤ x ≤ upper):
    values exactly on a bound pass; NaN, ±inf and values just outside fail, wherever they
    sit in a large table, and the error names the first bad row of the first bad column."""
    rng = np.random.default_rng(7)
    lower = np.array([spec.lower for spec in STEIN.params])
    upper = np.array([spec.upper for spec in STEIN.params])
    good = np.exp(rng.uniform(np.log(lower), np.log(np.minimum(upper, 1e6)), size=(20_000, 6)))
    good[0], good[1] = lower, upper  # on the bounds: allowed
    STEIN.param_matrix(good)
    for column, bad in [(0, np.nan), (1, np.inf), (2, -np.inf), (3, np.nextafter(upper[3], 9e9)),
                        (5, np.nextafter(lower[5], 0.0))]:  # fmt: skip
        table = good.copy()
        table[[19_990, 15_000], column] = bad
        assert not (np.isfinite(table) & (table >= lower) & (table <= upper)).all()
        with pytest.raises(
            ModelError, match=rf"`{STEIN.param_names[column]}` .*row 15000, 2 value"
        ):
            STEIN.simulate_many([1.0], table)


def test_bad_times_raise():
    with pytest.raises(ModelError, match="finite"):
        STEIN.simulate([1.0, np.inf])
    with pytest.raises(ModelError, match="1-D"):
        STEIN.simulate(np.ones((2, 2)))


@pytest.mark.parametrize("model", [STEIN, STEIN_LAG], ids=lambda m: m.name)
def test_level_gradient_matches_central_differences(model):
    """Away from the kinks (tlag, Tmax) the analytic ∂ln C/∂θ of the level function
    (capability 7) equals central differences of ``ln simulate``."""
    kinetic = np.array(list(model.defaults.values()))
    t = np.array([0.5, 2.0, 4.0, 8.0, 12.0, 30.0, 200.0])
    levels, analytic = model.levels(t, gradient=True)
    np.testing.assert_allclose(levels, model.simulate(t), rtol=1e-15)
    for j, name in enumerate(model.param_names):
        step = 1e-6 * kinetic[j]
        up = dict(model.defaults, **{name: kinetic[j] + step})
        down = dict(model.defaults, **{name: kinetic[j] - step})
        numeric = (np.log(model.simulate(t, up)) - np.log(model.simulate(t, down))) / (2 * step)
        np.testing.assert_allclose(analytic[:, j], numeric, rtol=1e-5, atol=1e-7, err_msg=name)


def test_the_stein_models_declare_their_capabilities():
    for model in (STEIN, STEIN_LAG):
        assert model.capabilities == {"levels", "level_gradient", "metrics", "kink_time"}
        assert model.kink_time_parameter == "tmax"
    assert models.get("kimmel2021").capabilities == frozenset()


@pytest.mark.slow
@pytest.mark.parametrize("model", [STEIN, STEIN_LAG], ids=lambda m: m.name)
def test_closed_form_metrics_match_quadrature_and_root_finding(model):
    """The metrics capability (capability 8) over random parameter vectors: AUCs against
    ``scipy.integrate.quad`` of the simulated curve, the time to a level against ``brentq``
    on the simulated curve, Cmax/Tmax and the rate constants against the parameters."""
    from scipy.optimize import brentq

    rng = np.random.default_rng(5)
    intervals = np.array([[0.0, 28.0], [3.0, 84.0]])
    defaults = np.array(list(model.defaults.values()))
    for _ in range(12):
        p = defaults * np.exp(rng.normal(0.0, 0.5, defaults.size))
        p[4] = min(p[4], 0.5)  # fb
        if p.size > 6:
            p[6] = min(p[6], 0.5 * p[1])  # tlag before tmax
        params = dict(zip(model.param_names, p, strict=True))
        out = np.empty(intervals.shape[0] + 7)
        assert model.metrics_kernel(p, intervals, 50.0, out) == 0
        assert out[0] == params["cmax"] and out[1] == params["tmax"]
        kinks = [params.get("tlag", 0.0), params["tmax"]]

        def level(t, params=params):
            return model.simulate([t], params)[0]

        for q, (a, b) in enumerate(intervals):
            points = [k for k in kinks if a < k < b] or None
            expected, _ = quad(level, a, b, points=points, epsabs=0, epsrel=1e-11, limit=400)
            assert out[2 + q] == pytest.approx(expected, rel=1e-8)
        rise, _ = quad(level, 0.0, params["tmax"], points=kinks[:1] if kinks[0] > 0 else None,
                       epsabs=0, epsrel=1e-11, limit=400)  # fmt: skip
        tail, _ = quad(level, params["tmax"], np.inf, epsabs=0, epsrel=1e-10, limit=400)
        assert out[4] == pytest.approx(rise + tail, rel=1e-7)  # AUC∞
        rho = math.log(params["foldx"]) / (params["tmax"] - params.get("tlag", 0.0))
        assert out[5] == pytest.approx(math.log(2) / rho, rel=1e-12)
        assert out[6] == pytest.approx(math.log(2) / params["alpha"], rel=1e-12)
        assert out[7] == pytest.approx(math.log(2) / params["beta"], rel=1e-12)
        root = brentq(lambda t, params=params: model.simulate([t], params)[0] - 50.0,
                      params["tmax"], 1e6, xtol=1e-12, rtol=1e-13)  # fmt: skip
        assert out[8] == pytest.approx(root, rel=1e-9)
