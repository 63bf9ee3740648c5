"""PKNCA's own test cases, run through cellkin's NCA (conformance suite, issue #16).

Every row of :data:`CASES` is one expectation from PKNCA's test suite (humanpred/pknca,
``tests/testthat/<file>``, the ``test_that`` block named): its inputs, the cellkin column that
holds the same parameter, PKNCA's expected value (written as the R file states it, or with
``how`` saying how it follows from the R file), and the options that give PKNCA's behaviour.
PKNCA's function-level inputs become a kinetics table: a concentration of 0 is a BLQ sample
(PKNCA's convention), NA a missing sample (dropped when read), times are days. ``differs``
names the cellkin default that differs from PKNCA's; the case's ``options`` give PKNCA's
behaviour and :func:`test_the_documented_difference_is_real` checks that the default really
gives another value. ``reference/pknca_not_applicable.csv`` lists the PKNCA tests of these
areas that have no cellkin counterpart, with the reason.

Data: ``reference/pknca_simulated.csv`` is PKNCA's ``generate.conc(2, 1, 0:24)``
(``reference/make_pknca_simulated.R``, R 4.2.2); ``reference/theoph.csv`` is R's
``datasets::Theoph`` in R's row order.

Closing counts (checked by :func:`test_closing_counts`): 300 cases — 271 pass with
cellkin's defaults or the PKNCA option the PKNCA test itself sets, 29 differ under a
documented cellkin default and pass with the named option; 44 PKNCA tests not applicable.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cellkin.metrics import NCAOptions, nca

REFERENCE = Path(__file__).parent / "reference"
NOT_APPLICABLE = pd.read_csv(REFERENCE / "pknca_not_applicable.csv")
NA = math.nan
LN2 = math.log(2)
PKNCA = {"auc_method": "linup-logdown", "impute_start": "none"}  # PKNCA's pk.nca defaults
LOG = {"auc_method": "linup-logdown"}
ZERO = {"blq": "zero"}  # PKNCA conc.blq = "keep"
NO_IMPUTE = {"impute_start": "none"}
IMPUTE_DIFF = "cellkin adds C(0) = 0 when no day-0 sample (impute_start='zero_if_missing')"
KEEP_DIFF = "cellkin's default drops embedded BLQ (blq='positional'); PKNCA keeps them here"
PAST_DIFF = "interval_auc='observed': not computable after the last sample"


@dataclasses.dataclass(frozen=True)
class Case:
    file: str
    test: str
    times: tuple[float, ...]
    conc: tuple[float, ...]
    metric: str
    expected: float | str  # NaN: PKNCA's NA; "finite": any number (PKNCA checks !is.na)
    how: str = ""
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    differs: str = ""
    rel: float = 1e-12
    lloq: float = 1e-9
    dataset: str = ""  # "simulated" (generate.conc) or "theoph_no_zero"; times/conc unused
    subject: str = "1"

    @property
    def id(self) -> str:
        return f"{self.file}:{self.test[:40]}:{self.metric}"


def C(file, test, times, conc, metric, expected, **kw) -> Case:
    return Case(file, test, tuple(map(float, times)), tuple(map(float, conc)), metric,
                expected, **kw)  # fmt: skip


def E(file, test, times, conc, expectations, **kw) -> list[Case]:
    """Several metrics of one input."""
    return [C(file, test, times, conc, metric, value, **kw) for metric, value in expectations]


def c_(day: float) -> str:
    """Column of the level at `day` (as cellkin names it)."""
    day = float(day)
    return "c_" + (str(int(day)) if day.is_integer() else repr(day).replace(".", "p"))


# fmt: off
# --------------------------------------------------------------------------- test-auc.R
A = "test-auc.R"
T8, C8, C6 = range(8), (0, 2, 0, 1, 2, 1, 0, 0), (0, 2, 0, 1, 2, 1)
LIN = 1 + 3 + 1.5 + 1.5  # conc.blq first = keep, middle = drop, last = keep; linear
LOGD = 1 + 2 / LN2 + 1.5 + 1 / LN2  # the same, lin up/log down
T7, C7 = (0, 1, 2, 3, 4, 5, 7), (0, 2, 0, 1, 2, 1, 0)
AUC_CASES = [
    C(A, "pk.calc.auxc", (2, 3), (1, 2), "auc_1_3", NA, how="starts before the first sample",
      options=NO_IMPUTE, differs=IMPUTE_DIFF),
    C(A, "pk.calc.auxc", (2, 3), (0, 0), "auc_2_3", 0.0, how="all zeros is zero"),
    C(A, "pk.calc.auxc", range(2, 7), (NA, 0, NA, 0, NA), "auc_1_3", 0.0,
      how="mixed zeros and NA is zero (cellkin: C(0) = 0 makes day 1 interpolable)"),
    *E(A, "Linear AUC when the conc at the end of the interval is above LOQ", range(3),
       (0, 1, 1), [("auc_last", 1.5), ("auc_all", 1.5), ("auc_inf", NA)],
       how="AUCinf: lambda.z = NA; cellkin finds no lambda_z (1 point after Tmax)"),
    *E(A, "Linear AUC when the conc at the end of the interval is BLQ, lambda.z missing",
       range(3), (0, 1, 0), [("auc_last", 0.5), ("auc_all", 1.0), ("auc_inf", NA)]),
    *E(A, "Linear AUC when the conc at the end of the interval is BLQ, lambda.z given",
       range(3), (0, 1, 0), [("auc_last", 0.5), ("auc_all", 1.0)]),
    *E(A, "Linear AUC when when there are multiple BLQ values at the end, lambda.z given",
       range(7), (0, 1, 0, 0, 0, 0, 0), [("auc_last", 0.5), ("auc_all", 1.0)]),
    *E(A, "Confirm that center BLQ points are dropped, kept, or imputed correctly", range(6),
       C6, [("auc_last", 1 + 1 + 0.5 + 1.5 + 1.5), ("auc_all", 1 + 1 + 0.5 + 1.5 + 1.5)],
       options=ZERO, differs=KEEP_DIFF),
    *E(A, "Confirm that center BLQ points are dropped, kept, or imputed correctly", range(6),
       C6, [("auc_last", 1 + 1 + 0.5 + 1.5 + 1 / LN2), ("auc_all", 1 + 1 + 0.5 + 1.5 + 1 / LN2)],
       options={**ZERO, **LOG}, differs=KEEP_DIFF),
    *E(A, "Confirm BLQ in the middle or end are calculated correctly", T8, C8,
       [("auc_last", 1 + 1 + 0.5 + 1.5 + 1.5), ("auc_all", 1 + 1 + 0.5 + 1.5 + 1.5 + 0.5)],
       options=ZERO, differs=KEEP_DIFF),
    *E(A, "Confirm BLQ in the middle or end are calculated correctly", T8, C8,
       [("auc_last", 1 + 1 + 0.5 + 1.5 + 1 / LN2), ("auc_all", 1 + 1 + 0.5 + 1.5 + 1 / LN2 + 0.5)],
       options={**ZERO, **LOG}, differs=KEEP_DIFF),
    *E(A, "Confirm BLQ in the middle or end are calculated correctly", T8, C8,
       [("auc_last", LIN), ("auc_all", LIN + 0.5)], how="first keep, middle drop, last keep"),
    *E(A, "Confirm BLQ in the middle or end are calculated correctly", T8, C8,
       [("auc_last", LOGD), ("auc_all", LOGD + 0.5)], options=LOG),
    *E(A, "When AUCinf is requested with NA for lambda.z, the result is NA", T8, C8,
       [("auc_last", LIN), ("auc_all", LIN + 0.5), ("auc_inf", NA)],
       how="cellkin: ln C = 0, ln 2, 0 after Tmax: no decline, no lambda_z"),
    *E(A, "When AUCinf is requested with NA for lambda.z, the result is NA", T8, C8,
       [("auc_last", LOGD), ("auc_all", LOGD + 0.5), ("auc_inf", NA)], options=LOG),
    *E(A, "Test NA at the end", T8, (0, 2, 0, 1, 2, 1, NA, 0),
       [("auc_last", LIN), ("auc_all", LIN + 1), ("auc_inf", NA)]),
    *E(A, "Test NA at the end", T8, (0, 2, 0, 1, 2, 1, NA, 0),
       [("auc_last", LOGD), ("auc_all", LOGD + 1), ("auc_inf", NA)], options=LOG),
    *E(A, "interpolation of times within the time interval", T7, C7,
       [("auc_last_0_6", LIN), ("auc_0_6", LIN + 0.75)], how="AUClast, AUCall on (0, 6)"),
    *E(A, "interpolation of times within the time interval", T7, C7,
       [("auc_last_0_6", LOGD), ("auc_0_6", LOGD + 0.5 / LN2)], options=LOG),
    *E(A, "warning with beginning of interval before the beginning of time", T7,
       (NA, 2, 0, 1, 2, 1, 0), [("auc_last", NA), ("auc_all", NA)], options=NO_IMPUTE,
       how="NA at time 0: an AUC from 0 starts before the first measurement",
       differs=IMPUTE_DIFF),
    C(A, "warning with beginning of interval before the beginning of time", T7,
      (NA, 2, 0, 1, 2, 1, 0), "auc_inf", NA, options=NO_IMPUTE),
    C(A, "pk.calc.auc.last", range(4), (0, 1, 1, 0), "auc_last", 1.5,
      how="equality with pk.calc.auc(auc.type = 'AUClast'): 0.5 + 1"),
    C(A, "pk.calc.auc.all", range(4), (0, 1, 1, 0), "auc_all", 2.0,
      how="equality with pk.calc.auc(auc.type = 'AUCall'): 0.5 + 1 + 0.5"),
    C(A, "pk.calc.aumc", range(4), (0, 1, 1, 0.5), "aumc_last", 3.75),
    C(A, "pk.calc.aumc", range(4), (0, 1, 1, 0.5), "aumc_last",
      2 - 0.5 / math.log(0.5) + 0.5 / math.log(0.5) ** 2, options=LOG),
    C(A, "AUC with a single concentration measured should return NA (fix #176)", (0,), (1,),
      "auc_last", NA),
    C(A, "AUC with a single concentration measured should return NA (fix #176)", (2, 3, 4),
      (NA, 0, NA), "auc_1_3", NA, options=NO_IMPUTE, differs=IMPUTE_DIFF),
]

# ---------------------------------------------------------------------- test-half.life.R
H = "test-half.life.R"
T4, C4 = range(4), (1, 0.5, 0.25, 0.1251)
ALLOW = {"allow_tmax_in_lambda_z": True}
MANUAL = (3, 1, 0.5, 0.13, 0.12, 0.113)
HALF_LIFE_CASES = [
    C(H, "pk.calc.half.life", range(3), (1, 0.5, 0.25), "half_life", 1.0, options=ALLOW),
    C(H, "pk.calc.half.life", range(3), (1, 0.5, 0.25), "half_life", NA,
      how="min.hl.points = 4: too few points", options={**ALLOW, "min_points_lambda_z": 4}),
    C(H, "pk.calc.half.life", T4, C4, "half_life", 1.000346, rel=1e-4,
      options={**ALLOW, "adj_r2_tolerance": 0.1}),
    C(H, "pk.calc.half.life", T4, C4, "half_life", 1.000577, rel=1e-5,
      how="allow.tmax.in.half.life = FALSE"),
    *E(H, "pk.calc.half.life", T4, C4,
       [("lambda_z", 0.6929073), ("r2", 0.9999999), ("r2_adj", 0.9999999),
        ("lambda_z_corrxy", -1.0), ("lambda_z_time_first", 0.0), ("lambda_z_time_last", 3.0),
        ("n_points_lambda_z", 4), ("clast_pred", 0.12507), ("half_life", 1.000346),
        ("span_ratio", 2.998962)], rel=1e-4, options={**ALLOW, "adj_r2_tolerance": 0.01}),
    C(H, "half-life manual point selection", range(6), MANUAL, "half_life", 1.00653, rel=1e-4,
      how="manual selection uses the given points as is",
      options={"lambda_z_include": {"1": list(range(6))}}),
    C(H, "half-life manual point selection", range(6), (0,) * 6, "half_life", NA,
      how="all BLQ with manual point selection gives NA",
      options={"lambda_z_include": {"1": list(range(6))}}),
    C(H, "half-life manual point selection", (1, 2, 3), (2, 4, 8), "lambda_z", NA,
      how="PKNCA: lambda.z = -log(2) marked excluded ('Negative half-life estimated with "
          "manually-selected points'); cellkin: NaN with that reason",
      options={"lambda_z_include": {"1": [1, 2, 3]}}),
    *E(H, "two-point half-life succeeds (fix #114)", range(2), (1, 0.5),
       [("lambda_z", LN2), ("r2", 1.0), ("r2_adj", NA), ("lambda_z_corrxy", -1.0),
        ("lambda_z_time_first", 0.0), ("lambda_z_time_last", 1.0), ("n_points_lambda_z", 2),
        ("clast_pred", 0.5), ("half_life", 1.0), ("span_ratio", 1.0)],
       options={**ALLOW, "min_points_lambda_z": 2}),
    C(H, "When tlast is excluded, lambda.z.time.last != tlast", range(6),
      (1, 0.5, 0.25, 0.1251, 0.05, 0), "lambda_z_time_last", 3.0,
      options={"lambda_z_exclude": {"1": [4]}}),
    *E(H, "get_halflife_points method (1: PKNCAdata, 2: PKNCAresults)", range(7),
       (1, 0.5, 0.25, 0.125, 0.07, 0, 0.01),
       [("lambda_z_time_first", 1.0), ("lambda_z_time_last", 6.0)],
       how="#448: points 1..6 (the BLQ at 5 lies inside the window)"),
    *E(H, "get_halflife_points method (1: PKNCAdata, 2: PKNCAresults)", range(7),
       (1, 0.5, 0.25, 0.125, 0.07, 0, 0.01),
       [("lambda_z_time_first", 1.0), ("lambda_z_time_last", 4.0)],
       how="#448, point 6 excluded: points 1..4", options={"lambda_z_exclude": {"1": [6]}}),
    C(H, "half-life has a exclude message when it cannot be calculated for flat data (#503)",
      range(4), (1, 1, 1, 1), "half_life", NA, how="'No point variability'", options=ALLOW),
]

# ---------------------------------------------------------------------- test-pk.calc.all.R
P = "test-pk.calc.all.R"
SIM = (13.54, 0.9998, 4.000, 24.00, 0.3441, 0.04297, 0.9072, 0.9021, -0.952, 5.000, 24.00,
       20.00, 0.3356, 16.13, 1.178, 21.55, 14.03, 0.9410, 2.000, 24.00, 0.3148, 0.05689,
       0.9000, 0.8944, -0.952, 5.000, 24.00, 20.00, 0.3011, 12.18, 1.560, 19.56)
SIM_METRICS = ("auc_last", "cmax", "tmax", "tlast", "clast", "lambda_z", "r2", "r2_adj",
               "lambda_z_corrxy", "lambda_z_time_first", "lambda_z_time_last",
               "n_points_lambda_z", "clast_pred", "half_life", "span_ratio", "auc_inf")
CORRXY_2 = ("PKNCA's table says -0.952 for both subjects and checks the whole column with "
            "all.equal (mean relative difference <= 1e-3), under which this entry passes; "
            "-sqrt(r.squared = 0.9000) = -0.9487")
INCL = (1, 0.6, 0.3, 0.25, 0.15, 0.1)
T68, C68 = (0, 1, 2, 4, 8, 24, 48), (0, 1, 2, 1.3, 0.4, 0.35, 0.125)
P372 = "include_half.life and exclude_half.life work with NAs (#372)"
P_ZERO = ("aucint works within pk.calc.all for all zero concentrations with interpolated or "
          "extrapolated concentrations")
PK_NCA_CASES = [
    *[Case(P, "pk.nca", (), (), SIM_METRICS[k % 16], value, options=PKNCA,
           how="verify.result (4 significant digits)" if k != 24 else CORRXY_2,
           rel=1e-3 if k != 24 else 4e-3, dataset="simulated", subject=str(1 + k // 16))
      for k, value in enumerate(SIM)],
    *[Case(P, "Calculations when no dose info is given", (), (), metric, value, options=PKNCA,
           dataset="simulated", subject=subject)
      for subject, metric, value in (("1", "auc_last", 13.5417297156528),
                                     ("1", "cmax", 0.999812606062292),
                                     ("2", "auc_last", 14.0305397438242),
                                     ("2", "cmax", 0.94097296083447))],
    *[Case(P, "pk.calc.all with duration.conc required", (), (), "mrt_last", value, rel=1e-5,
           how="mrt.iv.last with dose duration 0 = AUMClast/AUClast", options=PKNCA,
           dataset="simulated", subject=subject)
      for subject, value in (("1", 10.41263), ("2", 10.17515))],
    C(P, P372, range(6), INCL, "half_life", 1.820879, rel=1e-5,
      how="include_hl c(FALSE, NA, TRUE, TRUE, TRUE, TRUE): days 2-5",
      options={"lambda_z_include": {"1": [2, 3, 4, 5]}}),
    C(P, P372, range(6), INCL, "half_life", NA, how="all-FALSE include_hl: no point",
      options={"lambda_z_include": {"1": []}}),
    C(P, P372, range(6), INCL, "half_life", 1.512942, rel=1e-5,
      how="all-NA include_hl or exclude_hl, all-FALSE exclude_hl: the automatic selection"),
    C(P, P372, range(6), INCL, "half_life", NA,
      how="exclude_hl c(FALSE, NA, TRUE, TRUE, TRUE, TRUE): days 2-5 excluded, too few",
      options={"lambda_z_exclude": {"1": [2, 3, 4, 5]}}),
    C(P, "Ensure that options are respected during pk.nca call", T68, C68, "auc_inf",
      24.54319, rel=1e-4, how="linear", options=NO_IMPUTE),
    C(P, "Ensure that options are respected during pk.nca call", T68, C68, "auc_inf",
      23.68317, rel=1e-4, how="lin up/log down", options=PKNCA),
    C(P, "Can calculate parameters requiring extra arguments", range(5), (1, 2, 3, 2, 1),
      "time_above_2", 2.0, how="time_above, conc_above = 2, linear"),
    *E(P, P_ZERO, range(4), (0, 0, 0, 0),
       [("clast", 0.0), ("tmax", NA), ("tlast", NA), ("lambda_z", NA), ("half_life", NA),
        ("clast_pred", NA)], how="clast.obs is 0, the other parameters NA",
       options={**PKNCA, "interval_auc": "inf_obs"}),
    C(P, P_ZERO, range(4), (0, 0, 0, 0), "auc_0_4", 0.0, how="aucint.inf.obs (0, 4) is 0",
      options={**PKNCA, "interval_auc": "inf_obs"}, differs=PAST_DIFF),
    C(P, P_ZERO, range(4), (0, 0, 0, 0), "auc_0_4", 0.0, how="aucint.inf.pred (0, 4) is 0",
      options={**PKNCA, "interval_auc": "inf_pred"}, differs=PAST_DIFF),
]

# ------------------------------------------------------------------ test-pk.calc.simple.R
S = "test-pk.calc.simple.R"
SIMPLE_CASES = [
    *[C(S, "pk.calc.cmax", range(len(conc)), conc, "cmax", value)
      for conc, value in (((1, 2), 2), ((1, 2, 3), 3), ((1, NA, 3), 3), ((NA, NA, 3), 3),
                          ((1, NA, NA), 1), ((1, NA, 3, NA), 3))],
    C(S, "pk.calc.tmax", (0, 1), (1, 2), "tmax", 1.0),
    C(S, "pk.calc.tmax", (0, 1), (1, 1), "tmax", 0.0, how="first.tmax = TRUE (the default)"),
    *[C(S, "pk.calc.tlast", (0, 1), conc, "tlast", value)
      for conc, value in (((1, 2), 1), ((0, 0), NA), ((0, 1), 1), ((1, 0), 0), ((1, 1), 1))],
    *[C(S, "pk.calc.clast.obs", range(4), conc, "clast", value)
      for conc, value in (((0, 1, 2, 0), 2), ((0, 1, 2, 3), 3), ((0, 1, 2, NA), 2),
                          ((0, 1, NA, 3), 3), ((0, 0, 0, 0), 0))],
]

# ---------------------------------------------------------------------- test-cleaners.R
# PKNCA's cleaners return the cleaned data; cellkin shows it through the AUC (linear) of the
# kept levels, computed here by hand from PKNCA's expected cleaned data. Times 1..5 of PKNCA's
# inputs are shifted to 0..4 (the cleaners do not depend on the time values).
B = "test-cleaners.R"
C5 = (0, 1, 0, 2, 0)
DROP = {"blq": "drop", **NO_IMPUTE}
CLEANER_CASES = [
    C(B, "clean.conc.blq", (0, 1), (0, 1), "auc_all", NA,
      how="conc.blq = 'drop' drops the leading BLQ: no level at day 0", options=DROP),
    C(B, "clean.conc.blq", (0, 1), (0, 1), "auc_all", 0.5, how="first keep: (0,0) (1,1)"),
    C(B, "clean.conc.blq", (0, 1), (1, 0), "auc_all", NA,
      how="conc.blq = 'drop': only (0, 1) is left, one level", options=DROP),
    C(B, "clean.conc.blq", (0, 1), (1, 0), "auc_all", 0.5, how="last keep: (0,1) (1,0)"),
    C(B, "clean.conc.blq", range(5), C5, "auc_1_3", 3.0,
      how="conc.blq = 'drop': (1,1) (3,2) are left", options=DROP),
    C(B, "clean.conc.blq", range(5), C5, "auc_all", 0.5 + 3 + 1,
      how="first keep, middle drop, last keep: rows 1, 2, 4, 5"),
    C(B, "clean.conc.blq", range(5), C5, "auc_all", 0.5 + 0.5 + 1 + 1,
      how="first, middle, last keep (= 'keep')", options=ZERO, differs=KEEP_DIFF),
    C(B, "clean.conc.blq", (0, 1, 2), (1, 0, 2), "auc_all", 3.0,
      how="conc.blq = 'drop': (0,1) (2,2)", options={"blq": "drop"}),
    C(B, "clean.conc.blq", (0, 1, 2), (1, 0, 2), "auc_all", 1.5, how="conc.blq = 'keep'",
      options=ZERO, differs=KEEP_DIFF),
    C(B, "clean.conc.blq", (0, 1, 2), (1, 0, 2), "auc_all", 0.75 + 1.25,
      how="conc.blq = 0.5 with LLOQ 1: cellkin's 'lloq/2'", options={"blq": "lloq/2"},
      lloq=1.0),
    C(B, "clean.conc.blq", range(5), (0, 1, NA, 2, 0), "auc_all", 0.5 + 3 + 1,
      how="NA dropped (conc.na = 'drop'), then the positional rule"),
    C(B, "clean.conc.blq", (0, 1, 2), (1, 0, 2), "auc_all", 3.0,
      how="before.tmax = drop, after.tmax = drop", options={"blq": "drop"}),
    C(B, "clean.conc.blq", (0, 1, 2), (1, 0, 2), "auc_all", 1.5,
      how="before.tmax = keep, after.tmax = keep", options=ZERO, differs=KEEP_DIFF),
    C(B, "clean.conc.blq", (0, 1, 2), (1, 0, 2), "auc_all", 0.75 + 1.25,
      how="conc.blq = list(first = 0, middle = 0.5, last = 0), LLOQ 1 (fix related to #145)",
      options={"blq": {"first": "zero", "middle": "lloq/2", "last": "zero"}}, lloq=1.0),
]


def _kept_levels(keep_first: bool, keep_middle: bool, keep_last: bool) -> list[tuple]:
    """PKNCA keeps rows (first, TRUE, middle, TRUE, last) of conc (0, 1, 0, 2, 0) at days
    1..5. cellkin's levels show which: day 1 is 0 if kept, else before the first sample (NA);
    day 3 is 0 if kept, else (1 + 2)/2 interpolated; day 5 is 0 if kept, else after the last
    sample (NA)."""
    return [("c_1", 0.0 if keep_first else NA), ("c_3", 0.0 if keep_middle else 1.5),
            ("c_5", 0.0 if keep_last else NA)]


def _action(keep: bool) -> str:
    return "zero" if keep else "drop"


for _f, _m, _l in itertools.product((True, False), repeat=3):
    CLEANER_CASES += E(B, "clean.conc.blq", range(1, 6), C5, _kept_levels(_f, _m, _l),
                       how=f"conc.blq = list(first={_action(_f)}, middle={_action(_m)}, "
                           f"last={_action(_l)}) ('zero' is PKNCA's 'keep')",
                       options={**NO_IMPUTE, "blq": {"first": _action(_f),
                                "middle": _action(_m), "last": _action(_l)}})
for _b, _a in itertools.product((True, False), repeat=2):
    CLEANER_CASES += E(B, "clean.conc.blq", range(1, 6), C5, _kept_levels(_b, _b, _a),
                       how=f"conc.blq = list(before.tmax={_action(_b)}, "
                           f"after.tmax={_action(_a)}) (Tmax at day 4)",
                       options={**NO_IMPUTE, "blq": {"before_tmax": _action(_b),
                                "after_tmax": _action(_a)}})

# ------------------------------------------------------------------------ test-impute.R
M = "test-impute.R"
PREDOSE = "PKNCA_impute_method_start_predose"
CONC0 = {"impute_start": "start_conc0"}
IMPUTE_CASES = [
    C(M, "PKNCA_impute_method_start_conc0", (0, 1, 2), (1, 2, 3), "auc_all", 1 + 2.5,
      how="time 0 replaced: (0,0) (1,2) (2,3)", options=CONC0,
      differs="cellkin keeps an observed day-0 level (impute_start='zero_if_missing')"),
    C(M, "PKNCA_impute_method_start_conc0", (1, 2), (2, 3), "auc_all", 1 + 2.5,
      how="time 0 added", options=CONC0),
    C(M, "PKNCA_impute_method_start_conc0", (-1, 1, 2), (1, 2, 3), "auc_all", 1 + 2.5,
      how="time 0 inserted after the pre-dose sample", options=CONC0),
    C(M, PREDOSE, (1, 2, 3), (1, 2, 3), "auc_all", NA,
      how="no pre-dose sample: no change, so no AUC from 0",
      options={"impute_start": "start_predose"}),
    C(M, PREDOSE, (0, 1, 2), (1, 2, 3), "auc_all", 1.5 + 2.5, how="time 0 present: no change",
      options={"impute_start": "start_predose"}),
    *[C(M, PREDOSE, (pre, 1, 2), (1, 2, 3), "auc_all", value, how=how,
        options={"impute_start": "start_predose", "predose_max_days": shift})
      for pre, shift, value, how in (
          (-1, 1.2, 1.5 + 2.5, "shift within max_shift (5 % of 0-24)"),
          (-1.2, 1.2, 1.5 + 2.5, "shift equal to max_shift"),
          (-3, 1.2, NA, "shift beyond max_shift: no imputation"),
          (-3, 3, 1.5 + 2.5, "max_shift = 3 given"))],
    C(M, PREDOSE, (-1.25, 1, 2, 24), (1, 2, 3, 4), "auc_all", NA,
      how="end = Inf: max_shift = 5 % of the last time (1.2); -1.25 is not shifted",
      options={"impute_start": "start_predose", "predose_max_days": 1.2}),
    C(M, PREDOSE, (-1.2, 1, 2, 24), (1, 2, 3, 4), "auc_all", 1.5 + 2.5 + 3.5 * 22,
      how="-1.2 is shifted", options={"impute_start": "start_predose", "predose_max_days": 1.2}),
    C(M, "start_conc0 imputation works (fix #257)", (0.08, 1, 2, 3, 4),
      (1, 0.5, 0.4, 0.3, 0.2), "auc_last", "finite", options={**PKNCA, **CONC0}),
    *[Case(M, "pk.nca with imputation", (), (), "auc_last", expected, options={**LOG, **opt},
           how="Theoph without its time-0 rows; 'start_predose,start_conc0' (no pre-dose "
               "rows) acts as start_conc0", dataset="theoph_no_zero", subject=str(subject))
      for subject in range(1, 13)
      for opt, expected in ((NO_IMPUTE, NA), (CONC0, "finite"))],
]

# ---------------------------------------------------------------------- test-time.above.R
TA = "test-time.above.R"
CROSS = (math.log(6) - math.log(5)) / (math.log(6) - math.log(4))
TIME_ABOVE_CASES = [
    C(TA, "time_above simple scenarios", (5,), (5,), "time_above_5", NA,
      how="too few measured concentrations", options=NO_IMPUTE, differs=IMPUTE_DIFF),
    *[C(TA, "time_above linear", range(1, 1 + len(conc)), conc, "time_above_5", value,
        options=NO_IMPUTE)
      for conc, value in (((5, 5), 1), ((5, 6, 5), 2), ((4, 4), 0), ((5, 4, 5), 0),
                          ((6, 4, 5), 0.5), ((6, NA, 5), 2))],
    *[C(TA, "time_above with 'lin up/log down'", times, conc, "time_above_5", value,
        options={**NO_IMPUTE, **LOG})
      for times, conc, value in (((1, 2, 3), (6, 4, 5), CROSS), ((2, 4, 6), (6, 4, 5), 2 * CROSS),
                                 ((1, 2, 3), (6, 4, 6), CROSS + 0.5),
                                 ((1, 2, 3, 4), (6, 4, 6, 0), CROSS + 0.5 + 1 / 6))],
    C(TA, "time_above with 'lin up/log down'", (1, 2, 3, 4), (6, 0, 6, 0), "time_above_5",
      3 / 6, how="the 0 at 2 counts as 0, not dropped", options={**NO_IMPUTE, **LOG, **ZERO},
      differs=KEEP_DIFF),
]

# ---------------------------------------------------------------- test-interpolate.conc.R
IC = "test-interpolate.conc.R"
C5B = (0, 1, 0.5, 1, 0)
LAST, ALL = {"interval_auc": "last"}, {"interval_auc": "all"}
INTERPOLATE_CASES = [
    C(IC, "extrapolate.conc", (1, 2, 3), (0, 1, 0), "c_4", 0.0, how="AUClast: always 0",
      options={**LAST, **NO_IMPUTE}),
    C(IC, "extrapolate.conc", (1, 2, 3), (0, 1, 0), "c_2p5", 0.0, how="AUClast: always 0",
      options={**LAST, **NO_IMPUTE}),
    C(IC, "extrapolate.conc", (1, 2, 3), (0, 1, 0), "c_4", 0.0, how="AUCall after a last 0",
      options={**ALL, **NO_IMPUTE}, differs=PAST_DIFF),
    C(IC, "extrapolate.conc", (1, 2, 3), (0, 1, 1), "c_4", 0.0, how="AUCall after a nonzero",
      options={**ALL, **NO_IMPUTE}, differs=PAST_DIFF),
    C(IC, "extrapolate.conc", (1, 2, 3), (0, 1, 0), "c_2p5", 0.5,
      how="AUCall between Tlast and the first BLQ: linear", options=NO_IMPUTE),
    *[C(IC, "extrapolate.conc", range(5), C5B, c_(x), value, options=opt, differs=differs)
      for x, opt, value, differs in ((5, ALL, 0.0, PAST_DIFF), (5, LAST, 0.0, ""),
                                     (4, ALL, 0.0, ""), (4, LAST, 0.0, ""),
                                     (3.5, ALL, 0.5, ""), (3.5, LAST, 0.0, ""))],
    *[C(IC, "interpolate.conc", times, conc, c_(x), value, options=opt)
      for times, conc, x, value, opt in (
          ((0, 1), (0, 1), 0, 0.0, {}), ((0, 1), (0, 1), 0, 0.0, LOG),
          ((0, 1), (0, 1), 1, 1.0, {}), ((0, 1), (0, 1), 1, 1.0, LOG),
          ((0, 1, 2, 3), (0, 1, NA, 1), 2, 1.0, {}), ((0, 1, 2, 3), (0, 1, NA, 1), 2, 1.0, LOG),
          ((0, 1, 2), (0, 1, 0), 0.5, 0.5, {}), ((0, 1, 2), (0, 1, 0), 0.5, 0.5, LOG),
          ((0, 1, 2), (0, 2, 1), 1.25, 1.75, {}), ((0, 1, 2), (0, 2, 1), 1.25, 2**0.75, LOG),
          (range(5), (0, 1, 0, 1, 0), 2.25, 1.0, {"blq": "drop"}),
          (range(5), (0, 1, 0, 1, 0), 2.25, 1.0, {"blq": "drop", **LOG}),
          (range(5), C5B, 1.5, math.exp(np.mean(np.log([1, 0.5]))), LOG))],
    *[C(IC, "interpolate.conc", range(5), (0, 1, 0, 1, 0), c_(x), value, how="conc.blq = keep",
        options={**ZERO, **opt}, differs=KEEP_DIFF)
      for x, value, opt in ((2.25, 0.25, {}), (2.25, 0.25, LOG), (1.5, 0.5, {}),
                            (1.5, 0.5, LOG), (2.5, 0.5, {}), (2.5, 0.5, LOG))],
    C(IC, "interp.extrap.conc", range(5), C5B, "c_1p5", math.exp(np.mean(np.log([1, 0.5]))),
      options=LOG),
]

CASES: list[Case] = [*AUC_CASES, *HALF_LIFE_CASES, *PK_NCA_CASES, *SIMPLE_CASES,
                     *CLEANER_CASES, *IMPUTE_CASES, *TIME_ABOVE_CASES, *INTERPOLATE_CASES]
DIFFERS = [case for case in CASES if case.differs]

# test-half.life.R "get_halflife_points ...": PKNCA's λz points of the 12 Theoph subjects
# (n, first and last time), and subject 1 with include / exclude / exclude_half.life columns.
THEOPH_POINTS = {1: (3, 9.05, 24.37), 2: (4, 7.03, 24.3), 3: (3, 9.0, 24.17),
                 4: (3, 9.02, 24.65), 5: (4, 7.02, 24.35), 6: (7, 2.03, 23.85),
                 7: (4, 6.98, 24.22), 8: (6, 3.53, 24.12), 9: (3, 8.8, 24.43),
                 10: (3, 9.38, 23.7), 11: (3, 9.03, 24.08), 12: (3, 9.03, 24.15)}
# The included points 0.25 (2.84) and 24.37 (3.28) rise: PKNCA fits them and marks the
# negative half-life excluded; cellkin gives NaN with that reason (None below).
THEOPH_SUBJECT_1 = (
    ({"lambda_z_include": {"1": [0.25, 24.37]}}, (), None),
    ({}, ((0.25, "x"), (24.37, "x")), (3, 7.03, 12.12)),
    ({"lambda_z_exclude": {"1": [0.25, 9.05, 24.37]}}, (), (3, 5.1, 12.12)),
)
# fmt: on
# ---------------------------------------------------------------------------- machinery


def _table(times, conc, lloq, subject="1") -> pd.DataFrame:
    conc = np.asarray(conc, dtype=float)
    blq = conc == 0
    return pd.DataFrame({"subject": subject, "time": np.asarray(times, dtype=float),
                         "value": np.where(blq, np.nan, conc), "assay": "qpcr",
                         "unit": "copies/ug", "lloq": lloq, "blq": blq})  # fmt: skip


def _dataset(name: str) -> pd.DataFrame:
    if name == "simulated":
        data = pd.read_csv(REFERENCE / "pknca_simulated.csv")
        return pd.concat([_table(g["time"], g["conc"], 1e-9, str(s))
                          for s, g in data.groupby("ID")])  # fmt: skip
    data = pd.read_csv(REFERENCE / "theoph.csv")
    data = data[data["Time"] != 0]
    return pd.concat([_table(g["Time"], g["conc"], 1e-9, str(s))
                      for s, g in data.groupby("Subject")])  # fmt: skip


def _grid_options(metric: str) -> dict[str, Any]:
    if match := re.fullmatch(r"auc(?:_last)?_([0-9p]+)_([0-9p]+)", metric):
        days = [float(x.replace("p", ".")) for x in match.groups()]
        return {"intervals": [tuple(days)]}
    if match := re.fullmatch(r"c_([0-9p]+)", metric):
        return {"levels_at": [float(match.group(1).replace("p", "."))]}
    if match := re.fullmatch(r"time_above_([0-9p]+)", metric):
        return {"time_above": [float(match.group(1).replace("p", "."))]}
    return {}


def run(case: Case, *, defaults: bool = False) -> float:
    """cellkin's value for the case (with its PKNCA options, or with cellkin's defaults for
    the options the case says differ)."""
    if case.dataset:
        kinetics = _dataset(case.dataset)
        kinetics = kinetics[kinetics["subject"] == case.subject]
    else:
        kinetics = _table(case.times, case.conc, case.lloq)
    options = {**case.options, **_grid_options(case.metric)}
    if defaults:
        options = {k: v for k, v in options.items()
                   if k not in ("blq", "impute_start", "interval_auc")}  # fmt: skip
    row = nca(kinetics, NCAOptions(**options)).iloc[0]
    return float(row[case.metric]) if not pd.isna(row[case.metric]) else math.nan


def _check(value: float, case: Case) -> None:
    if case.expected == "finite":
        assert math.isfinite(value), case.how
    elif math.isnan(case.expected):
        assert math.isnan(value), f"expected NA, got {value}"
    else:
        assert value == pytest.approx(case.expected, rel=case.rel, abs=1e-12), case.how


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_pknca_case(case):
    _check(run(case), case)


@pytest.mark.parametrize("case", DIFFERS, ids=lambda c: c.id)
def test_the_documented_difference_is_real(case):
    """Under cellkin's defaults the case does not give PKNCA's value (the list is honest)."""
    with pytest.raises(AssertionError):
        _check(run(case, defaults=True), case)


@pytest.mark.parametrize("subject", list(THEOPH_POINTS))
def test_theoph_lambda_z_points_as_pknca(subject):
    """PKNCA's λz points for the 12 Theoph subjects (pk.nca defaults, start 0, end Inf)."""
    data = pd.read_csv(REFERENCE / "theoph.csv")
    data = data[data["Subject"] == subject]
    row = nca(_table(data["Time"], data["conc"], 1e-9), NCAOptions(**PKNCA)).iloc[0]
    n, first, last = THEOPH_POINTS[subject]
    assert (row["n_points_lambda_z"], row["lambda_z_time_first"],
            row["lambda_z_time_last"]) == (n, first, last)  # fmt: skip


@pytest.mark.parametrize(("options", "exclude", "expected"), THEOPH_SUBJECT_1)
def test_theoph_subject_1_include_and_exclude(options, exclude, expected):
    data = pd.read_csv(REFERENCE / "theoph.csv")
    table = _table(*data.loc[data["Subject"] == 1, ["Time", "conc"]].T.to_numpy(), 1e-9)
    reasons = dict(exclude)
    table["exclude"] = [reasons.get(t, "") for t in table["time"]]
    row = nca(table, NCAOptions(**PKNCA, **options)).iloc[0]
    if expected is None:
        assert np.isnan(row["lambda_z"])
        assert "lambda_z <= 0 with the manually selected points" in row["exclude_reason"]
        return
    assert (row["n_points_lambda_z"], row["lambda_z_time_first"],
            row["lambda_z_time_last"]) == expected  # fmt: skip


def test_excluded_sample_changes_cmax_as_pknca():
    """test-pk.calc.all.R "pk.nca with exclusions": row 5 of generate.conc (subject 1, day 4)
    excluded → Cmax is the largest of the other levels; subject 2 is unchanged."""
    kinetics = _dataset("simulated")
    kinetics["exclude"] = np.where((kinetics["subject"] == "1") & (kinetics["time"] == 4),
                                   "test exclusion", "")  # fmt: skip
    result = nca(kinetics, NCAOptions(**PKNCA)).set_index("subject")
    kept = kinetics[(kinetics["subject"] == "1") & (kinetics["exclude"] == "")]
    assert result.loc["1", "cmax"] == kept["value"].max()
    assert result.loc["1", "excluded_samples"] == "day 4: test exclusion"
    plain = nca(_dataset("simulated"), NCAOptions(**PKNCA)).set_index("subject")
    assert result.loc["2", "cmax"] == plain.loc["2", "cmax"]
    assert result.loc["1", "cmax"] != plain.loc["1", "cmax"]


def test_pknca_defaults_are_one_call_away():
    assert NCAOptions.pknca() == NCAOptions(**PKNCA)
    assert NCAOptions.pknca(blq="zero").blq == "zero"


def test_manual_selection_differs_from_automatic():
    """test-half.life.R "half-life manual point selection": manual ≠ automatic."""
    table = _table(range(6), MANUAL, 1e-9)
    manual = nca(table, NCAOptions(lambda_z_include={"1": list(range(6))})).iloc[0]
    automatic = nca(table).iloc[0]
    assert manual["half_life"] != automatic["half_life"]


def test_closing_counts():
    """The counts in the module docstring are the table's."""
    doc = " ".join(__doc__.split())
    passing = len(CASES) - len(DIFFERS) + len(THEOPH_POINTS) + len(THEOPH_SUBJECT_1) + 2
    total = passing + len(DIFFERS)
    expected = (f"{total} cases — {passing} pass with cellkin's defaults or the PKNCA option "
                f"the PKNCA test itself sets, {len(DIFFERS)} differ under a documented cellkin "
                f"default and pass with the named option; {len(NOT_APPLICABLE)} PKNCA tests "
                f"not applicable")  # fmt: skip
    assert expected in doc
