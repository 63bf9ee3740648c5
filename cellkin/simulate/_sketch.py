"""Mergeable per-time-point summaries of a population simulated in chunks (internal).

:class:`LevelSummary` takes the simulated levels chunk by chunk, as ``(n_times, n_patients)``
arrays with the patients in order, and keeps per time point, in memory independent of the
number of patients:

* a histogram on fixed bins from which quantiles are read with a guaranteed relative error
  (:meth:`LevelSummary.quantiles`). A positive float64 is binned by its exponent and its
  leading :data:`MANTISSA_BITS` mantissa bits, i.e. each power of two is cut into 512 equal
  bins, so every bin ``[lo, hi)`` has ``hi ≤ lo·(1 + 2⁻⁹)``; the binned range is
  ``[2⁻¹²⁸, 2¹²⁸)`` (3·10⁻³⁹ to 3·10³⁸), plus one bin for levels ≤ 0, one below and one above
  the range (131,075 int32 counters per time point, 0.5 MB);
* the exact count, minimum, maximum and number below an LLOQ;
* the sum, added in patient order (Neumaier-compensated): the same floating-point operations
  whatever the chunking.

So the summary of a simulation is bit-identical whatever the chunk size or thread count
(each time point is accumulated serially; time points run in parallel).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numba
import numpy as np

MANTISSA_BITS = 9
MIN_EXPONENT, MAX_EXPONENT = -128, 128
RELATIVE_ERROR = 2.0**-MANTISSA_BITS  # bound on the relative error of a quantile (≈ 0.2 %)
MAX_PATIENTS = 2**31 - 1  # int32 counters
_SHIFT = 52 - MANTISSA_BITS
_OFFSET = (1023 + MIN_EXPONENT) << MANTISSA_BITS  # biased exponent of 2**MIN_EXPONENT
_N_BINS = (MAX_EXPONENT - MIN_EXPONENT) << MANTISSA_BITS
# Layout of a histogram row: [<= 0, (0, 2**MIN), regular bins..., >= 2**MAX]
_FIRST_BIN = 2


@numba.njit(cache=True, parallel=True)
def _accumulate(
    values, counts, n, n_blq, lloq, total, compensation, minimum, maximum
):  # pragma: no cover - compiled
    """Add ``values`` (n_times, n_patients) to the running statistics, in patient order."""
    n_times, n_patients = values.shape
    bits = values.view(np.int64)
    for j in numba.prange(n_times):
        s, c = total[j], compensation[j]
        for i in range(n_patients):
            v = values[j, i]
            if not math.isfinite(v):
                continue
            if v <= 0.0:
                b = 0
            else:
                k = (bits[j, i] >> _SHIFT) - _OFFSET
                b = 1 if k < 0 else (_N_BINS + 2 if k >= _N_BINS else k + _FIRST_BIN)
            counts[j, b] += 1
            n[j] += 1
            if v < lloq:
                n_blq[j] += 1
            minimum[j] = min(minimum[j], v)
            maximum[j] = max(maximum[j], v)
            t = s + v
            if abs(s) >= abs(v):
                c += (s - t) + v
            else:
                c += (v - t) + s
            s = t
        total[j], compensation[j] = s, c


class LevelSummary:
    """Streaming summary of levels at ``n_times`` time points (see the module docstring)."""

    def __init__(self, n_times: int, lloq: float | None = None) -> None:
        self.n_times = n_times
        self.lloq = -math.inf if lloq is None else float(lloq)
        self.counts = np.zeros((n_times, _N_BINS + 3), dtype=np.int32)
        self.n = np.zeros(n_times, dtype=np.int64)
        self.n_blq = np.zeros(n_times, dtype=np.int64)
        self.minimum = np.full(n_times, np.inf)
        self.maximum = np.full(n_times, -np.inf)
        self._total = np.zeros(n_times)
        self._compensation = np.zeros(n_times)

    def add(self, values: np.ndarray) -> None:
        """Add the next patients' levels, ``(n_times, n_patients)`` (NaN: failed, skipped)."""
        values = np.ascontiguousarray(values, dtype=np.float64)
        _accumulate(
            values,
            self.counts,
            self.n,
            self.n_blq,
            self.lloq,
            self._total,
            self._compensation,
            self.minimum,
            self.maximum,
        )

    def mean(self) -> np.ndarray:
        """Mean of the finite levels per time point (NaN where there are none)."""
        total = self._total + self._compensation
        return np.where(self.n > 0, total / np.maximum(self.n, 1), np.nan)

    def quantiles(self, probabilities: Sequence[float] | np.ndarray) -> np.ndarray:
        """Quantiles ``(n_times, len(probabilities))`` of the finite levels.

        The definition is NumPy's default (``method="linear"``): with ``h = (N − 1)·q``, the
        order statistics ``x_(⌊h⌋)`` and ``x_(⌊h⌋+1)`` interpolated linearly. Each order
        statistic is replaced by a value of its histogram bin (linear interpolation of its
        rank within the bin; the exact minimum and maximum at the extremes), so for levels in
        the binned range the result is within a relative error of :data:`RELATIVE_ERROR`
        (2⁻⁹ ≈ 0.2 %) of the exact quantile; a level ≤ 0 is read as 0, levels outside the
        range as the range's bound.
        """
        out = np.full((self.n_times, len(probabilities)), np.nan)
        for j in range(self.n_times):
            total = int(self.n[j])
            if total == 0:
                continue
            bins = np.flatnonzero(self.counts[j])  # the occupied bins, in order
            cumulative = np.cumsum(self.counts[j, bins], dtype=np.int64)
            for k, q in enumerate(probabilities):
                h = (total - 1) * float(q)
                low = math.floor(h)
                high = min(low + 1, total - 1)
                x_low = self._order_statistic(j, low, bins, cumulative)
                x_high = self._order_statistic(j, high, bins, cumulative)
                out[j, k] = x_low + (h - low) * (x_high - x_low)
        return out

    def _order_statistic(
        self, j: int, rank: int, bins: np.ndarray, cumulative: np.ndarray
    ) -> float:
        if rank == 0:
            return float(self.minimum[j])
        if rank == int(self.n[j]) - 1:
            return float(self.maximum[j])
        i = int(np.searchsorted(cumulative, rank, side="right"))
        b = int(bins[i])
        if b == 0:
            return 0.0
        if b == 1:
            return 2.0**MIN_EXPONENT
        if b == _N_BINS + 2:
            return 2.0**MAX_EXPONENT
        edges = np.array([b - _FIRST_BIN + _OFFSET, b - _FIRST_BIN + _OFFSET + 1], np.int64)
        lo, hi = (edges << _SHIFT).view(np.float64)
        before = int(cumulative[i - 1]) if i else 0
        position = (rank - before + 0.5) / int(self.counts[j, b])
        return float(lo + (hi - lo) * position)
