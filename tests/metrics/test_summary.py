"""Study summaries of exposure metrics (geometric mean, geometric CV%, median, range)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cellkin.errors import DataError
from cellkin.metrics import summarize

METRICS = pd.DataFrame(
    {
        "subject": ["A", "B", "C", "D", "E"],
        "assay": "qpcr",
        "unit": "copies/ug",
        "auc_unit": "copies/ug*day",
        "cmax": [100.0, 400.0, 1600.0, 50.0, np.nan],
        "tmax": [7.0, 10.0, 14.0, 7.0, np.nan],
        "auc_0_28": [1e3, 2e3, 4e3, 8e3, 1.6e4],
    }
)
SUBJECTS = pd.DataFrame({"subject": list("ABCDE"), "dose_level": ["DL1"] * 2 + ["DL2"] * 3})


def test_geometric_statistics_match_their_definitions():
    table = summarize(METRICS, by=None, metrics=["cmax", "auc_0_28"]).set_index("metric")
    logs = np.log([100.0, 400.0, 1600.0, 50.0])
    cmax = table.loc["cmax"]
    assert cmax["n"] == 4 and cmax["n_missing"] == 1
    assert cmax["geo_mean"] == pytest.approx(np.exp(logs.mean()))
    assert cmax["geo_cv_pct"] == pytest.approx(100 * np.sqrt(np.exp(logs.var(ddof=1)) - 1))
    assert (cmax["median"], cmax["min"], cmax["max"]) == (250.0, 50.0, 1600.0)
    # 1e3·2^k for k = 0..4: geometric mean 4e3, SD of logs = ln2·sqrt(2.5).
    auc = table.loc["auc_0_28"]
    assert auc["geo_mean"] == pytest.approx(4e3)
    assert auc["geo_cv_pct"] == pytest.approx(100 * np.sqrt(np.expm1((np.log(2) ** 2) * 2.5)))
    assert auc["unit"] == "copies/ug*day" and cmax["unit"] == "copies/ug"


def test_times_get_median_and_range_only():
    row = summarize(METRICS, by=None, metrics=["tmax"]).iloc[0]
    assert row["median"] == 8.5 and (row["min"], row["max"]) == (7.0, 14.0)
    assert np.isnan(row["geo_mean"]) and np.isnan(row["geo_cv_pct"])
    assert row["unit"] == "day"


def test_grouping_through_the_subject_table():
    table = summarize(METRICS, subjects=SUBJECTS, metrics=["cmax"])
    assert table["dose_level"].tolist() == ["DL1", "DL2"]
    assert table["n"].tolist() == [2, 2]
    assert table.loc[1, "geo_mean"] == pytest.approx(np.sqrt(1600 * 50))


def test_default_metrics_and_errors():
    table = summarize(METRICS, by=None)
    assert {"cmax", "tmax"} <= set(table["metric"])
    with pytest.raises(DataError, match="pass `subjects=`"):
        summarize(METRICS, by="dose_level")
    with pytest.raises(DataError, match="not columns"):
        summarize(METRICS, by=None, metrics=["vz"])


def test_summaries_group_by_dose_level_carried_from_the_kinetics_table():
    from cellkin.metrics import nca

    kinetics = pd.DataFrame(
        {
            "subject": ["A"] * 3 + ["B"] * 3,
            "time": [1.0, 7.0, 28.0] * 2,
            "value": [10.0, 1000.0, 100.0, 20.0, 4000.0, 50.0],
            "assay": "qpcr",
            "unit": "copies/ug",
            "lloq": 5.0,
            "dose_level": ["DL1"] * 3 + ["DL2"] * 3,
        }
    )
    table = nca(kinetics)
    assert table["dose_level"].tolist() == ["DL1", "DL2"]
    summary = summarize(table, by="dose_level", metrics=["cmax"])
    np.testing.assert_allclose(summary["geo_mean"], [1000.0, 4000.0], rtol=1e-12)


def test_empty_metrics_table_gives_an_empty_summary_with_the_columns():
    from cellkin import load_example
    from cellkin.metrics import nca, summarize

    empty = nca(load_example().kinetics).iloc[:0]
    result = summarize(empty, by=None)
    assert result.empty
    assert {"assay", "metric", "unit", "n", "geo_mean", "median", "n_missing"} <= set(result)


def test_non_expanders_are_counted_with_zero_exposure():
    """Two all-BLQ (non-expander) profiles have Cmax = AUC = 0: they count in n, pull the
    median down, make the geometric mean 0 (PKNCA's geomean) and the geometric CV undefined."""
    from cellkin.metrics import nca

    blq = [True, True, True]
    kinetics = pd.DataFrame(
        {
            "subject": ["A"] * 3 + ["B"] * 3 + ["C"] * 3,
            "time": [1.0, 7.0, 28.0] * 3,
            "value": [10.0, 1000.0, 100.0] + [np.nan] * 6,
            "assay": "qpcr",
            "unit": "copies/ug",
            "lloq": 5.0,
            "blq": [False] * 3 + blq + blq,
        }
    )
    table = nca(kinetics)
    assert table["cmax"].tolist() == [1000.0, 0.0, 0.0]
    assert table.loc[1, "auc_0_28"] == 0.0 and table.loc[1, "clast"] == 0.0
    summary = summarize(table, by=None, metrics=["cmax", "auc_0_28"]).set_index("metric")
    cmax = summary.loc["cmax"]
    assert (cmax["n"], cmax["n_zero"], cmax["n_missing"]) == (3, 2, 0)
    assert cmax["median"] == 0.0 and cmax["mean"] == pytest.approx(1000 / 3)
    assert cmax["geo_mean"] == 0.0 and np.isnan(cmax["geo_cv_pct"])
