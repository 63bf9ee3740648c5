"""Kaplan–Meier estimates of progression-free and overall survival (PFS, OS).

:func:`kaplan_meier` wraps lifelines' :class:`~lifelines.KaplanMeierFitter` [1]_ and returns a
frozen :class:`KaplanMeierResult` with the survival table, medians with confidence intervals,
landmark rates and the log-rank test; :func:`derive_pfs` derives PFS from RECIST 1.1
progression [3]_ and death.

Confidence intervals use Greenwood's variance of log S(t) and one of three transforms
(``conf_type``), with the same formulas and edge cases as R's ``survival::survfit`` [2]_:

* ``"log-log"`` (default) — the exponential Greenwood interval
  ``exp(-exp(log(-log S) ± z·se/log S))``. This is what lifelines reports, and R's
  ``conf.type="log-log"`` (the SAS PROC LIFETEST default). It stays inside (0, 1).
* ``"log"`` — ``S·exp(±z·se)``, upper limit capped at 1: **R's default** ``conf.type="log"``.
* ``"plain"`` — ``S ± z·se·S``, clipped to [0, 1].

where ``se² = Σ d/(n(n−d))`` over event times up to t. Where S(t) = 0 the limits are NaN (R:
NA); where S(t) = 1 (before the first event) they are 1 (R reports NA for log-log there). The
median and its CI follow R's ``quantile.survfit``: the first time S drops to ≤ 0.5 (the midpoint
to the next event time when S equals 0.5 exactly over an interval), and the same rule applied to
the upper and lower confidence curves (Brookmeyer & Crowley) for the CI limits.

References
----------
.. [1] Davidson-Pilon, C. (2019). lifelines: survival analysis in Python. Journal of Open
   Source Software 4(40), 1317. doi:10.21105/joss.01317
.. [2] Therneau, T. M. & Grambsch, P. M. (2000). Modeling Survival Data: Extending the Cox
   Model. Springer. doi:10.1007/978-1-4757-3294-8 (R package ``survival``).
.. [3] Eisenhauer, E. A. et al. (2009). Eur J Cancer 45:228–247.
   doi:10.1016/j.ejca.2008.10.026
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from cellkin._display import Summary
from cellkin._stats import check_confidence
from cellkin._tables import first_subject, require
from cellkin._validation import show
from cellkin.errors import DataError, OptionError
from cellkin.outcomes._groups import group_labels, ordered_groups, to_event_flag
from cellkin.outcomes._recist import as_timepoints, best_overall_response
from cellkin.outcomes._response import LANDMARK_DAYS

__all__ = ["KaplanMeierResult", "derive_pfs", "kaplan_meier"]

ConfType = Literal["log-log", "log", "plain"]
_CONF_TYPES = ("log-log", "log", "plain")
_TABLE_COLUMNS = [
    "group", "time", "at_risk", "events", "censored", "survival", "ci_lower", "ci_upper",
]  # fmt: skip
_TOL = float(np.sqrt(np.finfo(float).eps))  # R's quantile.survfit tolerance


def _band(surv: np.ndarray, var: np.ndarray, z: float, conf_type: str) -> tuple[np.ndarray, ...]:
    """Pointwise confidence limits of S(t) from Greenwood's variance of log S(t)."""
    se = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if conf_type == "log":
            lower, upper = surv * np.exp(-z * se), np.minimum(surv * np.exp(z * se), 1.0)
        elif conf_type == "log-log":
            loglog, width = np.log(-np.log(surv)), z * se / np.log(surv)
            lower, upper = np.exp(-np.exp(loglog - width)), np.exp(-np.exp(loglog + width))
        else:
            lower = np.maximum(surv - z * se * surv, 0.0)
            upper = np.minimum(surv + z * se * surv, 1.0)
    at_one = surv >= 1.0
    lower, upper = np.where(at_one, 1.0, lower), np.where(at_one, 1.0, upper)
    gone = surv <= 0.0
    return np.where(gone, np.nan, lower), np.where(gone, np.nan, upper)


def _group_table(time: np.ndarray, event: np.ndarray, z: float, conf_type: str) -> pd.DataFrame:
    """KM table of one group (lifelines), with the time-0 row and R-style confidence limits."""
    from lifelines import KaplanMeierFitter

    with np.errstate():  # lifelines calls np.seterr(); errstate restores the caller's setting
        fitter = KaplanMeierFitter().fit(time, event_observed=event)
    events = fitter.event_table
    n, d = events["at_risk"].to_numpy(float), events["observed"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.cumsum(np.where(d > 0, d / (n * (n - d)), 0.0))
    surv = fitter.survival_function_.iloc[:, 0].reindex(events.index).to_numpy(float)
    lower, upper = _band(surv, var, z, conf_type)
    return pd.DataFrame(
        {
            "time": events.index.to_numpy(float),
            "at_risk": events["at_risk"].to_numpy(int),
            "events": events["observed"].to_numpy(int),
            "censored": events["censored"].to_numpy(int),
            "survival": surv,
            "ci_lower": lower,
            "ci_upper": upper,
        }
    )


def _first_below(time: np.ndarray, surv: np.ndarray, xmax: float, p: float = 0.5) -> float:
    """Time at which the curve `surv` first falls to `p` or below — R's ``findq``.

    When the curve equals `p` (within a tolerance) over an interval, the result is the midpoint
    of that interval; NaN when the curve never gets that low. NaN points are skipped.
    """
    x = np.concatenate([[0.0], time])
    y = np.concatenate([[0.0], 1.0 - surv])  # the distribution function F = 1 - S
    if np.all(np.isnan(y)) or np.nanmax(y) < p:
        return np.nan
    keep = ~pd.Series(y).duplicated().to_numpy()
    x, y = x[keep], y[keep]
    last = y[-1]
    x, y = x[np.isfinite(y)], y[np.isfinite(y)]
    order = np.argsort(y, kind="stable")

    def first_at_least(value: float) -> float:  # approx(y, 1:n, value, "constant", f = 1)
        hit = np.searchsorted(y[order], value, side="left")
        return np.nan if hit >= len(y) else float(x[order[hit]])

    low, high = first_at_least(p - _TOL), first_at_least(p + _TOL)
    if np.isfinite(last) and abs(p - last) < _TOL:
        return (low + xmax) / 2.0
    return (low + high) / 2.0


def _median_row(table: pd.DataFrame, xmax: float) -> dict[str, float]:
    time, rows = table["time"].to_numpy(), table
    return {
        "median": _first_below(time, rows["survival"].to_numpy(), xmax),
        "ci_lower": _first_below(time, rows["ci_lower"].to_numpy(), xmax),
        "ci_upper": _first_below(time, rows["ci_upper"].to_numpy(), xmax),
    }


# ---------------------------------------------------------------------------------- input


def _is_adtte(frame: pd.DataFrame, adtte: bool | None) -> bool:
    found = {"PARAMCD", "AVAL", "CNSR"} <= set(frame.columns)
    if adtte is None:
        return found
    if adtte and not found:
        require(frame, ["PARAMCD", "AVAL", "CNSR"], "subjects", "ADTTE input needs them.")
    return bool(adtte)


def _adtte_records(frame: pd.DataFrame, endpoint: str) -> pd.DataFrame:
    """Rows of one ADTTE parameter, as subject/time/event (CNSR 0 = event, >= 1 = censored)."""
    code = frame["PARAMCD"].astype(str).str.upper()
    rows = frame[code == endpoint.upper()]
    if rows.empty:
        found = ", ".join(sorted(code.unique()))
        raise DataError(
            f"ADTTE input has no rows with PARAMCD {endpoint.upper()!r} (found: {found}). "
            "Pass `endpoint=` with one of them."
        )
    cnsr = pd.to_numeric(rows["CNSR"], errors="coerce")
    bad = cnsr.isna() | (cnsr < 0) | (cnsr % 1 != 0)
    if bad.any():
        raise DataError(
            f"ADTTE column `CNSR` must be a whole number >= 0 (0 = event, >= 1 = censored); "
            f"{first_subject(rows, bad)} has {show(rows['CNSR'][bad].iloc[0])}. Fix the value."
        )
    ids = next((c for c in ("USUBJID", "SUBJID", "subject") if c in rows.columns), None)
    subject = rows[ids] if ids else pd.Series(np.arange(1, len(rows) + 1), index=rows.index)
    out = rows.assign(subject=subject.astype(str), _time=rows["AVAL"], _event=(cnsr == 0) * 1)
    return out


def _subject_records(frame: pd.DataFrame, endpoint: str) -> pd.DataFrame:
    days, flag = f"{endpoint}_days", f"{endpoint}_event"
    require(
        frame,
        [days, flag],
        "subjects",
        f"Give `{days}` (days from infusion) and `{flag}` (1 = event, 0 = censored), or pass "
        "ADTTE columns PARAMCD/AVAL/CNSR.",
    )
    event = to_event_flag(frame[flag], frame, flag, "subjects")
    return frame.assign(_time=frame[days], _event=event)


def _records(
    frame: pd.DataFrame, endpoint: str, by: str | None, adtte: bool | None
) -> pd.DataFrame:
    """Validated analysis records: subject, group, time, event."""
    if not isinstance(endpoint, str) or not endpoint:
        raise OptionError(f"`endpoint` must be a name such as 'pfs' or 'os', got {endpoint!r}")
    require(frame, [], "subjects")  # a DataFrame
    if frame.empty:
        raise DataError("`subjects` has no rows; there is nothing to estimate.")
    rows = (_adtte_records if _is_adtte(frame, adtte) else _subject_records)(frame, endpoint)
    time = pd.to_numeric(rows["_time"], errors="coerce")
    bad = time.isna() | ~np.isfinite(time.to_numpy(float)) | (time < 0)
    if bad.any():
        raise DataError(
            f"{endpoint.upper()} times must be finite numbers of days >= 0; "
            f"{first_subject(rows, bad)} has {show(rows['_time'][bad].iloc[0])}. Give every "
            "subject a time (the censoring day if no event) or drop subjects without "
            "follow-up, e.g. `subjects.dropna(subset=[...])`."
        )
    subject = rows["subject"] if "subject" in rows else pd.Series(rows.index, index=rows.index)
    return pd.DataFrame(
        {
            "subject": subject.to_numpy(),
            "group": group_labels(rows, by, "subjects").to_numpy(),
            "time": time.to_numpy(float),
            "event": rows["_event"].to_numpy(int),
        }
    )


# --------------------------------------------------------------------------------- result


@dataclass(frozen=True, eq=False)
class KaplanMeierResult:
    """Kaplan–Meier estimates of one endpoint, overall or by group (frozen).

    Attributes
    ----------
    endpoint : str
        ``"pfs"``, ``"os"`` or the ADTTE ``PARAMCD`` analysed.
    by : str or None
        Grouping column (``group == "all"`` when None).
    confidence : float
        Confidence level of every interval.
    conf_type : {"log-log", "log", "plain"}
        Transform of the pointwise intervals (see the module docstring).
    table : pandas.DataFrame
        ``group, time, at_risk, events, censored, survival, ci_lower, ci_upper``: one row per
        group and distinct time (events or censoring, days) plus a time-0 row; ``at_risk`` is
        the number at risk just before ``time``.
    median : pandas.DataFrame
        ``group, n, events, median, ci_lower, ci_upper`` (days; NaN when not reached).
    records : pandas.DataFrame
        The analysed ``subject, group, time, event`` records.
    """

    endpoint: str
    by: str | None
    confidence: float
    conf_type: str
    table: pd.DataFrame
    median: pd.DataFrame
    records: pd.DataFrame

    @property
    def groups(self) -> list[Any]:
        """The group labels, in table order."""
        return list(pd.unique(self.table["group"]))

    def landmarks(self, days: Sequence[float] = LANDMARK_DAYS) -> pd.DataFrame:
        """Survival at landmark days (default 1, 2, 3, 6, 12 months = 30, 61, 91, 183, 365).

        Returns the columns of :attr:`table`, one row per group × day: ``survival`` and its
        limits are those of the last time ≤ day; ``at_risk`` counts subjects with time ≥ day
        (R's ``summary.survfit``); ``events`` and ``censored`` are cumulative up to and including
        the day. Beyond a group's last observed time the survival is NaN (not estimable), unless
        it had already reached 0.
        """
        marks = np.asarray([float(day) for day in days])
        if marks.size == 0 or not np.all(np.isfinite(marks)) or (marks < 0).any():
            raise OptionError(f"`days` must be finite numbers of days >= 0, got {days!r}")
        rows = []
        for group in self.groups:
            table = self.table[self.table["group"] == group]
            rec = self.records[self.records["group"] == group]
            for day in marks:
                row = table.iloc[np.searchsorted(table["time"], day, side="right") - 1]
                out = dict(row[["survival", "ci_lower", "ci_upper"]])
                if day > rec["time"].max() and out["survival"] > 0:
                    out = dict.fromkeys(out, np.nan)
                upto = rec["time"] <= day
                rows.append(
                    {"group": group, "time": day, "at_risk": int((rec["time"] >= day).sum()),
                     "events": int(rec["event"][upto].sum()),
                     "censored": int((1 - rec["event"][upto]).sum()), **out}
                )  # fmt: skip
        return pd.DataFrame(rows, columns=_TABLE_COLUMNS)

    def logrank(self) -> pd.DataFrame:
        """Log-rank test across the groups (lifelines ``multivariate_logrank_test``).

        Returns a one-row DataFrame with ``test_statistic`` (chi-square), ``df`` (groups − 1)
        and ``p_value``. Raises ``ValueError`` with fewer than two groups.
        """
        from lifelines.statistics import multivariate_logrank_test

        if len(self.groups) < 2:
            raise ValueError("the log-rank test needs at least two groups; pass `by=`")
        rec = self.records
        with np.errstate():
            test = multivariate_logrank_test(
                rec["time"].to_numpy(), rec["group"].astype(str).to_numpy(), rec["event"]
            )
        stat = float(test.test_statistic)
        dof = len(self.groups) - 1
        p_value = float(stats.chi2.sf(stat, dof))
        return pd.DataFrame([{"test_statistic": stat, "df": dof, "p_value": p_value}])

    def to_frame(self) -> pd.DataFrame:
        """The survival table (a copy), tidy: one row per group × time."""
        return self.table.copy()

    def summary(self, days: Sequence[float] = LANDMARK_DAYS) -> Summary:
        """Medians and landmark rates, for people (text and HTML)."""
        level = f"{100 * self.confidence:g}%"
        tables = [("Median (days)", self.median), ("Landmarks", self.landmarks(days))]
        if len(self.groups) > 1:
            tables.append(("Log-rank test", self.logrank()))
        note = f"{level} CIs, conf_type={self.conf_type!r} (Greenwood variance)."
        return Summary(f"Kaplan-Meier: {self.endpoint.upper()}", tuple(tables), (note,))

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def plot(
        self,
        *,
        ax: Any = None,
        band: bool = True,
        at_risk: bool = True,
        at_risk_days: Sequence[float] | None = None,
    ) -> Any:
        """Step curves with confidence bands and an at-risk table.

        Drawn by :func:`cellkin.plot.kaplan_meier` (see it for the arguments); returns the
        matplotlib ``Axes``.
        """
        from cellkin import plot

        return plot.kaplan_meier(self, ax=ax, band=band, at_risk=at_risk, at_risk_days=at_risk_days)


def kaplan_meier(
    subjects: pd.DataFrame,
    endpoint: str = "pfs",
    by: str | None = None,
    *,
    confidence: float = 0.95,
    conf_type: ConfType = "log-log",
    adtte: bool | None = None,
) -> KaplanMeierResult:
    """Kaplan–Meier estimate of PFS or OS, overall or by group, with R-identical intervals.

    Parameters
    ----------
    subjects : pandas.DataFrame
        Either a subject table with ``{endpoint}_days`` (days from infusion) and
        ``{endpoint}_event`` (1/True = event, 0/False = censored), or an ADTTE-style table with
        ``PARAMCD`` (rows with ``PARAMCD == endpoint.upper()`` are used), ``AVAL`` (days) and
        ``CNSR`` (**0 = event, ≥ 1 = censored** — the inverse of lifelines' event flag), with
        subjects identified by ``USUBJID`` (or ``SUBJID``/``subject``).
    endpoint : str, default "pfs"
        ``"pfs"`` or ``"os"`` (any name with matching columns or PARAMCD works).
    by : str, optional
        Column to stratify by, e.g. ``"dose_level"``.
    confidence : float, default 0.95
        Level of the pointwise and median confidence intervals.
    conf_type : {"log-log", "log", "plain"}, default "log-log"
        Transform of the pointwise intervals. ``"log-log"`` matches lifelines and R's
        ``conf.type="log-log"``; ``"log"`` matches R's default. See the module docstring.
    adtte : bool, optional
        Force ADTTE (True) or subject-table (False) input; by default ADTTE is detected from the
        ``PARAMCD``, ``AVAL`` and ``CNSR`` columns.

    Returns
    -------
    KaplanMeierResult
        With ``.table``, ``.median``, ``.landmarks(days)``, ``.logrank()``, ``.summary()``,
        ``.to_frame()`` and ``.plot(ax=None)``.

    Raises
    ------
    DataError
        On a missing column, a missing/negative/non-numeric time, an event flag that is not
        0/1, an invalid ``CNSR`` or a missing group.

    References
    ----------
    .. [1] Therneau & Grambsch (2000), doi:10.1007/978-1-4757-3294-8 (R ``survival``);
       Davidson-Pilon (2019), lifelines, doi:10.21105/joss.01317.

    Examples
    --------
    >>> import pandas as pd
    >>> subjects = pd.DataFrame({"os_days": [5, 8, 8, 12, 20], "os_event": [1, 1, 0, 1, 0]})
    >>> km = kaplan_meier(subjects, "os")
    >>> km.median[["group", "n", "events", "median"]]
      group  n  events  median
    0   all  5       3    12.0
    """
    level = check_confidence(confidence)
    if conf_type not in _CONF_TYPES:
        raise OptionError(f"`conf_type` must be one of {_CONF_TYPES}, got {conf_type!r}")
    records = _records(subjects, endpoint, by, adtte)
    z = float(stats.norm.ppf(1.0 - (1.0 - level) / 2.0))
    tables, medians = [], []
    for group in ordered_groups(records["group"]):
        rec = records[records["group"] == group]
        time, event = rec["time"].to_numpy(), rec["event"].to_numpy()
        table = _group_table(time, event, z, conf_type)
        tables.append(table.assign(group=group))
        counts = {"group": group, "n": len(rec), "events": int(event.sum())}
        medians.append({**counts, **_median_row(table, float(time.max()))})
    table = pd.concat(tables, ignore_index=True)[_TABLE_COLUMNS]
    return KaplanMeierResult(
        endpoint=endpoint,
        by=by,
        confidence=level,
        conf_type=conf_type,
        table=table,
        median=pd.DataFrame(medians),
        records=records,
    )


# ------------------------------------------------------------------------------ derive PFS


def _death_days(subjects: pd.DataFrame, death_column: str | None) -> pd.Series:
    """Day of death per row of `subjects` (NaN when alive or unknown)."""
    if death_column is not None:
        require(subjects, [death_column], "subjects", "Name the column with the day of death.")
        days = pd.to_numeric(subjects[death_column], errors="coerce")
        bad = subjects[death_column].notna() & days.isna()
        if bad.any():
            raise DataError(
                f"`subjects` column `{death_column}` must hold days (empty = alive); "
                f"{first_subject(subjects, bad)} has {show(subjects[death_column][bad].iloc[0])}."
            )
        return days.astype(float)
    if {"os_days", "os_event"} <= set(subjects.columns):
        died = to_event_flag(subjects["os_event"], subjects, "os_event", "subjects") == 1
        return pd.to_numeric(subjects["os_days"], errors="coerce").where(died).astype(float)
    raise DataError(
        "`subjects` has neither `os_days`/`os_event` nor a death column, so deaths cannot "
        "count as PFS events. Pass `death_column=` (day of death, empty if alive)."
    )


def _pfs_row(first_pd: float, last_ok: float, death: float, gap: float) -> tuple[float, int, str]:
    """PFS (days, event, reason) of one subject from its PD day, last adequate day and death."""
    assessed = bool(np.isfinite(last_ok))
    last_ok = max(last_ok, 0.0) if assessed else 0.0
    event_day = np.nanmin([first_pd, death]) if np.isfinite([first_pd, death]).any() else np.nan
    if np.isfinite(event_day) and event_day - last_ok <= gap:
        reason = "progression" if event_day == first_pd else "death"
        return float(event_day), 1, reason
    if np.isfinite(event_day):
        return last_ok, 0, "censored: event after missed assessments"
    if assessed:
        return last_ok, 0, "censored: last adequate assessment"
    return 0.0, 0, "censored: no adequate assessment"


def derive_pfs(
    lesions_or_timepoints: pd.DataFrame,
    subjects: pd.DataFrame,
    *,
    death_column: str | None = None,
    max_gap_days: float | None = None,
    baseline_day: float | Mapping[Any, float] | None = None,
    strict: bool = True,
) -> pd.DataFrame:
    """Derive progression-free survival from RECIST 1.1 progression and death.

    PFS is the time from infusion (day 0) to the first RECIST 1.1 PD or death, whichever comes
    first. Subjects with neither are censored at their last adequate assessment (the last
    post-baseline assessment before PD whose response is not NE), or at day 0 when they have
    none — the FDA (2018) convention for single-arm trials.

    Parameters
    ----------
    lesions_or_timepoints : pandas.DataFrame
        Lesions table or the output of :func:`~cellkin.outcomes.recist_timepoints`.
    subjects : pandas.DataFrame
        Subject table with ``subject``; deaths from ``os_days`` where ``os_event`` is 1, or
        from `death_column`.
    death_column : str, optional
        Column with the day of death (empty when alive), used instead of ``os_days``/``os_event``.
    max_gap_days : float, optional
        When PD or death comes more than this many days after the last adequate assessment
        (e.g. two missed scans), censor at that assessment instead. Default: no limit.
    baseline_day, strict
        As for :func:`~cellkin.outcomes.recist_timepoints` (for a lesions table only).

    Returns
    -------
    pandas.DataFrame
        A copy of `subjects` (same rows and order) with ``pfs_days``, ``pfs_event`` (1 = PD or
        death, 0 = censored) and ``pfs_reason`` set (existing columns of those names are
        replaced), ready for :func:`kaplan_meier`.

    Raises
    ------
    DataError
        If a subject with lesions is not in `subjects`, or the death information is missing.
    """
    require(subjects, ["subject"], "subjects")
    points = as_timepoints(lesions_or_timepoints, baseline_day, strict)
    ids = subjects["subject"].astype(str)
    unknown = sorted(set(points["subject"].astype(str)) - set(ids))
    if unknown:
        raise DataError(
            f"subject {unknown[0]!r} has tumour assessments but no row in `subjects` "
            f"({len(unknown)} such subject(s)). Add the subject or drop its lesions."
        )
    bor = best_overall_response(points)
    bor = bor.set_index(bor["subject"].astype(str))
    death = _death_days(subjects, death_column)
    gap = np.inf if max_gap_days is None else float(max_gap_days)
    rows = []
    for subject, died in zip(ids, death, strict=True):
        info = bor.loc[subject] if subject in bor.index else None
        first_pd = np.nan if info is None else float(info["first_pd_day"])
        last_ok = np.nan if info is None else float(info["last_adequate_day"])
        rows.append(_pfs_row(first_pd, last_ok, float(died), gap))
    out = subjects.copy()
    out["pfs_days"], out["pfs_event"], out["pfs_reason"] = map(list, zip(*rows, strict=True))
    return out.astype({"pfs_days": float, "pfs_event": int})
