"""Figures that need nominal times on tables without them (issue #17 item 2): actual days are
binned into documented windows and the figure says so (before, a zig-zag mean at every actual
day, and a caption saying "at each nominal day")."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest

from cellkin.plot import spaghetti

matplotlib.use("Agg")


def _table(nominal: bool) -> pd.DataFrame:
    """4 subjects sampled around days 7, 14 and 28 (actual days jittered by up to 1.5 d)."""
    rng = np.random.default_rng(7)
    rows = []
    for k in range(4):
        for day, level in ((7, 2000.0), (14, 800.0), (28, 200.0)):
            rows.append((f"S{k}", day + rng.uniform(-1.5, 1.5), level * (1 + k / 10), day))
    frame = pd.DataFrame(rows, columns=["subject", "time", "value", "nominal_time"])
    frame = frame.assign(assay="qpcr", unit="copies/ug", lloq=50.0, blq=False)
    return frame if nominal else frame.drop(columns="nominal_time")


def _means(ax) -> tuple[np.ndarray, np.ndarray]:
    line = ax.containers[0].lines[0]
    return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)


@pytest.mark.parametrize("nominal", [True, False])
def test_geometric_means_sit_at_the_visit_days(nominal):
    from matplotlib.figure import Figure

    ax = spaghetti(_table(nominal), ax=Figure().add_subplot(), by=None)
    days, means = _means(ax)
    assert days.tolist() == [7.0, 14.0, 28.0]
    expected = [math.exp(np.mean(np.log(level * (1 + np.arange(4) / 10)))) for level in
                (2000.0, 800.0, 200.0)]  # fmt: skip
    np.testing.assert_allclose(means, expected, rtol=1e-12)
    texts = [t.get_text() for t in ax.texts]
    assert any("binned into windows" in t for t in texts) is (not nominal)


def test_window_edges_are_the_log_midpoints():
    """Day 7's window is (sqrt(5·8) − 1, sqrt(8·11) − 1] = (5.32, 8.38] on log(1 + t)."""
    from matplotlib.figure import Figure

    low, high = math.sqrt(40) - 1, math.sqrt(88) - 1
    times = [low - 1e-6, low + 1e-6, high - 1e-6, high + 1e-6, -2.0]
    table = pd.DataFrame({"subject": [f"S{k}" for k in range(5)], "time": times,
                          "value": [100.0, 200.0, 300.0, 400.0, 500.0], "assay": "qpcr",
                          "unit": "copies/ug", "lloq": 50.0, "blq": False})  # fmt: skip
    days, _ = _means(spaghetti(table, ax=Figure().add_subplot(), by=None))
    assert days.tolist() == [-1.0, 4.0, 7.0, 10.0]
