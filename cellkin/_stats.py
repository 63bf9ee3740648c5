"""Generic statistics shared by the clinical outcomes and the exposure analyses (private core).

* :func:`check_confidence` — the one check of a ``confidence=`` argument (a level in (0, 1));
* :func:`clopper_pearson` — the exact binomial confidence interval of Clopper & Pearson [1]_,
  computed by SciPy (:meth:`scipy.stats.BinomTestResult.proportion_ci`, ``method="exact"``).

Both :mod:`cellkin.outcomes` (ORR, CR and DLT rates) and :mod:`cellkin.metrics` (outcome
rates by exposure group) use them; they live in the core so that neither subpackage imports
the other's private modules.

References
----------
.. [1] Clopper, C. J. & Pearson, E. S. (1934). The use of confidence or fiducial limits
   illustrated in the case of the binomial. Biometrika 26(4), 404–413.
   doi:10.1093/biomet/26.4.404
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from cellkin.errors import OptionError

__all__ = ["check_confidence", "clopper_pearson"]


def check_confidence(confidence: float) -> float:
    """Return `confidence` as a float; raise :class:`OptionError` unless 0 < confidence < 1."""
    try:
        value = float(confidence)
    except (TypeError, ValueError):
        value = np.nan
    if not 0.0 < value < 1.0:
        raise OptionError(
            f"`confidence` must lie strictly between 0 and 1 (e.g. 0.95), got {confidence!r}"
        )
    return value


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper–Pearson) confidence interval of a binomial proportion ``k / n``.

    Parameters
    ----------
    k : int
        Number of successes, ``0 <= k <= n``.
    n : int
        Number of trials. With ``n == 0`` the interval is ``(nan, nan)``.
    confidence : float, default 0.95
        Two-sided confidence level.

    Returns
    -------
    (float, float)
        Lower and upper limits (proportions). The lower limit is 0 when ``k == 0`` and the
        upper is 1 when ``k == n``; otherwise they are the beta quantiles
        ``B(α/2; k, n−k+1)`` and ``B(1−α/2; k+1, n−k)`` [1]_.
    """
    level = check_confidence(confidence)
    k, n = int(k), int(n)
    if n == 0:
        return (np.nan, np.nan)
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
    return (float(ci.low), float(ci.high))
