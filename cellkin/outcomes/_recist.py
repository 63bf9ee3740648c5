"""RECIST 1.1 tumour response: timepoint response and best overall response.

Implements the Response Evaluation Criteria In Solid Tumours, version 1.1 [1]_, on the
canonical lesions table (one row per lesion and scan; see :func:`cellkin.io.read_lesions`):

* the **sum of diameters** of the target lesions at each assessment — the longest diameter of
  non-nodal lesions and the short axis of lymph nodes (``diameter_mm`` holds whichever applies;
  a lesion that disappeared is 0 mm);
* the **target response** — CR: every non-nodal target lesion gone (0 mm) and every nodal target
  < 10 mm short axis; PD: the sum grew by ≥ 20 % *and* ≥ 5 mm over the nadir; PR: the sum fell by
  ≥ 30 % from baseline; SD otherwise; NE when a target lesion was not assessed, unless the
  lesions that were measured already establish PD;
* the **non-target response** — PD on unequivocal progression; NE when a non-target lesion was
  not assessed; CR when every non-target lesion is absent; NON-CR/NON-PD otherwise;
* the **overall timepoint response** from target, non-target and new lesions (Table 4 of [1]_;
  Table 5 for subjects with non-target disease only, see :func:`overall_response`);
* the **best overall response** with optional confirmation and a minimum duration of SD
  (:func:`best_overall_response`).

Day 0 is the CAR-T infusion. Boundaries are inclusive (a 30.0 % decrease is PR, a 20.0 % and
5.0 mm increase is PD), compared with a tolerance of 1e-9 mm so that decimal diameters do not
flip a category through rounding.

References
----------
.. [1] Eisenhauer, E. A. et al. (2009). New response evaluation criteria in solid tumours:
   revised RECIST guideline (version 1.1). European Journal of Cancer 45(2), 228–247.
   doi:10.1016/j.ejca.2008.10.026
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from cellkin.errors import DataError, DataWarning, OptionError
from cellkin.io import read_lesions

__all__ = ["best_overall_response", "overall_response", "recist_timepoints"]

#: Response codes, best first. NON-CR/NON-PD is Table 5's code for non-target-only disease.
RESPONSES = ("CR", "PR", "SD", "NON-CR/NON-PD", "PD", "NE")
_TOL = 1e-9
_PR_DROP, _PD_RISE, _PD_MM = 0.30, 0.20, 5.0
_MAX_TARGETS, _MAX_PER_ORGAN, _MIN_MM, _MIN_NODE_MM, _NODE_CR_MM = 5, 2, 10.0, 15.0, 10.0
TIMEPOINT_COLUMNS = (
    "subject", "day", "baseline", "sum_diameters_mm", "pct_change_baseline", "nadir_mm",
    "pct_change_nadir", "target_response", "nontarget_response", "new_lesion", "response",
    "baseline_issues",
)  # fmt: skip


def overall_response(target: str | None, nontarget: str | None, new_lesion: bool) -> str:
    """Combine target, non-target and new-lesion assessments into the timepoint response.

    This is Table 4 of Eisenhauer et al. (2009) [1]_ (and Table 5 when there are no target
    lesions):

    ============  ==========================  ===========  ==============
    target        non-target                  new lesion   overall
    ============  ==========================  ===========  ==============
    CR            CR or none at baseline      no           CR
    CR            NON-CR/NON-PD               no           PR
    CR            NE (not all evaluated)      no           PR
    PR            non-PD or NE                no           PR
    SD            non-PD or NE                no           SD
    NE            non-PD                      no           NE
    PD            any                         any          PD
    any           PD                          any          PD
    any           any                         yes          PD
    none          CR                          no           CR
    none          NON-CR/NON-PD               no           NON-CR/NON-PD
    none          NE                          no           NE
    ============  ==========================  ===========  ==============

    Parameters
    ----------
    target : {"CR", "PR", "SD", "PD", "NE"} or None
        Target-lesion response; None when the subject had no target lesion at baseline.
    nontarget : {"CR", "NON-CR/NON-PD", "PD", "NE"} or None
        Non-target response; None when the subject had no non-target lesion at baseline.
    new_lesion : bool
        Whether an unequivocal new lesion was seen at this assessment.

    Returns
    -------
    str
        One of ``CR, PR, SD, NON-CR/NON-PD, PD, NE``.

    Examples
    --------
    >>> overall_response("CR", "NON-CR/NON-PD", False)
    'PR'
    >>> overall_response("SD", None, True)
    'PD'
    """
    if target not in (None, "CR", "PR", "SD", "PD", "NE"):
        raise OptionError(f"unknown target response {target!r}: `target` must be one of "
                          "'CR', 'PR', 'SD', 'PD', 'NE' or None")  # fmt: skip
    if nontarget not in (None, "CR", "NON-CR/NON-PD", "PD", "NE"):
        raise OptionError(f"unknown non-target response {nontarget!r}: `nontarget` must be one "
                          "of 'CR', 'NON-CR/NON-PD', 'PD', 'NE' or None")  # fmt: skip
    if target is None and nontarget is None:
        raise OptionError(
            "`target` and `nontarget` are both None: a subject needs target or non-target "
            "lesions at baseline"
        )
    if bool(new_lesion) or target == "PD" or nontarget == "PD":
        return "PD"
    if target is None:
        return str(nontarget)
    if target == "CR":
        return "CR" if nontarget in (None, "CR") else "PR"
    return target


# ------------------------------------------------------------------------------- baseline


def _baseline_day(days: np.ndarray, cutoff: float) -> float:
    """Last assessment on/before `cutoff` (day 0 by default), else the first assessment."""
    before = days[days <= cutoff]
    return float(before.max() if before.size else days.min())


def _cutoff(baseline_day: float | Mapping[Any, float] | None, subject: Any) -> float:
    if baseline_day is None:
        return 0.0
    if isinstance(baseline_day, Mapping):
        return float(baseline_day.get(subject, 0.0))
    return float(baseline_day)


class _Scans(NamedTuple):
    """One subject's lesion rows as arrays (the per-subject loop stays out of pandas)."""

    day: np.ndarray
    kind: np.ndarray
    lesion: np.ndarray
    nodal: np.ndarray
    size: np.ndarray
    status: np.ndarray
    organ: np.ndarray

    @classmethod
    def of(cls, group: pd.DataFrame) -> _Scans:
        columns = ("day", "kind", "lesion_id", "nodal", "diameter_mm", "status", "organ")
        day, kind, lesion, nodal, size, status, organ = (group[c].to_numpy() for c in columns)
        return cls(
            day.astype(float), kind, lesion, nodal.astype(bool), size.astype(float), status, organ
        )


def _baseline_issues(subject: Any, scans: _Scans, at_base: np.ndarray) -> list[str]:
    """RECIST 1.1 §3 rules for target lesions at baseline, one message per violation."""
    issues, who = [], f"subject {subject!r}"
    target = at_base & (scans.kind == "target")
    if target.sum() > _MAX_TARGETS:
        issues.append(
            f"{who} has {target.sum()} target lesions at baseline (RECIST 1.1 allows at most "
            f"{_MAX_TARGETS}); record the extra lesions as kind='nontarget'"
        )
    organs = pd.Series(scans.organ[target]).dropna().value_counts(sort=False)
    for organ, count in organs[organs > _MAX_PER_ORGAN].items():
        issues.append(
            f"{who} has {count} target lesions in organ {organ!r} (at most "
            f"{_MAX_PER_ORGAN} per organ); record the extra ones as kind='nontarget'"
        )
    for lesion, node, size in zip(
        scans.lesion[target], scans.nodal[target], scans.size[target], strict=True
    ):
        limit = _MIN_NODE_MM if node else _MIN_MM
        if size < limit:
            what = "nodal (short axis)" if node else "non-nodal"
            issues.append(
                f"{who}: target lesion {lesion!r} ({what}) measures {size:g} mm at "
                f"baseline, below the {limit:g} mm RECIST 1.1 minimum for a measurable "
                "lesion; record it as kind='nontarget' or correct the measurement"
            )
    return issues


def _check_baseline(subject: Any, scans: _Scans, base_day: float) -> np.ndarray:
    """Return the mask of baseline rows, raising if they cannot serve as the reference."""
    at_base, who = scans.day == base_day, f"subject {subject!r}"
    kinds = scans.kind[at_base]
    if (kinds == "new").any() or not np.isin(kinds, ["target", "nontarget"]).any():
        raise DataError(
            f"{who} has no usable baseline: the scan used as baseline (day {base_day:g}, the "
            "last on or before day 0, else the first) records a new lesion or no target or "
            "non-target lesion. Add the baseline scan (on or before day 0), fix the lesion "
            "kind, or pass `baseline_day=`."
        )
    missing = at_base & (scans.kind == "target") & np.isnan(scans.size)
    if missing.any():
        raise DataError(
            f"{who}: target lesion {scans.lesion[missing][0]!r} has no diameter at the "
            f"baseline assessment (day {base_day:g}); every target lesion must be measured at "
            "baseline. Fill in the measurement or record the lesion as non-target."
        )
    for kind in ("target", "nontarget"):
        ids = scans.lesion[at_base & (scans.kind == kind)]
        extra = (scans.kind == kind) & (scans.day > base_day) & ~np.isin(scans.lesion, ids)
        if extra.any():
            raise DataError(
                f"{who}: {kind} lesion {scans.lesion[extra][0]!r} on day "
                f"{scans.day[extra][0]:g} was not recorded at baseline (day {base_day:g}). "
                "Lesions that appear after baseline are kind='new'; otherwise fix the lesion id."
            )
    return at_base


# ------------------------------------------------------------------------ timepoint response


def _target_response(size: np.ndarray, node: np.ndarray, base: float, nadir: float) -> str:
    """Target response from the target diameters at one visit (NaN = not assessed)."""
    measured = float(np.nansum(size))
    rise = measured - nadir
    if rise >= _PD_MM - _TOL and rise >= _PD_RISE * nadir - _TOL:
        return "PD"  # the measured lesions alone already establish progression
    if np.isnan(size).any():
        return "NE"
    if (size[~node] == 0).all() and (size[node] < _NODE_CR_MM).all():
        return "CR"
    if base > 0 and measured - base <= -_PR_DROP * base + _TOL:
        return "PR"
    return "SD"


def _nontarget_response(status: np.ndarray) -> str | None:
    """Non-target response from the statuses of the baseline non-target lesions at one visit."""
    if status.size == 0:
        return None
    if (status == "unequivocal_progression").any():
        return "PD"
    if (pd.isna(status) | (status == "not_assessed")).any():
        return "NE"
    return "CR" if (status == "absent").all() else "NON-CR/NON-PD"


def _matrix(scans: _Scans, rows: np.ndarray, days: np.ndarray, ids: np.ndarray, values):
    """`values` of the lesions `ids` by scan day (rows) and lesion (columns); NaN if no row."""
    out = np.full((days.size, ids.size), np.nan, dtype=values.dtype)
    columns = pd.Index(ids).get_indexer(scans.lesion[rows])
    out[np.searchsorted(days, scans.day[rows]), columns] = values[rows]
    return out


def _subject_timepoints(
    subject: Any, scans: _Scans, at_base: np.ndarray, issues: str
) -> list[dict]:
    """One row per assessment from baseline on, for one subject."""
    base_day = float(scans.day[at_base][0])
    later = scans.day >= base_day
    days = np.unique(scans.day[later])
    is_target, is_nontarget = scans.kind == "target", scans.kind == "nontarget"
    target_ids = scans.lesion[at_base & is_target]
    node = scans.nodal[at_base & is_target]
    sizes = _matrix(scans, later & is_target, days, target_ids, scans.size)
    status_ids = scans.lesion[at_base & is_nontarget]
    status = _matrix(scans, later & is_nontarget, days, status_ids, scans.status.astype(object))
    new_days = set(scans.day[later & (scans.kind == "new") & (scans.status != "absent")])
    base_sum = float(sizes[0].sum()) if target_ids.size else np.nan
    nadir, rows = base_sum, []
    for k, day in enumerate(days):
        total = float(sizes[k].sum()) if target_ids.size else np.nan  # NaN if one is missing
        row = {"subject": subject, "day": float(day), "baseline": k == 0}
        row.update(_sums(total, base_sum, nadir))
        if k == 0:
            row.update(target_response=None, nontarget_response=None, new_lesion=False)
            row["response"] = None
        else:
            tr = _target_response(sizes[k], node, base_sum, nadir) if target_ids.size else None
            ntr = _nontarget_response(status[k])
            is_new = day in new_days
            row.update(target_response=tr, nontarget_response=ntr, new_lesion=is_new)
            row["response"] = overall_response(tr, ntr, is_new)
        row["baseline_issues"] = issues
        rows.append(row)
        if np.isfinite(total):
            nadir = min(nadir, total)
    return rows


def _sums(total: float, base_sum: float, nadir: float) -> dict[str, float]:
    """Sum of diameters with its % change from baseline and from the nadir (NaN when 0/0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        from_base = 100.0 * (total - base_sum) / base_sum if base_sum > 0 else np.nan
        from_nadir = 100.0 * (total - nadir) / nadir if nadir > 0 else np.nan
    return {
        "sum_diameters_mm": total,
        "pct_change_baseline": from_base,
        "nadir_mm": nadir,
        "pct_change_nadir": from_nadir,
    }


def _canonical_lesions(lesions: pd.DataFrame) -> pd.DataFrame:
    """Validate with :func:`cellkin.io.read_lesions` and add the optional columns."""
    table = read_lesions(lesions)
    if "nodal" not in table.columns:
        table["nodal"] = False
    table["nodal"] = table["nodal"].fillna(False).astype(bool)
    for column in ("diameter_mm", "status", "organ"):
        if column not in table.columns:
            table[column] = np.nan
    return table


def recist_timepoints(
    lesions: pd.DataFrame,
    *,
    baseline_day: float | Mapping[Any, float] | None = None,
    strict: bool = True,
) -> pd.DataFrame:
    """RECIST 1.1 response at every tumour assessment, one row per subject and scan day.

    Parameters
    ----------
    lesions : pandas.DataFrame
        Canonical lesions table (:func:`cellkin.io.read_lesions`; it is validated again here):
        ``subject, day, lesion_id, kind`` (target | nontarget | new) and ``organ, nodal,
        diameter_mm, status``. ``diameter_mm`` is the longest diameter of a non-nodal lesion
        and the short axis of a lymph node (0 when it disappeared, empty or
        ``status='not_assessed'`` when not assessed). Non-target ``status`` is present, absent,
        unequivocal_progression or not_assessed; a ``new`` row is a new lesion unless its
        status is absent. ``day`` is days since infusion (day 0).
    baseline_day : float or mapping of subject to float, optional
        The baseline is the last assessment on or before this day (default 0, the infusion),
        or the subject's first assessment when none is that early. Earlier scans (screening)
        are not used.
    strict : bool, default True
        Baseline validity (at most 5 target lesions, at most 2 per organ, non-nodal targets
        ≥ 10 mm, nodal targets ≥ 15 mm short axis): raise :class:`~cellkin.errors.DataError`
        when True; when False emit one :class:`~cellkin.errors.DataWarning` and describe the
        problems in the ``baseline_issues`` column.

    Returns
    -------
    pandas.DataFrame
        One row per subject and assessment day from baseline on, with columns

        - ``subject``, ``day`` (days since infusion), ``baseline`` (True on the baseline row);
        - ``sum_diameters_mm`` — sum of target diameters (mm); NaN when a target lesion was
          not assessed or the subject has no target lesion;
        - ``pct_change_baseline`` — % change of the sum from baseline;
        - ``nadir_mm`` — the PD reference: the smallest complete sum at baseline or at an
          *earlier* assessment (mm); ``pct_change_nadir`` — % change from it (NaN when 0);
        - ``target_response`` (CR/PR/SD/PD/NE, None without target lesions),
          ``nontarget_response`` (CR/NON-CR/NON-PD/PD/NE, None without non-target lesions),
          ``new_lesion`` (bool) and ``response`` — the overall timepoint response
          (:func:`overall_response`; None on the baseline row);
        - ``baseline_issues`` — baseline validity problems ("" when none).

    Raises
    ------
    DataError
        If a subject has no baseline lesion, a target lesion is unmeasured at baseline, a
        target/non-target lesion appears only after baseline, a lesion is "new" at baseline,
        or (with ``strict=True``) the baseline breaks a RECIST 1.1 rule.

    References
    ----------
    .. [1] Eisenhauer et al. (2009), Eur J Cancer 45:228–247, doi:10.1016/j.ejca.2008.10.026

    Examples
    --------
    >>> import pandas as pd
    >>> lesions = pd.DataFrame({"subject": "101", "day": [-5, 28, 56],
    ...     "lesion_id": "T1", "kind": "target", "diameter_mm": [50.0, 34.0, 45.0]})
    >>> recist_timepoints(lesions)[["day", "pct_change_baseline", "response"]]
        day  pct_change_baseline response
    0  -5.0                  0.0     None
    1  28.0                -32.0       PR
    2  56.0                -10.0       PD
    """
    table = _canonical_lesions(lesions)
    rows, problems = [], []
    for subject, group in table.groupby("subject", sort=False):
        scans = _Scans.of(group)
        base_day = _baseline_day(scans.day, _cutoff(baseline_day, subject))
        at_base = _check_baseline(subject, scans, base_day)
        issues = _baseline_issues(subject, scans, at_base)
        if issues and strict:
            more = f" ({len(issues) - 1} more problem(s))" if len(issues) > 1 else ""
            raise DataError(f"{issues[0]}{more}. Or pass strict=False to flag instead of raise.")
        problems += issues
        rows += _subject_timepoints(subject, scans, at_base, "; ".join(issues))
    if problems:
        warnings.warn(
            f"{len(problems)} RECIST 1.1 baseline problem(s), first: {problems[0]}. See the "
            "`baseline_issues` column.",
            DataWarning,
            stacklevel=2,
        )
    out = pd.DataFrame(rows, columns=list(TIMEPOINT_COLUMNS))
    return out.astype({"baseline": bool, "new_lesion": bool})


# ------------------------------------------------------------------ best overall response


def as_timepoints(
    data: pd.DataFrame, baseline_day: float | Mapping[Any, float] | None, strict: bool
) -> pd.DataFrame:
    """Accept a lesions table or the output of :func:`recist_timepoints`."""
    if isinstance(data, pd.DataFrame) and {"response", "baseline", "day"} <= set(data.columns):
        return data
    return recist_timepoints(data, baseline_day=baseline_day, strict=strict)


def _confirmed_start(day: np.ndarray, response: np.ndarray, start: set[str], gap: float) -> float:
    """Day of the first response in `start` confirmed ≥ `gap` days later, NaN if none.

    A response is confirmed by a later assessment in `start` at least `gap` days after it, with
    only assessments in `start` or NE in between (an SD, say, breaks the chain).
    """
    for i, code in enumerate(response):
        if code not in start:
            continue
        for j in range(i + 1, len(response)):
            if response[j] not in start and response[j] != "NE":
                break
            if response[j] in start and day[j] >= day[i] + gap - _TOL:
                return float(day[i])
    return np.nan


def _first_day(day: np.ndarray, response: np.ndarray, codes, from_day: float = -np.inf) -> float:
    hit = np.isin(response, list(codes)) & (day >= from_day - _TOL)
    return float(day[hit][0]) if hit.any() else np.nan


def _subject_bor(post: pd.DataFrame, confirm: bool, min_sd_days: float, gap: float) -> dict:
    """Best overall response of one subject from its post-baseline assessments (sorted)."""
    day, response = post["day"].to_numpy(float), post["response"].to_numpy(object)
    pd_day = _first_day(day, response, {"PD"})
    keep = day < pd_day if np.isfinite(pd_day) else np.ones(day.size, dtype=bool)
    day_e, resp_e = day[keep], response[keep]
    cr_day, cr_conf = (
        _first_day(day_e, resp_e, {"CR"}),
        _confirmed_start(day_e, resp_e, {"CR"}, gap),
    )
    pr_day = _first_day(day_e, resp_e, {"CR", "PR"})
    pr_conf = _confirmed_start(day_e, resp_e, {"CR", "PR"}, gap)
    sd_day = _first_day(day_e, resp_e, {"CR", "PR", "SD", "NON-CR/NON-PD"}, min_sd_days)
    measurable = post["target_response"].notna().any() or post["sum_diameters_mm"].notna().any()
    if confirm:
        cr_day, pr_day = cr_conf, pr_conf
    if np.isfinite(cr_day):
        bor, bor_day, confirmed = "CR", cr_day, np.isfinite(cr_conf)
    elif np.isfinite(pr_day):
        bor, bor_day, confirmed = "PR", pr_day, np.isfinite(pr_conf)
    elif np.isfinite(sd_day):
        bor, bor_day, confirmed = ("SD" if measurable else "NON-CR/NON-PD"), sd_day, pd.NA
    elif np.isfinite(pd_day):
        bor, bor_day, confirmed = "PD", pd_day, pd.NA
    else:
        bor, bor_day, confirmed = "NE", np.nan, pd.NA
    upto = post["pct_change_baseline"].to_numpy(float)[
        day <= pd_day if np.isfinite(pd_day) else keep
    ]
    adequate = day_e[resp_e != "NE"]
    return {
        "bor": bor,
        "bor_day": bor_day,
        "confirmed": confirmed,
        "responder": bor in ("CR", "PR"),
        "best_pct_change": float(np.nanmin(upto)) if np.isfinite(upto).any() else np.nan,
        "first_pd_day": pd_day,
        "last_adequate_day": float(adequate.max()) if adequate.size else np.nan,
        "n_assessments": int(day.size),
    }


def best_overall_response(
    lesions: pd.DataFrame,
    *,
    confirm: bool = False,
    min_sd_days: float = 42.0,
    confirm_days: float = 28.0,
    baseline_day: float | Mapping[Any, float] | None = None,
    strict: bool = True,
) -> pd.DataFrame:
    """RECIST 1.1 best overall response (BOR), one row per subject.

    The BOR is the best timepoint response recorded from infusion until the first PD
    (Eisenhauer et al. 2009 [1]_, §4.4), ranked CR > PR > SD (NON-CR/NON-PD for subjects with
    non-target disease only) > PD > NE:

    1. **CR / PR** — any CR (PR: any CR or PR) timepoint before the first PD. With
       ``confirm=True`` the response must be confirmed by a later assessment of the same or
       better category (CR for CR; CR or PR for PR) at least `confirm_days` later, with only
       responses of that level or NE in between and before PD (Table 3 of [1]_). An
       unconfirmed CR or PR becomes SD when the SD rule below holds (e.g. PR then SD → SD).
    2. **SD** — an assessment meeting SD criteria (SD or better) at least `min_sd_days` after
       infusion, before PD.
    3. Otherwise **PD** when progression was recorded (including an SD too early to count
       followed by PD), and **NE** when it was not (no post-baseline assessment, only NE, or
       SD too early with no later assessment).

    Parameters
    ----------
    lesions : pandas.DataFrame
        Lesions table (see :func:`recist_timepoints`) or the output of
        :func:`recist_timepoints`.
    confirm : bool, default False
        Require confirmation of CR and PR (recommended for single-arm trials where response
        is the primary endpoint).
    min_sd_days : float, default 42
        Minimum time from infusion (days) at which SD criteria must be met at least once (6
        weeks; protocols commonly use 6–8).
    confirm_days : float, default 28
        Minimum interval (days) between a response and its confirmation (4 weeks).
    baseline_day, strict
        As for :func:`recist_timepoints` (used only when `lesions` is a lesions table).

    Returns
    -------
    pandas.DataFrame
        Columns ``subject``, ``bor`` (CR, PR, SD, NON-CR/NON-PD, PD or NE), ``bor_day`` (day
        of the assessment that establishes the BOR: the first day of the (confirmed) response,
        of the first qualifying SD, or of PD; NaN for NE), ``confirmed`` (CR/PR only: whether
        a confirming assessment exists — True by construction with ``confirm=True``; NA for
        other categories), ``responder`` (BOR is CR or PR), ``best_pct_change`` (most negative
        % change of the sum of diameters from baseline up to and including the first PD; for
        waterfall plots), ``first_pd_day``, ``last_adequate_day`` (last assessment before PD
        whose response is not NE), ``n_assessments`` (post-baseline assessments) and
        ``baseline_issues``.

    References
    ----------
    .. [1] Eisenhauer et al. (2009), Eur J Cancer 45:228–247, doi:10.1016/j.ejca.2008.10.026

    Examples
    --------
    >>> import pandas as pd
    >>> lesions = pd.DataFrame({"subject": "101", "day": [-5, 28, 56, 84],
    ...     "lesion_id": "T1", "kind": "target", "diameter_mm": [50.0, 34.0, 30.0, 45.0]})
    >>> best_overall_response(lesions, confirm=True)[["subject", "bor", "bor_day"]]
      subject bor  bor_day
    0     101  PR     28.0
    """
    if min_sd_days < 0 or confirm_days < 0:
        raise OptionError(
            "`min_sd_days` and `confirm_days` must be non-negative, got "
            f"{min_sd_days!r} and {confirm_days!r}"
        )
    points = as_timepoints(lesions, baseline_day, strict)
    rows = []
    for subject, group in points.groupby("subject", sort=False):
        post = group[~group["baseline"].astype(bool)].sort_values("day", kind="stable")
        row = {"subject": subject}
        row.update(_subject_bor(post, confirm, float(min_sd_days), float(confirm_days)))
        issues = group["baseline_issues"] if "baseline_issues" in group else pd.Series([""])
        row["baseline_issues"] = str(issues.iloc[0])
        rows.append(row)
    out = pd.DataFrame(rows)
    return out.astype({"confirmed": "boolean", "responder": bool, "n_assessments": int})
