"""Exposure–response and exposure–toxicity analysis of binary outcomes (DESIGN §5.4).

:func:`exposure_response` joins exposure metrics (from :func:`cellkin.nca` or model fits: one
row per subject × assay with columns such as ``cmax``, ``auc_0_28``) with the subject table and,
for each binary outcome (response, CRS ≥ 2, ICANS ≥ 1, DLT) and exposure metric, reports the
geometric mean in outcome-positive and -negative subjects and their ratio with a Welch t
interval [1]_, the Mann–Whitney test [2]_, the ROC AUC (from the Mann–Whitney U,
AUC = U/(n₁·n₀) [3]_), a logistic regression of the outcome on ln exposure (odds ratio per
doubling, statsmodels) and the outcome rate by exposure group with exact Clopper–Pearson
intervals.

**Exclusions are counted, never silent.** Every analysis is on the log scale, so a subject
whose exposure is missing (e.g. a non-expander whose samples are all BLQ: NaN with an
``exclude_reason`` in the NCA table), not positive, without a metrics row for the assay,
from a fit that did not converge (``success`` False), or without the outcome, is left out
with a reason: per analysis in ``n_excluded`` and ``exclude_reason``, per subject in the
``data`` attribute of the result.

References
----------
.. [1] Welch, B. L. (1947). The generalization of "Student's" problem when several different
   population variances are involved. Biometrika 34(1–2), 28–35. doi:10.1093/biomet/34.1-2.28
.. [2] Mann, H. B. & Whitney, D. R. (1947). On a test of whether one of two random variables
   is stochastically larger than the other. Ann Math Stat 18(1), 50–60.
   doi:10.1214/aoms/1177730491
.. [3] Hanley, J. A. & McNeil, B. J. (1982). The meaning and use of the area under a receiver
   operating characteristic (ROC) curve. Radiology 143(1), 29–36.
   doi:10.1148/radiology.143.1.7063747
.. [4] Albert, A. & Anderson, J. A. (1984). On the existence of maximum likelihood estimates
   in logistic regression models. Biometrika 71(1), 1–10. doi:10.1093/biomet/71.1.1
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cellkin._display import Summary
from cellkin._stats import check_confidence
from cellkin.errors import OptionError
from cellkin.metrics._exposure_inputs import (
    ResultFaces,
    check_subjects,
    exposure_records,
    names,
    outcome_events,
    select_metrics,
    summarise_exclusions,
)
from cellkin.metrics._exposure_stats import (
    _COMPARE_COLUMNS,
    _LOGIT_COLUMNS,
    GroupSpec,
    _compare,
    _exposure_groups,
    _group_rows,
    _logistic,
    _logistic_curve,
)

__all__ = ["ExposureResponseResult", "exposure_response"]

_TABLE_COLUMNS = ["outcome", "exposure", "assay", "n", "n_positive", "n_negative", "n_excluded",
                  "exclude_reason", "gmean_positive", "gmean_negative", *_COMPARE_COLUMNS,
                  *_LOGIT_COLUMNS, "logit_status", "logit_message"]  # fmt: skip
_CURVE_COLUMNS = ["value", "probability", "ci_lower", "ci_upper"]

_STATISTICS = (  # to_frame(): statistic, estimate, ci_lower, ci_upper, p_value columns
    ("gmean_positive", "gmean_positive", None, None, None),
    ("gmean_negative", "gmean_negative", None, None, None),
    ("gmr", "gmr", "gmr_ci_lower", "gmr_ci_upper", "welch_p"),
    ("mann_whitney_u", "mann_whitney_u", None, None, "mann_whitney_p"),
    ("roc_auc", "roc_auc", None, None, "mann_whitney_p"),
    ("or_per_doubling", "or_per_doubling", "or_ci_lower", "or_ci_upper", "logit_p"),
)


@dataclass(frozen=True, eq=False)
class ExposureResponseResult(ResultFaces):
    """Exposure–response (or exposure–toxicity) analysis of binary outcomes (frozen).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per outcome × exposure metric: ``outcome, exposure, assay, n, n_positive,
        n_negative, n_excluded, exclude_reason``; geometric means ``gmean_positive``,
        ``gmean_negative`` and their ratio ``gmr`` (positive / negative) with ``gmr_ci_lower``,
        ``gmr_ci_upper`` and the Welch test ``welch_t, welch_df, welch_p`` on ln exposure;
        ``mann_whitney_u`` (U of the positive group), ``mann_whitney_p`` (two-sided, SciPy),
        ``roc_auc`` (= U/(n_positive·n_negative)); the logistic regression ``logit_intercept``,
        ``log_or`` (per unit of ln exposure) and ``log_or_se``, ``or_per_doubling =
        exp(log_or·ln 2)`` with Wald ``or_ci_lower, or_ci_upper``, ``logit_p`` (Wald),
        ``logit_lr_p`` (likelihood ratio), ``logit_status`` (``ok``, ``warning``,
        ``complete separation``, ``quasi-complete separation``, ``not estimable``,
        ``not converged``) and ``logit_message`` (statsmodels' warnings, or why no fit).
    groups : pandas.DataFrame
        Outcome rate by exposure group: ``outcome, exposure, group, exposure_min,
        exposure_max, n, n_events, rate, ci_lower, ci_upper`` (Clopper–Pearson); empty when
        ``group=None``.
    data : pandas.DataFrame
        The analysed records, one per outcome × exposure × subject: ``outcome, exposure,
        subject, value, event, group, included, exclude_reason``.
    outcomes, exposures : tuple of str
        As requested.
    assay : str or None
        The assay analysed.
    confidence : float
        Level of every interval.
    group : str, float, sequence of float or None
        The exposure grouping of :attr:`groups`.
    """

    table: pd.DataFrame
    groups: pd.DataFrame
    data: pd.DataFrame
    outcomes: tuple[str, ...]
    exposures: tuple[str, ...]
    assay: str | None
    confidence: float
    group: GroupSpec

    def to_frame(self) -> pd.DataFrame:
        """Tidy long table: one row per outcome × exposure × statistic.

        Columns ``outcome, exposure, assay, n, n_excluded, statistic, estimate, ci_lower,
        ci_upper, p_value``; statistics ``gmean_positive, gmean_negative, gmr,
        mann_whitney_u, roc_auc, or_per_doubling`` (the p-value of ``roc_auc`` is the
        Mann–Whitney one).
        """
        rows = []
        for _, row in self.table.iterrows():
            keys = {k: row[k] for k in ("outcome", "exposure", "assay", "n", "n_excluded")}
            for name, estimate, low, high, p_value in _STATISTICS:
                rows.append({**keys, "statistic": name, "estimate": row[estimate],
                             "ci_lower": row[low] if low else np.nan,
                             "ci_upper": row[high] if high else np.nan,
                             "p_value": row[p_value] if p_value else np.nan})  # fmt: skip
        return pd.DataFrame(rows)

    def summary(self) -> Summary:
        """Geometric means and tests, logistic odds ratios, rates by group, exclusions."""
        keys = ["outcome", "exposure"]
        first = self.table[[*keys, "n_positive", "n_negative", "n_excluded", "gmean_positive",
                            "gmean_negative", "gmr", "gmr_ci_lower", "gmr_ci_upper", "welch_p",
                            "mann_whitney_p", "roc_auc"]]  # fmt: skip
        second = self.table[[*keys, "or_per_doubling", "or_ci_lower", "or_ci_upper", "logit_p",
                             "logit_lr_p", "logit_status"]]  # fmt: skip
        tables = [("Exposure by outcome", first), ("Logistic regression on ln exposure", second)]
        if not self.groups.empty:
            tables.append(("Outcome rate by exposure group", self.groups))
        if not self.exclusions.empty:
            tables.append(self._excluded_table(["exposure"]))
        level = f"{100 * self.confidence:g}%"
        notes = [
            f"{level} CIs. GMR: Welch t interval on ln exposure. ROC AUC = U/(n1*n0) "
            "(Hanley & McNeil 1982); Mann-Whitney p two-sided. Odds ratio per doubling of "
            "exposure, Wald CI; rates by group with exact Clopper-Pearson CIs.",
            *(f"{o} ~ {e}: {m}" for o, e, m in
              self.table[[*keys, "logit_message"]].itertuples(index=False) if m),
        ]  # fmt: skip
        assay = f" ({self.assay})" if self.assay else ""
        return Summary(f"Exposure-response{assay}", tuple(tables), tuple(notes))

    def _pick(self, exposure: str | None, outcome: str | None) -> tuple[str, str]:
        exposure = self.exposures[0] if exposure is None else exposure
        outcome = self.outcomes[0] if outcome is None else outcome
        if exposure not in self.exposures:
            raise OptionError(f"`exposure` must be one of {list(self.exposures)}, "
                              f"got {exposure!r}")  # fmt: skip
        if outcome not in self.outcomes:
            raise OptionError(f"`outcome` must be one of {list(self.outcomes)}, got {outcome!r}")
        return exposure, outcome

    def logistic_curve(
        self, exposure: str | None = None, outcome: str | None = None, *, n_points: int = 200
    ) -> pd.DataFrame:
        """Fitted probability of `outcome` against `exposure`, with its pointwise Wald band.

        The logistic model of the analysis, P = expit(a + b·ln x), evaluated on `n_points`
        exposures geometrically spaced between the smallest and largest included one; the
        band is expit(η ± z·se(η)) at level :attr:`confidence`.

        Parameters
        ----------
        exposure, outcome : str, optional
            Which analysis (default: the first of each in the result).
        n_points : int, default 200
            Points of the exposure grid.

        Returns
        -------
        pandas.DataFrame
            ``value`` (exposure), ``probability``, ``ci_lower``, ``ci_upper``; empty when the
            logistic model has no fit (``logit_status`` in :attr:`table` says why).
        """
        exposure, outcome = self._pick(exposure, outcome)
        if not (isinstance(n_points, int | np.integer) and n_points >= 2):
            raise OptionError(f"`n_points` must be an integer >= 2, got {n_points!r}")
        mine = self.data[(self.data["exposure"] == exposure) & (self.data["outcome"] == outcome)
                         & self.data["included"].astype(bool)]  # fmt: skip
        x, y = mine["value"].to_numpy(float), mine["event"].to_numpy(float)
        empty = pd.DataFrame({name: np.array([], dtype=float) for name in _CURVE_COLUMNS})
        if not x.size:
            return empty
        grid = np.geomspace(x.min(), x.max(), int(n_points)) if x.min() < x.max() else x[:1]
        curve = _logistic_curve(np.log(x), y, np.log(grid), self.confidence)
        if curve is None:
            return empty
        return pd.DataFrame(dict(zip(_CURVE_COLUMNS, (grid, *curve), strict=True)))

    def plot(
        self,
        *,
        ax: Any = None,
        exposure: str | None = None,
        outcome: str | None = None,
        band: bool = True,
        groups: bool = True,
        seed: int = 0,
    ) -> Any:
        """Logistic curve with the data, drawn by :func:`cellkin.plot.exposure_response`."""
        from cellkin import plot

        return plot.exposure_response(self, ax=ax, exposure=exposure, outcome=outcome,
                                      band=band, groups=groups, seed=seed)  # fmt: skip


def _with_outcome(records: pd.DataFrame, events: pd.Series, column: str) -> pd.DataFrame:
    out = records.assign(event=records["subject"].map(events).astype(float), group=None)
    missing = (out["exclude_reason"] == "") & out["event"].isna()
    out.loc[missing, "exclude_reason"] = f"outcome `{column}` missing"
    return out.assign(included=out["exclude_reason"] == "")


def _analyse(
    records: pd.DataFrame, level: float, group: GroupSpec
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One table row and the group rows of one outcome × exposure (adds ``group`` labels)."""
    use = records["included"].to_numpy()
    values, y = records["value"].to_numpy(float)[use], records["event"].to_numpy(float)[use]
    x = np.log(values)
    row = {"n": int(use.sum()), "n_positive": int(y.sum()), "n_negative": int((y == 0).sum()),
           "n_excluded": int((~use).sum()),
           "exclude_reason": summarise_exclusions(records.loc[~use])}  # fmt: skip
    row.update(_compare(x, y, level))
    row.update(_logistic(x, y, level))
    group_rows: list[dict] = []
    if group is not None and values.size:
        index, labels = _exposure_groups(values, group)
        records.loc[use, "group"] = np.asarray(labels, dtype=object)[index]
        group_rows = _group_rows(values, y, group, level)
    return row, group_rows


def exposure_response(
    metrics: pd.DataFrame,
    subjects: pd.DataFrame,
    exposure: str | Sequence[str] = ("cmax", "auc_0_28"),
    outcome: str | Sequence[str] = "responder",
    *,
    assay: str | None = "qpcr",
    group: GroupSpec = "median",
    confidence: float = 0.95,
) -> ExposureResponseResult:
    """Exposure–response / exposure–toxicity analysis of binary outcomes.

    Parameters
    ----------
    metrics : pandas.DataFrame
        Exposure metrics, one row per subject × assay: :func:`cellkin.nca` or model-based
        metrics (same column names). Without an ``assay`` column every row is used.
    subjects : pandas.DataFrame
        Subject table with ``subject`` and the outcome columns.
    exposure : str or sequence of str, default ("cmax", "auc_0_28")
        Metric columns, analysed on the log scale.
    outcome : str or sequence of str, default "responder"
        Binary outcomes, each a column of `subjects` or a threshold on one: a 0/1 or boolean
        column (``"responder"``, ``"dlt"``; ``"responder"`` is derived from ``bor`` — CR or
        PR = 1; SD, PD and NE = 0 — when the table has no ``responder`` column), or
        ``"<column><op><number>"`` with ``op`` one of ``>=, >, <=, <, ==`` (``"crs_grade>=2"``,
        ``"icans >= 1"``; ``crs`` and ``icans`` are short for ``crs_grade`` and
        ``icans_grade``).
    assay : str or None, default "qpcr"
        Assay whose metrics are used (None: the only one in `metrics`).
    group : {"median", "tertile", "quartile"}, float, sequence of float or None
        Exposure groups for the rate table (None: no table): ``"median"`` (2 groups),
        ``"tertile"`` (3) or ``"quartile"`` (4) quantile groups of the included subjects,
        right-closed (a subject at the median is in the low group), labelled ``Q1``, ``Q2``,
        …; or a number (or increasing numbers) cutting the exposure in its own unit, groups
        labelled ``G1``, ``G2``, … Labels show the cut points to 3 significant digits; the
        table gives each group's exact exposure range.
    confidence : float, default 0.95
        Level of every interval.

    Returns
    -------
    ExposureResponseResult
        ``.table`` (one row per outcome × exposure), ``.groups``, ``.data``, ``.exclusions``,
        ``.logistic_curve()``, ``.to_frame()``, ``.summary()``, ``.plot(ax=None)``.

    Raises
    ------
    DataError
        On a missing column, an assay absent from `metrics`, more than one row per subject,
        or an outcome column that is not 0/1 (or numeric for a threshold).
    OptionError
        On a bad `group`, `confidence` or list of names.

    Notes
    -----
    A subject with a missing or non-positive exposure, or without the outcome, is excluded
    and counted (``n_excluded``, ``exclude_reason``). When ln(exposure) separates the
    outcome completely (every positive above every negative, or the reverse) the logistic
    MLE does not exist [4]_: the odds ratio is NaN and ``logit_status`` says why, while the
    ROC AUC (then 0 or 1) and the Mann–Whitney test still apply.

    Examples
    --------
    >>> import pandas as pd
    >>> metrics = pd.DataFrame({"subject": list("ABCDEF"),
    ...                         "auc_0_28": [1e3, 4e3, 2e3, 8e3, 1.6e4, None]})
    >>> subjects = pd.DataFrame({"subject": list("ABCDEF"), "responder": [0, 0, 1, 0, 1, 1]})
    >>> result = exposure_response(metrics, subjects, "auc_0_28", assay=None)
    >>> result.table[["n", "n_excluded", "roc_auc", "logit_status"]].round(3)
       n  n_excluded  roc_auc logit_status
    0  5           1    0.667           ok
    >>> result.exclusions[["subject", "exclude_reason"]]
      subject exclude_reason
    0       F  missing value
    """
    level = check_confidence(confidence)
    exposures, outcomes = names(exposure, "exposure"), names(outcome, "outcome")
    if group is not None:
        _exposure_groups(np.ones(1), group)  # check the spec before any work
    check_subjects(subjects)
    rows = select_metrics(metrics, assay, exposures)
    records = {name: exposure_records(rows, subjects, name, assay) for name in exposures}
    table, groups, data = [], [], []
    for spec in outcomes:
        events, column = outcome_events(subjects, spec)
        for name in exposures:
            rec = _with_outcome(records[name], events, column)
            row, group_rows = _analyse(rec, level, group)
            keys = {"outcome": spec, "exposure": name}
            table.append({**keys, "assay": assay, **row})
            groups += [{**keys, **item} for item in group_rows]
            data.append(rec.assign(**keys))
    data_columns = ["outcome", "exposure", "subject", "value", "event", "group", "included",
                    "exclude_reason"]  # fmt: skip
    group_columns = ["outcome", "exposure", "group", "exposure_min", "exposure_max", "n",
                     "n_events", "rate", "ci_lower", "ci_upper"]  # fmt: skip
    return ExposureResponseResult(
        table=pd.DataFrame(table)[_TABLE_COLUMNS],
        groups=pd.DataFrame(groups, columns=group_columns),
        data=pd.concat(data, ignore_index=True)[data_columns],
        outcomes=outcomes,
        exposures=exposures,
        assay=assay,
        confidence=level,
        group=group,
    )
