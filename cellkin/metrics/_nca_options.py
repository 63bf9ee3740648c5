"""The options of :func:`cellkin.metrics.nca`, in one frozen dataclass (private module).

Every convention where cellkin's default differs from PKNCA's has a named value that gives
PKNCA's behaviour; :meth:`NCAOptions.pknca` sets the defaults PKNCA's ``pk.nca`` uses
(checked against PKNCA's own tests in ``tests/metrics/test_nca_pknca.py``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from cellkin.errors import OptionError
from cellkin.metrics._baseline import check_baseline

__all__ = ["NCAOptions"]

AUC_METHODS = ("linear", "linup-logdown", "log")
BLQ_RULES = ("positional", "zero", "lloq/2", "drop")
BLQ_ACTIONS = ("zero", "drop", "lloq/2")  # the kernel's action codes, in this order
#: Each named rule as actions on leading, embedded and trailing BLQ samples.
BLQ_POSITIONS = {"positional": ("zero", "drop", "zero"), "zero": ("zero",) * 3,
                 "lloq/2": ("lloq/2",) * 3, "drop": ("drop",) * 3}  # fmt: skip
_BLQ_KEYS = (("first", "middle", "last"), ("before_tmax", "after_tmax"))
INTERVAL_AUC = ("observed", "all", "last", "inf_obs", "inf_pred")
IMPUTE_START = ("zero_if_missing", "start_conc0", "start_predose", "none")
TBB_METHODS = ("observed", "interpolated")

LevelKey = str | tuple[str, str]

#: cellkin defaults that differ from ``PKNCA::pk.nca``'s, with PKNCA's value (PKNCA's
#: ``auc.method = "lin up/log down"``; no imputation unless ``impute`` is given).
_PKNCA_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {"auc_method": "linup-logdown", "impute_start": "none"}
)


def _choice(value: Any, options: Sequence[str], name: str) -> None:
    if not isinstance(value, str) or value not in options:
        extra = ' ("m1" is now called "drop")' if name == "blq" and value == "m1" else ""
        raise OptionError(f"`{name}` must be one of {list(options)}, got {value!r}{extra}")


def _blq(value: Any) -> str | dict[str, str]:
    """Validate `blq`: a rule name, or one action per position (PKNCA's conc.blq list)."""
    if not isinstance(value, Mapping):
        _choice(value, BLQ_RULES, "blq")
        return value
    keys = tuple(value)
    family = next((f for f in _BLQ_KEYS if sorted(keys) == sorted(f)), None)
    if family is None:
        raise OptionError(
            f"`blq` as a mapping needs the keys {list(_BLQ_KEYS[0])} or {list(_BLQ_KEYS[1])}, "
            f"got {list(keys)}"
        )
    for key in family:
        _choice(value[key], BLQ_ACTIONS, f"blq[{key!r}]")
    return {key: value[key] for key in family}


def blq_actions(blq: str | Mapping[str, str]) -> tuple[int, int, int, int]:
    """(first, middle, last, by Tmax) action codes of a validated `blq`."""
    if isinstance(blq, str):
        first, middle, last = BLQ_POSITIONS[blq]
        by_tmax = 0
    elif "first" in blq:
        first, middle, last, by_tmax = blq["first"], blq["middle"], blq["last"], 0
    else:
        first, middle, last, by_tmax = blq["before_tmax"], "drop", blq["after_tmax"], 1
    return (BLQ_ACTIONS.index(first), BLQ_ACTIONS.index(middle), BLQ_ACTIONS.index(last),
            by_tmax)  # fmt: skip


def _numbers(values: Any, name: str, *, minimum: float = -math.inf) -> tuple[float, ...]:
    try:
        array = np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise OptionError(f"`{name}` must be a sequence of numbers, got {values!r}") from None
    bad = ~np.isfinite(array) | (array < minimum)
    if bad.any():
        raise OptionError(f"`{name}`: {array[bad][0]!r} is not allowed (finite, >= {minimum})")
    return tuple(float(x) for x in array)


def _intervals(intervals: Any) -> tuple[tuple[float, float], ...]:
    try:
        array = np.asarray(intervals, dtype=float)
        array = array.reshape(-1, 2) if array.size else array.reshape(0, 2)
        if array.ndim != 2 or (np.ndim(intervals) == 2 and np.shape(intervals)[1] != 2):
            raise ValueError
    except (TypeError, ValueError):
        raise OptionError(
            f"`intervals` must be pairs of days (start, end), e.g. ((0, 28), (0, 84)); "
            f"got {intervals!r}"
        ) from None
    bad = ~(np.isfinite(array).all(axis=1) & (array[:, 0] < array[:, 1]) & (array[:, 0] >= 0))
    if bad.any():
        raise OptionError(
            f"`intervals`: {tuple(array[bad][0])} is not a valid interval; each needs "
            f"0 <= start < end, finite, in days since infusion"
        )
    return tuple((float(a), float(b)) for a, b in array)


def _points(table: Mapping[LevelKey, Sequence[float]] | None, name: str) -> dict | None:
    if table is None:
        return None
    if not isinstance(table, Mapping):
        raise OptionError(f"`{name}` must map subject or (subject, assay) to days, got {table!r}")
    return {key: _numbers(days, name) for key, days in table.items()}


@dataclasses.dataclass(frozen=True)
class NCAOptions:
    r"""Options of :func:`cellkin.metrics.nca` (immutable; validated on construction).

    Parameters
    ----------
    intervals : sequence of (start, end)
        Partial-AUC intervals in days; each gives ``auc_<start>_<end>`` (the AUC over the
        interval, see `interval_auc`) and ``auc_last_<start>_<end>`` (PKNCA's ``auclast`` on
        the interval: from `start`, which must be a sample time, to the last quantifiable
        sample in the interval).
    auc_method : {"linear", "linup-logdown", "log"}
        Trapezoid rule. ``linear`` (default) as published CAR-T NCA (Stein 2019 Fig. S1);
        ``linup-logdown`` is PKNCA's default; ``log`` uses the log trapezoid on every segment
        whose two ends are positive and differ. Interpolated levels follow the same rule.
    blq : {"positional", "zero", "lloq/2", "drop"} or mapping
        Below-LLOQ samples after infusion: ``positional`` (PKNCA's default ``conc.blq``:
        leading BLQ → 0, embedded BLQ dropped, trailing BLQ → 0), all → 0, all → LLOQ/2, all
        dropped; or one action (``"zero"``, ``"drop"``, ``"lloq/2"``) per position, as PKNCA's
        ``conc.blq`` lists: ``{"first": ..., "middle": ..., "last": ...}`` (leading, embedded,
        trailing BLQ) or ``{"before_tmax": ..., "after_tmax": ...}``. BLQ samples never set
        Tmax, Clast, Tlast or λz. A missing value is not BLQ (it was dropped when the table
        was read).
    interval_auc : {"observed", "all", "last", "inf_obs", "inf_pred"}
        What ``auc_<a>_<b>`` integrates past the data. ``observed`` (default): the
        BLQ-processed profile, interpolated at the interval ends; an interval ending after the
        last sample is not computable, except that a profile that already ended at zero stays
        zero while BLQ samples reach the end. The others are PKNCA's ``aucint.all`` (zero
        after the last sample), ``aucint.last`` (zero after Tlast), ``aucint.inf.obs`` and
        ``aucint.inf.pred`` (``Clast·e^{−λz(t − Tlast)}`` after Tlast, observed or predicted
        Clast). The same rule gives the levels ``c_<day>`` of `levels_at`.
    impute_start : {"zero_if_missing", "start_conc0", "start_predose", "none"}
        Level at day 0 (the infusion). ``zero_if_missing`` (default): C(0) = 0 when no sample
        is at day 0 (no CAR-T cells in blood before the infusion); an observed day-0 value is
        kept. ``start_conc0`` (PKNCA): C(0) = 0, replacing an observed day-0 value.
        ``start_predose`` (PKNCA): the last pre-infusion sample's level (BLQ → 0) at day 0
        when no sample is at day 0 and that sample is at most `predose_max_days` before the
        infusion. ``none`` (PKNCA's default): AUCs from day 0 need a day-0 sample.
    predose_max_days : float
        Largest shift of a pre-infusion sample to day 0 under ``start_predose`` (default: no
        limit). PKNCA's ``max_shift`` is 5 % of the interval length (1.2 for 0–24).
    min_points_lambda_z : int
        Fewest points in an automatic λz window (PKNCA ``min.hl.points``, default 3; 2 is
        allowed, with adjusted R² undefined for the 2-point window).
    adj_r2_tolerance : float
        PKNCA's ``adj.r.squared.factor`` (1e-4): among windows whose adjusted R² is within
        this of the best over *all* windows and whose λz > 0, the one with most points.
    allow_tmax_in_lambda_z : bool
        Let the λz window start at Tmax (PKNCA ``allow.tmax.in.half.life``, default False).
    lambda_z_include, lambda_z_exclude : mapping, optional
        Manual λz points, ``{subject: [days]}`` or ``{(subject, assay): [days]}``. Included
        points are used as given (no window search, any number ≥ 2, Tmax allowed; an empty
        list means no λz); excluded points are removed from the automatic candidates.
    baseline : {"lloq", "lloq_only", "max_pre_infusion"} or float
        Baseline of the time-back-to-baseline threshold ``max(baseline, LLOQ)``
        (:mod:`cellkin.metrics._baseline`).
    tbb_method : {"observed", "interpolated"}
        Which definition fills ``time_back_to_baseline``.
    levels_at : sequence of float
        Days at which to report the level ``c_<day>`` (e.g. C at day 28), interpolated as the
        AUCs are.
    time_above : sequence of float
        Levels (in the assay's unit) for ``time_above_<level>`` columns, beside the always
        reported ``time_above_lloq``.
    exclude_column : str
        Column of the kinetics table whose non-empty text excludes a sample from every
        calculation, the text being the reason (PKNCA's ``exclude``); absent → nothing
        excluded. Excluded samples are listed per profile in ``excluded_samples``.
    """

    intervals: tuple[tuple[float, float], ...] = ((0.0, 28.0), (0.0, 84.0))
    auc_method: Literal["linear", "linup-logdown", "log"] = "linear"
    blq: Literal["positional", "zero", "lloq/2", "drop"] | Mapping[str, str] = "positional"
    interval_auc: Literal["observed", "all", "last", "inf_obs", "inf_pred"] = "observed"
    impute_start: Literal["zero_if_missing", "start_conc0", "start_predose", "none"] = (
        "zero_if_missing"
    )
    predose_max_days: float = math.inf
    min_points_lambda_z: int = 3
    adj_r2_tolerance: float = 1e-4
    allow_tmax_in_lambda_z: bool = False
    lambda_z_include: Mapping[LevelKey, Sequence[float]] | None = None
    lambda_z_exclude: Mapping[LevelKey, Sequence[float]] | None = None
    baseline: str | float = "lloq"
    tbb_method: Literal["observed", "interpolated"] = "observed"
    levels_at: tuple[float, ...] = ()
    time_above: tuple[float, ...] = ()
    exclude_column: str = "exclude"

    def __post_init__(self) -> None:
        _choice(self.auc_method, AUC_METHODS, "auc_method")
        _choice(self.interval_auc, INTERVAL_AUC, "interval_auc")
        _choice(self.impute_start, IMPUTE_START, "impute_start")
        _choice(self.tbb_method, TBB_METHODS, "tbb_method")
        check_baseline(self.baseline)
        points = self.min_points_lambda_z
        if isinstance(points, bool) or not isinstance(points, Integral) or points < 2:
            raise OptionError(f"`min_points_lambda_z` must be an integer >= 2, got {points!r}")
        tolerance = self.adj_r2_tolerance
        if (
            isinstance(tolerance, bool)
            or not isinstance(tolerance, Real)
            or not (0 < tolerance < 1)
        ):
            raise OptionError(f"`adj_r2_tolerance` must be in (0, 1), got {tolerance!r}")
        shift = self.predose_max_days
        if isinstance(shift, bool) or not isinstance(shift, Real) or not shift >= 0:
            raise OptionError(f"`predose_max_days` must be a number >= 0, got {shift!r}")
        if not isinstance(self.exclude_column, str):
            raise OptionError(
                f"`exclude_column` must be a column name, got {self.exclude_column!r}"
            )
        set_ = object.__setattr__
        set_(self, "blq", _blq(self.blq))
        set_(self, "intervals", _intervals(self.intervals))
        set_(self, "levels_at", _numbers(self.levels_at, "levels_at", minimum=0.0))
        set_(self, "time_above", _numbers(self.time_above, "time_above", minimum=0.0))
        set_(self, "allow_tmax_in_lambda_z", bool(self.allow_tmax_in_lambda_z))
        set_(self, "lambda_z_include", _points(self.lambda_z_include, "lambda_z_include"))
        set_(self, "lambda_z_exclude", _points(self.lambda_z_exclude, "lambda_z_exclude"))

    @classmethod
    def pknca(cls, **changes: Any) -> NCAOptions:
        """Options with ``PKNCA::pk.nca``'s defaults where cellkin's differ
        (``auc_method="linup-logdown"``, ``impute_start="none"``), then `changes`.
        Past the last sample PKNCA reports no interval AUC unless an ``aucint.*`` parameter
        is requested; choose it with ``interval_auc``."""
        return cls(**{**_PKNCA_DEFAULTS, **changes})

    def to_dict(self) -> dict[str, Any]:
        """The options as plain Python values (for provenance records)."""
        out = dataclasses.asdict(self)
        for key in ("lambda_z_include", "lambda_z_exclude"):
            if out[key] is not None:
                out[key] = {k: list(v) for k, v in out[key].items()}
        out["intervals"] = [list(pair) for pair in self.intervals]
        return out
