"""Clinical outcomes: RECIST 1.1 response, response rates, survival and safety.

Functions take the canonical clinical tables of :mod:`cellkin.io` (subjects, lesions, adverse
events; DESIGN §2.2–2.3) and return tidy DataFrames or frozen result objects with
``to_frame()``, ``summary()`` and ``_repr_html_``. Time is days since the CAR-T infusion
(day 0).

Tumour response (RECIST 1.1, Eisenhauer et al. 2009, doi:10.1016/j.ejca.2008.10.026)
    :func:`recist_timepoints`, :func:`overall_response`, :func:`best_overall_response`,
    :func:`response_at` (1, 2, 3, 6, 12 months = :data:`MONTH_DAYS`), :func:`response_rates`
    (ORR and CR rate with exact Clopper–Pearson intervals).
Survival (lifelines; intervals identical to R's ``survival::survfit``)
    :func:`kaplan_meier` → :class:`KaplanMeierResult`, :func:`derive_pfs`.
Safety
    :func:`teae_table` → :class:`TEAETable`, :func:`grade_distribution` (CRS, ICANS),
    :func:`dlt_table`, :func:`three_plus_three` → :class:`ThreePlusThreeResult`, and the 3+3
    rule itself, :func:`three_plus_three_decision` (which the trial simulator also follows).

The figures of these results are in :mod:`cellkin.plot` (:func:`cellkin.plot.waterfall`,
:func:`cellkin.plot.spider`, :func:`cellkin.plot.swimmer`, :func:`cellkin.plot.kaplan_meier`;
``KaplanMeierResult.plot`` draws the last).
"""

from __future__ import annotations

from cellkin.outcomes._escalation import (
    ThreePlusThreeResult,
    three_plus_three,
    three_plus_three_decision,
)
from cellkin.outcomes._recist import best_overall_response, overall_response, recist_timepoints
from cellkin.outcomes._response import LANDMARK_DAYS, MONTH_DAYS, response_at, response_rates
from cellkin.outcomes._safety import TEAETable, dlt_table, grade_distribution, teae_table
from cellkin.outcomes._survival import KaplanMeierResult, derive_pfs, kaplan_meier

__all__ = [
    "LANDMARK_DAYS",
    "MONTH_DAYS",
    "KaplanMeierResult",
    "TEAETable",
    "ThreePlusThreeResult",
    "best_overall_response",
    "derive_pfs",
    "dlt_table",
    "grade_distribution",
    "kaplan_meier",
    "overall_response",
    "recist_timepoints",
    "response_at",
    "response_rates",
    "teae_table",
    "three_plus_three",
    "three_plus_three_decision",
]
