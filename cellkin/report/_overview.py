"""The endpoint overview: every study endpoint by dose level, as one table of text cells.

This is the first table of the report and what ``StudyReport.summary()`` shows: DLT rate and
TEAE grade ≥ 3 in the first 3 months, CRS, CAR+ peak time and return to baseline, ORR and CR
with exact 95% CIs, median PFS and OS with 95% CIs. The numbers behind every cell are in the
analysis tables it reads.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from cellkin.report._analysis import StudyAnalysis

__all__ = ["endpoint_overview"]


def _fraction(k: Any, n: Any, rate: Any = None, low: Any = None, high: Any = None) -> str:
    if pd.isna(n) or not n:
        return "–"
    text = f"{int(k)}/{int(n)} ({100 * (k / n if rate is None else rate):.0f}%"
    if low is not None and pd.notna(low):
        text += f"; {100 * low:.0f}–{100 * high:.0f}%"
    return text + ")"


def _back_to_baseline_text(row: pd.Series) -> str:
    """Kaplan–Meier probability of being back to baseline by the horizon, with its CI and
    the counts behind it, e.g. ``"62% (35–87%); 8 returned, 4 censored of 12"``."""
    counts = (f"{int(row['n_back_to_baseline'])} returned, {int(row['n_tbb_censored'])} "
              f"censored of {int(row['n_tbb'])}")  # fmt: skip
    if pd.isna(row["p_back_to_baseline"]):
        return f"not estimable (follow-up too short); {counts}"
    low, high = row["p_back_ci_lower"], row["p_back_ci_upper"]
    limits = f" ({100 * low:.0f}–{100 * high:.0f}%)" if pd.notna(low) and pd.notna(high) else ""
    return f"{100 * row['p_back_to_baseline']:.0f}%{limits}; {counts}"


def _median_text(row: pd.Series | None) -> str:
    if row is None or pd.isna(row["median"]):
        return "not reached" if row is not None else "–"
    low, high = row["ci_lower"], row["ci_upper"]
    limits = f"{low:.0f}–{high:.0f}" if pd.notna(high) else f"{low:.0f}–NR"
    return f"{row['median']:.0f} d ({limits})"


def endpoint_overview(analysis: StudyAnalysis) -> pd.DataFrame:
    """One row per dose level (and all subjects) with every study endpoint, as text.

    Columns: safety (DLT rate and TEAE grade ≥ 3 in the first 3 months, CRS), kinetics (CAR+
    peak time, and the Kaplan–Meier probability of being back to baseline by 6 months with
    its 95% CI, the returns observed and the subjects censored; observed), efficacy (ORR and
    best CR with exact 95% CIs, median PFS and OS with 95% CIs). The numbers behind each cell
    are in the report's other tables (``kinetic_endpoints``, equal to ``nca_summary``).
    """
    tables = analysis.tables
    groups = tables.get("dlt") if "dlt" in tables else tables.get("response_rates")
    if groups is None:
        return pd.DataFrame()

    def row_of(name: str, group: Any, **where: Any) -> pd.Series | None:
        table = tables.get(name)
        if table is None:
            return None
        mask = table["group"].astype(str) == str(group)
        for column, value in where.items():
            mask &= table[column] == value
        return table[mask].iloc[0] if mask.any() else None

    rows = []
    unknown = analysis.options.get("unknown_dose_subjects") or []
    for group in [*groups["group"], *(["unknown dose"] if unknown else [])]:
        row: dict[str, Any] = {"group": group}
        dlt = row_of("dlt", group)
        if dlt is not None:
            row["DLT (≤3 mo)"] = _fraction(dlt["n_dlt"], dlt["n_evaluable"], dlt["dlt_rate"],
                                           dlt["dlt_ci_lower"], dlt["dlt_ci_upper"])  # fmt: skip
        teae = row_of("teae_incidence", group, level="any")
        if teae is not None:
            row["TEAE grade ≥3 (≤3 mo)"] = _fraction(teae["n_grade_3plus"], teae["n_population"])
        crs = row_of("crs_grades", group)
        if crs is not None:
            row["CRS any / ≥3"] = f"{int(crs['n_any'])} / {int(crs['n_grade_3plus'])}"
        for assay in ("flow", "qpcr"):
            kin = row_of("kinetic_endpoints", group, assay=assay, basis="observed (NCA)")
            if kin is not None:
                row[f"Tmax {assay}, median d"] = f"{kin['tmax_median']:.1f}"
                row[f"back to baseline ≤6 mo ({assay})"] = _back_to_baseline_text(kin)
        rates = row_of("response_rates", group)
        if rates is not None:
            row["ORR (RECIST 1.1)"] = _fraction(
                rates["n_responders"], rates["n"], rates["orr"], rates["orr_ci_lower"],
                rates["orr_ci_upper"],
            )  # fmt: skip
            row["best response CR"] = _fraction(rates["n_cr"], rates["n"])
        for endpoint in ("pfs", "os"):
            if f"{endpoint}_median" in tables:
                label = f"median {endpoint.upper()} (95% CI)"
                row[label] = _median_text(row_of(f"{endpoint}_median", group))
        rows.append(row)
    return pd.DataFrame(rows)
