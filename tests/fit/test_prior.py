"""Maximum a posteriori fits (``prior=``) and per-assay error models.

Independent references: the posterior written out with ``scipy.stats`` (log-normal densities,
normal CDFs for censored samples, the normal prior's density on the log/logit scale) and
minimised with ``scipy.optimize.minimize`` (Nelder–Mead from the cellkin estimate, then
Powell), and the published between-subject variability of Stein 2019 (Table 1, ω² on the log
scale) for ``Prior.published``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special, stats

import cellkin
from cellkin import models
from cellkin.errors import FitError, OptionError
from cellkin.fit import Prior, fit
from cellkin.simulate import sample_trial

STEIN = models.get("stein2019")
TRUTH = {"cmax": 5000.0, "tmax": 10.0, "foldx": 300.0, "alpha": 0.2, "fb": 0.02, "beta": 0.01}
SPARSE = [7, 14, 30, 100]


def _sparse(seed: int = 3) -> pd.DataFrame:
    table = pd.DataFrame([{"subject": "S1", **TRUTH}])
    return sample_trial("stein2019", table, SPARSE, lloq=50.0, sigma=0.3, seed=seed)


def test_published_prior_is_the_models_typical_values_and_omega():
    prior = Prior.published(STEIN)
    assert prior.names == STEIN.param_names
    np.testing.assert_allclose(prior.mean[0], math.log(24_000.0))
    np.testing.assert_allclose(prior.mean[4], special.logit(0.0079))
    np.testing.assert_allclose(np.diag(prior.covariance), [0.65, 0.38, 2.4, 0.91, 0.80, 0.86])
    with pytest.raises(OptionError, match="no between-subject variability"):
        Prior.published(models.get("stein2019_lag"))


def test_prior_arguments_are_checked():
    with pytest.raises(OptionError, match="positive definite"):
        Prior(("cmax", "tmax"), [0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(OptionError, match="one mean per distinct parameter"):
        Prior(("cmax", "cmax"), [0.0, 0.0], np.eye(2))
    with pytest.raises(OptionError, match="'published'"):
        fit(_sparse(), prior="typical")


def _posterior(search: np.ndarray, data: pd.DataFrame, prior: Prior, sigma: float) -> float:
    """−2 ln posterior (up to a constant) written with scipy.stats."""
    theta = STEIN.transform.to_model(search)
    params = dict(zip(STEIN.param_names, theta, strict=True))
    post = data[data["time"] >= 0]
    f = STEIN.simulate(post["time"].to_numpy(), params)
    blq = post["blq"].to_numpy()
    y = post["value"].to_numpy()
    loglik = stats.lognorm.logpdf(y[~blq], s=sigma, scale=f[~blq]).sum()
    lloq = post["lloq"].to_numpy()[blq]
    loglik += stats.norm.logcdf(np.log(lloq), np.log(f[blq]), sigma).sum()
    deviation = search - prior.mean
    return -2.0 * loglik + deviation @ np.linalg.solve(prior.covariance, deviation)


@pytest.mark.slow
def test_map_estimate_minimises_the_posterior_written_with_scipy():
    """Three quantified samples and one BLQ for six parameters: not fittable by maximum
    likelihood, but the MAP estimate with the published prior is the posterior's minimum."""
    data = _sparse()
    with pytest.raises(FitError, match="at least 3"):
        fit(data.iloc[:2])
    prior = Prior.published(STEIN)
    result = fit(data, prior=prior, fixed={"sigma_qpcr": 0.3}, n_starts=4)
    assert result.success and result.settings["prior"].startswith("published")
    start = STEIN.transform.to_search(np.array(list(result.kinetic_params.values())))
    args = (data, prior, 0.3)
    tight = {"xatol": 1e-9, "fatol": 1e-12, "maxiter": 40_000}
    best = optimize.minimize(_posterior, start, args=args, method="Nelder-Mead", options=tight)
    best = optimize.minimize(_posterior, best.x, args=args, method="Powell",
                             options={"xtol": 1e-10, "ftol": 1e-13})  # fmt: skip
    ours = _posterior(start, data, prior, 0.3)
    assert ours <= best.fun + 1e-6
    np.testing.assert_allclose(start, best.x, atol=2e-3)
    # minus2ll is the likelihood alone (the prior's share removed)
    deviation = start - prior.mean
    penalty = deviation @ np.linalg.solve(prior.covariance, deviation)
    assert result.minus2ll == pytest.approx(ours - penalty, rel=1e-9)


def test_map_cis_shrink_toward_the_prior_and_cover_less_than_it():
    data = _sparse()
    prior = Prior.published(STEIN)
    result = fit(data, prior=prior, fixed={"sigma_qpcr": 0.3})
    table = result.params.set_index("parameter")
    for j, name in enumerate(STEIN.param_names):
        width = np.log(table.loc[name, "ci_upper"]) - np.log(table.loc[name, "ci_lower"])
        if STEIN.params[j].scale == "log":  # posterior narrower than the prior's 95% band
            assert 0 < width < 2 * 1.96 * math.sqrt(prior.covariance[j, j]) + 1e-9, name


def test_a_prior_on_a_fixed_parameter_is_dropped_from_the_penalty():
    """Fixing foldx leaves the marginal prior of the others: the same fit as with a prior
    written without foldx."""
    data = _sparse()
    fixed = {"sigma_qpcr": 0.3, "foldx": 1000.0}
    result = fit(data, prior="published", fixed=fixed)
    assert result.estimates["foldx"] == pytest.approx(1000.0, rel=1e-12) and result.success
    full = Prior.published(STEIN)
    keep = [j for j, name in enumerate(full.names) if name != "foldx"]
    marginal = Prior(tuple(full.names[j] for j in keep), full.mean[keep],
                     full.covariance[np.ix_(keep, keep)])  # fmt: skip
    again = fit(data, prior=marginal, fixed=fixed)
    pd.testing.assert_frame_equal(result.params, again.params)


@pytest.mark.parametrize("error", ["additive", "proportional"])
def test_additive_and_proportional_error_models_are_the_combined_model_with_one_sd_zero(error):
    rich = [1, 2, 4, 7, 9, 11, 14, 17, 21, 28, 35, 42, 56, 70, 84]
    table = pd.DataFrame([{"subject": "S1", **TRUTH}])
    data = sample_trial("stein2019", table, rich, lloq=30.0, sigma=0.2, seed=5)
    result = fit(data, error=error, n_starts=2)
    names = list(result.params["parameter"])
    expected = "sigma_add_qpcr" if error == "additive" else "sigma_prop_qpcr"
    assert names[-1] == expected and len(names) == 7
    sd = result.estimates[expected]
    f = result.predict(data["time"].to_numpy())
    post = data["time"].to_numpy() >= 0
    blq = data["blq"].to_numpy() & post
    quantified = ~data["blq"].to_numpy() & post
    scale = np.full(f.shape, sd) if error == "additive" else sd * f
    loglik = stats.norm.logpdf(data["value"].to_numpy()[quantified], f[quantified],
                               scale[quantified]).sum()  # fmt: skip
    loglik += stats.norm.logcdf(data["lloq"].to_numpy()[blq], f[blq], scale[blq]).sum()
    assert result.minus2ll == pytest.approx(-2 * loglik, rel=1e-9)


def test_one_error_model_per_assay_in_a_joint_fit():
    rich = [1, 2, 4, 7, 9, 11, 14, 17, 21, 28, 35, 42, 56, 70, 84, 112]
    table = pd.DataFrame([{"subject": "S1", **TRUTH}])
    qpcr = sample_trial("stein2019", table, rich, lloq=50.0, sigma=0.3, seed=2)
    flow = sample_trial("stein2019", table, rich, lloq=0.5, sigma=0.3, seed=3, assay="flow",
                        unit="cells/uL", scale=0.005)  # fmt: skip
    errors = {"qpcr": "log-additive", "flow": "combined"}
    result = fit(pd.concat([qpcr, flow]), assays=["qpcr", "flow"], error=errors, n_starts=2)
    assert result.error == errors
    assert {"sigma_qpcr", "sigma_add_flow", "sigma_prop_flow"} <= set(result.params["parameter"])
    with pytest.raises(OptionError, match="no error model for assay"):
        fit(pd.concat([qpcr, flow]), assays=["qpcr", "flow"], error={"qpcr": "combined"})
    with pytest.raises(OptionError, match="not fitted"):
        fit(qpcr, error={"qpcr": "combined", "flow": "combined"})
    assert cellkin.fit_all(qpcr, error=errors | {"flow": "combined"}, n_jobs=1,
                           progress=False).failures["stage"].tolist() == ["fit"]  # fmt: skip
