"""The small-sample factor of the empirical Fisher information (``_information`` docstring).

Reference: the closed form it targets, not the code. With n independent normal score vectors
of covariance J, the covariance of the estimates is (nJ)⁻¹; the inverse of the raw scatter of
the scores overstates it by n/(n − p − 2) (mean of the inverse Wishart distribution), and the
corrected information's inverse is unbiased for it. Checked by simulation, for the dimensions
of the recovery designs (40 subjects × 13 parameters, 60 × 11).
"""

from __future__ import annotations

import numpy as np
import pytest

from cellkin.population._information import Information


def _information_of(delta: np.ndarray) -> Information:
    """An :class:`Information` holding the given scores (one row per subject); only
    :meth:`Information.empirical` is used."""
    information = Information.__new__(Information)
    information.delta = delta
    return information


@pytest.mark.parametrize(("n", "p"), [(40, 13), (60, 11)])
def test_the_corrected_empirical_information_inverts_to_the_covariance_of_the_estimates(n, p):
    rng = np.random.default_rng(20261205)
    root = rng.normal(size=(p, p)) / np.sqrt(p) + np.eye(p)
    per_subject = root @ root.T  # J
    target = np.linalg.inv(n * per_subject)  # covariance of the estimates, (nJ)^-1
    raw, corrected = np.zeros((p, p)), np.zeros((p, p))
    replicates = 4000
    for _ in range(replicates):
        scores = rng.multivariate_normal(np.zeros(p), per_subject, size=n)
        centred = scores - scores.mean(axis=0)
        raw += np.linalg.inv(centred.T @ centred) / replicates
        corrected += np.linalg.inv(_information_of(scores).empirical()) / replicates
    ratio_raw = np.diag(raw) / np.diag(target)
    ratio_corrected = np.diag(corrected) / np.diag(target)
    # the raw inverse overstates every variance by n/(n - p - 2) (1.60 and 1.24 here) ...
    np.testing.assert_allclose(ratio_raw, n / (n - p - 2), rtol=0.05)
    # ... the corrected one does not (Monte Carlo error of 4,000 replicates: about 1-2%)
    np.testing.assert_allclose(ratio_corrected, 1.0, rtol=0.05)


def test_too_few_subjects_for_the_factor_leave_the_scatter_unchanged():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(6, 4))  # n = p + 2: the factor is undefined
    centred = scores - scores.mean(axis=0)
    np.testing.assert_allclose(_information_of(scores).empirical(), centred.T @ centred)
