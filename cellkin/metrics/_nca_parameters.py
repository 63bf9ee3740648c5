"""The NCA parameters: cellkin column, unit kind, CDISC code, PKNCA name (private).

:data:`PARAMETERS` is the one documented mapping between cellkin's result columns and
PKNCA's parameter names (``PKNCA::get.interval.cols()``) and the CDISC SDTM PP test codes
(``PPTESTCD``). Interval parameters (``auc_<a>_<b>``, ``auc_last_<a>_<b>``, ``c_<day>``,
``time_above_<level>``) are described by :func:`interval_parameters`.
:func:`cellkin.metrics.nca_parameters` returns the mapping as a table.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["PARAMETERS", "Parameter", "interval_name", "interval_parameters"]


class Parameter(NamedTuple):
    """One NCA result column."""

    unit: str  # kind: level, time, auc, aumc, rate, 1, %, level/dose, auc/dose
    pptestcd: str
    pknca: str  # PKNCA parameter name ("" when PKNCA has none)
    description: str


_P = Parameter
PARAMETERS: dict[str, Parameter] = {
    "cmax": _P("level", "CMAX", "cmax", "maximum observed level (0 when all BLQ)"),
    "tmax": _P("time", "TMAX", "tmax", "first time of Cmax"),
    "clast": _P("level", "CLST", "clast.obs", "last quantifiable level (0 when all BLQ)"),
    "tlast": _P("time", "TLST", "tlast", "last time quantifiable (persistence)"),
    "auc_last": _P("auc", "AUCLST", "auclast", "AUC from day 0 to Tlast"),
    "auc_all": _P("auc", "AUCALL", "aucall", "AUC from day 0 to the last sample"),
    "aumc_last": _P("aumc", "AUMCLST", "aumclast", "AUMC from day 0 to Tlast"),
    "lambda_z": _P("rate", "LAMZ", "lambda.z", "terminal rate constant"),
    "half_life": _P("time", "LAMZHL", "half.life", "terminal half-life ln2/λz"),
    "r2": _P("1", "R2", "r.squared", "R² of the λz fit"),
    "r2_adj": _P("1", "R2ADJ", "adj.r.squared", "adjusted R² of the λz fit"),
    "lambda_z_corrxy": _P("1", "CORRXY", "lambda.z.corrxy", "correlation of t and ln C"),
    "n_points_lambda_z": _P("1", "LAMZNPT", "lambda.z.n.points", "points in the λz fit"),
    "lambda_z_time_first": _P("time", "LAMZLL", "lambda.z.time.first", "first λz time"),
    "lambda_z_time_last": _P("time", "LAMZUL", "lambda.z.time.last", "last λz time"),
    "span_ratio": _P("1", "LAMZSPN", "span.ratio", "λz time span / half-life"),
    "clast_pred": _P("level", "CLSTP", "clast.pred", "level at Tlast on the λz line"),
    "auc_inf": _P("auc", "AUCIFO", "aucinf.obs", "AUClast + Clast/λz"),
    "auc_inf_pred": _P("auc", "AUCIFP", "aucinf.pred", "AUClast + Clast,pred/λz"),
    "auc_pct_extrap": _P("%", "AUCPEO", "aucpext.obs", "100·(AUCinf − AUClast)/AUCinf"),
    "auc_pct_extrap_pred": _P("%", "AUCPEP", "aucpext.pred", "as auc_pct_extrap, predicted"),
    "aumc_inf": _P("aumc", "AUMCIFO", "aumcinf.obs", "AUMClast + Clast·Tlast/λz + Clast/λz²"),
    "aumc_inf_pred": _P("aumc", "AUMCIFP", "aumcinf.pred", "as aumc_inf with Clast,pred"),
    "mrt_last": _P("time", "MRTEVLST", "mrt.last", "AUMClast/AUClast"),
    "mrt_inf": _P("time", "MRTEVIFO", "mrt.obs", "AUMCinf/AUCinf (observed Clast)"),
    "mrt_inf_pred": _P("time", "MRTEVIFP", "mrt.pred", "AUMCinf,pred/AUCinf,pred"),
    "time_above_lloq": _P(
        "time", "TATLLOQ", "time_above", "time at or above the LLOQ (median post-infusion LLOQ)"
    ),
    "time_back_to_baseline": _P("time", "TBB", "", "chosen time back to baseline"),
    "time_back_to_baseline_observed": _P("time", "TBBOBS", "", "first sample at/below it"),
    "time_back_to_baseline_interpolated": _P("time", "TBBINT", "", "log-linear crossing"),
    "tbb_threshold": _P("level", "TBBTHR", "", "max(baseline, LLOQ)"),
    "baseline": _P("level", "BASE", "", "pre-infusion baseline"),
    "cmax_dn": _P("level/dose", "CMAXD", "cmax.dn", "Cmax / dose"),
    "auc_last_dn": _P("auc/dose", "AUCLSTD", "auclast.dn", "AUClast / dose"),
    "auc_inf_dn": _P("auc/dose", "AUCIFOD", "aucinf.obs.dn", "AUCinf / dose"),
}

#: PKNCA's ``aucint.*`` parameter for each ``interval_auc`` option value.
_AUCINT = {"observed": "aucint.all", "all": "aucint.all", "last": "aucint.last",
           "inf_obs": "aucint.inf.obs", "inf_pred": "aucint.inf.pred"}  # fmt: skip


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x)).replace(".", "p")


def interval_name(start: float, end: float) -> str:
    """Column name of the AUC over [start, end] days, e.g. ``auc_0_28``."""
    return f"auc_{_number(start)}_{_number(end)}"


def interval_parameters(
    intervals: tuple[tuple[float, float], ...],
    levels_at: tuple[float, ...],
    time_above: tuple[float, ...],
    interval_auc: str,
) -> dict[str, Parameter]:
    """The interval columns in the kernel's extra-output order."""
    out: dict[str, Parameter] = {}
    for start, end in intervals:
        name = interval_name(start, end)
        text = f"[{start:g}, {end:g}] d"
        out[name] = _P("auc", "AUCINT", _AUCINT[interval_auc], f"AUC over {text}")
        last = name.replace("auc_", "auc_last_", 1)
        out[last] = _P("auc", "AUCLST", "auclast", f"AUClast within {text}")
    for day in levels_at:
        out[f"c_{_number(day)}"] = _P("level", "CTIME", "", f"level at day {day:g}")
    for level in time_above:
        out[f"time_above_{_number(level)}"] = _P(
            "time", "TAT", "time_above", f"time at or above {level:g}"
        )
    return out
