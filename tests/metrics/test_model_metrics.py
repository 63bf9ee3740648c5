"""Model-based metrics say when they are extrapolated, and censor at a horizon (issue 15).

Independent references: the Stein 2019 closed forms in ``cellkin.models`` (``auc``,
``time_to_level``; checked against ``scipy.integrate.quad`` and the published typical values
in ``tests/models/test_stein.py``) and the model's curve written out here (its log-slope) —
the metric code under test computes the flags with its own grid or kernel calls.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from cellkin import models
from cellkin.errors import IdentifiabilityWarning
from cellkin.fit import fit
from cellkin.metrics import model_metrics
from cellkin.simulate import sample_trial

STEIN = models.get("stein2019")
RICH = [-1, 1, 2, 4, 7, 9, 11, 14, 17, 21, 28, 35, 42, 56, 70, 84, 112, 140, 180]
FOUR_WEEKS = [1, 2, 4, 7, 9, 11, 14, 17, 21, 28]
TRUTH = {"cmax": 5000.0, "tmax": 10.0, "foldx": 300.0, "alpha": 0.2, "fb": 0.02, "beta": 0.01}


def _fit(schedule, *, lloq=1.0, sigma=0.3, seed=1, **options):
    table = pd.DataFrame([{"subject": "S1", **TRUTH}])
    rows = sample_trial("stein2019", table, schedule, lloq=lloq, sigma=sigma, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IdentifiabilityWarning)
        return fit(rows, n_starts=2, **options)


def _log_slope(params: dict[str, float], t: float) -> float:
    """−d ln C/dt of the Stein curve after Tmax, written out."""
    tau = t - params["tmax"]
    fb, alpha, beta = params["fb"], params["alpha"], params["beta"]
    fast, slow = (1 - fb) * math.exp(-alpha * tau), fb * math.exp(-beta * tau)
    return (alpha * fast + beta * slow) / (fast + slow)


def _share_outside(params, start, end, first, last) -> float:
    total = STEIN.auc(start, end, params)
    inside = STEIN.auc(max(start, first), min(end, last), params) if last > first else 0.0
    return 1 - inside / total


@pytest.fixture(scope="module")
def rich():
    return _fit(RICH)


@pytest.fixture(scope="module")
def four_weeks():
    return _fit(FOUR_WEEKS)


def test_horizon_censors_times_beyond_twice_the_last_sample(four_weeks):
    row = four_weeks.metrics(n_draws=200).iloc[0]
    params = four_weeks.kinetic_params
    assert row["horizon"] == 2 * 28
    tbb = STEIN.time_to_level(row["tbb_threshold"], params)
    assert tbb > 56  # the reference: the fitted curve returns long after the horizon
    assert row["time_back_to_baseline"] == 56 and row["time_back_to_baseline_censored"]
    assert row["time_back_to_baseline_ci_upper"] <= 56
    terminal = math.log(2) / params["beta"]
    assert row["half_life_terminal_censored"] == (terminal > 56)
    assert row["half_life_terminal"] == pytest.approx(min(terminal, 56), rel=1e-12)
    assert row["half_life_fast"] == pytest.approx(math.log(2) / params["alpha"], rel=1e-12)
    assert not row["half_life_fast_censored"]
    assert "censored at the horizon (56 d)" in row["exclude_reason"]


def test_a_declared_horizon_and_an_uncensored_return(four_weeks):
    row = model_metrics(four_weeks, horizon=1e6, n_draws=0).iloc[0]
    tbb = STEIN.time_to_level(row["tbb_threshold"], four_weeks.kinetic_params)
    assert row["time_back_to_baseline"] == pytest.approx(tbb, rel=1e-9)
    assert not row["time_back_to_baseline_censored"] and row["horizon"] == 1e6
    assert row["time_back_to_baseline_extrapolated"]  # beyond the last sample, day 28


def test_a_return_between_the_samples_is_neither_censored_nor_extrapolated():
    """LLOQ 50: the curve falls below it near day 80, with BLQ samples after."""
    result = _fit(RICH, lloq=50.0)
    row = result.metrics(n_draws=0).iloc[0]
    tbb = STEIN.time_to_level(row["tbb_threshold"], result.kinetic_params)
    assert tbb < 180 and row["time_back_to_baseline"] == pytest.approx(tbb, rel=1e-9)
    assert not row["time_back_to_baseline_censored"]
    assert not row["time_back_to_baseline_extrapolated"]


def test_extrapolation_flags_of_a_rich_profile_follow_their_rules(rich):
    row = rich.metrics(n_draws=0).iloc[0]
    params = rich.kinetic_params
    data = rich.data[(rich.data["time"] >= 0) & ~rich.data["blq"]]
    first, last = data["time"].min(), data["time"].max()
    assert first < params["tmax"] < last
    assert not row["cmax_extrapolated"] and not row["tmax_extrapolated"]
    assert not row["doubling_time_extrapolated"] and not row["half_life_fast_extrapolated"]
    for name, (start, end) in {"auc_0_28": (0, 28), "auc_0_84": (0, 84),
                               "auc_inf": (0, np.inf)}.items():  # fmt: skip
        share = _share_outside(params, start, end, first, last)
        assert row[f"{name}_extrapolated"] == (share > 0.2), (name, share)
    local = _log_slope(params, last)
    assert row["half_life_terminal_extrapolated"] == (local > 2 * params["beta"])


def test_short_follow_up_extrapolates_the_late_metrics(four_weeks):
    row = four_weeks.metrics(n_draws=0).iloc[0]
    params = four_weeks.kinetic_params
    shares = {
        name: _share_outside(params, 0, end, 1, 28)
        for name, end in (("auc_0_28", 28), ("auc_0_84", 84), ("auc_inf", np.inf))
    }
    for name, share in shares.items():  # over 20% of the area after day 28, or not
        assert row[f"{name}_extrapolated"] == (share > 0.2), (name, share)
    assert shares["auc_0_28"] < 0.2
    assert row["half_life_terminal_extrapolated"] == (_log_slope(params, 28) > 2 * params["beta"])
    assert row["time_back_to_baseline_extrapolated"]  # censored at the horizon, after day 28
    assert "extrapolated beyond the quantified samples" in row["exclude_reason"]


def test_a_profile_without_the_rise_or_the_decline():
    after = _fit([14, 21, 28, 35, 42, 56, 70, 84]).metrics(n_draws=0).iloc[0]
    assert after["tmax"] < 21  # at most one sample (day 14) up to the model's peak
    assert after["doubling_time_extrapolated"] and not after["half_life_fast_extrapolated"]
    before = _fit([1, 2, 3, 4, 5, 6, 7, 8]).metrics(n_draws=0).iloc[0]
    assert before["tmax"] > 7  # at most one sample (day 8) from the model's peak on
    assert before["half_life_fast_extrapolated"] and not before["doubling_time_extrapolated"]
    assert before["cmax_extrapolated"] == (before["tmax"] > 8 + 1e-3)


def test_rows_carry_the_fits_verdict_and_reason(rich, four_weeks):
    table = model_metrics({"a": rich, "b": four_weeks.__class__(
        **{**four_weeks.__dict__, "subject": "S2"})}, n_draws=0)  # fmt: skip
    for result, row in zip((rich, four_weeks), table.itertuples(), strict=True):
        assert row.reliable == result.reliable
        assert row.issues == ", ".join(result.issue_codes)
    unreliable = _fit([14, 21, 28, 35, 42, 56, 70, 84])
    row = unreliable.metrics(n_draws=0).iloc[0]
    assert not row["reliable"] and "covariance_singular" in row["issues"]
    assert "unreliable fit: " in row["exclude_reason"]
    assert row["exclude_reason"].count("covariance_singular") == 1
