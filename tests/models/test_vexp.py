"""The vectorisable exponential of the closed-form kernels against NumPy's ``exp``.

Reference: ``numpy.exp`` (the C library's correctly rounded-to-1-ulp exponential). The
Stein kernel built on it is checked against the hand-written formula in ``test_stein.py``
and ``test_conformance.py``.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from cellkin.models._vexp import vexp

ULP = np.finfo(float).eps  # 2.2e-16


@numba.njit(fastmath={"contract"})
def _vexp_all(x, out):  # pragma: no cover - compiled
    for i in range(x.shape[0]):
        out[i] = vexp(x[i])


def _evaluate(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    _vexp_all(np.ascontiguousarray(x, dtype=float), out)
    return out


def test_within_one_ulp_over_the_whole_normal_range():
    rng = np.random.default_rng(2026)
    x = np.concatenate([
        rng.uniform(-708.0, 709.0, 200_000),  # the whole domain
        rng.uniform(-40.0, 20.0, 200_000),  # where kinetic exponents live
        np.linspace(-1.0, 1.0, 20_001),  # around 0, where r = x
        np.arange(-1000, 1001) * np.log(2.0),  # the k boundaries of the range reduction
    ])  # fmt: skip
    x = x[(x > -708.3) & (x <= 709.0)]
    relative = np.abs(_evaluate(x) / np.exp(x) - 1.0)
    assert relative.max() <= 1.5 * ULP


@pytest.mark.parametrize(
    ("x", "expected"),
    [(0.0, 1.0), (1.0, np.e), (-1.0, 1 / np.e), (np.log(2.0) * 10, 1024.0), (-800.0, 0.0)],
)
def test_exact_points_and_the_underflow_side(x, expected):
    assert _evaluate(np.array([x]))[0] == pytest.approx(expected, rel=2 * ULP, abs=0.0)


def test_below_the_normal_range_is_zero_and_above_is_capped():
    values = _evaluate(np.array([-708.3, -745.0, -1e6, 709.0, 710.0]))
    np.testing.assert_array_equal(values[:3], 0.0)  # true values < 2.3e-308
    assert values[3] == pytest.approx(np.exp(709.0), rel=2 * ULP)
    assert values[4] == values[3]
