"""Whole synthetic trials in one call: :func:`virtual_trial`.

A virtual trial enrols subjects at dose levels (fixed cohorts or a 3+3 escalation with an
expansion cohort), draws their kinetic parameters (:func:`virtual_population`, with an optional
power-law dose effect), draws each subject's visit days within their windows (with missed
visits and dropout) and reports every assay as a laboratory would (:func:`sample_trial`:
log-normal residual error, BLQ below the LLOQ). It is the generator of cellkin's bundled
example study (``data/make_example_study.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from cellkin import models
from cellkin.errors import OptionError
from cellkin.io import KINETICS_COLUMNS
from cellkin.models.base import Model
from cellkin.outcomes import three_plus_three_decision
from cellkin.simulate._population import ParameterSampler, round_significant, sample_trial

__all__ = ["Assay", "VirtualTrial", "Visit", "virtual_trial"]

# Purpose codes of the random streams ``default_rng([seed, subject_index, code])``.
STREAM_POPULATION = 1  # ``default_rng([seed, 1])``: the parameters of the whole pool
STREAM_ASSAY_SCALE = 2
STREAM_DLT = 3
STREAM_VISITS = 4
STREAM_DROPOUT = 9
STREAM_RESIDUAL = 100  # ``default_rng([seed, 100 + k])``: residual error of assay k

DltRule = Callable[[str, str, Mapping[str, float], np.random.Generator], bool]


@dataclass(frozen=True)
class Visit:
    """A protocol visit: label, nominal day and the window of the actual day.

    Parameters
    ----------
    name : str
        Visit label written to the ``visit`` column (e.g. ``"D7"``).
    day : float
        Nominal day since infusion (negative = before infusion).
    window : float
        Width of the window in days (>= 0); the actual day is uniform within it.
    side : {"both", "before", "after"}
        ``both``: ``day ± window``; ``before``: ``day − window`` to ``day`` (e.g. a
        pre-infusion sample or the last visit of a study); ``after``: ``day`` to
        ``day + window``.
    """

    name: str
    day: float
    window: float = 0.0
    side: Literal["both", "before", "after"] = "both"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.day) and math.isfinite(self.window) and self.window >= 0):
            raise OptionError(f"visit {self.name!r}: `day` must be finite and `window` >= 0")
        if self.side not in ("both", "before", "after"):
            raise OptionError(
                f"visit {self.name!r}: `side` must be 'both', 'before' or 'after', "
                f"got {self.side!r}"
            )


@dataclass(frozen=True)
class Assay:
    """An assay run on the trial's samples (see :func:`sample_trial` for the error model).

    Parameters
    ----------
    name : str
        Label of the ``assay`` column (``"qpcr"``, ``"flow"``, ...).
    lloq : float
        Lower limit of quantification, in ``unit``.
    sigma : float, optional
        Residual SD on the log scale; the model's published ``sigma`` if omitted.
    unit : str, optional
        Unit of the reported values; the model's ``observed_unit`` if omitted.
    scale : float
        Typical factor from the model level to this assay's unit (e.g. cells/µL per
        copies/µg).
    scale_omega : float
        Between-subject SD of the log of that factor (0: the same factor for everyone).
    window : (float, float)
        Nominal days (inclusive) of the visits at which the assay is run.
    subjects : collection of str, optional
        Run the assay only on these subjects (e.g. a sub-study); all subjects if omitted.
    """

    name: str
    lloq: float
    sigma: float | None = None
    unit: str | None = None
    scale: float = 1.0
    scale_omega: float = 0.0
    window: tuple[float, float] = (-math.inf, math.inf)
    subjects: Collection[str] | None = None

    def __post_init__(self) -> None:
        if self.subjects is not None:  # hashable, and a one-off iterator is kept
            object.__setattr__(self, "subjects", tuple(self.subjects))
        low, high = (float(x) for x in self.window)
        if not low <= high:
            raise OptionError(f"assay {self.name!r}: `window` must be (first day, last day)")
        object.__setattr__(self, "window", (low, high))
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise OptionError(f"assay {self.name!r}: `scale` must be positive, got {self.scale!r}")
        if not (math.isfinite(self.scale_omega) and self.scale_omega >= 0):
            raise OptionError(f"assay {self.name!r}: `scale_omega` must be >= 0")


@dataclass(frozen=True)
class VirtualTrial:
    """Result of :func:`virtual_trial` (frozen; every table is a pandas DataFrame).

    Attributes
    ----------
    subjects : DataFrame
        One row per enrolled subject in enrolment order: ``subject``, ``dose``, ``dose_unit``,
        ``dose_level``, ``cohort`` (``parallel``, or ``escalation``/``expansion`` for 3+3),
        ``dlt`` (when a DLT rule was given) and ``dropout_day`` (day the subject leaves the
        study: no sample is taken after it; NaN without dropout).
    parameters : DataFrame
        ``subject``, the model parameters after the dose effect and overrides, and
        ``scale_<assay>``, each subject's factor from model level to that assay's unit.
    schedule : DataFrame
        Visits attended before dropout: ``subject``, ``visit``, ``nominal_time``, ``time``
        (actual day).
    kinetics : DataFrame
        The canonical kinetics table (``subject, time, value, assay, unit, lloq, blq, visit,
        nominal_time``; BLQ samples have ``value = NaN``) sorted by subject (enrolment order),
        assay (in the order given) and time; readable by :func:`cellkin.io.read_kinetics`.
    mtd : str or None
        The highest tolerated dose level of a 3+3 escalation (None when even the lowest
        level was not tolerated, and for a parallel design).
    seed : int
        The seed of every random stream.
    """

    subjects: pd.DataFrame
    parameters: pd.DataFrame
    schedule: pd.DataFrame
    kinetics: pd.DataFrame
    mtd: str | None
    seed: int

    def __repr__(self) -> str:
        counts = self.subjects.groupby("dose_level", sort=False).size()
        arms = ", ".join(f"{level}: {n}" for level, n in counts.items())
        return (
            f"VirtualTrial({len(self.subjects)} subjects ({arms}), "
            f"{len(self.kinetics)} samples, mtd={self.mtd!r}, seed={self.seed})"
        )


def _stream(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, *key])


def _three_plus_three(
    dlt_of: Callable[[int, str], bool], levels: Sequence[str]
) -> tuple[list[str], str | None]:
    """Run a 3+3 escalation; return the level of each subject treated and the MTD.

    Each decision is :func:`cellkin.outcomes.three_plus_three_decision` on the level's counts.
    Treat 3; "expand" (1/3) -> treat 3 more; "escalate" at the top level after 3 -> treat 3
    more to confirm; then "escalate" moves up (or, at the top level, ends with it as the MTD)
    and "stop" steps down until a level has 6 treated with <= 1 DLT (3 more are treated there
    if it has only 3). The MTD is that level (None if there is none).
    """
    sequence: list[str] = []
    counts = {level: [0, 0] for level in levels}  # treated, DLTs

    def treat(level: str, n: int) -> str:
        for _ in range(n):
            dlt = dlt_of(len(sequence), level)
            sequence.append(level)
            counts[level][0] += 1
            counts[level][1] += bool(dlt)
        return three_plus_three_decision(*counts[level])

    k = 0
    while True:
        level, top = levels[k], k == len(levels) - 1
        decision = treat(level, 3)
        if decision == "expand" or (decision == "escalate" and top):
            decision = treat(level, 3)
        if decision == "escalate":
            if top:
                return sequence, level
            k += 1
            continue
        while True:  # too toxic: step down until a level has 6 treated with <= 1 DLT
            k -= 1
            if k < 0:
                return sequence, None
            level = levels[k]
            decision = three_plus_three_decision(*counts[level])
            if counts[level][0] == 3:
                decision = treat(level, 3)
            if decision == "escalate":
                return sequence, level


def _dlt_rule(dlt: Mapping[str, float] | DltRule | None, levels: Sequence[str]) -> DltRule | None:
    if dlt is None or callable(dlt):
        return dlt
    probability = dict(dlt)
    if set(probability) != set(levels) or not all(0 <= p <= 1 for p in probability.values()):
        raise OptionError("`dlt` as a mapping needs a probability in [0, 1] for every dose level")

    def rule(subject: str, level: str, params: Mapping[str, float], rng) -> bool:
        return bool(rng.uniform() < probability[level])

    return rule


@dataclass
class _Enrolment:
    """Mutable state while subjects are enrolled (internal)."""

    model: Model
    pool: np.ndarray
    dose_levels: Mapping[str, float]
    seed: int
    ids: Callable[[int], str]
    dose_effect: Mapping[str, float]
    reference_dose: float
    overrides: Mapping[str, Mapping[str, float]]
    dlt: DltRule | None

    def __post_init__(self) -> None:
        self.rows: list[dict] = []
        self.params: list[dict[str, float]] = []

    def enrol(self, index: int, level: str, cohort: str) -> bool:
        if index >= len(self.pool):
            raise OptionError(
                f"enrolment needs more than the {len(self.pool)} subjects of the pool; "
                f"raise `max_subjects`"
            )
        subject = self.ids(index)
        params = {name: float(self.pool[index, j]) for j, name in enumerate(self.model.param_names)}
        dose = self.dose_levels[level]
        for name, exponent in self.dose_effect.items():
            params[name] *= (dose / self.reference_dose) ** exponent
        params.update({k: float(v) for k, v in self.overrides.get(subject, {}).items()})
        row = {"subject": subject, "dose": dose, "dose_level": level, "cohort": cohort}
        if self.dlt is not None:
            row["dlt"] = bool(self.dlt(subject, level, params, _stream(self.seed, index, 3)))
        self.rows.append(row)
        self.params.append(params)
        return bool(row.get("dlt", False))


def _enrol(
    state: _Enrolment, design: str, n: int | Mapping[str, int], n_expansion: int
) -> str | None:
    levels = list(state.dose_levels)
    if design == "parallel":
        sizes = {level: n for level in levels} if isinstance(n, (int, np.integer)) else dict(n)
        unknown = sorted(set(sizes) - set(levels))
        if unknown or any(int(v) < 0 for v in sizes.values()):
            raise OptionError(f"`n` must map dose levels {levels} to subject counts >= 0")
        for level in levels:
            for _ in range(int(sizes.get(level, 0))):
                state.enrol(len(state.rows), level, "parallel")
        return None
    if design != "3+3":
        raise OptionError(f"`design` must be 'parallel' or '3+3', got {design!r}")
    if state.dlt is None:
        raise OptionError("a 3+3 design needs a `dlt` rule (a probability per level or a function)")
    _, mtd = _three_plus_three(lambda i, level: state.enrol(i, level, "escalation"), levels)
    if mtd is not None:
        for _ in range(n_expansion):
            state.enrol(len(state.rows), mtd, "expansion")
    return mtd


def _draw_visits(
    visits: Sequence[Visit], subjects: Sequence[str], seed: int, p_missed: float
) -> pd.DataFrame:
    rows = []
    for index, subject in enumerate(subjects):
        rng = _stream(seed, index, STREAM_VISITS)
        for visit in visits:
            if visit.side == "before":
                actual = visit.day - rng.uniform(0, visit.window)
            elif visit.side == "after":
                actual = visit.day + rng.uniform(0, visit.window)
            else:
                actual = visit.day + rng.uniform(-visit.window, visit.window)
            missed = visit.day > 0 and rng.uniform() < p_missed  # never a pre-infusion visit
            if not missed:
                rows.append((subject, visit.name, visit.day, actual))
    return pd.DataFrame(rows, columns=["subject", "visit", "nominal_time", "time"])


def _dropout_days(
    dropout: float | Mapping[str, float] | None, subjects: Sequence[str], seed: int
) -> np.ndarray:
    if dropout is None:
        return np.full(len(subjects), np.nan)
    if isinstance(dropout, Mapping):
        unknown = sorted(set(dropout) - set(subjects))
        if unknown:
            raise OptionError(f"`dropout` names subjects that were not enrolled: {unknown[:5]}")
        return np.array([float(dropout.get(s, np.nan)) for s in subjects])
    hazard = float(dropout)
    if not (math.isfinite(hazard) and hazard >= 0):
        raise OptionError(f"`dropout` must be a hazard >= 0 (1/day) or a mapping, got {dropout!r}")
    if hazard == 0:
        return np.full(len(subjects), np.nan)
    return np.array(
        [_stream(seed, i, STREAM_DROPOUT).exponential(1 / hazard) for i in range(len(subjects))]
    )


def _parameter_table(
    model: Model,
    ids: list[str],
    params: list[dict[str, float]],
    assays: Sequence[Assay],
    seed: int,
) -> pd.DataFrame:
    parameters = pd.DataFrame(params, columns=list(model.param_names))
    parameters.insert(0, "subject", ids)
    for assay in assays:
        parameters[f"scale_{assay.name}"] = assay.scale
    for i in range(len(ids)):  # stream [seed, i, 2]: one normal per assay with variability
        rng = _stream(seed, i, STREAM_ASSAY_SCALE)
        for assay in assays:
            if assay.scale_omega > 0:
                factor = assay.scale * math.exp(assay.scale_omega * rng.standard_normal())
                parameters.loc[i, f"scale_{assay.name}"] = factor
    return parameters


def _measure(
    model: Model,
    assays: Sequence[Assay],
    parameters: pd.DataFrame,
    schedule: pd.DataFrame,
    seed: int,
    value_digits: int | None,
) -> pd.DataFrame:
    """Every assay's samples, with visit labels, sorted by subject, assay and time."""
    parts = []
    for k, assay in enumerate(assays):
        low, high = assay.window
        nominal = schedule["nominal_time"]
        rows = (nominal >= low) & (nominal <= high)
        if assay.subjects is not None:
            rows &= schedule["subject"].isin(list(assay.subjects))
        if not rows.any():
            continue
        parts.append(
            sample_trial(
                model,
                parameters,
                schedule.loc[rows, ["subject", "time"]],
                lloq=assay.lloq,
                seed=_stream(seed, STREAM_RESIDUAL + k),
                assay=assay.name,
                unit=assay.unit,
                sigma=assay.sigma,
                scale=parameters[f"scale_{assay.name}"].to_numpy(),
            )
        )
    columns = [*KINETICS_COLUMNS, "visit", "nominal_time"]
    if not parts:
        dtypes = dict.fromkeys(columns, object) | {"blq": bool}
        dtypes |= dict.fromkeys(("time", "value", "lloq", "nominal_time"), float)
        return pd.DataFrame({c: pd.Series(dtype=dtypes[c]) for c in columns})
    kinetics = pd.concat(parts, ignore_index=True)
    kinetics = kinetics.merge(schedule, on=["subject", "time"], how="left", validate="many_to_one")
    if value_digits is not None:
        kinetics["value"] = round_significant(kinetics["value"], value_digits)
    order = {
        "subject": {name: k for k, name in enumerate(parameters["subject"])},
        "assay": {a.name: k for k, a in enumerate(assays)},
    }
    kinetics = kinetics.sort_values(
        ["subject", "assay", "time"], key=lambda c: c.map(order[c.name]) if c.name in order else c
    )
    return kinetics.reset_index(drop=True).loc[:, columns]


def virtual_trial(
    model: str | Model,
    dose_levels: Mapping[str, float],
    *,
    seed: int,
    n: int | Mapping[str, int] = 3,
    design: Literal["parallel", "3+3"] = "parallel",
    dlt: Mapping[str, float] | DltRule | None = None,
    n_expansion: int = 0,
    visits: Sequence[float | Visit] = (1, 4, 7, 14, 21, 28, 56, 84, 180, 365),
    assays: Sequence[Assay] | None = None,
    p_missed: float = 0.0,
    dropout: float | Mapping[str, float] | None = None,
    dose_effect: Mapping[str, float] | None = None,
    reference_dose: float | None = None,
    typical: Mapping[str, float] | None = None,
    omega: Mapping[str, float] | None = None,
    correlation: pd.DataFrame | np.ndarray | None = None,
    overrides: Mapping[str, Mapping[str, float]] | None = None,
    max_subjects: int | None = None,
    dose_unit: str = "1e6 cells/kg",
    subject_prefix: str = "S",
    first_number: int = 1,
    time_decimals: int | None = 2,
    value_digits: int | None = None,
) -> VirtualTrial:
    """Simulate a whole trial: enrolment, kinetics, visits, dropout and assays.

    Parameters
    ----------
    model : str or Model
        Kinetic model (name or instance).
    dose_levels : mapping
        Dose level label → dose (in ``dose_unit``), in escalation order.
    seed : int
        Non-negative seed of every random stream (see Notes).
    n : int or mapping
        Parallel design: subjects per dose level (one number for all, or per level).
    design : {"parallel", "3+3"}
        ``parallel``: ``n`` subjects at each level. ``3+3``: escalation through the levels
        (treat 3; 0/3 → escalate, 1/3 → 3 more, ≤ 1/6 → escalate, ≥ 2 DLTs → stop; at the top
        level 0/3 is confirmed by 3 more; on stopping, the level below must have 6 subjects
        with ≤ 1 DLT), then ``n_expansion`` subjects at the highest tolerated level.
    dlt : mapping or callable, optional
        DLT rule, required for ``3+3``: a DLT probability per level, or a function
        ``dlt(subject, dose_level, params, rng) -> bool`` of the subject's parameters (after
        the dose effect, e.g. an exposure–toxicity link) and its own random generator.
    n_expansion : int
        Expansion cohort of a 3+3 design (none if no level was tolerated).
    visits : sequence of float or Visit
        Sampling visits; a plain number is a visit named ``D<day>`` without a window.
    assays : sequence of Assay, optional
        Assays run at the visits; default one ``qpcr`` assay (LLOQ 50 in the model's unit).
    p_missed : float
        Probability that a post-infusion visit is missed (no sample for any assay).
    dropout : float or mapping, optional
        A hazard (1/day) of leaving the study (exponential dropout day; visits after it are
        not attended), or each named subject's last day of sampling (inclusive), e.g. from
        death or progression simulated by the caller.
    dose_effect : mapping, optional
        Power-law dose effect ``θ_i = θ_i,ref · (dose / reference_dose) ** exponent`` per
        parameter name, e.g. ``{"cmax": 0.5}``.
    reference_dose : float, optional
        Dose at which ``typical`` applies (required with ``dose_effect``).
    typical, omega, correlation
        Typical values and between-subject variability, as in :func:`virtual_population`.
    overrides : mapping, optional
        Subject id → parameter values fixed after the dose effect (e.g. non-expanders).
    max_subjects : int, optional
        Size of the pool of subjects drawn in enrolment order (default: all a design can
        need: ``sum(n)``, or 6 per level plus ``n_expansion`` for 3+3).
    dose_unit : str
        Unit of the doses.
    subject_prefix, first_number : str, int
        Subject ids are ``f"{subject_prefix}{first_number + i:03d}"`` in enrolment order.
    time_decimals : int, optional
        Actual visit days are rounded to this many decimals (2: ~15 min); None keeps them.
    value_digits : int, optional
        Reported values are rounded to this many significant digits; None keeps them.

    Returns
    -------
    VirtualTrial
        Frozen result with ``subjects``, ``parameters``, ``schedule`` and ``kinetics``
        DataFrames and the 3+3 ``mtd``.

    Notes
    -----
    Every random quantity comes from its own stream ``numpy.random.default_rng(key)``, so
    changing one part of the design (adding an assay, a dropout rule) leaves the others
    unchanged, and calling again with another ``dropout`` gives the same subjects, parameters
    and visits: ``[seed, 1]`` parameters of the pool (drawn with :func:`virtual_population`'s
    algorithm, pool row ``i`` = ``i``-th subject enrolled); ``[seed, i, 2]`` the assay scale
    factors of subject ``i`` (one standard normal per assay with ``scale_omega > 0``, in
    order); ``[seed, i, 3]`` its DLT; ``[seed, i, 4]`` its visits (per visit one uniform for the
    day, then, after infusion, one for a missed visit); ``[seed, i, 9]`` its dropout day;
    ``[seed, 100 + k]`` the residual errors of assay ``k``. Codes 5–8 and 10–99 are never
    used, so a caller can draw covariates or outcomes per subject from
    ``default_rng([seed, i, 5])`` and stay independent of the kinetics.

    Examples
    --------
    >>> from cellkin.simulate import virtual_trial
    >>> trial = virtual_trial("stein2019", {"DL1": 1.0, "DL2": 3.0}, n=4, seed=1,
    ...                       dose_effect={"cmax": 0.5}, reference_dose=3.0)
    >>> trial.subjects["dose_level"].value_counts().to_dict()
    {'DL1': 4, 'DL2': 4}
    >>> list(trial.kinetics.columns[:7])
    ['subject', 'time', 'value', 'assay', 'unit', 'lloq', 'blq']
    """
    model = models.get(model)
    if not (isinstance(seed, (int, np.integer)) and seed >= 0):
        raise OptionError(f"`seed` must be a non-negative integer, got {seed!r}")
    if not dose_levels:
        raise OptionError("`dose_levels` must name at least one dose level")
    if not (0 <= p_missed <= 1):
        raise OptionError(f"`p_missed` must lie in [0, 1], got {p_missed!r}")
    dose_effect = dict(dose_effect or {})
    if dose_effect and not (reference_dose is not None and reference_dose > 0):
        raise OptionError("`dose_effect` needs a positive `reference_dose` (where `typical` holds)")
    unknown = sorted(set(dose_effect) - set(model.param_names))
    if unknown:
        raise OptionError(f"`dose_effect` names unknown parameters {unknown} of `{model.name}`")
    chosen = [v if isinstance(v, Visit) else Visit(f"D{float(v):g}", float(v)) for v in visits]
    if len({v.name for v in chosen}) != len(chosen):
        raise OptionError("visit names must be unique")
    assays = list(assays) if assays is not None else [Assay("qpcr", lloq=50.0)]
    if len({a.name for a in assays}) != len(assays):
        raise OptionError("assay names must be unique")

    if max_subjects is None:
        levels = len(dose_levels)
        if design == "3+3":
            max_subjects = 6 * levels + n_expansion
        elif isinstance(n, Mapping):
            max_subjects = int(sum(n.values()))
        else:
            max_subjects = int(n) * levels
    sampler = ParameterSampler(model, omega=omega, correlation=correlation, typical=typical)
    state = _Enrolment(
        model=model,
        pool=sampler.draw(int(max_subjects), _stream(seed, STREAM_POPULATION)),
        dose_levels=dict(dose_levels),
        seed=int(seed),
        ids=lambda i: f"{subject_prefix}{first_number + i:03d}",
        dose_effect=dose_effect,
        reference_dose=float(reference_dose or 1.0),
        overrides=dict(overrides or {}),
        dlt=_dlt_rule(dlt, list(dose_levels)),
    )
    mtd = _enrol(state, design, n, n_expansion)
    columns = ["subject", "dose", "dose_level", "cohort"] + (["dlt"] if state.dlt else [])
    subjects = pd.DataFrame(state.rows, columns=columns)
    subjects.insert(2, "dose_unit", dose_unit)
    ids = subjects["subject"].tolist()
    unknown = sorted(set(state.overrides) - set(ids))
    if unknown:
        raise OptionError(f"`overrides` names subjects that were not enrolled: {unknown[:5]}")
    parameters = _parameter_table(model, ids, state.params, assays, int(seed))

    schedule = _draw_visits(chosen, ids, int(seed), p_missed)
    if time_decimals is not None:
        schedule["time"] = schedule["time"].round(time_decimals)
    subjects["dropout_day"] = _dropout_days(dropout, ids, int(seed))
    last = schedule["subject"].map(dict(zip(ids, subjects["dropout_day"], strict=True)))
    schedule = schedule.loc[~(schedule["time"] > last)].reset_index(drop=True)

    kinetics = _measure(model, assays, parameters, schedule, int(seed), value_digits)
    return VirtualTrial(subjects, parameters, schedule, kinetics, mtd, int(seed))
