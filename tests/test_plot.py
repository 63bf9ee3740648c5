"""Study figures (cellkin.plot): what is drawn equals the inputs and independent computations."""

from __future__ import annotations

import ast
import dataclasses
import math
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

import cellkin
from cellkin import fit_all, plot
from cellkin.errors import DataError, FitError, OptionError
from cellkin.models import get as get_model
from cellkin.simulate import sample_trial, virtual_population

# KD025-105 has no quantifiable qPCR sample: a failure row of the batch. (KD025-104 replaced
# KD025-101, whose 5 quantified samples for 7 free parameters are now refused, issue 15.)
SUBJECTS = ["KD025-104", "KD025-105", "KD025-106", "KD025-109"]
STEIN = get_model("stein2019")


@pytest.fixture(scope="module")
def study():
    return cellkin.load_example()


@pytest.fixture(scope="module")
def batch(study):
    return fit_all(study.kinetics, "stein2019", subjects=SUBJECTS, n_jobs=1, progress=False)


@pytest.fixture(scope="module")
def converged(batch):
    """The fits the optimiser flagged as converged (what the diagnostics draw)."""
    results = {s: r for s, r in batch.results.items() if r.success}
    assert results, batch.failures
    return results


@pytest.fixture(scope="module")
def fitted(batch):
    """Every fitted subject, flagged converged: figure tests independent of optimiser flags."""
    return {s: dataclasses.replace(r, success=True) for s, r in batch.results.items()}


@pytest.fixture
def ax():
    fig, axes = plt.subplots()
    yield axes
    plt.close(fig)


def _line(ax, label):
    found = [line for line in ax.get_lines() if line.get_label() == label]
    assert len(found) == 1, [line.get_label() for line in ax.get_lines()]
    return found[0]


def _with_success(result, success):
    return dataclasses.replace(result, success=success)


def _fake_fits(template, table, sigma):
    """FitResults whose estimates are the given parameter rows (no estimation error)."""
    values = table.assign(sigma_qpcr=sigma)[list(template.params["parameter"])].to_numpy()
    return {
        subject: dataclasses.replace(
            template, subject=subject, params=template.params.assign(estimate=row)
        )
        for subject, row in zip(table["subject"], values, strict=True)
    }


# ----------------------------------------------------------------------------- individual fits


def test_individual_fits_one_panel_per_subject(batch, tmp_path):
    assert batch.counts["failed"] == 1 and batch.counts["fitted"] == 3
    before = plt.get_fignums()
    fig = plot.individual_fits(batch, ncols=3)
    assert isinstance(fig, Figure) and plt.get_fignums() == before  # no pyplot state
    visible = [a for a in fig.axes if a.get_visible()]
    assert len(fig.axes) == 6 and len(visible) == len(SUBJECTS)
    flagged = {s for s, r in batch.results.items() if not r.success}
    unreliable = {s for s, r in batch.results.items() if r.success and not r.reliable}
    titles = [f"{s} (not converged)" if s in flagged else f"{s} (unreliable)"
              if s in unreliable else s for s in SUBJECTS]  # fmt: skip
    assert [a.get_title() for a in visible] == titles
    failed = visible[SUBJECTS.index("KD025-105")]
    assert any("no fit" in t.get_text() for t in failed.texts)
    panel = visible[SUBJECTS.index("KD025-109")]
    assert panel.get_yscale() == "log"
    rows = batch.results["KD025-109"].data
    observed = _line(panel, "qpcr observed (copies/ug)")
    quantified = rows[~rows["blq"]]
    np.testing.assert_array_equal(observed.get_xdata(), quantified["time"])
    np.testing.assert_array_equal(observed.get_ydata(), quantified["value"])
    blq = _line(panel, "qpcr BLQ (at LLOQ)")
    assert blq.get_marker() == "v" and blq.get_markerfacecolor() == "none"
    np.testing.assert_array_equal(blq.get_ydata(), rows.loc[rows["blq"], "lloq"])
    assert fig.legends  # one legend for the figure
    fig.savefig(tmp_path / "grid.png", dpi=40)


def test_individual_fits_options_and_errors(batch, fitted):
    fig = Figure()
    mapping = {s: fitted[s] for s in ("KD025-106", "KD025-104")}
    assert plot.individual_fits(mapping, fig=fig, ncols=3, sharey=False) is fig
    marked = [f"{s} (unreliable)" if not fitted[s].reliable else s for s in mapping]
    assert [a.get_title() for a in fig.axes if a.get_visible()] == marked
    chosen = plot.individual_fits(fitted, subjects=["KD025-109"])
    marked = "" if fitted["KD025-109"].reliable else " (unreliable)"
    assert [a.get_title() for a in chosen.axes] == [f"KD025-109{marked}"]
    not_converged = {"KD025-104": _with_success(fitted["KD025-104"], False)}
    titled = plot.individual_fits(not_converged).axes[0]
    assert titled.get_title() == "KD025-104 (not converged)"
    with pytest.raises(DataError, match="no fit for subject"):
        plot.individual_fits(batch, subjects=["nobody"])
    with pytest.raises(DataError, match="`fits` must be"):
        plot.individual_fits([1, 2])


# ----------------------------------------------------------------------------- spaghetti


def test_spaghetti_profiles_and_geometric_mean(study, ax, tmp_path):
    kinetics, subjects = study.kinetics, study.subjects
    assert plot.spaghetti(kinetics, subjects, ax=ax) is ax
    assert ax.get_yscale() == "log" and "copies/ug" in ax.get_ylabel()
    qpcr = kinetics[kinetics["assay"] == "qpcr"]
    one = qpcr[qpcr["subject"] == "KD025-109"].sort_values("time")
    (line,) = [ln for ln in ax.get_lines() if ln.get_gid() == "subject:KD025-109"]
    np.testing.assert_array_equal(line.get_xdata(), one["time"])
    np.testing.assert_array_equal(line.get_ydata(), one["value"].where(~one["blq"], one["lloq"]))
    dl1 = subjects.loc[subjects["dose_level"] == "DL1", "subject"]
    colours = {ln.get_color() for ln in ax.get_lines() if ln.get_gid() in
               {f"subject:{s}" for s in dl1}}  # fmt: skip
    assert len(colours) == 1

    # Independent summary: scipy gmean and the t interval of the logs, BLQ as LLOQ/2.
    (container,) = [c for c in ax.containers if c.get_label() == "DL2: geometric mean (95% CI)"]
    mean_line = container.lines[0]
    rows = qpcr[qpcr["subject"].isin(subjects.loc[subjects["dose_level"] == "DL2", "subject"])]
    level = rows["value"].where(~rows["blq"], rows["lloq"] / 2)
    at_day_14 = level[rows["nominal_time"] == 14.0].to_numpy()
    logs = np.log(at_day_14)
    low, high = np.exp(stats.t.interval(0.95, logs.size - 1, logs.mean(), stats.sem(logs)))
    k = list(mean_line.get_xdata()).index(14.0)
    assert mean_line.get_ydata()[k] == pytest.approx(stats.gmean(at_day_14), rel=1e-12)
    segment = container.lines[2][0].get_segments()[k]
    np.testing.assert_allclose(sorted(segment[:, 1]), [low, high], rtol=1e-10)
    np.testing.assert_array_equal(mean_line.get_xdata(), np.unique(rows["nominal_time"]))
    ax.figure.savefig(tmp_path / "spaghetti.png", dpi=40)


def test_spaghetti_one_group_and_errors(study, ax):
    plot.spaghetti(study.kinetics, assay="flow", ax=ax, log=False)
    assert ax.get_yscale() == "linear" and "cells/uL" in ax.get_ylabel()
    assert [c.get_label() for c in ax.containers] == ["all subjects: geometric mean (95% CI)"]
    with pytest.raises(DataError, match="no samples of assay 'elisa'"):
        plot.spaghetti(study.kinetics, assay="elisa", ax=ax)
    with pytest.raises(OptionError, match="`summary`"):
        plot.spaghetti(study.kinetics, summary="median", ax=ax)
    with pytest.raises(OptionError, match="`confidence`"):
        plot.spaghetti(study.kinetics, confidence=95, ax=ax)


def test_spaghetti_confidence_level(study, ax):
    # 90% t interval of the log levels (scipy), BLQ as LLOQ/2, pooled over subjects at day 7.
    plot.spaghetti(study.kinetics, assay="flow", by=None, confidence=0.9, ax=ax)
    (container,) = ax.containers
    assert container.get_label() == "all subjects: geometric mean (90% CI)"
    flow = study.kinetics[study.kinetics["assay"] == "flow"]
    level = flow["value"].where(~flow["blq"], flow["lloq"] / 2)
    logs = np.log(level[flow["nominal_time"] == 7.0].to_numpy())
    low, high = np.exp(stats.t.interval(0.9, logs.size - 1, logs.mean(), stats.sem(logs)))
    k = list(container.lines[0].get_xdata()).index(7.0)
    segment = container.lines[2][0].get_segments()[k]
    np.testing.assert_allclose(sorted(segment[:, 1]), [low, high], rtol=1e-10)


# ----------------------------------------------------------------------------- diagnostics


def test_observed_vs_predicted(batch, converged, ax, tmp_path):
    assert plot.observed_vs_predicted(batch, ax=ax) is ax
    data = pd.concat([r.data for r in converged.values()])
    used = data[data["used"] & ~data["blq"]]
    points = _line(ax, "qpcr (copies/ug)")
    np.testing.assert_allclose(points.get_xdata(), used["prediction"])
    np.testing.assert_array_equal(points.get_ydata(), used["value"])
    censored = _line(ax, "qpcr BLQ (at LLOQ)")
    assert len(censored.get_ydata()) == int((data["used"] & data["blq"]).sum())
    np.testing.assert_array_equal(censored.get_ydata(), 50.0)
    (identity,) = [ln for ln in ax.get_lines() if ln.get_gid() == "identity"]
    np.testing.assert_array_equal(identity.get_xdata(), identity.get_ydata())
    assert ax.get_xscale() == ax.get_yscale() == "log"
    ax.figure.savefig(tmp_path / "ovp.png", dpi=40)


def test_diagnostics_accept_one_fit_and_reject_bad_input(batch, fitted, ax):
    single = fitted["KD025-106"]
    plot.observed_vs_predicted(single, ax=ax, log=False)
    assert ax.get_xscale() == "linear"
    with pytest.raises(FitError, match="no converged fits"):
        plot.observed_vs_predicted(_with_success(single, False), ax=ax)
    with pytest.raises(FitError, match="no converged fits"):
        plot.residuals({}, ax=ax)
    with pytest.raises(OptionError, match="`x` must be"):
        plot.residuals(batch, x="visit", ax=ax)
    with pytest.raises(DataError, match="FitResult objects"):
        plot.residuals({"a": 1}, ax=ax)


@pytest.mark.parametrize("x", ["time", "prediction"])
def test_residuals(batch, converged, ax, x, tmp_path):
    assert plot.residuals(batch, x=x, ax=ax) is ax
    data = pd.concat([r.data for r in converged.values()])
    used = data[data["used"] & ~data["blq"]]
    points = _line(ax, "qpcr")
    np.testing.assert_allclose(points.get_xdata(), used[x])
    np.testing.assert_allclose(points.get_ydata(), used["residual"])
    blq = _line(ax, "qpcr BLQ (M3 argument, upper bound)")
    assert blq.get_marker() == "v" and len(blq.get_xdata()) == int(
        (data["used"] & data["blq"]).sum()
    )
    levels = sorted(
        ln.get_ydata()[0] for ln in ax.get_lines() if ln.get_gid() in ("zero", "pm1.96")
    )
    np.testing.assert_allclose(levels, [-1.96, 0.0, 1.96])
    assert ax.get_xscale() == ("log" if x == "prediction" else "linear")
    ax.figure.savefig(tmp_path / f"residuals_{x}.png", dpi=40)


# ----------------------------------------------------------------------------- VPC


def test_vpc_matches_a_direct_computation_and_is_seeded(fitted, study, ax, tmp_path):
    times = [4.0, 14.0, 28.0]
    plot.vpc(fitted, study.kinetics, n_draws=300, seed=3, times=times, ax=ax)
    median = _line(ax, "simulated 50%").get_ydata()

    # The method of the docstring, written out with numpy.
    fits = list(fitted.values())
    assert [p.scale for p in STEIN.params] == ["log"] * 4 + ["logit", "log"]
    theta = np.array([[r.estimates[n] for n in STEIN.param_names] for r in fits])
    phi = np.log(theta)
    phi[:, 4] = stats.logistic.ppf(theta[:, 4])  # logit(fb)
    phi = np.column_stack([phi, np.zeros(len(fits))])  # ln(scale) = 0 for the first assay
    w, v = np.linalg.eigh(np.cov(phi, rowvar=False))
    rng = np.random.default_rng(3)
    draws = phi.mean(0) + rng.standard_normal((300, 7)) @ (v * np.sqrt(np.clip(w, 0, None))).T
    natural = np.exp(draws[:, :6])
    natural[:, 4] = stats.logistic.cdf(draws[:, 4])
    lower = [p.lower for p in STEIN.params]
    upper = [p.upper for p in STEIN.params]
    level = STEIN.simulate_many(times, np.clip(natural, lower, upper))
    sigma = math.sqrt(np.mean([r.estimates["sigma_qpcr"] ** 2 for r in fits]))
    y = np.maximum(level * np.exp(sigma * rng.standard_normal(level.shape)), 50.0)
    np.testing.assert_allclose(median, np.median(y, axis=0), rtol=1e-10)

    fig2, ax2 = plt.subplots()
    plot.vpc(fitted, study.kinetics, n_draws=300, seed=3, times=times, ax=ax2)
    np.testing.assert_array_equal(_line(ax2, "simulated 50%").get_ydata(), median)
    ax2.clear()
    plot.vpc(fitted, study.kinetics, n_draws=300, seed=4, times=times, ax=ax2)
    assert not np.array_equal(_line(ax2, "simulated 50%").get_ydata(), median)
    plt.close(fig2)
    ax.figure.savefig(tmp_path / "vpc.png", dpi=40)


def test_vpc_observed_quantiles_by_nominal_time(fitted, study, ax):
    plot.vpc(fitted, study.kinetics, quantiles=(0.1, 0.5, 0.9), ax=ax)
    qpcr = study.kinetics[(study.kinetics["assay"] == "qpcr") & (study.kinetics["time"] >= 0)]
    at_28 = qpcr[qpcr["nominal_time"] == 28.0]
    levels = at_28["value"].where(~at_28["blq"], at_28["lloq"])
    observed = _line(ax, "observed 90%")
    k = list(observed.get_xdata()).index(28.0)
    assert observed.get_ydata()[k] == pytest.approx(np.quantile(levels, 0.9))
    simulated = _line(ax, "simulated 90%")
    np.testing.assert_array_equal(simulated.get_xdata(), np.unique(qpcr["nominal_time"]))


def test_vpc_recovers_a_known_population(fitted, ax):
    """Fits equal to a virtual population's true parameters (no estimation error): the VPC's
    quantiles match those of a large independent simulation of the same population."""
    truth = virtual_population("stein2019", 1000, seed=11)
    times = [4.0, 10.0, 28.0, 84.0]
    observed = sample_trial("stein2019", truth, times, lloq=50, seed=12)
    fits = _fake_fits(fitted["KD025-109"], truth, sigma=0.56)
    plot.vpc(fits, observed, n_draws=10_000, quantiles=(0.1, 0.5, 0.9), seed=5, ax=ax)
    large = virtual_population("stein2019", 50_000, seed=13)
    reference = sample_trial("stein2019", large, times, lloq=50, seed=14)
    reference["level"] = reference["value"].fillna(50.0)  # BLQ counted at the LLOQ
    for q in (0.1, 0.5, 0.9):
        expected = reference.groupby("time")["level"].quantile(q).to_numpy()
        simulated = _line(ax, f"simulated {100 * q:g}%").get_ydata()
        np.testing.assert_allclose(np.log(simulated), np.log(expected), atol=0.25)


def test_vpc_residual_error_of_identical_subjects(fitted, ax):
    """Identical fits (a singular covariance): the spread is the residual error alone,
    quantile q at f·exp(σ·Φ⁻¹(q))."""
    table = pd.DataFrame([{"subject": f"S{i}", **STEIN.defaults} for i in range(3)])
    times = [10.0, 28.0]
    observed = sample_trial("stein2019", table, times, lloq=1.0, seed=1)
    fits = _fake_fits(fitted["KD025-109"], table, sigma=0.56)
    plot.vpc(fits, observed, n_draws=10_000, quantiles=(0.1, 0.5, 0.9), seed=2, ax=ax)
    for q in (0.1, 0.5, 0.9):
        expected = STEIN.simulate(times) * np.exp(0.56 * stats.norm.ppf(q))
        simulated = _line(ax, f"simulated {100 * q:g}%").get_ydata()
        np.testing.assert_allclose(np.log(simulated), np.log(expected), atol=0.04)


def test_vpc_takes_fits_with_an_error_model_per_assay(fitted, study):
    """A fit given ``error={assay: model}`` stores a dict (unhashable): the VPC must read the
    error model of the plotted assay from it and draw what the same fits with one name draw."""
    per_assay = {s: dataclasses.replace(r, error={"qpcr": r.error}) for s, r in fitted.items()}
    lines = []
    for fits in (fitted, per_assay):
        fig, ax = plt.subplots()
        plot.vpc(fits, study.kinetics, n_draws=300, seed=3, times=[7.0, 28.0], ax=ax)
        lines.append(_line(ax, "simulated 50%").get_ydata())
        plt.close(fig)
    np.testing.assert_array_equal(lines[0], lines[1])


def test_vpc_bad_input(fitted, study, ax):
    with pytest.raises(DataError, match="was not fitted"):
        plot.vpc(fitted, study.kinetics, assay="flow", ax=ax)
    with pytest.raises(FitError, match="at least 2 converged fits"):
        plot.vpc(fitted["KD025-106"], ax=ax)
    with pytest.raises(OptionError, match="`quantiles`"):
        plot.vpc(fitted, quantiles=(0.5, 0.1), ax=ax)
    with pytest.raises(OptionError, match="`n_draws`"):
        plot.vpc(fitted, n_draws=2, ax=ax)


# ----------------------------------------------------------------------------- metric agreement


def test_metric_agreement_geometric_mean_ratio(ax):
    nca = pd.DataFrame({"subject": list("abcd"), "assay": "qpcr", "unit": "copies/ug",
                        "cmax": [100.0, 200.0, 400.0, np.nan]})  # fmt: skip
    model = pd.DataFrame({"subject": list("abcd"), "assay": "qpcr", "unit": "copies/ug",
                          "cmax": [110.0, 180.0, 520.0, 90.0],
                          "cmax_ci_lower": [90.0, 150.0, 400.0, 50.0],
                          "cmax_ci_upper": [130.0, 210.0, 700.0, 120.0]})  # fmt: skip
    plot.metric_agreement(nca, model, ax=ax)
    ratios = np.log([1.1, 0.9, 1.3])
    half = stats.t.ppf(0.975, 2) * ratios.std(ddof=1) / math.sqrt(3)
    gmr, low, high = np.exp([ratios.mean(), ratios.mean() - half, ratios.mean() + half])
    (box,) = [t for t in ax.texts if t.get_gid() == "gmr"]
    assert box.get_text() == f"GMR model/NCA = {gmr:.3g} (95% CI {low:.3g}–{high:.3g}), n = 3"
    (container,) = ax.containers
    np.testing.assert_array_equal(container.lines[0].get_xdata(), [100.0, 200.0, 400.0])
    np.testing.assert_array_equal(container.lines[0].get_ydata(), [110.0, 180.0, 520.0])
    bars = sorted(tuple(s[:, 1]) for s in container.lines[2][0].get_segments())
    assert bars == [(90.0, 130.0), (150.0, 210.0), (400.0, 700.0)]
    assert any(ln.get_gid() == "identity" for ln in ax.get_lines())
    assert ax.get_xlabel() == "NCA cmax (copies/ug)"
    ax.clear()
    plot.metric_agreement(nca, model, ax=ax, confidence=0.8)
    half = stats.t.ppf(0.9, 2) * ratios.std(ddof=1) / math.sqrt(3)
    low, high = np.exp([ratios.mean() - half, ratios.mean() + half])
    (box,) = [t for t in ax.texts if t.get_gid() == "gmr"]
    assert box.get_text() == f"GMR model/NCA = {gmr:.3g} (80% CI {low:.3g}–{high:.3g}), n = 3"


def test_metric_agreement_on_the_study(batch, study, ax, tmp_path):
    nca = cellkin.nca(study.kinetics)
    plot.metric_agreement(nca, batch, metric="auc_0_28", ax=ax)
    model = batch.metrics()[batch.metrics()["reliable"].astype(bool)]  # issue 15: reliable
    pairs = nca[nca["assay"] == "qpcr"].merge(model, on="subject", suffixes=("", "_m"))
    ratios = (pairs["auc_0_28_m"] / pairs["auc_0_28"]).dropna()
    assert ratios.size >= 1
    (box,) = [t for t in ax.texts if t.get_gid() == "gmr"]
    assert box.get_text().startswith(f"GMR model/NCA = {stats.gmean(ratios):.3g} (")
    assert box.get_text().endswith(f"n = {ratios.size}")
    ax.figure.savefig(tmp_path / "agreement.png", dpi=40)
    with pytest.raises(DataError, match="metrics in both tables"):
        plot.metric_agreement(nca, batch.metrics(), metric="lambda_z", ax=ax)
    with pytest.raises(DataError, match="no 'flow' rows"):
        plot.metric_agreement(nca, batch.metrics(), assay="flow", ax=ax)


def test_time_back_to_baseline_censored_values_are_not_in_the_ratio(ax):
    nca = pd.DataFrame({"subject": ["a", "b", "c"], "assay": "qpcr",
                        "time_back_to_baseline": [40.0, 60.0, 90.0],
                        "time_back_to_baseline_censored": [False, False, True]})  # fmt: skip
    model = nca.assign(time_back_to_baseline=[44.0, 66.0, 300.0])
    plot.metric_agreement(nca, model, metric="time_back_to_baseline", ax=ax)
    (box,) = [t for t in ax.texts if t.get_gid() == "gmr"]
    assert box.get_text().startswith("GMR model/NCA = 1.1 (") and box.get_text().endswith("n = 2")
    assert [c.get_label() for c in ax.containers] == ["subjects", "NCA censored at last sample"]


# ----------------------------------------------------------------------------- conventions


def test_fit_result_plot_is_individual_fit(fitted, ax):
    result = fitted["KD025-106"]
    assert result.plot(ax=ax, days=60.0) is ax
    fig, other = plt.subplots()
    plot.individual_fit(result, ax=other, days=60.0)
    drawn = [(line.get_label(), line.get_xdata().tolist(), line.get_ydata().tolist())
             for line in ax.get_lines()]  # fmt: skip
    again = [(line.get_label(), line.get_xdata().tolist(), line.get_ydata().tolist())
             for line in other.get_lines()]  # fmt: skip
    assert drawn == again and len(drawn) == 3 * len(result.assays)
    assert max(ax.get_lines()[2].get_xdata()) == 60.0  # the fitted curve runs to `days`
    assert len(ax.collections) == len(result.assays)  # one band per assay
    plt.close(fig)


def test_every_figure_takes_ax_or_fig_keyword_only():
    import inspect

    from cellkin.metrics import (
        DoseExposureResult,
        ExposureByOutcomeResult,
        ExposureResponseResult,
        ExposureSurvivalResult,
    )
    from cellkin.outcomes import KaplanMeierResult

    grids = {"individual_fits"}
    for name in plot.__all__:
        parameters = inspect.signature(getattr(plot, name)).parameters
        target = "fig" if name in grids else "ax"
        assert parameters[target].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert parameters[target].default is None, name
        assert getattr(plot, name).__doc__, name
    results = (cellkin.FitResult, KaplanMeierResult, ExposureResponseResult,
               ExposureSurvivalResult, ExposureByOutcomeResult, DoseExposureResult)  # fmt: skip
    for result in results:
        ax_parameter = inspect.signature(result.plot).parameters["ax"]
        assert ax_parameter.kind is inspect.Parameter.KEYWORD_ONLY, result.__name__


def test_missing_matplotlib_raises_import_error_with_install_hint(study, fitted, monkeypatch):
    for name in ("matplotlib", "matplotlib.pyplot", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, name, None)  # import of these now raises ImportError
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plot.spaghetti(study.kinetics, study.subjects)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plot.individual_fits(fitted)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        fitted["KD025-106"].plot()


def test_matplotlib_is_imported_only_inside_cellkin_plot_functions():
    # No module of cellkin.plot imports matplotlib at module level, and no module outside
    # cellkin.plot draws: only the report's figure layout and the CLI's PNG writer import it.
    root = Path(cellkin.__file__).parent
    allowed = ("plot/", "report/_figures.py", "cli.py", "cli/")
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            if not any(m.split(".")[0] == "matplotlib" for m in modules):
                continue
            assert id(node) not in top_level, f"{relative}: matplotlib imported at module level"
            assert relative.startswith(allowed), f"{relative} imports matplotlib"
