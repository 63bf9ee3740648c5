"""Statistics behind the exposure analyses of :mod:`cellkin.metrics` (private).

Exposure groups, the two-group comparison on the log scale (geometric mean ratio with a Welch
t interval, Mann–Whitney U, ROC AUC = U/(n1·n0), Hanley & McNeil 1982,
doi:10.1148/radiology.143.1.7063747), the logistic regression of a binary outcome on log
exposure with separation checks (statsmodels), and the dose–exposure power model (OLS).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from cellkin._stats import clopper_pearson
from cellkin.errors import OptionError

GroupSpec = str | float | Sequence[float] | None
_QUANTILES = {"median": 2, "tertile": 3, "quartile": 4}
_LN2 = float(np.log(2.0))
_COMPARE_COLUMNS = ("gmr", "gmr_ci_lower", "gmr_ci_upper", "welch_t", "welch_df", "welch_p",
                    "mann_whitney_u", "mann_whitney_p", "roc_auc")  # fmt: skip
_LOGIT_COLUMNS = ("logit_intercept", "log_or", "log_or_se", "or_per_doubling", "or_ci_lower",
                  "or_ci_upper", "logit_p", "logit_lr_p")  # fmt: skip


def _fmt(value: float) -> str:
    rounded = float(f"{value:.3g}")
    return f"{rounded:g}" if abs(rounded) < 1e6 else f"{rounded:.3g}"


def _exposure_groups(values: np.ndarray, spec: GroupSpec) -> tuple[np.ndarray, list[str]]:
    """Group index per value and the label of each group (right-closed intervals)."""
    if isinstance(spec, str):
        if spec not in _QUANTILES:
            raise OptionError(
                f"`group` must be one of {list(_QUANTILES)}, a cut point or increasing cut "
                f"points, or None; got {spec!r}"
            )
        k, prefix = _QUANTILES[spec], "Q"
        cuts = np.quantile(values, np.linspace(0, 1, k + 1)[1:-1]) if values.size else []
    else:
        prefix = "G"
        cuts = np.atleast_1d(np.asarray(spec, dtype=float))
        if cuts.ndim != 1 or not np.all(np.isfinite(cuts)) or np.any(np.diff(cuts) <= 0):
            raise OptionError(f"`group` cut points must be finite and increasing, got {spec!r}")
    cuts = np.asarray(cuts, dtype=float)
    index = np.searchsorted(cuts, values, side="left")
    edges = [_fmt(c) for c in cuts]
    labels = []
    for i in range(len(cuts) + 1):
        low, high = (edges[i - 1] if i else None), (edges[i] if i < len(cuts) else None)
        text = f"≤ {high}" if low is None else f"> {low}" if high is None else f"({low}, {high}]"
        labels.append(f"{prefix}{i + 1} {text}")
    return index, labels


def _group_rows(
    values: np.ndarray, event: np.ndarray, spec: GroupSpec, level: float
) -> list[dict[str, Any]]:
    """Outcome rate with its Clopper–Pearson interval per non-empty exposure group."""
    index, labels = _exposure_groups(values, spec)
    rows = []
    for i, label in enumerate(labels):
        mine = index == i
        if not mine.any():
            continue
        k, n = int(event[mine].sum()), int(mine.sum())
        low, high = clopper_pearson(k, n, level)
        rows.append({"group": label, "exposure_min": values[mine].min(),
                     "exposure_max": values[mine].max(), "n": n, "n_events": k,
                     "rate": k / n, "ci_lower": low, "ci_upper": high})  # fmt: skip
    return rows


# ------------------------------------------------------------------------------ statistics


def _compare(x: np.ndarray, y: np.ndarray, level: float) -> dict[str, float]:
    """Geometric means, their ratio (Welch), Mann–Whitney U and p, and the ROC AUC.

    `x` is ln(exposure), `y` the 0/1 outcome. AUC = U₁/(n₁·n₀) with U₁ from mid-ranks, the
    probability that a positive subject has the higher exposure, ties counting one half [3]_.
    """
    pos, neg = x[y == 1], x[y == 0]
    n1, n0 = pos.size, neg.size
    out = dict.fromkeys(_COMPARE_COLUMNS, np.nan)
    out["gmean_positive"] = float(np.exp(pos.mean())) if n1 else np.nan
    out["gmean_negative"] = float(np.exp(neg.mean())) if n0 else np.nan
    if n1 >= 2 and n0 >= 2 and (np.ptp(pos) > 0 or np.ptp(neg) > 0):
        test = stats.ttest_ind(pos, neg, equal_var=False)
        ci = test.confidence_interval(confidence_level=level)
        out.update(gmr=float(np.exp(pos.mean() - neg.mean())), gmr_ci_lower=float(np.exp(ci.low)),
                   gmr_ci_upper=float(np.exp(ci.high)), welch_t=float(test.statistic),
                   welch_df=float(test.df), welch_p=float(test.pvalue))  # fmt: skip
    if n1 and n0:
        u_pos = float(stats.rankdata(x)[y == 1].sum() - n1 * (n1 + 1) / 2.0)
        p_value = stats.mannwhitneyu(pos, neg, alternative="two-sided").pvalue
        out.update(mann_whitney_u=u_pos, mann_whitney_p=float(p_value), roc_auc=u_pos / (n1 * n0))
    return out


def _separation(x: np.ndarray, y: np.ndarray) -> tuple[str, str] | None:
    """Why the logistic MLE does not exist, or None (one covariate: Albert & Anderson [5]_)."""
    pos, neg = x[y == 1], x[y == 0]
    if pos.size == 0 or neg.size == 0:
        return "not estimable", "every included subject has the same outcome"
    if np.ptp(x) == 0:
        return "not estimable", "the exposure is the same in every included subject"
    if pos.min() < neg.max() and pos.max() > neg.min():
        return None
    strict = pos.min() > neg.max() or pos.max() < neg.min()
    kind = "complete separation" if strict else "quasi-complete separation"
    return kind, (
        f"{kind}: ln(exposure) predicts the outcome perfectly, so the maximum-likelihood odds "
        "ratio is infinite and not reported (Albert & Anderson 1984); use exact or "
        "Firth-penalised logistic regression, or report the ROC AUC"
    )


def _fit_logit(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """statsmodels Logit of y on [1, x], as plain numbers.

    Every number, including the lazily computed ones (the null model behind the
    likelihood-ratio p), is read inside the block that catches statsmodels' own warnings
    (convergence, perfect separation, Hessian inversion); they are returned in ``notes``.
    Other warnings go back to the caller's filters.
    """
    import statsmodels.api as sm
    from statsmodels.tools import sm_exceptions as sme

    caught_types = (sme.ConvergenceWarning, sme.PerfectSeparationWarning,
                    sme.HessianInversionWarning)  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        for category in caught_types:
            warnings.simplefilter("always", category)
        model = sm.Logit(y, np.column_stack([np.ones_like(x), x]))
        fit = model.fit(disp=0, method="newton", maxiter=100)
        out = {"converged": bool(fit.mle_retvals.get("converged", True)),
               "params": np.asarray(fit.params, float),
               "cov": np.asarray(fit.cov_params(), float),
               "p_wald": float(np.asarray(fit.pvalues)[1]),
               "p_lr": float(fit.llr_pvalue)}  # fmt: skip
    notes = []
    for item in caught:
        if issubclass(item.category, caught_types):
            notes.append(f"{item.category.__name__}: {item.message}")
        else:  # not ours: hand it back to the caller's filters
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
    return {**out, "notes": "; ".join(dict.fromkeys(notes))}


def _logistic(x: np.ndarray, y: np.ndarray, level: float) -> dict[str, Any]:
    """Logistic regression of y on ln(exposure): odds ratio per doubling with a Wald CI."""
    out: dict[str, Any] = dict.fromkeys(_LOGIT_COLUMNS, np.nan)
    problem = _separation(x, y)
    if problem is not None:
        return {**out, "logit_status": problem[0], "logit_message": problem[1]}
    try:
        fit = _fit_logit(x, y)
    except np.linalg.LinAlgError as exc:
        return {**out, "logit_status": "not estimable", "logit_message": f"LinAlgError: {exc}"}
    if not fit["converged"]:
        return {**out, "logit_status": "not converged", "logit_message": fit["notes"]}
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    (intercept, beta), se = fit["params"], float(np.sqrt(fit["cov"][1, 1]))
    per_doubling = np.exp(np.array([beta, beta - z * se, beta + z * se]) * _LN2)
    values = [intercept, beta, se, *per_doubling, fit["p_wald"], fit["p_lr"]]
    out.update(zip(_LOGIT_COLUMNS, map(float, values), strict=True))
    status = "warning" if fit["notes"] else "ok"
    return {**out, "logit_status": status, "logit_message": fit["notes"]}


def _logistic_curve(
    x: np.ndarray, y: np.ndarray, grid: np.ndarray, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Fitted probability at ln-exposure `grid` with a pointwise Wald band (None: no fit)."""
    if _separation(x, y) is not None:
        return None
    fit = _fit_logit(x, y)
    if not fit["converged"]:
        return None
    design = np.column_stack([np.ones_like(grid), grid])
    eta = design @ fit["params"]
    se = np.sqrt(np.einsum("ij,jk,ik->i", design, fit["cov"], design))
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    expit = stats.logistic.cdf
    return expit(eta), expit(eta - z * se), expit(eta + z * se)


def _power_model(log_dose: np.ndarray, log_value: np.ndarray, level: float) -> dict[str, Any]:
    """OLS of ln(exposure) on ln(dose): slope with a t interval, tests of b = 0 and b = 1."""
    import statsmodels.api as sm

    n, n_doses = log_dose.size, np.unique(log_dose).size
    out: dict[str, Any] = {"n": n, "n_doses": n_doses, **dict.fromkeys(["intercept", "slope",
        "slope_se", "slope_ci_lower", "slope_ci_upper", "slope_p", "proportionality_p",
        "r_squared"], np.nan)}  # fmt: skip
    if n < 3 or n_doses < 2:
        return {**out, "status": "not estimable", "message": "needs >= 3 subjects at >= 2 doses"}
    fit = sm.OLS(log_value, np.column_stack([np.ones_like(log_dose), log_dose])).fit()
    with np.errstate(divide="ignore", invalid="ignore"):  # an exact fit has se = 0
        low, high = np.asarray(fit.conf_int(alpha=1.0 - level), float)[1]
        (intercept, slope), se = np.asarray(fit.params, float), float(np.asarray(fit.bse)[1])
        p_one = float(2.0 * stats.t.sf(abs((slope - 1.0) / se), fit.df_resid))
        out.update(intercept=intercept, slope=slope, slope_se=se, slope_ci_lower=float(low),
                   slope_ci_upper=float(high), slope_p=float(np.asarray(fit.pvalues)[1]),
                   proportionality_p=p_one, r_squared=float(fit.rsquared))  # fmt: skip
    return {**out, "status": "ok", "message": ""}
