"""The reliability verdict of a fit, apart from optimiser success (issue 15).

Each check is triggered by data built for it from the Stein 2019 model with known parameters
(the independent reference is the construction: data that cannot determine a parameter, a
sample multiplied by a known factor, times entered in hours), and a well-sampled subject
passes every check. The refusal of fewer quantified samples than free parameters and the
joint fit of a subject lacking an assay are tested here too.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from cellkin import models
from cellkin.errors import FitError, IdentifiabilityWarning
from cellkin.fit import ISSUE_CODES, FitIssue, fit, fit_all
from cellkin.simulate import sample_trial

STEIN = models.get("stein2019")
RICH = [-1, 1, 2, 4, 7, 9, 11, 14, 17, 21, 28, 35, 42, 56, 70, 84, 112, 140, 180]
DENSE = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 18, 21, 24, 28, 32, 35, 42, 49, 56,
         63, 70, 84, 98, 112, 140, 180]  # fmt: skip
TRUTH = {"cmax": 5000.0, "tmax": 10.0, "foldx": 300.0, "alpha": 0.2, "fb": 0.02, "beta": 0.01}
QUIET = pytest.mark.filterwarnings("ignore::cellkin.errors.IdentifiabilityWarning")


def _trial(*, schedule=RICH, sigma=0.3, lloq=50.0, seed=1, subject="S1", **kwargs):
    table = pd.DataFrame([{"subject": subject, **TRUTH}])
    return sample_trial("stein2019", table, schedule, lloq=lloq, sigma=sigma, seed=seed,
                        **kwargs)  # fmt: skip


def _spiked(table: pd.DataFrame, day: float, factor: float) -> pd.DataFrame:
    spiked = table.copy()
    spiked.loc[spiked.index[spiked["time"] == day][0], "value"] *= factor
    return spiked


def _fit_quietly(table: pd.DataFrame, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IdentifiabilityWarning)
        return fit(table, n_starts=2, **options)


# ------------------------------------------------------------------------------ the refusal


def test_three_samples_for_seven_parameters_are_refused_and_fit_with_four_fixed():
    """Patient001 of the Leipzig cohort: qPCR at days 8, 14 and 23 only."""
    table = _trial(schedule=[8, 14, 23], lloq=1.0)
    with pytest.raises(FitError) as refused:
        fit(table)
    message = str(refused.value)
    assert "3 quantified sample(s) for 7 free parameters" in message
    for hint in ("`fixed=`", "prior='published'", "cellkin.fit_population"):
        assert hint in message, hint
    fixed = {"foldx": 300.0, "alpha": 0.2, "fb": 0.02, "beta": 0.01}
    result = fit(table, fixed=fixed, n_starts=2)
    assert result.n_free == 3 and result.success  # Cmax, Tmax and the residual SD
    np.testing.assert_allclose(result.estimates["cmax"], TRUTH["cmax"], rtol=0.5)


def test_a_prior_lifts_the_refusal():
    table = _trial(schedule=[8, 14, 23], lloq=1.0)
    result = fit(table, prior="published", fixed={"sigma_qpcr": 0.3}, n_starts=2)
    assert result.settings["prior"].startswith("published") and result.n_free == 6


def test_censored_samples_do_not_count_towards_the_minimum():
    """Nine post-infusion samples, the late ones BLQ: fewer than 7 quantified."""
    table = _trial(schedule=[1, 4, 7, 14, 180, 270, 365, 450, 540], lloq=20.0)
    post = table[table["time"] >= 0]
    quantified = int((~post["blq"]).sum())
    assert len(post) >= 7 > quantified
    with pytest.raises(FitError, match=f"{quantified} quantified sample"):
        fit(table)


# ------------------------------------------------------------------------------ the verdict


def test_a_well_sampled_subject_is_reliable_and_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = fit(_trial(), n_starts=2)
    assert result.success and result.reliable and result.issues == ()
    row = result.fit_statistics().iloc[0]
    assert row["reliable"] and row["issues"] == ""
    assert "reliable: yes" in str(result.summary())


@QUIET
@pytest.mark.parametrize(
    ("table", "options", "code", "named"),
    [
        (_trial(), {"bounds": {"foldx": (1.5, 30.0)}}, "parameter_at_bound", "foldx"),
        (_trial(sigma=1e-9, lloq=1.0), {}, "sigma_at_floor", "sigma_qpcr"),
        (_trial(schedule=[14, 21, 28, 35, 42, 56, 70, 84]), {}, "covariance_singular", "foldx"),
        (_trial(sigma=1.0, seed=3), {}, "rse_over_100", "foldx"),
        (_trial(sigma=2.0, seed=3), {}, "metric_ci_wide", "cmax"),
        (_trial(schedule=[1, 2, 3, 4, 5, 6, 7, 8], lloq=1.0), {}, "peak_not_bracketed", "Tmax"),
        (_trial(schedule=[1, 2, 3, 4, 5, 6, 7, 8], lloq=1.0), {}, "tmax_outside_samples",
         "1–8"),
        (_trial().assign(time=lambda t: 24 * t["time"]), {}, "tmax_implausible",
         "days since infusion"),
        (_spiked(_trial(schedule=DENSE, lloq=1.0), 35, 30.0), {}, "outlier", "day 35"),
    ],
    ids=["bound", "sigma floor", "no rise: foldx", "noisy: RSE", "noisy: CI", "no decline",
         "peak after the samples", "times in hours", "spike x30"],
)  # fmt: skip
def test_each_check_flags_the_data_built_for_it(table, options, code, named):
    result = _fit_quietly(table, **options)
    found = {issue.code: issue.message for issue in result.issues}
    assert code in found, result.issues
    assert named in found[code]
    assert not result.reliable and result.success  # converged, and still not to be used
    assert code in result.fit_statistics().at[0, "issues"].split(", ")


def test_the_same_profile_without_the_spike_is_reliable():
    """The outlier test does not fire on clean dense data (30 samples, 6 parameters)."""
    assert fit(_trial(schedule=DENSE, lloq=1.0), n_starts=2).reliable


@QUIET
def test_a_one_million_fold_spike_no_longer_passes_as_a_reliable_fit():
    """The issue's example: one sample ×10⁶ moved Cmax by 10³ with success=True."""
    clean = fit(_trial(lloq=1.0), n_starts=2)
    assert clean.reliable
    for day in (28, 42, 56, 84):
        spiked = _fit_quietly(_spiked(_trial(lloq=1.0), day, 1e6))
        assert not spiked.reliable, day


def test_not_converged_is_an_issue_and_reliable_needs_success():
    """Six samples for six free parameters (σ fixed): no covariance, so not converged."""
    table = _trial(schedule=[3, 7, 10, 14, 28, 56], lloq=1.0, seed=1)
    result = _fit_quietly(table, fixed={"sigma_qpcr": 0.5})
    assert not result.success and "too few samples for a covariance" in result.message
    assert result.issue_codes[:2] == ("not_converged", "covariance_singular")
    assert not result.reliable


def test_identifiability_warning_is_raised_by_fit_and_recorded_by_fit_all():
    table = _trial(schedule=[14, 21, 28, 35, 42, 56, 70, 84])
    with pytest.warns(IdentifiabilityWarning, match="foldx"):
        result = fit(table, n_starts=2)
    assert "covariance_singular" in result.issue_codes
    batch = fit_all(table, n_jobs=1, progress=False, n_starts=2)
    assert "IdentifiabilityWarning" in batch.statistics.at[0, "warnings"] or (
        "covariance_singular" in batch.statistics.at[0, "issues"]
    )


def test_issue_codes_are_documented_and_checked():
    assert all(isinstance(text, str) and text for text in ISSUE_CODES.values())
    issue = FitIssue("outlier", "qpcr day 35")
    assert str(issue) == "outlier: qpcr day 35"
    with pytest.raises(ValueError, match="unknown issue code"):
        FitIssue("looks odd", "")
    with pytest.raises(AttributeError):
        issue.code = "outlier"  # type: ignore[misc]


# ------------------------------------------------------------------------------ joint fits


def _flow(subject: str = "S1", lloq: float = 0.5, schedule=RICH) -> pd.DataFrame:
    table = pd.DataFrame([{"subject": subject, **TRUTH}])
    return sample_trial("stein2019", table, schedule, lloq=lloq, sigma=0.3, seed=3,
                        assay="flow", unit="cells/uL", scale=0.005)  # fmt: skip


def test_a_joint_fit_uses_the_assays_a_subject_has_with_a_note():
    both = ("qpcr", "flow")
    qpcr_only = _trial()
    result = fit(qpcr_only, assays=both, fixed={"sigma_flow": 0.3}, n_starts=2)
    assert result.assays == ("qpcr",) and "scale_flow" not in result.estimates
    assert any("no flow samples" in note for note in result.notes)
    assert "no flow samples" in result.fit_statistics().at[0, "notes"]
    few_flow = pd.concat([qpcr_only, _flow(schedule=[-1, 7, 14])])
    result = fit(few_flow, assays=both, n_starts=2)
    assert result.assays == ("qpcr",) and "flow: 2 quantified" in result.notes[0]
    joint = fit(pd.concat([qpcr_only, _flow()]), assays=both, n_starts=2)
    assert joint.assays == both and joint.notes == ()


def test_a_subject_with_no_fittable_assay_is_a_failure_row():
    nothing = _trial(lloq=1e7, subject="NONE")  # every qPCR sample BLQ, no flow
    kinetics = pd.concat([_trial(subject="QPCR"), nothing, _flow("QPCR")])
    with pytest.raises(FitError, match="no assay can be fitted"):
        fit(nothing, assays=["qpcr", "flow"])
    batch = fit_all(kinetics, assays=["qpcr", "flow"], n_jobs=1, progress=False, n_starts=1)
    (row,) = batch.failures.itertuples()
    assert row.subject == "NONE" and row.stage == "fit" and "no assay can be fitted" in row.reason
    assert batch.results["QPCR"].assays == ("qpcr", "flow")
