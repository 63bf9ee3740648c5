"""Response rates (Clopper–Pearson) and response status at landmark days."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cellkin import DataError
from cellkin._stats import clopper_pearson
from cellkin.outcomes import MONTH_DAYS, response_at, response_rates


@pytest.mark.parametrize("n", [1, 2, 5, 12, 40])
@pytest.mark.parametrize("confidence", [0.95, 0.90])
def test_clopper_pearson_matches_beta_quantiles(n, confidence):
    # independent implementation: the beta-quantile form of Clopper & Pearson (1934)
    alpha = 1 - confidence
    for k in range(n + 1):
        lower = 0.0 if k == 0 else stats.beta.ppf(alpha / 2, k, n - k + 1)
        upper = 1.0 if k == n else stats.beta.ppf(1 - alpha / 2, k + 1, n - k)
        np.testing.assert_allclose(clopper_pearson(k, n, confidence), (lower, upper), atol=1e-12)


@pytest.mark.parametrize("n", [1, 3, 6, 27])
def test_clopper_pearson_closed_forms_at_0_and_n(n):
    # k = 0: upper = 1 - (alpha/2)^(1/n); k = n: lower = (alpha/2)^(1/n)
    edge = 0.025 ** (1 / n)
    np.testing.assert_allclose(clopper_pearson(0, n), (0.0, 1 - edge), rtol=1e-12)
    np.testing.assert_allclose(clopper_pearson(n, n), (edge, 1.0), rtol=1e-12)


def test_clopper_pearson_edge_cases():
    assert all(np.isnan(clopper_pearson(0, 0)))
    with pytest.raises(ValueError, match="0 <= k <= n"):
        clopper_pearson(4, 3)
    with pytest.raises(ValueError, match="confidence"):
        clopper_pearson(1, 3, confidence=95)


def test_response_rates_hand_worked():
    bor = pd.DataFrame(
        {
            "subject": [f"S{i}" for i in range(10)],
            "dose_level": ["DL1"] * 3 + ["DL2"] * 7,
            "bor": ["PD", "SD", "NE", "CR", "PR", "PR", "SD", "CR", "PD", "NE"],
        }
    )
    out = response_rates(bor, by="dose_level").set_index("group")
    assert out.index.tolist() == ["DL1", "DL2", "all"]
    assert out["n"].tolist() == [3, 7, 10]
    assert out["n_responders"].tolist() == [0, 4, 4]
    assert out["n_cr"].tolist() == [0, 2, 2]
    np.testing.assert_allclose(out["orr"], [0, 4 / 7, 0.4])
    np.testing.assert_allclose(out["cr_rate"], [0, 2 / 7, 0.2])
    for group, k, n in (("DL1", 0, 3), ("DL2", 4, 7), ("all", 4, 10)):
        ci = stats.binomtest(k, n).proportion_ci(method="exact")
        np.testing.assert_allclose(
            out.loc[group, ["orr_ci_lower", "orr_ci_upper"]].astype(float), [ci.low, ci.high]
        )
    ci = stats.binomtest(2, 10).proportion_ci(confidence_level=0.9, method="exact")
    out90 = response_rates(bor, confidence=0.9).iloc[0]
    np.testing.assert_allclose(
        out90[["cr_ci_lower", "cr_ci_upper"]].astype(float), [ci.low, ci.high]
    )


def test_response_rates_rejects_bad_codes():
    with pytest.raises(DataError, match=r"'partial' for subject 'B'"):
        response_rates(pd.DataFrame({"subject": ["A", "B"], "bor": ["CR", "partial"]}))
    with pytest.raises(DataError, match="missing the column `bor`"):
        response_rates(pd.DataFrame({"best": ["CR"]}))
    with pytest.raises(DataError, match="`dose_level` is empty for subject 'B'"):
        response_rates(
            pd.DataFrame({"subject": ["A", "B"], "bor": ["CR", "PR"], "dose_level": [1, None]}),
            by="dose_level",
        )


def test_month_to_day_mapping_is_explicit():
    assert dict(MONTH_DAYS) == {1: 30, 2: 61, 3: 91, 6: 183, 12: 365}


def _timepoints():
    rows = [
        ("A", -7, True, None),
        ("A", 28, False, "PR"),
        ("A", 56, False, "PR"),
        ("A", 84, False, "PD"),
        ("A", 180, False, "SD"),  # after PD: the status stays PD
        ("B", -7, True, None),
        ("B", 40, False, "SD"),
        ("B", 91, False, "CR"),
        ("C", -3, True, None),
    ]
    return pd.DataFrame(rows, columns=["subject", "day", "baseline", "response"])


def test_response_at_landmarks_hand_worked():
    out = response_at(_timepoints())
    status = out.pivot(index="subject", columns="month", values="response")
    assert status.loc["A"].tolist() == ["PR", "PR", "PD", "PD", "PD"]
    assert status.loc["B"].tolist() == ["NE", "SD", "CR", "CR", "CR"]  # day 91 scan counts
    assert status.loc["C"].tolist() == ["NE"] * 5  # no post-baseline scan
    a = out[out["subject"] == "A"]
    assert a["assessment_day"].tolist() == [28.0, 56.0, 84.0, 84.0, 84.0]
    assert out["day"].unique().tolist() == [30.0, 61.0, 91.0, 183.0, 365.0]


def test_response_at_feeds_response_rates():
    out = response_rates(response_at(_timepoints()), by="day", response_column="response")
    at_91 = out.set_index("group").loc[91.0]
    assert (at_91["n"], at_91["n_cr"], at_91["n_responders"]) == (3, 1, 1)


def test_response_at_custom_days_from_lesions():
    lesions = pd.DataFrame(
        {
            "subject": "S1",
            "day": [-7.0, 28.0, 56.0],
            "lesion_id": "T1",
            "kind": "target",
            "diameter_mm": [50.0, 30.0, 45.0],
        }
    )
    out = response_at(lesions, days=[10, 28, 100])
    assert out["response"].tolist() == ["NE", "PR", "PD"]
    assert out["month"].isna().all()
    with pytest.raises(ValueError, match="days"):
        response_at(lesions, days=[])


def test_example_study_smoke():
    """On the bundled example study (when present): the generator's own RECIST self-check
    derives BOR with confirmation and no minimum SD duration, so ours must agree with it."""
    datasets = pytest.importorskip("cellkin.datasets")
    if not hasattr(datasets, "load_example"):
        pytest.skip("the example study is not available")
    from cellkin import outcomes

    study = datasets.load_example()
    subjects = study.subjects
    points = outcomes.recist_timepoints(study.lesions)
    bor = outcomes.best_overall_response(points, confirm=True, min_sd_days=0)
    merged = bor.merge(subjects[["subject", "bor", "dose_level"]], on="subject")
    assert (merged["bor_x"] == merged["bor_y"]).all()
    rates = outcomes.response_rates(merged.rename(columns={"bor_x": "bor"}), by="dose_level")
    assert rates["n"].iloc[-1] == len(subjects)
    assert len(outcomes.response_at(points)) == 5 * len(subjects)
    km = outcomes.kaplan_meier(subjects, "os", by="dose_level")
    assert km.landmarks().shape[0] == 5 * len(km.groups)
    assert outcomes.teae_table(study.adverse_events, subjects).incidence["n_any"].iloc[0] > 0
    assert outcomes.three_plus_three(subjects).mtd in set(subjects["dose_level"])
