"""One subject's samples as a fit sees them: selection, observations, starts, overrides
(private).

A table :func:`cellkin.read_kinetics` returned is only re-checked where its numbers could
have been edited since (:func:`validated`); the subject's rows are taken once into arrays
(:class:`Samples`), from which the observations entering the likelihood, the exclusions and
the data-driven starting values are built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cellkin.errors import FitError, OptionError
from cellkin.fit._problem import ParameterLayout
from cellkin.fit._starts import kinetic_start
from cellkin.fit.likelihood import Observations, entering
from cellkin.io import read_kinetics
from cellkin.models.base import Model

__all__ = [
    "MIN_QUANTIFIED",
    "Samples",
    "apply_overrides",
    "as_read",
    "data_table",
    "for_assays",
    "initial_values",
    "observations",
    "select_assays",
    "select_subject",
    "sound",
    "validated",
]

MIN_QUANTIFIED = 3
_REQUIRED = ("subject", "time", "value", "assay", "unit", "lloq", "blq")
_DROPPED_BLQ = "BLQ sample dropped (blq='drop')"
_NO_EXCLUSIONS = pd.DataFrame(
    {
        "subject": np.empty(0, dtype=object),
        "time": np.empty(0),
        "assay": np.empty(0, dtype=object),
        "reason": np.empty(0, dtype=object),
    }
)


def data_table(
    rows: pd.DataFrame,
    positions: np.ndarray,
    used: np.ndarray,
    prediction: np.ndarray | None,
    residual: np.ndarray | None,
) -> pd.DataFrame:
    """The fitted assays' rows with ``used``, ``prediction`` and ``residual`` (NaN where not
    used), built in one go from the columns (dtypes kept)."""
    columns: dict[str, object] = {}
    for name in rows.columns:
        column = rows[name]
        if isinstance(column.dtype, np.dtype):
            columns[name] = column.to_numpy()[positions]
        else:  # an extension dtype (e.g. categorical): keep it
            columns[name] = column.array.take(positions)
    columns["used"] = used
    columns["prediction"] = _scatter(used, prediction)
    columns["residual"] = _scatter(used, residual)
    return pd.DataFrame(columns, copy=False)  # every column above is a new array


def _scatter(used: np.ndarray, values: np.ndarray | None) -> np.ndarray:
    """``values`` at the used rows, NaN elsewhere."""
    out = np.full(used.size, np.nan)
    if values is not None:
        out[used] = values
    return out


def as_read(kinetics: object) -> bool:
    """Whether ``kinetics`` is a table :func:`read_kinetics` returned: ``attrs["cellkin"]``,
    the canonical columns and their dtypes."""
    if not isinstance(kinetics, pd.DataFrame) or "cellkin" not in kinetics.attrs:
        return False
    if not all(c in kinetics.columns for c in _REQUIRED) or kinetics["blq"].dtype != bool:
        return False
    return all(kinetics[c].dtype == np.float64 for c in ("time", "value", "lloq"))


def sound(kinetics: pd.DataFrame) -> bool:
    """Whether a canonical table's numbers are still valid: finite times, positive finite
    LLOQs, quantified values at or above their LLOQ, one sample per subject, assay (tissue)
    and time."""
    time = kinetics["time"].to_numpy()
    value, lloq = kinetics["value"].to_numpy(), kinetics["lloq"].to_numpy()
    quantified = ~kinetics["blq"].to_numpy()
    with np.errstate(invalid="ignore"):
        if not (np.isfinite(time).all() and (np.isfinite(lloq) & (lloq > 0)).all()):
            return False
        if not (np.isfinite(value[quantified]) & (value[quantified] >= lloq[quantified])).all():
            return False
    if "tissue" in kinetics.columns or len(kinetics) > 1000:  # pandas: NaN tissue == NaN
        keys = ["subject", "assay", *(["tissue"] if "tissue" in kinetics.columns else []), "time"]
        return not kinetics.duplicated(keys).any()
    keys = ["subject", "assay", "time"]
    seen = set(zip(*(kinetics[k].to_numpy().tolist() for k in keys), strict=True))
    return len(seen) == len(kinetics)


def validated(kinetics: object) -> pd.DataFrame:
    """``kinetics`` itself when it is a sound table :func:`read_kinetics` returned; else the
    table read (and validated) by it."""
    if as_read(kinetics) and sound(kinetics):
        return kinetics
    return read_kinetics(kinetics)


def select_subject(kinetics: pd.DataFrame, subject: str | None) -> tuple[str, pd.DataFrame]:
    ids = kinetics["subject"].to_numpy()
    subjects = pd.unique(ids)
    if subject is None:
        if subjects.size != 1:
            raise FitError(
                f"the kinetics table holds {subjects.size} subjects; pass `subject=` to fit one "
                f"of them or use `cellkin.fit_all` for all"
            )
        subject = str(subjects[0])
    if subjects.size == 1 and subjects[0] == subject:
        return subject, kinetics
    mask = ids == subject
    if not mask.any():
        raise FitError(f"subject {subject!r} is not in the kinetics table")
    return subject, kinetics.iloc[np.flatnonzero(mask)]


def select_assays(
    samples: Samples, assays: Sequence[str] | str | None, subject: str, least: int
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The assays to fit and notes on the ones left out.

    One assay (the default: ``qpcr`` when present, else the first) must be present, or
    :class:`~cellkin.errors.FitError`. A joint fit (several assays) uses the assays the
    subject has with at least ``least`` quantified post-infusion samples, with a note for
    each one left out; FitError when none is left.
    """
    present = list(dict.fromkeys(samples.assay.tolist()))
    if assays is None:
        chosen = ["qpcr"] if "qpcr" in present else present[:1]
    else:
        chosen = [assays] if isinstance(assays, str) else list(dict.fromkeys(assays))
    if len(chosen) < 2:
        missing = [a for a in chosen if a not in present]
        if missing:
            raise FitError(
                f"subject {subject!r} has no {missing} samples (assays present: {present}); "
                f"choose `assays=` among those"
            )
        return tuple(chosen), ()
    post = (samples.time >= 0) & ~samples.blq
    kept, notes = [], []
    for assay in chosen:
        quantified = int(np.count_nonzero(post & (samples.assay == assay)))
        if assay not in present:
            notes.append(f"no {assay} samples: fitted on the other assay(s) only")
        elif quantified < least:
            notes.append(f"{assay}: {quantified} quantified post-infusion sample(s), fewer "
                         f"than {least}: fitted on the other assay(s) only")  # fmt: skip
        else:
            kept.append(assay)
    if not kept:
        raise FitError(f"subject {subject!r}: no assay can be fitted ({'; '.join(notes)})")
    return tuple(kept), tuple(notes)


def for_assays(options: Mapping[str, object] | None, dropped: Sequence[str]):
    """``options`` (``fixed``, ``bounds``, ``initial`` or a per-assay ``error`` mapping)
    without the entries of ``dropped`` assays: a joint fit's options for an assay the subject
    lacks do not apply to it."""
    if options is None or not dropped:
        return options
    return {name: value for name, value in options.items()
            if not any(name == a or name.endswith(f"_{a}") for a in dropped)}  # fmt: skip


class Samples:
    """One subject's samples as arrays (taken once from the table)."""

    def __init__(self, rows: pd.DataFrame) -> None:
        self.rows = rows
        self.time = rows["time"].to_numpy(dtype=float)
        self.value = rows["value"].to_numpy(dtype=float)
        self.blq = rows["blq"].to_numpy(dtype=bool)
        self.lloq = rows["lloq"].to_numpy(dtype=float)
        self.assay = rows["assay"].to_numpy()
        self.unit = rows["unit"].to_numpy()

    def codes(self, assays: tuple[str, ...]) -> np.ndarray:
        """Index of each sample's assay in ``assays`` (−1: not fitted)."""
        codes = np.full(self.time.size, -1, dtype=np.int64)
        for k, name in enumerate(assays):
            codes[self.assay == name] = k
        return codes


def observations(
    rows: pd.DataFrame | Samples,
    assays: tuple[str, ...],
    blq: str,
    subject: str,
    min_quantified: int = MIN_QUANTIFIED,
) -> tuple[Observations, tuple[np.ndarray, np.ndarray], pd.DataFrame]:
    """Samples entering the fit, ``(positions, used)`` — the rows of the fitted assays and
    which of them enter the likelihood — and the exclusions."""
    samples = rows if isinstance(rows, Samples) else Samples(rows)
    codes = samples.codes(assays)
    positions = np.flatnonzero(codes >= 0)
    chosen = (samples.time[positions], samples.value[positions], samples.blq[positions],
              samples.lloq[positions])  # fmt: skip
    used, value, censored = entering(*chosen, blq)
    dropped = positions[~used]
    if dropped.size:
        excluded = pd.DataFrame(
            {
                "subject": np.full(dropped.size, subject, dtype=object),
                "time": samples.time[dropped],
                "assay": samples.assay[dropped],
                "reason": np.where(
                    samples.time[dropped] < 0, "pre-infusion sample", _DROPPED_BLQ
                ).astype(object),
            }
        )
    else:
        excluded = _NO_EXCLUSIONS.copy()
    taken = positions[used]
    assay = codes[taken]
    for k, name in enumerate(assays):
        quantified = int(np.count_nonzero((assay == k) & ~samples.blq[taken]))
        if quantified < min_quantified:
            raise FitError(
                f"subject {subject!r}, assay {name!r}: {quantified} quantifiable "
                f"post-infusion sample(s); a fit needs at least {min_quantified}"
            )
    obs = Observations(
        time=samples.time[taken],
        value=value,
        censored=censored,
        lloq=samples.lloq[taken],
        assay=assay,
        assays=assays,
    )
    return obs, (positions, used), excluded


def initial_values(model: Model, samples: Samples, assays: tuple[str, ...]):
    post = (samples.time >= 0) & ~samples.blq
    first = np.flatnonzero(post & (samples.assay == assays[0]))
    first = first[np.argsort(samples.time[first], kind="stable")]
    kinetic = kinetic_start(model, samples.time[first], samples.value[first])
    peaks = {a: float(samples.value[post & (samples.assay == a)].max()) for a in assays}
    scales = {a: peaks[a] / peaks[assays[0]] for a in assays[1:]}
    typical = {a: float(np.median(samples.value[post & (samples.assay == a)])) for a in assays}
    return kinetic, scales, typical


def apply_overrides(
    layout: ParameterLayout,
    fixed: Mapping[str, float] | None,
    bounds: Mapping[str, tuple[float, float]] | None,
    initial: Mapping[str, float] | None,
) -> tuple[ParameterLayout, np.ndarray]:
    lower, upper, start = layout.lower.copy(), layout.upper.copy(), layout.initial.copy()
    free = np.ones(len(layout.names), dtype=bool)
    for label, table in (("fixed", fixed), ("bounds", bounds), ("initial", initial)):
        unknown = sorted(set(table or {}) - set(layout.names))
        if unknown:
            raise OptionError(
                f"`{label}` names unknown parameters {unknown}; known: {layout.names}"
            )
    for name, (lo, hi) in (bounds or {}).items():
        j = layout.index(name)
        if not lo < hi:
            raise OptionError(f"bounds for `{name}` must have lower < upper, got ({lo}, {hi})")
        lower[j], upper[j] = lo, hi
    for name, value in (initial or {}).items():
        start[layout.index(name)] = value
    for name, value in (fixed or {}).items():
        j = layout.index(name)
        start[j], free[j] = value, False
    for j, name in enumerate(layout.names):
        if free[j]:
            span = upper[j] - lower[j]
            start[j] = min(max(start[j], lower[j] + 1e-6 * span), upper[j] - 1e-6 * span)
        elif not lower[j] <= start[j] <= upper[j]:
            raise OptionError(f"fixed `{name}` = {start[j]} lies outside [{lower[j]}, {upper[j]}]")
    updated = ParameterLayout(layout.names, layout.kinds, layout.units, layout.scales, lower,
                              upper, start, layout.descriptions)  # fmt: skip
    return updated, free
