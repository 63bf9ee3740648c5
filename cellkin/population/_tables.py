"""The tables of a population fit: fixed effects, random effects, residual error (private).

Standard errors come from the inverse of the Fisher information
(:mod:`cellkin.population._information`): typical values are reported on the natural scale
(``h(μ)``, SE by the delta method, CI ``h(μ ± z·SE)`` so that it respects the parameter's
scale), covariate effects β and their Wald tests on the estimation scale, ω as a standard
deviation on the estimation scale (``SE(ω) = SE(ω²)/2ω``), error parameters on the natural
scale (``SE = θ·SE(ln θ)``, CI ``θ·exp(±z·SE(ln θ))``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from cellkin.population._design import Design
from cellkin.population._state import Estimates

__all__ = ["fixed_effects_table", "random_effects_table", "residual_error_table"]


def _z(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2))


def _se_lookup(names: list[tuple[str, str]], covariance: np.ndarray | None) -> dict:
    if covariance is None:
        return {}
    se = np.sqrt(np.clip(np.diag(covariance), 0, None))
    return {
        key: (value if np.isfinite(value) else np.nan) for key, value in zip(names, se, strict=True)
    }


def fixed_effects_table(
    design: Design,
    est: Estimates,
    names: list[tuple[str, str]],
    covariance: np.ndarray | None,
    confidence: float,
) -> pd.DataFrame:
    """Typical values (natural scale) and covariate effects, with SE, RSE% and CIs."""
    se = _se_lookup(names, covariance)
    z = _z(confidence)
    rows = []
    transform = design.transform
    for j, name in enumerate(design.names):
        spec_scale = transform.scales[j]
        unit = design.units[j]
        if name in design.fixed:
            rows.append(
                {
                    "parameter": name,
                    "term": "",
                    "kind": "typical",
                    "estimate": design.fixed[name],
                    "se": np.nan,
                    "rse_pct": np.nan,
                    "ci_lower": np.nan,
                    "ci_upper": np.nan,
                    "p_value": np.nan,
                    "unit": unit,
                    "scale": spec_scale,
                    "random": False,
                    "fixed": True,
                }
            )
            continue
        k = list(design.sampled).index(j)
        coefficients = est.coefficients[k]
        single = transform.subset([j])
        value = float(single.to_model(np.array([[coefficients[0]]]))[0, 0])
        se_mu = se.get(("coefficient", f"{name}:"), np.nan)
        derivative = float(single.derivative(np.array([[coefficients[0]]]))[0, 0])
        with np.errstate(invalid="ignore"):
            low, high = single.to_model(
                np.array([[coefficients[0] - z * se_mu], [coefficients[0] + z * se_mu]])
            )[:, 0]
        rows.append(
            {
                "parameter": name,
                "term": "",
                "kind": "typical",
                "estimate": value,
                "se": abs(derivative) * se_mu,
                "rse_pct": 100 * abs(derivative) * se_mu / abs(value) if value else np.nan,
                "ci_lower": low,
                "ci_upper": high,
                "p_value": np.nan,
                "unit": unit,
                "scale": spec_scale,
                "random": bool(design.random[k]),
                "fixed": False,
            }
        )
        for term, beta in zip(design.covariates.get(name, ()), coefficients[1:], strict=True):
            se_beta = se.get(("coefficient", f"{name}:{term}"), np.nan)
            p_value = 2 * stats.norm.sf(abs(beta / se_beta)) if se_beta > 0 else np.nan
            rows.append(
                {
                    "parameter": name,
                    "term": term,
                    "kind": "covariate",
                    "estimate": float(beta),
                    "se": se_beta,
                    "rse_pct": 100 * se_beta / abs(beta) if beta else np.nan,
                    "ci_lower": beta - z * se_beta,
                    "ci_upper": beta + z * se_beta,
                    "p_value": p_value,
                    "unit": f"{spec_scale} scale",
                    "scale": spec_scale,
                    "random": bool(design.random[k]),
                    "fixed": False,
                }
            )
    return pd.DataFrame(rows)


def random_effects_table(
    design: Design,
    est: Estimates,
    names: list[tuple[str, str]],
    covariance: np.ndarray | None,
    shrinkage: np.ndarray,
    confidence: float,
) -> pd.DataFrame:
    """ω (SD on the estimation scale) of each random effect, with SE, CI and η-shrinkage, and
    the correlations estimated within blocks."""
    se = _se_lookup(names, covariance)
    z = _z(confidence)
    sampled = design.sampled_names
    random = np.flatnonzero(design.random)
    rows = []
    for position, k in enumerate(random):
        name = sampled[k]
        variance = est.omega[k, k]
        omega = float(np.sqrt(variance))
        se_var = se.get(("omega", f"{name},{name}"), np.nan)
        se_omega = se_var / (2 * omega)
        low = np.sqrt(max(variance - z * se_var, 0.0)) if np.isfinite(se_var) else np.nan
        high = np.sqrt(variance + z * se_var) if np.isfinite(se_var) else np.nan
        rows.append(
            {
                "parameter": name,
                "kind": "omega",
                "estimate": omega,
                "se": se_omega,
                "rse_pct": 100 * se_omega / omega,
                "ci_lower": low,
                "ci_upper": high,
                "shrinkage_pct": 100 * float(shrinkage[position]),
                "scale": design.transform.scales[design.sampled[k]],
            }
        )
    for a_pos, a in enumerate(random):
        for b in random[a_pos + 1 :]:
            if design.blocks[a] != design.blocks[b]:
                continue
            correlation = est.omega[a, b] / np.sqrt(est.omega[a, a] * est.omega[b, b])
            rows.append(
                {
                    "parameter": f"{sampled[a]}~{sampled[b]}",
                    "kind": "correlation",
                    "estimate": float(correlation),
                    "se": np.nan,
                    "rse_pct": np.nan,
                    "ci_lower": np.nan,
                    "ci_upper": np.nan,
                    "shrinkage_pct": np.nan,
                    "scale": "",
                }
            )
    return pd.DataFrame(rows)


def residual_error_table(
    design: Design,
    est: Estimates,
    names: list[tuple[str, str]],
    covariance: np.ndarray | None,
    confidence: float,
) -> pd.DataFrame:
    """Each error parameter of each assay, natural scale, with SE and CI."""
    se = _se_lookup(names, covariance)
    z = _z(confidence)
    rows = []
    for name, value in zip(design.error_names, est.error, strict=True):
        se_log = se.get(("error", name), np.nan)
        assay = next(a for a in design.errors if name.endswith(f"_{a}"))
        rows.append(
            {
                "assay": assay,
                "parameter": name,
                "model": design.errors[assay],
                "estimate": float(value),
                "se": float(value) * se_log,
                "rse_pct": 100 * se_log,
                "ci_lower": value * np.exp(-z * se_log),
                "ci_upper": value * np.exp(z * se_log),
            }
        )
    return pd.DataFrame(rows)
