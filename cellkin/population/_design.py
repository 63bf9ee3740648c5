"""What a population fit estimates, and on which data (private).

:class:`PopulationData` holds every subject's samples as flat arrays with offsets (the layout
of :mod:`cellkin.population._engine`) and the subjects that cannot enter (failure rows).
:class:`Design` holds the parameter structure: for each structural parameter (the model's
kinetic parameters, then ``scale_<assay>`` of each assay after the first) whether it is fixed,
carries a random effect, or is estimated without one; its estimation scale (the model's
declared transforms); the covariate design of each; the error model of each assay.

Individual parameters: ψ_i = h(μ + Z_i β + η_i), η_i ~ N(0, Ω), on each parameter's
estimation scale (h = exp for log-scale, expit for logit-scale parameters). Continuous
covariates are centred at their mean over the fitted subjects (``log_<column>``: the log of a
positive column, centred); categorical ones are coded against their most frequent level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cellkin.errors import DataError, OptionError
from cellkin.fit import likelihood
from cellkin.models.base import Model
from cellkin.models.transforms import Transform

__all__ = ["Design", "PopulationData", "build_data", "build_design"]


@dataclass(frozen=True, eq=False)
class PopulationData:
    """Every fitted subject's samples (flat arrays, subject ``s`` at
    ``offsets[s]:offsets[s+1]``) and the subjects left out."""

    subjects: tuple[str, ...]
    offsets: np.ndarray
    time: np.ndarray
    value: np.ndarray  # NaN where censored
    target: np.ndarray  # value, or the LLOQ where censored
    censored: np.ndarray
    lloq: np.ndarray
    assay: np.ndarray  # index into assays
    assays: tuple[str, ...]
    units: dict[str, str]
    samples: pd.DataFrame  # the entering samples, aligned with the arrays
    rows: pd.DataFrame  # every sample of the fitted assays of the fitted subjects
    failures: pd.DataFrame  # subject, reason
    blq: str

    @property
    def n(self) -> int:
        """Number of fitted subjects."""
        return len(self.subjects)

    def slice(self, s: int) -> slice:
        """The samples of subject ``s``."""
        return slice(int(self.offsets[s]), int(self.offsets[s + 1]))


def _choose_assays(kinetics: pd.DataFrame, assays: Sequence[str] | str | None) -> tuple[str, ...]:
    present = list(dict.fromkeys(kinetics["assay"].astype(str)))
    if assays is None:
        return ("qpcr",) if "qpcr" in present else tuple(present[:1])
    chosen = (assays,) if isinstance(assays, str) else tuple(assays)
    missing = [a for a in chosen if a not in present]
    if missing or not chosen:
        raise OptionError(
            f"`assays` {missing or chosen} not in the kinetics table; assays present: {present}"
        )
    return chosen


def build_data(
    kinetics: pd.DataFrame,
    subjects: Sequence[str] | None,
    assays: Sequence[str] | str | None,
    blq: str,
) -> PopulationData:
    """The samples entering the population likelihood, subject by subject."""
    chosen = _choose_assays(kinetics, assays)
    table = kinetics[kinetics["assay"].isin(chosen)]
    order = (
        list(dict.fromkeys(kinetics["subject"].astype(str)))
        if subjects is None
        else [str(s) for s in dict.fromkeys(subjects)]
    )
    units = {a: str(table.loc[table["assay"] == a, "unit"].iloc[0]) for a in chosen}
    used, value, censored = likelihood.entering(
        table["time"].to_numpy(float),
        table["value"].to_numpy(float),
        table["blq"].to_numpy(bool),
        table["lloq"].to_numpy(float),
        blq,
    )
    entering = table.loc[used].assign(value=value, blq=censored)
    groups = entering.groupby("subject", sort=False).indices
    kept, failures, pieces = [], [], []
    for subject in order:
        positions = groups.get(subject)
        if positions is None:
            present = subject in set(kinetics["subject"].astype(str))
            failures.append(
                (
                    subject,
                    f"no post-infusion sample of the fitted assays {list(chosen)}"
                    if present
                    else "not in the kinetics table",
                )
            )
            continue
        kept.append(subject)
        pieces.append(entering.iloc[np.sort(positions)])
    if not kept:
        raise DataError(f"no subject has a post-infusion sample of {list(chosen)}; nothing to fit")
    samples = pd.concat(pieces, ignore_index=True)
    sizes = samples.groupby("subject", sort=False).size().reindex(kept).to_numpy()
    lloq = samples["lloq"].to_numpy(float)
    censored_all = samples["blq"].to_numpy(bool)
    values = samples["value"].to_numpy(float)
    codes = {a: k for k, a in enumerate(chosen)}
    return PopulationData(
        subjects=tuple(kept),
        offsets=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        time=np.ascontiguousarray(samples["time"].to_numpy(float)),
        value=values,
        target=np.ascontiguousarray(np.where(censored_all, lloq, values)),
        censored=np.ascontiguousarray(censored_all),
        lloq=lloq,
        assay=np.ascontiguousarray(samples["assay"].map(codes).to_numpy(np.int64)),
        assays=chosen,
        units=units,
        samples=samples,
        rows=table[table["subject"].astype(str).isin(kept)].reset_index(drop=True),
        failures=pd.DataFrame(failures, columns=["subject", "reason"]),
        blq=blq,
    )


@dataclass(frozen=True, eq=False)
class Design:
    """The parameter structure of a population model.

    ``names`` are the structural parameters (kinetic, then assay scales); ``sampled`` the
    indices of those that get individual values (random effects, and — internally, with a
    variance shrunk to zero during the exploratory phase — the ones estimated without one);
    ``random`` marks which of ``sampled`` carry a reported random effect.
    """

    model: Model
    n_subjects: int
    names: tuple[str, ...]
    units: tuple[str, ...]
    transform: Transform
    lower_search: np.ndarray
    upper_search: np.ndarray
    fixed: dict[str, float]
    sampled: np.ndarray  # structural indices
    random: np.ndarray  # bool over sampled
    blocks: np.ndarray  # block id of each sampled parameter (equal ids may correlate)
    covariates: dict[str, tuple[str, ...]]  # structural name -> term names
    terms: dict[str, np.ndarray]  # term name -> column over subjects
    errors: dict[str, str]
    error_names: tuple[str, ...]
    error_kind: np.ndarray
    error_start: np.ndarray

    @property
    def n_kinetic(self) -> int:
        """Number of kinetic parameters."""
        return len(self.model.params)

    @property
    def sampled_names(self) -> tuple[str, ...]:
        """Names of the parameters with individual values."""
        return tuple(self.names[j] for j in self.sampled)

    def design_matrix(self, j: int) -> np.ndarray:
        """``Z`` of sampled parameter ``j`` (position in ``sampled``): intercept and its
        covariate terms, one row per subject."""
        name = self.names[self.sampled[j]]
        columns = [self.terms[t] for t in self.covariates.get(name, ())]
        return np.column_stack([np.ones(self.n_subjects), *columns])


def _terms_of(column: str, table: pd.DataFrame, subjects: Sequence[str]) -> dict[str, np.ndarray]:
    """The design columns of one covariate over the fitted subjects."""
    log = column.startswith("log_") and column not in table.columns
    source = column.removeprefix("log_") if log else column
    if source not in table.columns:
        raise OptionError(
            f"covariate `{column}`: no column `{source}` in the subject table "
            f"(columns: {list(table.columns)})"
        )
    values = table.reindex(list(subjects))[source]
    missing = values.index[values.isna()].tolist()
    if missing:
        raise DataError(
            f"covariate `{source}` is missing for subject(s) {missing[:5]}; give "
            f"every fitted subject a value or leave them out with `subjects=`"
        )
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if log or numeric:
        x = values.to_numpy(float)
        if log:
            if (x <= 0).any():
                raise DataError(f"covariate `{column}`: `{source}` must be positive to take logs")
            x = np.log(x)
        if np.ptp(x) == 0:
            raise OptionError(f"covariate `{column}` is constant over the fitted subjects")
        return {column: x - x.mean()}
    labels = values.astype(str)
    counts = labels.value_counts()
    if len(counts) < 2:
        raise OptionError(f"covariate `{column}` has one level over the fitted subjects")
    reference = sorted(counts.index[counts == counts.max()])[0]
    return {
        f"{column}[{level}]": (labels == level).to_numpy(float)
        for level in sorted(counts.index)
        if level != reference
    }


def _roles(
    model: Model, names: tuple[str, ...], fixed: Mapping[str, float], random: Sequence[str] | None
) -> tuple[list[int], np.ndarray]:
    unknown = sorted(set(fixed) - set(names))
    if unknown:
        raise OptionError(f"`fixed` names unknown parameters {unknown}; known: {list(names)}")
    free = [j for j, n in enumerate(names) if n not in fixed]
    chosen = [n for n in model.param_names if n not in fixed] if random is None else list(random)
    bad = sorted(set(chosen) - {names[j] for j in free})
    if bad:
        raise OptionError(
            f"`random` names {bad}, which are fixed or not parameters of `{model.name}`"
        )
    return free, np.array([names[j] in set(chosen) for j in free], dtype=bool)


def _blocks(
    omega: str | Sequence[Sequence[str]], names: Sequence[str], random: np.ndarray
) -> np.ndarray:
    """Block id of each sampled parameter: correlated random effects share an id; each
    parameter without a random effect is a block of its own."""
    alone = np.arange(len(names)) + len(names)
    if omega == "diagonal":
        return alone
    if omega == "full":
        return np.where(random, 0, alone)
    if isinstance(omega, str):
        raise OptionError(f"`omega` must be 'diagonal', 'full' or a list of blocks, got {omega!r}")
    blocks = alone.copy()
    for b, block in enumerate(omega):
        for name in block:
            if name not in names or not random[list(names).index(name)]:
                raise OptionError(f"`omega` block names {name!r}, which has no random effect")
            blocks[list(names).index(name)] = b
    return blocks


def build_design(
    model: Model,
    data: PopulationData,
    subject_table: pd.DataFrame | None,
    *,
    error: str | Mapping[str, str],
    fixed: Mapping[str, float] | None,
    random: Sequence[str] | None,
    covariates: Mapping[str, Sequence[str]] | None,
    omega: str | Sequence[Sequence[str]],
) -> Design:
    """The parameter structure (see the module docstring); bad options are
    :class:`~cellkin.errors.OptionError`."""
    first = data.assays[0]
    names = (*model.param_names, *(f"scale_{a}" for a in data.assays[1:]))
    units = tuple(
        p.unit if p.unit != model.observed_unit else data.units[first] for p in model.params
    ) + tuple(f"({data.units[a]})/({data.units[first]})" for a in data.assays[1:])
    scales = (*(p.scale for p in model.params), *("log",) * (len(data.assays) - 1))
    lower = np.array([*(p.lower for p in model.params), *(1e-12,) * (len(data.assays) - 1)])
    upper = np.array([*(p.upper for p in model.params), *(1e12,) * (len(data.assays) - 1)])
    transform = Transform(scales, lower, upper)
    fixed = dict(fixed or {})
    free, random_mask = _roles(model, names, fixed, random)
    if int(random_mask.sum()) > data.n:
        raise OptionError(
            f"{int(random_mask.sum())} random effects for {data.n} subjects: fit "
            f"fewer random effects (`random=`) or more subjects"
        )
    for name, value in fixed.items():
        j = names.index(name)
        if not lower[j] <= value <= upper[j]:
            raise OptionError(f"fixed `{name}` = {value} lies outside [{lower[j]}, {upper[j]}]")
    covariates = {k: tuple(v) for k, v in (covariates or {}).items()}
    terms: dict[str, np.ndarray] = {}
    by_parameter: dict[str, tuple[str, ...]] = {}
    for name, columns in covariates.items():
        if name not in {names[j] for j in free}:
            raise OptionError(f"`covariates` names {name!r}, which is not an estimated parameter")
        if subject_table is None:
            raise OptionError("`covariates` need a subject table (`subjects_table=`)")
        table = subject_table.assign(subject=subject_table["subject"].astype(str))
        table = table.drop_duplicates("subject").set_index("subject")
        made: dict[str, np.ndarray] = {}
        for column in columns:
            made.update(_terms_of(column, table, data.subjects))
        terms.update(made)
        by_parameter[name] = tuple(made)
    errors = likelihood.check_error(error, data.assays)
    first_error = len(names)
    kinds, starts = likelihood.error_layout(errors, data.assays, first_error)
    error_names = tuple(
        f"{p}_{a}" if p != "sigma" else f"sigma_{a}"
        for a in data.assays
        for p in likelihood.ERROR_PARAMETERS[errors[a]]
    )
    sampled_names = [names[j] for j in free]
    return Design(
        model=model,
        n_subjects=data.n,
        names=names,
        units=units,
        transform=transform,
        lower_search=transform.to_search(lower),
        upper_search=transform.to_search(upper),
        fixed=fixed,
        sampled=np.array(free, dtype=np.int64),
        random=random_mask,
        blocks=_blocks(omega, sampled_names, random_mask),
        covariates=by_parameter,
        terms=terms,
        errors=errors,
        error_names=error_names,
        error_kind=kinds,
        error_start=starts,
    )
