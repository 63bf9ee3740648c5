"""Response rates with exact confidence intervals, and response status at landmark days.

* :func:`response_rates` — objective response rate (ORR = CR + PR) and CR rate with exact
  Clopper–Pearson confidence intervals [2]_, overall and by group (e.g. dose level);
* :func:`response_at` — each subject's RECIST 1.1 response status [1]_ at landmark days after
  infusion (by default the study's 1, 2, 3, 6 and 12 months, see :data:`MONTH_DAYS`).

References
----------
.. [1] Eisenhauer, E. A. et al. (2009). New response evaluation criteria in solid tumours:
   revised RECIST guideline (version 1.1). Eur J Cancer 45(2), 228–247.
   doi:10.1016/j.ejca.2008.10.026
.. [2] Clopper, C. J. & Pearson, E. S. (1934). The use of confidence or fiducial limits
   illustrated in the case of the binomial. Biometrika 26(4), 404–413.
   doi:10.1093/biomet/26.4.404
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cellkin._stats import check_confidence, clopper_pearson
from cellkin._tables import first_subject, require
from cellkin._validation import show
from cellkin.errors import DataError, OptionError
from cellkin.outcomes._groups import OVERALL, group_labels, ordered_groups
from cellkin.outcomes._recist import RESPONSES, as_timepoints

__all__ = ["LANDMARK_DAYS", "MONTH_DAYS", "response_at", "response_rates"]

#: Months after infusion → day, a month being 365.25 / 12 = 30.4375 days, rounded to the
#: nearest whole day: 1 → 30, 2 → 61, 3 → 91, 6 → 183, 12 → 365.
MONTH_DAYS: Mapping[int, int] = {m: round(m * 365.25 / 12) for m in (1, 2, 3, 6, 12)}
#: The study's landmark days (1, 2, 3, 6 and 12 months after infusion).
LANDMARK_DAYS: tuple[int, ...] = tuple(MONTH_DAYS.values())
_DAY_MONTHS: dict[float, int] = {day: month for month, day in MONTH_DAYS.items()}


def _rate_row(codes: pd.Series, confidence: float) -> dict[str, Any]:
    n = int(codes.size)
    responders = int(codes.isin(["CR", "PR"]).sum())
    complete = int((codes == "CR").sum())
    orr_lo, orr_hi = clopper_pearson(responders, n, confidence)
    cr_lo, cr_hi = clopper_pearson(complete, n, confidence)
    return {
        "n": n,
        "n_responders": responders,
        "orr": responders / n if n else np.nan,
        "orr_ci_lower": orr_lo,
        "orr_ci_upper": orr_hi,
        "n_cr": complete,
        "cr_rate": complete / n if n else np.nan,
        "cr_ci_lower": cr_lo,
        "cr_ci_upper": cr_hi,
    }


def response_rates(
    bor_table: pd.DataFrame,
    by: str | None = None,
    *,
    confidence: float = 0.95,
    response_column: str = "bor",
) -> pd.DataFrame:
    """Objective response rate and CR rate with exact (Clopper–Pearson) confidence intervals.

    Parameters
    ----------
    bor_table : pandas.DataFrame
        One row per subject with a RECIST response column: the output of
        :func:`~cellkin.outcomes.best_overall_response` (merged with the subject table when
        grouping by a subject column), a subject table with ``bor``, or the output of
        :func:`response_at` with ``response_column="response"`` and ``by="day"``.
    by : str, optional
        Column to group by (e.g. ``"dose_level"``); the pooled row is always included.
    confidence : float, default 0.95
        Two-sided confidence level of the exact intervals.
    response_column : str, default "bor"
        Column holding the RECIST codes (CR, PR, SD, NON-CR/NON-PD, PD, NE).

    Returns
    -------
    pandas.DataFrame
        One row per group, then the pooled row (``group == "all"``), with columns ``group``,
        ``n`` (subjects in the denominator: every row, NE included — the intention-to-treat
        convention), ``n_responders`` (CR or PR), ``orr`` (proportion), ``orr_ci_lower``,
        ``orr_ci_upper``, ``n_cr``, ``cr_rate``, ``cr_ci_lower``, ``cr_ci_upper``. Rates and
        limits are proportions in [0, 1]; NaN for an empty group.

    Raises
    ------
    DataError
        If the response column is missing, empty or holds a code that is not RECIST.

    References
    ----------
    .. [1] Clopper & Pearson (1934), Biometrika 26:404–413, doi:10.1093/biomet/26.4.404

    Examples
    --------
    >>> import pandas as pd
    >>> bor = pd.DataFrame({"bor": ["CR", "PR", "SD", "PD", "NE"]})
    >>> response_rates(bor)[["group", "n", "orr", "cr_rate"]]
      group  n  orr  cr_rate
    0   all  5  0.4      0.2
    """
    level = check_confidence(confidence)
    require(bor_table, [response_column], "bor_table", "Pass `response_column=`.")
    codes = bor_table[response_column]
    bad = codes.isna() | ~codes.isin(RESPONSES)
    if bad.any():
        where = first_subject(bor_table, bad)
        value = codes[bad].iloc[0]
        raise DataError(
            f"`bor_table` column `{response_column}` has {show(value)} for {where}; RECIST codes "
            f"are {', '.join(RESPONSES)}. Recode it (NE for a subject not evaluable)."
        )
    labels = group_labels(bor_table, by, "bor_table")
    rows = []
    if by is not None:
        for group in ordered_groups(labels):
            rows.append({"group": group, **_rate_row(codes[labels == group], level)})
    rows.append({"group": OVERALL, **_rate_row(codes, level)})
    return pd.DataFrame(rows)


def response_at(
    lesions_or_timepoints: pd.DataFrame,
    days: Sequence[float] = LANDMARK_DAYS,
    *,
    baseline_day: float | Mapping[Any, float] | None = None,
    strict: bool = True,
) -> pd.DataFrame:
    """Each subject's RECIST 1.1 response status at landmark days after infusion.

    The status at day *d* is the overall response of the latest post-baseline assessment on
    or before *d*, except that progression is final: once PD has been recorded the status
    stays PD. A subject with no post-baseline assessment by day *d* is NE.

    Parameters
    ----------
    lesions_or_timepoints : pandas.DataFrame
        Lesions table or the output of :func:`~cellkin.outcomes.recist_timepoints`.
    days : sequence of float, default ``(30, 61, 91, 183, 365)``
        Landmark days since infusion. The default is 1, 2, 3, 6 and 12 months with a month
        of 365.25/12 days rounded to whole days (:data:`MONTH_DAYS`).
    baseline_day, strict
        As for :func:`~cellkin.outcomes.recist_timepoints` (for a lesions table only).

    Returns
    -------
    pandas.DataFrame
        One row per subject × landmark with columns ``subject``, ``day`` (landmark),
        ``month`` (1, 2, 3, 6 or 12 when the day is one of :data:`MONTH_DAYS`, else NaN),
        ``response`` and ``assessment_day`` (the assessment used; NaN when NE for lack of
        one). Pass it to :func:`response_rates` with ``by="day"`` and
        ``response_column="response"`` for CR and response rates at each landmark.
    """
    points = as_timepoints(lesions_or_timepoints, baseline_day, strict)
    landmarks = [float(day) for day in days]
    if not landmarks or not np.all(np.isfinite(landmarks)):
        raise OptionError(f"`days` must be a non-empty sequence of finite numbers, got {days!r}")
    post = points[~points["baseline"].astype(bool)].sort_values(["subject", "day"])
    rows = []
    for subject in pd.unique(points["subject"]):
        mine = post[post["subject"] == subject]
        when, code = mine["day"].to_numpy(dtype=float), mine["response"].to_numpy(dtype=object)
        pd_days = when[code == "PD"]
        for day in landmarks:
            seen = when <= day
            if pd_days.size and pd_days[0] <= day:
                response, at = "PD", float(pd_days[0])
            elif seen.any():
                response, at = str(code[seen][-1]), float(when[seen][-1])
            else:
                response, at = "NE", np.nan
            month = _DAY_MONTHS.get(day, np.nan)
            rows.append(
                {"subject": subject, "day": day, "month": month, "response": response,
                 "assessment_day": at}
            )  # fmt: skip
    return pd.DataFrame(rows)
