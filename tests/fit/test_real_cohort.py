"""The Leipzig BCMA CAR-T cohort (Fandrei et al. 2024): numbers a reader should not believe are
no longer reported as if they could be (issue 15).

Real patient data, read from ``shared/data/fandrei2024_bcma`` in a folder above the repository
(or ``$CELLKIN_FANDREI2024``), never copied into the project; the tests skip without it.
Before issue 15, per-patient Stein fits there gave Patient001 (3 samples, 7 parameters) a
converged Cmax with a ±2% CI, times back to baseline up to 515,268 days, and the NCA summary
a cilta-cel median of 30 days while no cilta-cel patient had returned to baseline.
``benchmarks/real_cohort_fandrei2024.py`` prints the closing note's tables.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cellkin import fit_all
from cellkin.errors import FitError, IdentifiabilityWarning
from cellkin.fit import fit
from cellkin.io import read_kinetics
from cellkin.metrics import nca, summarize
from cellkin.report import kinetic_endpoints


def _folder() -> Path | None:
    if os.environ.get("CELLKIN_FANDREI2024"):
        return Path(os.environ["CELLKIN_FANDREI2024"])
    for parent in Path(__file__).resolve().parents:
        folder = parent / "shared" / "data" / "fandrei2024_bcma"
        if (folder / "kinetics.csv").is_file():
            return folder
    return None


FOLDER = _folder()
pytestmark = pytest.mark.skipif(FOLDER is None, reason="fandrei2024_bcma data not available")


@pytest.fixture(scope="module")
def kinetics() -> pd.DataFrame:
    return read_kinetics(FOLDER / "kinetics.csv")


@pytest.fixture(scope="module")
def subjects() -> pd.DataFrame:
    return pd.read_csv(FOLDER / "subjects.csv")


@pytest.fixture(scope="module")
def posterior(kinetics):
    """MAP fits with the published prior and the residual SD fixed (what the refusal says)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IdentifiabilityWarning)
        return fit_all(kinetics, n_jobs=1, progress=False, n_starts=2, prior="published",
                       fixed={"sigma_qpcr": 0.56})  # fmt: skip


def test_patient001_is_refused_by_maximum_likelihood(kinetics):
    rows = kinetics[kinetics["subject"] == "Patient001"]
    with pytest.raises(FitError, match="3 quantified sample"):
        fit(rows)


def test_no_maximum_likelihood_fit_has_fewer_samples_than_parameters(kinetics):
    batch = fit_all(kinetics, n_jobs=1, progress=False, n_starts=1)
    for result in batch.results.values():
        quantified = int((result.data["used"] & ~result.data["blq"]).sum())
        assert quantified >= result.n_free, result.subject
    qpcr = kinetics[(kinetics["assay"] == "qpcr") & (kinetics["time"] >= 0)]
    quantified = (~qpcr["blq"]).groupby(qpcr["subject"]).sum()
    expected = set(quantified.index[(quantified >= 3) & (quantified < 7)])  # 3-6 for 7 free
    refused = batch.failures[batch.failures["reason"].str.contains("free parameters")]
    assert set(refused["subject"]) == expected and len(expected) > 30


def test_map_fits_carry_verdicts_and_model_times_stay_within_the_horizon(posterior):
    counts = posterior.counts
    assert counts["fitted"] == counts["reliable"] + counts["unreliable"]
    metrics = posterior.metrics(n_draws=200)
    assert (metrics["time_back_to_baseline"] <= metrics["horizon"]).all()
    assert (metrics["time_back_to_baseline_ci_upper"].dropna() <= metrics["horizon"].max()).all()
    for row in metrics.itertuples():
        result = posterior.results[row.subject]
        last = result.data.loc[result.data["time"] >= 0, "time"].max()
        assert row.horizon == 2 * last
        assert row.reliable == result.reliable
    reliable = metrics[metrics["reliable"].astype(bool)]
    assert not reliable["issues"].astype(bool).any()


def test_the_time_back_to_baseline_by_product_is_a_kaplan_meier_summary(kinetics, subjects):
    """No group reports a median return that the Kaplan–Meier curve does not reach, and the
    summary and the report's endpoint table agree on who returned."""
    observed = nca(kinetics)
    summary = summarize(observed, by="product", subjects=subjects,
                        metrics=["time_back_to_baseline"])  # fmt: skip
    endpoints = kinetic_endpoints(observed, subjects, basis="observed", by="product")
    for row in summary.itertuples():
        if row.n_events == 0:
            assert np.isnan(row.median)  # no return observed: no median
        end = endpoints[(endpoints["group"] == row.product) & (endpoints["assay"] == row.assay)]
        assert end["n_tbb"].item() == row.n and end["n_tbb_censored"].item() == row.n_censored
        assert end["tbb_median"].item() == pytest.approx(row.median, nan_ok=True)
    cilta = summary[(summary["product"] == "cilta-cel") & (summary["assay"] == "qpcr")].iloc[0]
    assert cilta["n_events"] == 0 and np.isnan(cilta["median"])
