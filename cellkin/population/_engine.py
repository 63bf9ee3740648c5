"""The individual likelihoods of a whole population in one compiled call (private).

A population estimator evaluates, thousands of times, the data likelihood of every subject
at proposed individual parameters. Rows are ``(chain, subject)`` pairs laid out chain-major
(row ``r`` is subject ``r mod n``); each row's samples are the subject's slice
``offsets[s]:offsets[s+1]`` of the flat sample arrays, and its levels are written at
``(r div n)·N + offsets[s]`` of a flat level array (``N`` samples in all).

* Models with a closed-form level function (capability 7 of
  :class:`~cellkin.models.base.Model`) fill the levels of every row in one parallel compiled
  call through the function's native address (:func:`closed_form_levels`).
* Other models (ODEs) are simulated with :meth:`~cellkin.models.Model.simulate_many` on the
  union of the sample times, a parallel compiled call too, and gathered (:class:`LevelSource`).

The likelihood of each row is then the one of :func:`cellkin.fit.likelihood.subject_minus2ll`
— the same compiled function a one-subject fit optimises — in one parallel call
(:func:`row_loglik`). Everything here is deterministic: random numbers are drawn by the
caller, so results do not depend on the number of threads.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from cellkin.fit.likelihood import FAILED, subject_minus2ll
from cellkin.models.base import Model
from cellkin.models.capabilities import call_levels, level_address

__all__ = ["LevelSource", "closed_form_levels", "row_loglik"]


#: Sample-rows (rows × samples per row) from which the kernels run on numba's threads: below,
#: a thread launch costs more than it saves, and threads contend with NumPy's BLAS threads.
PARALLEL_SAMPLES = 100_000


@numba.njit(cache=True, error_model="numpy")
def _levels_row(address, kinetic, n_subjects, offsets, time, out, empty, r):  # pragma: no cover
    """Row ``r`` of :func:`closed_form_levels`; returns its status."""
    s = r % n_subjects
    start, end = offsets[s], offsets[s + 1]
    base = (r // n_subjects) * time.shape[0]
    ok, code = call_levels(
        address, time[start:end], kinetic[r], out[base + start : base + end], empty
    )
    if ok and code == 0:
        return 0
    for i in range(base + start, base + end):
        out[i] = np.nan
    return code if ok else -1


@numba.njit(cache=True, error_model="numpy")
def _levels_serial(address, kinetic, n_subjects, offsets, time, out):  # pragma: no cover
    status = np.zeros(kinetic.shape[0], dtype=np.int64)
    empty = np.empty((0, kinetic.shape[1]))
    for r in range(kinetic.shape[0]):
        status[r] = _levels_row(address, kinetic, n_subjects, offsets, time, out, empty, r)
    return status


@numba.njit(cache=True, parallel=True, error_model="numpy")
def _levels_parallel(address, kinetic, n_subjects, offsets, time, out):  # pragma: no cover
    status = np.zeros(kinetic.shape[0], dtype=np.int64)
    empty = np.empty((0, kinetic.shape[1]))
    for r in numba.prange(kinetic.shape[0]):
        status[r] = _levels_row(address, kinetic, n_subjects, offsets, time, out, empty, r)
    return status


def closed_form_levels(address, kinetic, n_subjects, offsets, time, out) -> np.ndarray:
    """Levels of every row (``kinetic``: ``(rows, k)``, C-contiguous) at its subject's sample
    times into the flat ``out`` (NaN where the model refuses a row); a status per row."""
    size = kinetic.shape[0] * (time.shape[0] // max(n_subjects, 1))
    kernel = _levels_parallel if size >= PARALLEL_SAMPLES else _levels_serial
    return kernel(address, kinetic, n_subjects, offsets, time, out)


@numba.njit(cache=True, error_model="numpy")
def _loglik_row(  # pragma: no cover - compiled
    theta,
    levels,
    n_subjects,
    offsets,
    target,
    censored,
    assay,
    n_kinetic,
    error_kind,
    error_start,
    out,
    empty_matrix,
    empty,
    r,
):
    s = r % n_subjects
    start, end = offsets[s], offsets[s + 1]
    base = (r // n_subjects) * target.shape[0]
    for i in range(base + start, base + end):
        if not math.isfinite(levels[i]):
            out[r] = -np.inf
            return
    value = subject_minus2ll(
        theta[r],
        levels[base + start : base + end],
        empty_matrix,
        target[start:end],
        censored[start:end],
        assay[start:end],
        n_kinetic,
        error_kind,
        error_start,
        empty,
        empty,
    )
    out[r] = -np.inf if value >= FAILED else -0.5 * value


@numba.njit(cache=True, error_model="numpy")
def _loglik_serial(  # pragma: no cover - compiled
    theta,
    levels,
    n_subjects,
    offsets,
    target,
    censored,
    assay,
    n_kinetic,
    error_kind,
    error_start,
    out,
):
    empty_matrix, empty = np.empty((0, n_kinetic)), np.empty(0)
    for r in range(theta.shape[0]):
        _loglik_row(
            theta,
            levels,
            n_subjects,
            offsets,
            target,
            censored,
            assay,
            n_kinetic,
            error_kind,
            error_start,
            out,
            empty_matrix,
            empty,
            r,
        )


@numba.njit(cache=True, parallel=True, error_model="numpy")
def _loglik_parallel(  # pragma: no cover - compiled
    theta,
    levels,
    n_subjects,
    offsets,
    target,
    censored,
    assay,
    n_kinetic,
    error_kind,
    error_start,
    out,
):
    empty_matrix, empty = np.empty((0, n_kinetic)), np.empty(0)
    for r in numba.prange(theta.shape[0]):
        _loglik_row(
            theta,
            levels,
            n_subjects,
            offsets,
            target,
            censored,
            assay,
            n_kinetic,
            error_kind,
            error_start,
            out,
            empty_matrix,
            empty,
            r,
        )


def row_loglik(
    theta,
    levels,
    n_subjects,
    offsets,
    target,
    censored,
    assay,
    n_kinetic,
    error_kind,
    error_start,
    out,
) -> None:
    """``ln p(y_s | θ_r)`` of every row into ``out`` (−inf where the model failed): the
    likelihood of :func:`cellkin.fit.likelihood.subject_minus2ll` on the row's levels."""
    size = theta.shape[0] * (target.shape[0] // max(n_subjects, 1))
    kernel = _loglik_parallel if size >= PARALLEL_SAMPLES else _loglik_serial
    kernel(
        theta,
        levels,
        n_subjects,
        offsets,
        target,
        censored,
        assay,
        n_kinetic,
        error_kind,
        error_start,
        out,
    )


class LevelSource:
    """How the levels of every row are computed for one model and one data set."""

    def __init__(self, model: Model, n_subjects: int, offsets: np.ndarray, time: np.ndarray):
        self.model = model
        self.n_subjects = n_subjects
        self.offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        self.time = np.ascontiguousarray(time, dtype=np.float64)
        self.closed_form = model.level_kernel is not None
        if self.closed_form:
            self.address = level_address(model.level_kernel)
        else:
            self.grid, self.position = np.unique(self.time, return_inverse=True)
            owner = np.repeat(np.arange(n_subjects), np.diff(self.offsets))
            self.owner = owner

    def levels(self, kinetic: np.ndarray) -> np.ndarray:
        """Flat levels of every row (``kinetic``: ``(rows, k)``, chain-major); NaN where the
        model failed."""
        kinetic = np.ascontiguousarray(kinetic, dtype=np.float64)
        n_rows = kinetic.shape[0]
        if self.closed_form:
            out = np.empty(n_rows // self.n_subjects * self.time.size)
            closed_form_levels(self.address, kinetic, self.n_subjects, self.offsets, self.time, out)
            return out
        with np.errstate(all="ignore"):
            grid = self.model.simulate_many(self.grid, kinetic)  # (rows, times); failed: NaN
        chains = n_rows // self.n_subjects
        rows = (np.arange(chains)[:, None] * self.n_subjects + self.owner[None, :]).ravel()
        columns = np.tile(self.position, chains)
        return np.ascontiguousarray(grid[rows, columns])
