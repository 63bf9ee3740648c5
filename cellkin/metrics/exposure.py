"""Exposure–response, exposure–toxicity and dose–exposure analyses (DESIGN §5.4).

The exposure metrics come from :func:`cellkin.nca` or from model fits
(:meth:`cellkin.FitResult.metrics`, :func:`cellkin.fit.fit_all`): one row per subject × assay
with columns such as ``cmax``, ``tmax``, ``auc_0_28``. They are joined with the subject table.

* :func:`exposure_response` — for a binary outcome (response, CRS ≥ 2, ICANS ≥ 1, DLT) and each
  exposure metric: the geometric mean in outcome-positive and -negative subjects and their
  ratio with a Welch t interval [1]_, the Mann–Whitney test [2]_, the ROC AUC (from the
  Mann–Whitney U, AUC = U/(n₁·n₀) [3]_), a logistic regression of the outcome on ln exposure
  (odds ratio per doubling, statsmodels), and the outcome rate by exposure group with exact
  Clopper–Pearson intervals;
* :func:`exposure_survival` — Kaplan–Meier PFS/OS by exposure group (above/below the median
  by default) with the log-rank test (:func:`cellkin.outcomes.kaplan_meier`);
* :func:`dose_exposure` — the power model ln(exposure) = a + b·ln(dose) [4]_ (b = 1: dose
  proportional).

**Exclusions are counted, never silent.** Every analysis is on the log scale, so a subject
whose exposure is missing (e.g. a non-expander whose samples are all BLQ: NaN with an
``exclude_reason`` in the NCA table), not positive, without a metrics row for the assay,
from a fit that did not converge (``success`` False), or without the outcome, is left out
with a reason: per analysis in ``n_excluded`` and ``exclude_reason``, per subject in the
``data`` attribute of each result.

Outcomes
--------
``outcome`` names a column of the subject table or a threshold on one:

* a 0/1 or boolean column, e.g. ``"responder"`` or ``"dlt"``. ``"responder"`` is derived
  from ``bor`` (CR or PR = 1; SD, PD and NE = 0) when the table has no ``responder`` column;
* ``"<column><op><number>"`` with ``op`` one of ``>=, >, <=, <, ==``, e.g. ``"crs_grade>=2"``
  or ``"icans_grade >= 1"``; ``crs`` and ``icans`` are short for ``crs_grade`` and
  ``icans_grade`` (``"crs>=2"``).

Exposure groups
---------------
``group`` / ``split``: ``"median"`` (2 groups), ``"tertile"`` (3) or ``"quartile"`` (4)
quantile groups of the included subjects, right-closed (a subject at the median is in the
low group), labelled ``Q1``, ``Q2``, …; or a number (or increasing numbers) cutting the
exposure in its own unit, groups labelled ``G1``, ``G2``, … Labels show the cut points to 3
significant digits; the tables give each group's exact exposure range.

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
.. [4] Smith, B. P. et al. (2000). Confidence interval criteria for assessment of dose
   proportionality. Pharm Res 17(10), 1278–1283. doi:10.1023/A:1026451721686
.. [5] Albert, A. & Anderson, J. A. (1984). On the existence of maximum likelihood estimates
   in logistic regression models. Biometrika 71(1), 1–10. doi:10.1093/biomet/71.1.1
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cellkin._display import Summary
from cellkin._validation import show
from cellkin.errors import DataError
from cellkin.metrics._exposure_stats import (
    _COMPARE_COLUMNS,
    _LOGIT_COLUMNS,
    GroupSpec,
    _compare,
    _exposure_groups,
    _group_rows,
    _logistic,
    _power_model,
)
from cellkin.outcomes._stats import check_confidence, first_subject, require

if TYPE_CHECKING:
    from cellkin.outcomes.survival import KaplanMeierResult

__all__ = [
    "DoseExposureResult",
    "ExposureResponseResult",
    "ExposureSurvivalResult",
    "dose_exposure",
    "exposure_response",
    "exposure_survival",
]

_ALIASES = {"crs": "crs_grade", "icans": "icans_grade"}
_OPERATORS = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less,
              "==": np.equal}  # fmt: skip
_SPEC = re.compile(r"^\s*([A-Za-z_]\w*)\s*(>=|<=|==|>|<)\s*([-+]?\d+(?:\.\d*)?)\s*$")
_TRUE, _FALSE = {"true", "yes", "y", "1"}, {"false", "no", "n", "0"}
_TABLE_COLUMNS = ["outcome", "exposure", "assay", "n", "n_positive", "n_negative", "n_excluded",
                  "exclude_reason", "gmean_positive", "gmean_negative", *_COMPARE_COLUMNS,
                  *_LOGIT_COLUMNS, "logit_status", "logit_message"]  # fmt: skip
_FIX = "Pass the output of cellkin.nca(...) or of a fit's .metrics()."


# --------------------------------------------------------------------------------- inputs


def _names(value: str | Sequence[str], argument: str) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else tuple(value)
    if not names or not all(isinstance(name, str) and name for name in names):
        raise ValueError(f"`{argument}` must be a name or a sequence of names, got {value!r}")
    return names


def _select_metrics(
    metrics: pd.DataFrame, assay: str | None, columns: Sequence[str]
) -> pd.DataFrame:
    """The rows of one assay, one per subject, with numeric exposure columns."""
    require(metrics, ["subject", *columns], "metrics", _FIX)
    rows = metrics
    if "assay" in metrics.columns:
        found = sorted(map(str, metrics["assay"].dropna().unique()))
        if assay is None and len(found) > 1:
            raise DataError(f"`metrics` holds several assays {found}; pass `assay=` with one.")
        if assay is not None:
            rows = metrics[metrics["assay"] == assay]
            if rows.empty:
                raise DataError(
                    f"`metrics` has no rows for assay {assay!r} (assays found: {found}). Pass "
                    "`assay=` with one of them."
                )
    duplicated = rows["subject"].duplicated().to_numpy()
    if duplicated.any():
        raise DataError(
            f"`metrics` has more than one row for {first_subject(rows, duplicated)} "
            f"(assay {assay!r}); keep one row per subject and assay."
        )
    for column in columns:
        values = pd.to_numeric(rows[column], errors="coerce")
        bad = values.isna().to_numpy() & rows[column].notna().to_numpy()
        if bad.any():
            raise DataError(
                f"`metrics` column `{column}` must be numeric; {first_subject(rows, bad)} has "
                f"{show(rows[column].to_numpy()[np.flatnonzero(bad)[0]])}."
            )
    return rows


def _check_subjects(subjects: pd.DataFrame) -> None:
    require(subjects, ["subject"], "subjects", "Read the table with cellkin.read_subjects.")
    duplicated = subjects["subject"].duplicated().to_numpy()
    if duplicated.any():
        where = first_subject(subjects, duplicated)
        raise DataError(f"`subjects` lists {where} more than once; keep one row per subject.")


def _metric_reason(row: pd.Series, column: str) -> str:
    """Why `column` is missing in a metrics row: its part of ``exclude_reason`` if there."""
    text = row.get("exclude_reason", "")
    text = "" if not isinstance(text, str) else text
    for part in re.split(r"; (?=\w+: )", text):
        if part.startswith(f"{column}: "):
            return part[len(column) + 2 :]
    return f"missing value ({text})" if text else "missing value"


def _exposure_records(
    rows: pd.DataFrame, subjects: pd.DataFrame, column: str, assay: str | None
) -> pd.DataFrame:
    """``subject, value, exclude_reason`` for every subject of either table ('' = usable)."""
    indexed = rows.set_index("subject")
    known = set(subjects["subject"])
    order = list(subjects["subject"]) + [s for s in indexed.index if s not in known]
    values, reasons = [], []
    for subject in order:
        if subject not in indexed.index:
            value, reason = np.nan, f"no {assay} metrics row" if assay else "no metrics row"
        else:
            row = indexed.loc[subject]
            value = float(pd.to_numeric(pd.Series([row[column]]), errors="coerce").iloc[0])
            if "success" in row.index and pd.notna(row["success"]) and not bool(row["success"]):
                reason = "model fit did not converge"
            elif np.isnan(value):
                reason = _metric_reason(row, column)
            elif not np.isfinite(value) or value <= 0:
                reason = f"non-positive or infinite value {value:g} (log scale needs > 0)"
            else:
                reason = "" if subject in known else "not in `subjects`"
        values.append(value)
        reasons.append(reason)
    return pd.DataFrame({"subject": order, "value": values, "exclude_reason": reasons})


# -------------------------------------------------------------------------------- outcomes


def _binary(values: pd.Series, frame: pd.DataFrame, column: str) -> np.ndarray:
    """A 0/1/boolean column as floats (NaN = missing), raising on anything else."""

    def convert(value: Any) -> float:
        if pd.api.types.is_scalar(value) and pd.isna(value):
            return np.nan
        if isinstance(value, str):
            key = value.strip().lower()
            return 1.0 if key in _TRUE else 0.0 if key in _FALSE else -1.0
        try:
            number = float(value)
        except (TypeError, ValueError):
            return -1.0
        return number if number in (0.0, 1.0) else -1.0

    out = np.array([convert(value) for value in values], dtype=float)
    bad = out == -1.0
    if bad.any():
        raise DataError(
            f"`subjects` column `{column}` must be 0/1 or True/False; {first_subject(frame, bad)}"
            f" has {show(values.to_numpy()[np.flatnonzero(bad)[0]])}. For a grade, give a "
            f"threshold such as '{column}>=2'."
        )
    return out


def _outcome_events(subjects: pd.DataFrame, spec: str) -> tuple[pd.Series, str]:
    """Outcome per subject (1/0, NaN missing) and the column it came from."""
    match = _SPEC.match(spec)
    if match is None:
        name = spec.strip()
        if name == "responder" and "responder" not in subjects and "bor" in subjects:
            codes = subjects["bor"].astype("string").str.strip().str.upper()
            event = codes.isin(["CR", "PR"]).astype(float).where(codes.notna())
            return pd.Series(event.to_numpy(float), index=subjects["subject"]), "bor"
        require(subjects, [name], "subjects", "Name a 0/1 column or a threshold like 'crs>=2'.")
        return pd.Series(_binary(subjects[name], subjects, name), index=subjects["subject"]), name
    name, operator, threshold = match.groups()
    if name not in subjects and name in _ALIASES:
        name = _ALIASES[name]
    require(subjects, [name], "subjects", "Name a column of `subjects` in the outcome.")
    values = pd.to_numeric(subjects[name].astype(object), errors="coerce").to_numpy(float)
    bad = np.isnan(values) & subjects[name].notna().to_numpy()
    if bad.any():
        raise DataError(f"`subjects` column `{name}` must be numeric for {spec!r}; "
                        f"{first_subject(subjects, bad)} is not.")  # fmt: skip
    with np.errstate(invalid="ignore"):
        event = _OPERATORS[operator](values, float(threshold)).astype(float)
    return pd.Series(np.where(np.isnan(values), np.nan, event), index=subjects["subject"]), name


# --------------------------------------------------------------------------- exposure groups


def _summarise_exclusions(excluded: pd.DataFrame, shown: int = 5) -> str:
    """'A, B: reason; C: other reason' grouping subjects by the first clause of the reason."""
    if excluded.empty:
        return ""
    key = excluded["exclude_reason"].str.split("; ").str[0].str.replace(r"\s*\([^)]*\)", "",
                                                                          regex=True)  # fmt: skip
    parts = []
    for reason, ids in excluded.groupby(key, sort=False)["subject"]:
        names = [str(s) for s in ids]
        more = f" and {len(names) - shown} more" if len(names) > shown else ""
        parts.append(f"{', '.join(names[:shown])}{more}: {reason}")
    return "; ".join(parts)


# -------------------------------------------------------------------------------- results

_STATISTICS = (  # to_frame(): statistic, estimate, ci_lower, ci_upper, p_value columns
    ("gmean_positive", "gmean_positive", None, None, None),
    ("gmean_negative", "gmean_negative", None, None, None),
    ("gmr", "gmr", "gmr_ci_lower", "gmr_ci_upper", "welch_p"),
    ("mann_whitney_u", "mann_whitney_u", None, None, "mann_whitney_p"),
    ("roc_auc", "roc_auc", None, None, "mann_whitney_p"),
    ("or_per_doubling", "or_per_doubling", "or_ci_lower", "or_ci_upper", "logit_p"),
)


class _Faces:
    """Shared people-facing pieces of the exposure results."""

    data: pd.DataFrame

    @property
    def exclusions(self) -> pd.DataFrame:
        """The excluded records of :attr:`data`, each with its ``exclude_reason``."""
        return self.data.loc[~self.data["included"]].reset_index(drop=True)

    def summary(self) -> Summary:  # pragma: no cover - overridden
        raise NotImplementedError

    def _excluded_table(self, keys: Sequence[str]) -> tuple[str, pd.DataFrame]:
        shown = self.exclusions[[*keys, "subject", "exclude_reason"]].drop_duplicates()
        return ("Excluded (not in the log-scale analyses)", shown)

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


@dataclass(frozen=True, eq=False)
class ExposureResponseResult(_Faces):
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

    def plot(
        self, ax: Any = None, *, exposure: str | None = None, outcome: str | None = None
    ) -> Any:
        """Logistic curve with the data (:func:`.exposure_plots.plot_logistic`)."""
        from cellkin.metrics.exposure_plots import plot_logistic

        return plot_logistic(self, ax, exposure=exposure, outcome=outcome)


@dataclass(frozen=True, eq=False)
class ExposureSurvivalResult(_Faces):
    """Kaplan–Meier PFS/OS by exposure group, with the log-rank test (frozen).

    Attributes
    ----------
    exposure, endpoint : str
        The exposure metric and the endpoint (``"pfs"``, ``"os"``).
    assay : str or None
        The assay analysed.
    split : str, float or sequence of float
        How the exposure groups were formed (see the module docstring).
    confidence : float
        Level of every interval.
    km : cellkin.outcomes.KaplanMeierResult
        The Kaplan–Meier estimate, grouped by a column named after the exposure.
    groups : pandas.DataFrame
        ``group, exposure_min, exposure_max, n, events, median, median_ci_lower,
        median_ci_upper`` (days; NaN when not reached).
    logrank : pandas.DataFrame
        One row: ``test_statistic, df, p_value`` (NaN with a single group).
    data : pandas.DataFrame
        ``subject, value, group, included, exclude_reason`` per subject.
    """

    exposure: str
    endpoint: str
    assay: str | None
    split: GroupSpec
    confidence: float
    km: KaplanMeierResult
    groups: pd.DataFrame
    logrank: pd.DataFrame
    data: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """The groups table with the log-rank p-value (``logrank_p``) on every row."""
        return self.groups.assign(logrank_p=float(self.logrank["p_value"].iloc[0]))

    def summary(self) -> Summary:
        """Groups with medians, the log-rank test and the exclusions."""
        tables = [("Groups", self.groups), ("Log-rank test", self.logrank)]
        if not self.exclusions.empty:
            tables.append(self._excluded_table([]))
        title = f"{self.endpoint.upper()} by {self.exposure} group"
        note = f"{100 * self.confidence:g}% CIs of the medians (log-log, Greenwood)."
        return Summary(title, tuple(tables), (note,))

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Kaplan–Meier curves by exposure group (:func:`cellkin.outcomes.plot_km`)."""
        return self.km.plot(ax=ax, **kwargs)


@dataclass(frozen=True, eq=False)
class DoseExposureResult(_Faces):
    """Power-model dose–exposure fits, ln(exposure) = a + b·ln(dose) (frozen).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per exposure metric: ``exposure, assay, n, n_doses, n_excluded,
        exclude_reason, intercept`` (a: ln exposure at dose 1), ``slope`` (b), ``slope_se,
        slope_ci_lower, slope_ci_upper`` (t interval), ``slope_p`` (H0: b = 0),
        ``proportionality_p`` (H0: b = 1, dose proportional), ``r_squared``, ``status``
        (``ok`` or ``not estimable``) and ``message``.
    data : pandas.DataFrame
        ``exposure, subject, value, dose, included, exclude_reason``.
    assay : str or None
        The assay analysed.
    dose : str
        The dose column of the subject table.
    confidence : float
        Level of the slope interval.
    dose_unit : str or None
        From the subject table's ``<dose>_unit`` column, when it has one.
    """

    table: pd.DataFrame
    data: pd.DataFrame
    assay: str | None
    dose: str
    confidence: float
    dose_unit: str | None = None

    def to_frame(self) -> pd.DataFrame:
        """The fit table (one row per exposure metric), a copy."""
        return self.table.copy()

    def summary(self) -> Summary:
        """Slopes with CIs and R², and the exclusions."""
        shown = self.table[["exposure", "n", "n_doses", "n_excluded", "slope", "slope_ci_lower",
                            "slope_ci_upper", "slope_p", "proportionality_p", "r_squared",
                            "status"]]  # fmt: skip
        tables = [("Power model ln(exposure) = a + b ln(dose)", shown)]
        if not self.exclusions.empty:
            tables.append(self._excluded_table(["exposure"]))
        note = f"{100 * self.confidence:g}% t intervals; b = 1 is dose proportional."
        return Summary(f"Dose-exposure ({self.assay})", tuple(tables), (note,))

    def plot(self, ax: Any = None, *, exposure: str | None = None) -> Any:
        """Exposure against dose on log axes with the fitted power model."""
        from cellkin.metrics.exposure_plots import plot_dose_exposure

        return plot_dose_exposure(self, ax, exposure=exposure)


# ----------------------------------------------------------------------------- entry points


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
           "exclude_reason": _summarise_exclusions(records.loc[~use])}  # fmt: skip
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
        Binary outcomes (see the module docstring): ``"responder"``, ``"crs>=2"``,
        ``"icans>=1"``, ``"dlt"``, any 0/1 column or ``"<column><op><number>"``.
    assay : str or None, default "qpcr"
        Assay whose metrics are used (None: the only one in `metrics`).
    group : {"median", "tertile", "quartile"}, float, sequence of float or None
        Exposure groups for the rate table (None: no table).
    confidence : float, default 0.95
        Level of every interval.

    Returns
    -------
    ExposureResponseResult
        ``.table`` (one row per outcome × exposure), ``.groups``, ``.data``, ``.exclusions``,
        ``.to_frame()``, ``.summary()``, ``.plot(ax=None)``.

    Raises
    ------
    DataError
        On a missing column, an assay absent from `metrics`, more than one row per subject,
        or an outcome column that is not 0/1 (or numeric for a threshold).

    Notes
    -----
    A subject with a missing or non-positive exposure, or without the outcome, is excluded
    and counted (``n_excluded``, ``exclude_reason``). When ln(exposure) separates the
    outcome completely (every positive above every negative, or the reverse) the logistic
    MLE does not exist [5]_: the odds ratio is NaN and ``logit_status`` says why, while the
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
    exposures, outcomes = _names(exposure, "exposure"), _names(outcome, "outcome")
    if group is not None:
        _exposure_groups(np.ones(1), group)  # check the spec before any work
    _check_subjects(subjects)
    rows = _select_metrics(metrics, assay, exposures)
    records = {name: _exposure_records(rows, subjects, name, assay) for name in exposures}
    table, groups, data = [], [], []
    for spec in outcomes:
        events, column = _outcome_events(subjects, spec)
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


def exposure_survival(
    metrics: pd.DataFrame,
    subjects: pd.DataFrame,
    exposure: str = "auc_0_28",
    endpoint: str = "pfs",
    split: GroupSpec = "median",
    *,
    assay: str | None = "qpcr",
    confidence: float = 0.95,
) -> ExposureSurvivalResult:
    """Kaplan–Meier PFS or OS by exposure group (above/below the median by default).

    Parameters
    ----------
    metrics, subjects : pandas.DataFrame
        As for :func:`exposure_response`; `subjects` needs ``{endpoint}_days`` and
        ``{endpoint}_event`` (1/True = event).
    exposure : str, default "auc_0_28"
        The exposure metric that forms the groups.
    endpoint : str, default "pfs"
        ``"pfs"`` or ``"os"``.
    split : {"median", "tertile", "quartile"}, float or sequence of float, default "median"
        Quantile groups of the included subjects (right-closed) or cut points.
    assay : str or None, default "qpcr"
        Assay whose metrics are used.
    confidence : float, default 0.95
        Level of the intervals.

    Returns
    -------
    ExposureSurvivalResult
        ``.km`` (:class:`~cellkin.outcomes.KaplanMeierResult`), ``.groups``, ``.logrank``,
        ``.data``, ``.exclusions``, ``.summary()``, ``.plot(ax=None)``.
    """
    from cellkin.outcomes.survival import kaplan_meier

    level = check_confidence(confidence)
    if not isinstance(exposure, str):
        raise ValueError(f"`exposure` must be one metric name, got {exposure!r}")
    _exposure_groups(np.ones(1), split)
    _check_subjects(subjects)
    days, flag = f"{endpoint}_days", f"{endpoint}_event"
    require(subjects, [days, flag], "subjects", f"Give `{days}` and `{flag}` (1 = event).")
    rec = _exposure_records(_select_metrics(metrics, assay, [exposure]), subjects, exposure, assay)
    indexed = subjects.set_index("subject")
    lacking = rec["subject"].map(indexed[days]).isna() | rec["subject"].map(indexed[flag]).isna()
    rec.loc[(rec["exclude_reason"] == "") & lacking, "exclude_reason"] = f"`{days}` missing"
    rec = rec.assign(group=None, included=rec["exclude_reason"] == "")
    use = rec["included"].to_numpy()
    if not use.any():
        raise DataError(f"no subject has both a usable `{exposure}` and {endpoint.upper()} data.")
    index, labels = _exposure_groups(rec["value"].to_numpy(float)[use], split)
    rec.loc[use, "group"] = np.asarray(labels, dtype=object)[index]
    frame = subjects.set_index("subject").loc[rec.loc[use, "subject"]].reset_index()
    km = kaplan_meier(frame.assign(**{exposure: rec.loc[use, "group"].to_numpy()}), endpoint,
                      by=exposure, confidence=level)  # fmt: skip
    logrank = (km.logrank() if len(km.groups) > 1 else
               pd.DataFrame([{"test_statistic": np.nan, "df": 0, "p_value": np.nan}]))  # fmt: skip
    ranges = rec[use].groupby("group")["value"].agg(exposure_min="min", exposure_max="max")
    medians = km.median.rename(columns={"ci_lower": "median_ci_lower",
                                        "ci_upper": "median_ci_upper"})  # fmt: skip
    groups = medians.join(ranges, on="group")[["group", "exposure_min", "exposure_max", "n",
        "events", "median", "median_ci_lower", "median_ci_upper"]]  # fmt: skip
    return ExposureSurvivalResult(exposure=exposure, endpoint=endpoint, assay=assay, split=split,
                                  confidence=level, km=km, groups=groups, logrank=logrank,
                                  data=rec)  # fmt: skip


def dose_exposure(
    metrics: pd.DataFrame,
    subjects: pd.DataFrame,
    exposure: str | Sequence[str] = ("cmax", "auc_0_28"),
    *,
    assay: str | None = "qpcr",
    dose: str = "dose",
    confidence: float = 0.95,
) -> DoseExposureResult:
    """Dose–exposure power model ln(exposure) = a + b·ln(dose), by ordinary least squares.

    Parameters
    ----------
    metrics, subjects : pandas.DataFrame
        As for :func:`exposure_response`; `subjects` needs the `dose` column.
    exposure : str or sequence of str, default ("cmax", "auc_0_28")
        Metric columns.
    assay : str or None, default "qpcr"
        Assay whose metrics are used.
    dose : str, default "dose"
        Dose column of `subjects` (any unit; it changes only the intercept).
    confidence : float, default 0.95
        Level of the slope interval.

    Returns
    -------
    DoseExposureResult
        ``.table`` (one row per metric: slope b with its CI, n, R², ...), ``.data``,
        ``.exclusions``, ``.summary()``, ``.plot(ax=None)``.

    Notes
    -----
    b = 1 is dose proportionality, b = 0 no dose effect; the CI of b is the usual criterion
    [4]_. Subjects with a missing or non-positive exposure or dose are excluded and counted.
    """
    level = check_confidence(confidence)
    exposures = _names(exposure, "exposure")
    _check_subjects(subjects)
    require(subjects, [dose], "subjects", "Name the dose column with `dose=`.")
    rows = _select_metrics(metrics, assay, exposures)
    doses = pd.to_numeric(subjects[dose], errors="coerce").set_axis(subjects["subject"])
    table, data = [], []
    for name in exposures:
        rec = _exposure_records(rows, subjects, name, assay)
        rec = rec.assign(dose=rec["subject"].map(doses).astype(float))
        bad = (rec["exclude_reason"] == "") & ~(rec["dose"] > 0)
        rec.loc[bad, "exclude_reason"] = f"dose `{dose}` missing or not positive"
        rec = rec.assign(included=rec["exclude_reason"] == "", exposure=name)
        use = rec[rec["included"]]
        fit = _power_model(np.log(use["dose"].to_numpy(float)),
                           np.log(use["value"].to_numpy(float)), level)  # fmt: skip
        excluded = rec[~rec["included"]]
        counts = {"n": fit.pop("n"), "n_doses": fit.pop("n_doses"), "n_excluded": len(excluded)}
        reasons = _summarise_exclusions(excluded)
        table.append({"exposure": name, "assay": assay, **counts, "exclude_reason": reasons, **fit})
        data.append(rec)
    columns = ["exposure", "subject", "value", "dose", "included", "exclude_reason"]
    units = subjects.get(f"{dose}_unit", pd.Series(dtype=object)).dropna()
    return DoseExposureResult(table=pd.DataFrame(table),
                              data=pd.concat(data, ignore_index=True)[columns], assay=assay,
                              dose=dose, confidence=level,
                              dose_unit=str(units.iloc[0]) if len(units) else None)  # fmt: skip
