"""Study figures: fits, observed profiles, diagnostics, VPC and metric agreement.

* :func:`individual_fits` — a grid of small panels, one per subject: observations, BLQ samples
  at their LLOQ (open down triangles), fitted curve and its confidence band (log axis);
* :func:`spaghetti` — observed individual profiles coloured by group (dose level by default)
  with each group's geometric mean and t-based 95% CI per nominal time;
* :func:`observed_vs_predicted` — observed levels against individual predictions, BLQ samples
  at their LLOQ, identity line;
* :func:`residuals` — standardised residuals against time or prediction, with the M3
  arguments of BLQ samples marked apart;
* :func:`vpc` — a simple two-stage visual predictive check from the population of fitted
  individual estimates;
* :func:`metric_agreement` — model-based against NCA metric per subject, with the model's CI,
  identity line and geometric mean ratio.

Every function but :func:`individual_fits` draws on the matplotlib ``Axes`` it is given (or
the current axes when ``ax=None``) and returns it; :func:`individual_fits` returns a
:class:`matplotlib.figure.Figure` made without pyplot. matplotlib is imported only when a
figure is drawn, and nothing here calls ``plt.show()``. Bad input raises
:class:`~cellkin.errors.DataError` (tables, arguments) or :class:`~cellkin.errors.FitError`
(fits).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from cellkin._plotting import axes
from cellkin.errors import DataError, FitError
from cellkin.fit import BatchFit, FitResult
from cellkin.models.transforms import Transform

__all__ = [
    "individual_fits",
    "metric_agreement",
    "observed_vs_predicted",
    "residuals",
    "spaghetti",
    "vpc",
]

_DAYS = "days since infusion"
_BLQ_STYLE = {"marker": "v", "mfc": "none", "ls": "none"}


# ----------------------------------------------------------------------------- helpers


def _fit_map(fits: Any) -> dict[str, FitResult]:
    """Subject → FitResult from a BatchFit, a mapping or a single FitResult."""
    if isinstance(fits, BatchFit):
        results = dict(fits.results)
    elif isinstance(fits, FitResult):
        results = {fits.subject: fits}
    elif isinstance(fits, Mapping):
        results = dict(fits)
    else:
        raise DataError(
            f"`fits` must be a BatchFit, a mapping of subject to FitResult or a FitResult, "
            f"got {type(fits).__name__}"
        )
    wrong = [str(k) for k, v in results.items() if not isinstance(v, FitResult)]
    if wrong:
        raise DataError(f"`fits` values must be FitResult objects; not for {wrong[:5]}")
    return results


def _converged(fits: Any) -> dict[str, FitResult]:
    results = _fit_map(fits)
    converged = {s: r for s, r in results.items() if r.success}
    if not converged:
        raise FitError(f"no converged fits among the {len(results)} given")
    return converged


def _samples(results: Mapping[str, FitResult]) -> pd.DataFrame:
    """The samples in the likelihood of every fit (``used`` rows with a finite residual)."""
    data = pd.concat([r.data for r in results.values()], ignore_index=True)
    keep = data["used"].astype(bool) & np.isfinite(data["residual"].to_numpy(float))
    return data[keep]


def _assay_rows(kinetics: pd.DataFrame, assay: str) -> pd.DataFrame:
    missing = {"subject", "time", "value", "assay", "unit", "lloq", "blq"} - set(kinetics)
    if missing:
        raise DataError(f"kinetics table lacks column(s) {sorted(missing)}; read it with "
                        "cellkin.read_kinetics")  # fmt: skip
    rows = kinetics[kinetics["assay"] == assay]
    if rows.empty:
        raise DataError(f"no samples of assay {assay!r}; assays in the table: "
                        f"{sorted(map(str, kinetics['assay'].unique()))}")  # fmt: skip
    units = rows["unit"].dropna().unique()
    if len(units) > 1:
        raise DataError(f"assay {assay!r} mixes units {sorted(units)}; convert them first")
    return rows.assign(nominal=_nominal(rows))


def _nominal(rows: pd.DataFrame) -> np.ndarray:
    """Nominal time where the table has it, the actual time otherwise."""
    time = rows["time"].to_numpy(float)
    if "nominal_time" not in rows:
        return time
    nominal = pd.to_numeric(rows["nominal_time"], errors="coerce").to_numpy(float)
    return np.where(np.isfinite(nominal), nominal, time)


def _identity(ax: Any, values: np.ndarray) -> None:
    values = values[np.isfinite(values)]
    if values.size:
        low, high = values.min(), values.max()
        ax.plot([low, high], [low, high], "k--", lw=1, label="identity", gid="identity")


def _note(ax: Any, text: str) -> None:
    ax.text(0.01, 0.99, text, transform=ax.transAxes, va="top", fontsize=7, color="0.35")


def _log_mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Geometric mean and its t-based CI (``exp(mean ± t·sd/√n)`` of the logs)."""
    logs = np.log(values)
    mean = float(logs.mean())
    if logs.size < 2:
        return math.exp(mean), math.nan, math.nan
    half = stats.t.ppf(0.5 + level / 2, logs.size - 1) * logs.std(ddof=1) / math.sqrt(logs.size)
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


# ----------------------------------------------------------------------------- fits grid


def individual_fits(
    results: Any,
    *,
    subjects: Sequence[str] | None = None,
    ncols: int = 4,
    figure: Any = None,
    sharey: bool = True,
) -> Any:
    """Grid of small panels, one per subject: observations, BLQ markers, fitted curve, band.

    Each panel is :meth:`cellkin.fit.FitResult.plot` (quantified samples filled, BLQ samples
    as open down triangles at their LLOQ, fitted curve with its 95% confidence band, one
    colour per assay, log y axis) titled with the subject id; a fit that did not converge is
    titled in red with "(not converged)". With a :class:`~cellkin.fit.BatchFit`, a subject
    without a fit gets a panel naming the failure. Unused grid cells are hidden; one legend
    for the figure.

    Parameters
    ----------
    results : BatchFit or mapping of str to FitResult
        The fits (``BatchFit.results`` is used for a batch).
    subjects : sequence of str, optional
        Subjects to show, in this order (default: every subject of the batch or mapping).
    ncols : int, default 4
        Panels per row.
    figure : matplotlib.figure.Figure, optional
        Figure to draw in; by default a new ``Figure`` (not registered with pyplot) sized to
        the grid.
    sharey : bool, default True
        One y range for every panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fits = _fit_map(results)
    failures = results.failures if isinstance(results, BatchFit) else None
    default = results.subjects if isinstance(results, BatchFit) else tuple(fits)
    order = [str(s) for s in (default if subjects is None else subjects)]
    known = set(fits) | (set() if failures is None else set(failures["subject"]))
    unknown = [s for s in order if s not in known]
    if unknown or not order:
        raise DataError(f"no fit for subject(s) {unknown}" if unknown else "no subjects to plot")
    if not (isinstance(ncols, int) and ncols >= 1):
        raise DataError(f"`ncols` must be a positive integer, got {ncols!r}")
    ncols = min(ncols, len(order))
    nrows = -(-len(order) // ncols)
    figure = _figure(figure, (2.8 * ncols + 0.4, 2.3 * nrows + 0.8))
    grid = np.atleast_1d(figure.subplots(nrows, ncols, sharex=True, sharey=sharey, squeeze=False))
    panels = grid.ravel()
    units = {u for r in fits.values() for u in r.units.values()}
    for ax, subject in zip(panels, order, strict=False):
        if subject in fits:
            _fit_panel(ax, fits[subject], sharey)
        else:
            reasons = failures.loc[failures["subject"] == subject, "reason"].astype(str)
            text = textwrap.fill("no fit: " + "; ".join(reasons.head(2)), 30)
            ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=6, transform=ax.transAxes)
            ax.set_title(subject, fontsize=9, color="C3")
    if sharey and fits:
        panels[0].set_ylim(*_level_range([fits[s] for s in order if s in fits]))
    for ax in panels[len(order) :]:
        ax.set_visible(False)
    ylabel = next(iter(units)) if len(units) == 1 else "level"
    for ax in grid[:, 0]:
        ax.set_ylabel(ylabel, fontsize=8)
    for ax in grid[-1, :]:
        ax.set_xlabel(_DAYS, fontsize=8)
    handles = {}
    for ax in panels[: len(order)]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if handles:
        figure.legend(handles.values(), handles.keys(), loc="outside lower center",
                      ncols=min(len(handles), 4), fontsize="small", frameon=False)  # fmt: skip
    return figure


def _figure(figure: Any, size: tuple[float, float]) -> Any:
    if figure is not None:
        return figure
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib is a dependency
        raise ImportError(
            "cellkin's plots need matplotlib: pip install matplotlib (or pip install cellkin)"
        ) from exc
    return Figure(figsize=size, layout="constrained")


def _level_range(results: Sequence[FitResult]) -> tuple[float, float]:
    """Log-axis limits from the samples (BLQ at their LLOQ), not from extrapolated curves."""
    levels = np.concatenate(
        [np.where(r.data["blq"], r.data["lloq"], r.data["value"]) for r in results]
    ).astype(float)
    levels = levels[np.isfinite(levels) & (levels > 0)]
    return (levels.min() / 10, levels.max() * 10) if levels.size else (0.1, 10.0)


def _fit_panel(ax: Any, result: FitResult, shared: bool) -> None:
    result.plot(ax=ax)
    if not shared:
        ax.set_ylim(*_level_range([result]))
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.tick_params(labelsize=7)
    title = result.subject if result.success else f"{result.subject} (not converged)"
    ax.set_title(title, fontsize=9, color="black" if result.success else "C3")


# ----------------------------------------------------------------------------- spaghetti


def _groups(
    kinetics: pd.DataFrame, subjects: pd.DataFrame | None, by: str | None
) -> tuple[pd.Series, list[str]]:
    """Group label per subject id and the group order (one group without a ``by`` column)."""
    ids = pd.Index(pd.unique(kinetics["subject"].astype(str)))
    if subjects is not None and by is not None and by in subjects.columns:
        table = subjects.assign(subject=subjects["subject"].astype(str))
        labels = table.drop_duplicates("subject").set_index("subject")[by].reindex(ids)
    elif subjects is None and by is not None and by in kinetics.columns:
        labels = kinetics.assign(subject=kinetics["subject"].astype(str))
        labels = labels.groupby("subject")[by].first().reindex(ids)
    else:
        return pd.Series("all subjects", index=ids), ["all subjects"]
    labels = labels.astype(object).where(labels.notna(), f"no {by}").astype(str)
    return labels, sorted(pd.unique(labels))


def _summary_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Geometric mean and 95% CI per nominal time, BLQ samples replaced by LLOQ/2."""
    level = np.where(rows["blq"], rows["lloq"] / 2, rows["value"])
    frame = pd.DataFrame({"nominal": rows["nominal"].to_numpy(), "level": level})
    records = []
    for nominal, group in frame.groupby("nominal", sort=True):
        values = group["level"].to_numpy(float)
        values = values[np.isfinite(values) & (values > 0)]
        if values.size:
            records.append((nominal, values.size, *_log_mean_ci(values)))
    return pd.DataFrame(records, columns=["nominal", "n", "gmean", "ci_lower", "ci_upper"])


def spaghetti(
    kinetics: pd.DataFrame,
    subjects: pd.DataFrame | None = None,
    *,
    assay: str = "qpcr",
    by: str | None = "dose_level",
    ax: Any = None,
    summary: str | None = "geometric_mean",
    log: bool = True,
) -> Any:
    """Observed individual profiles by group, with each group's geometric mean and 95% CI.

    Each subject is a thin line through its samples in time order (actual sampling days),
    quantified samples at their value and BLQ samples at their LLOQ, where they are also
    marked with an open down triangle. Lines are coloured by the subject's group: the `by`
    column of `subjects` (joined on ``subject``), or of `kinetics` when `subjects` is None;
    one group when neither has it.

    The summary (``summary="geometric_mean"``) is, per group and nominal time (the
    ``nominal_time`` column where present, otherwise ``time``), the geometric mean of the
    samples with **BLQ samples replaced by LLOQ/2**, with its t-based 95% CI
    ``exp(m ± t(0.975, n−1)·s/√n)`` (``m``, ``s``: mean and SD of the log levels; no CI when
    n = 1), drawn as markers joined by a line with error bars. ``summary=None`` draws the
    individual profiles only.

    Parameters
    ----------
    kinetics : pandas.DataFrame
        Validated kinetics table (:func:`cellkin.read_kinetics`).
    subjects : pandas.DataFrame, optional
        Subject table with the `by` column.
    assay : str, default "qpcr"
        Assay to plot (one unit).
    by : str or None, default "dose_level"
        Grouping column; None for one group.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.
    summary : {"geometric_mean", None}
        Group summary to draw.
    log : bool, default True
        Log y axis.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if summary not in ("geometric_mean", None):
        raise DataError(f"`summary` must be 'geometric_mean' or None, got {summary!r}")
    rows = _assay_rows(kinetics, assay)
    ax = axes(ax)
    labels, order = _groups(rows, subjects, by)
    rows = rows.assign(subject=rows["subject"].astype(str)).sort_values(["subject", "time"])
    for k, group in enumerate(order):
        colour = f"C{k}"
        members = rows[rows["subject"].map(labels) == group]
        for i, (subject, one) in enumerate(members.groupby("subject", sort=False)):
            shown = np.where(one["blq"], one["lloq"], one["value"])
            label = f"{group}: individuals (n={members['subject'].nunique()})" if i == 0 else None
            ax.plot(one["time"], shown, "-", color=colour, lw=0.7, alpha=0.5, label=label,
                    gid=f"subject:{subject}")  # fmt: skip
            blq = one[one["blq"]]
            ax.plot(blq["time"], blq["lloq"], color=colour, ms=4, alpha=0.6, **_BLQ_STYLE)
        if summary is not None:
            table = _summary_table(members)
            error = np.vstack([table["gmean"] - table["ci_lower"],
                               table["ci_upper"] - table["gmean"]])  # fmt: skip
            ax.errorbar(table["nominal"], table["gmean"], yerr=np.nan_to_num(error), fmt="o-",
                        color=colour, lw=2, ms=4, capsize=2,
                        label=f"{group}: geometric mean (95% CI)")  # fmt: skip
    ax.plot([], [], color="0.4", **_BLQ_STYLE, label="BLQ (at LLOQ)")
    if log:
        ax.set_yscale("log")
    unit = rows["unit"].dropna().iloc[0] if rows["unit"].notna().any() else ""
    ax.set_xlabel(_DAYS)
    ax.set_ylabel(f"{assay} ({unit})" if unit else assay)
    note = "; BLQ as LLOQ/2 in the geometric mean" if summary is not None else ""
    ax.set_title(f"Observed {assay} by {by if len(order) > 1 else 'subject'}{note}",
                 fontsize="medium")  # fmt: skip
    ax.legend(fontsize="x-small", ncols=2 if len(order) > 2 else 1)
    return ax


# ----------------------------------------------------------------------------- diagnostics


def observed_vs_predicted(fits: Any, *, ax: Any = None, log: bool = True) -> Any:
    """Observed levels against the individual predictions of converged fits.

    Quantified samples are filled circles at (prediction, observed value); BLQ samples are
    open down triangles at (prediction, LLOQ) — their true value lies below. One colour per
    assay; the dashed line is the identity. Only samples in the likelihood (``used``) of
    converged fits are drawn; on a log scale, samples with a prediction ≤ 0 are left out and
    counted in a note.

    Parameters
    ----------
    fits : BatchFit, mapping of str to FitResult, or FitResult
    ax : matplotlib.axes.Axes, optional
    log : bool, default True
        Log–log axes.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    FitError
        No converged fit.
    """
    data = _samples(_converged(fits))
    ax = axes(ax)
    observed = np.where(data["blq"], data["lloq"], data["value"]).astype(float)
    predicted = data["prediction"].to_numpy(float)
    clipped = 0
    if log:
        floor = observed[observed > 0].min() / 10
        clipped = int((predicted < floor).sum())
        predicted = np.maximum(predicted, floor)
    blq = data["blq"].to_numpy(bool)
    for k, assay in enumerate(pd.unique(data["assay"])):
        mine = (data["assay"] == assay).to_numpy()
        unit = data.loc[mine, "unit"].iloc[0]
        ax.plot(predicted[mine & ~blq], observed[mine & ~blq], "o", color=f"C{k}", ms=4,
                alpha=0.7, label=f"{assay} ({unit})")  # fmt: skip
        ax.plot(predicted[mine & blq], observed[mine & blq], color=f"C{k}", ms=5,
                label=f"{assay} BLQ (at LLOQ)", **_BLQ_STYLE)  # fmt: skip
    _identity(ax, np.concatenate([predicted, observed]))
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    if clipped:
        _note(ax, f"{clipped} predictions below {floor:.3g} drawn at {floor:.3g}")
    ax.set_xlabel("individual prediction")
    ax.set_ylabel("observed")
    ax.legend(fontsize="small", loc="lower right")
    return ax


def residuals(fits: Any, *, x: str = "time", ax: Any = None) -> Any:
    """Standardised residuals against time or individual prediction.

    Quantified samples: ``(g(y) − g(f))/s`` (``g = ln`` for the log-additive error model), as
    filled circles. BLQ samples under M3 have no residual; their M3 argument
    ``(g(LLOQ) − g(f))/s`` — an upper bound of the residual — is drawn as an open down
    triangle. Lines at 0 and ±1.96. Samples in the likelihood of converged fits only.

    Parameters
    ----------
    fits : BatchFit, mapping of str to FitResult, or FitResult
    x : {"time", "prediction"}
        Abscissa: days since infusion, or the individual prediction (log axis).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    if x not in ("time", "prediction"):
        raise DataError(f"`x` must be 'time' or 'prediction', got {x!r}")
    data = _samples(_converged(fits))
    ax = axes(ax)
    blq = data["blq"].to_numpy(bool)
    z = data["residual"].to_numpy(float)
    top = max(4.0, 1.2 * np.abs(z[~blq]).max(initial=0.0))
    notes = [f"{int((z > top).sum())} BLQ arguments above {top:.3g} drawn at {top:.3g}"]
    z = np.minimum(z, top)
    abscissa = data[x].to_numpy(float)
    if x == "prediction":
        floor = np.where(blq, data["lloq"], data["value"]).astype(float).min() / 10
        notes.append(f"{int((abscissa < floor).sum())} predictions below {floor:.3g} drawn at it")
        abscissa = np.maximum(abscissa, floor)
    for k, assay in enumerate(pd.unique(data["assay"])):
        mine = (data["assay"] == assay).to_numpy()
        ax.plot(abscissa[mine & ~blq], z[mine & ~blq], "o", color=f"C{k}", ms=4, alpha=0.7,
                label=f"{assay}")  # fmt: skip
        ax.plot(abscissa[mine & blq], z[mine & blq], color=f"C{k}", ms=5,
                label=f"{assay} BLQ (M3 argument, upper bound)", **_BLQ_STYLE)  # fmt: skip
    ax.axhline(0.0, color="black", lw=1, gid="zero")
    for bound in (-1.96, 1.96):
        ax.axhline(bound, color="0.5", ls="--", lw=1, gid="pm1.96")
    notes = [n for n in notes if not n.startswith("0 ")]
    if notes:
        _note(ax, "; ".join(notes))
    if x == "prediction":
        ax.set_xscale("log")
    ax.set_xlabel(_DAYS if x == "time" else "individual prediction")
    ax.set_ylabel("standardised residual")
    ax.legend(fontsize="small", loc="lower right")
    return ax


# ----------------------------------------------------------------------------- VPC


def _population(
    fits: Mapping[str, FitResult], assay: str
) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    """Model, mean and covariance of the estimation-scale parameters (+ ln scale), error SDs."""
    models = {r.model.name for r in fits.values()}
    errors = {r.error for r in fits.values()}
    if len(models) > 1 or len(errors) > 1:
        raise FitError(f"fits mix models {sorted(models)} / error models {sorted(errors)}")
    lacking = [s for s, r in fits.items() if assay not in r.assays]
    if lacking:
        raise DataError(f"assay {assay!r} was not fitted for subject(s) {lacking[:5]}")
    if len(fits) < 2:
        raise FitError(f"a VPC needs at least 2 converged fits, got {len(fits)}")
    model = next(iter(fits.values())).model
    transform = Transform(tuple(p.scale for p in model.params))
    rows, sds = [], []
    for r in fits.values():
        est = r.estimates
        scale = 1.0 if assay == r.assays[0] else est[f"scale_{assay}"]
        rows.append([*transform.to_search(np.array([est[n] for n in model.param_names])),
                     math.log(scale)])  # fmt: skip
        names = ([f"sigma_{assay}"] if r.error == "log-additive"
                 else [f"sigma_add_{assay}", f"sigma_prop_{assay}"])  # fmt: skip
        sds.append([est[n] for n in names])
    phi = np.array(rows)
    if not np.isfinite(phi).all():
        raise FitError("an estimate lies on a bound where its estimation scale is infinite")
    pooled = np.sqrt(np.mean(np.square(sds), axis=0))
    return model, phi.mean(axis=0), np.cov(phi, rowvar=False), pooled


def _simulate_vpc(
    fits: Mapping[str, FitResult], assay: str, times: np.ndarray, n: int, seed: int
) -> np.ndarray:
    """Simulated observations ``(n, n_times)`` of `n` virtual patients (NaN: failed kernel)."""
    model, mean, cov, sd = _population(fits, assay)
    w, v = np.linalg.eigh(cov)
    root = v * np.sqrt(np.clip(w, 0.0, None))
    rng = np.random.default_rng(seed)
    phi = mean + rng.standard_normal((n, mean.size)) @ root.T
    k = len(model.params)
    lower = np.array([p.lower for p in model.params])
    upper = np.array([p.upper for p in model.params])
    theta = np.clip(Transform(tuple(p.scale for p in model.params)).to_model(phi[:, :k]),
                    lower, upper)  # fmt: skip
    level = model.simulate_many(times, theta) * np.exp(phi[:, k : k + 1])
    eps = rng.standard_normal(level.shape)
    if sd.size == 1:
        return level * np.exp(sd[0] * eps)
    return level + np.sqrt(sd[0] ** 2 + (sd[1] * level) ** 2) * eps


def _observed_quantiles(observed: pd.DataFrame, lloq: float, q: np.ndarray) -> pd.DataFrame:
    """Quantiles per nominal time (bins of >= 3 samples), BLQ samples counted at the LLOQ."""
    levels = np.where(observed["blq"], lloq, observed["value"]).astype(float)
    bins = pd.DataFrame({"nominal": observed["nominal"].to_numpy(), "level": levels})
    grouped = bins.groupby("nominal")["level"]
    return grouped.quantile(list(q)).unstack()[grouped.count() >= 3]


def vpc(
    fits: Any,
    kinetics: pd.DataFrame | None = None,
    *,
    assay: str = "qpcr",
    n_simulations: int = 200,
    quantiles: Sequence[float] = (0.05, 0.5, 0.95),
    seed: int = 0,
    times: Sequence[float] | None = None,
    ax: Any = None,
) -> Any:
    """Visual predictive check from the population of fitted individual estimates.

    A simple **two-stage** VPC, not an NLME one: the population distribution is estimated
    from the converged individual fits rather than fitted as a mixed-effects model, so it
    carries each subject's estimation error into the between-subject variability (the
    simulated spread tends to be wider than the true one when individual estimates are
    imprecise).

    Method, in this order:

    1. for every converged fit, the kinetic parameters on their estimation scale (``ln``,
       ``logit`` or linear per the model's :class:`~cellkin.models.ParamSpec`), plus
       ``ln scale_<assay>`` (0 when `assay` is the fit's first assay);
    2. their sample mean ``μ`` and covariance ``Σ`` (``ddof=1``) across subjects;
    3. ``rng = numpy.random.default_rng(seed)``; ``n_simulations`` virtual patients
       ``φ = μ + Z·Lᵀ`` with ``Z = rng.standard_normal((n_simulations, k))`` and
       ``L = V·diag(√max(w, 0))`` from the eigen-decomposition ``Σ = V·diag(w)·Vᵀ`` (so a
       singular ``Σ``, e.g. fewer subjects than parameters, is allowed); parameters back on
       the natural scale and set to their bounds when beyond them;
    4. levels ``f`` at `times` by ``model.simulate_many``, times the scale;
    5. residual error with ``E = rng.standard_normal((n_simulations, n_times))``:
       ``y = f·exp(σ·E)`` (log-additive; ``σ`` = root mean square of the fitted
       ``sigma_<assay>``) or ``y = f + √(a² + (b·f)²)·E`` (combined; ``a``, ``b`` root mean
       squares of the fitted SDs);
    6. censoring: ``y`` below the LLOQ (the median LLOQ of the observed samples of `assay`)
       is set to the LLOQ; the `quantiles` of the simulated observations at each time are
       drawn: a shaded band between the outermost ones (the prediction interval) and dashed
       lines for each;
    7. the quantified observed samples (grey dots, at their nominal time) and the observed
       `quantiles` per nominal-time bin (``nominal_time`` where present; bins with at least
       3 samples), BLQ samples counted at the LLOQ as the simulated ones are: solid lines.

    A quantile drawn at the LLOQ (dotted line) means "at or below the LLOQ". Pre-infusion
    samples (time < 0) are left out.

    Parameters
    ----------
    fits : BatchFit, mapping of str to FitResult, or FitResult
        At least 2 converged fits of one model and error model, all fitting `assay`.
    kinetics : pandas.DataFrame, optional
        The observed kinetics table (every subject of it, so that subjects whose fit failed
        still count); default: the samples of the fits themselves.
    assay : str, default "qpcr"
    n_simulations : int, default 200
        Virtual patients.
    quantiles : sequence of float, default (0.05, 0.5, 0.95)
        Quantiles in (0, 1), increasing.
    seed : int, default 0
        Seed of every random draw; the same seed gives the same figure.
    times : sequence of float, optional
        Simulation days (default: the observed post-infusion nominal times).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
        Simulated quantile lines carry the labels ``"simulated <q>%"``, observed ones
        ``"observed <q>%"`` (q in percent, ``:g`` format).
    """
    q = np.asarray(quantiles, dtype=float)
    if q.ndim != 1 or not q.size or not ((q > 0) & (q < 1)).all() or (np.diff(q) <= 0).any():
        raise DataError(f"`quantiles` must be increasing values in (0, 1), got {quantiles!r}")
    if not (isinstance(n_simulations, int | np.integer) and n_simulations >= 10):
        raise DataError(f"`n_simulations` must be an integer >= 10, got {n_simulations!r}")
    converged = _converged(fits)
    if kinetics is None:
        kinetics = pd.concat([r.data for r in _fit_map(fits).values()], ignore_index=True)
    observed = _assay_rows(kinetics, assay)
    observed = observed[observed["time"] >= 0]
    if observed.empty:
        raise DataError(f"no post-infusion samples of assay {assay!r} to compare with")
    grid = np.unique(observed["nominal"]) if times is None else np.asarray(times, float)
    if grid.ndim != 1 or not grid.size or not np.isfinite(grid).all():
        raise DataError("`times` must be a non-empty 1-D sequence of finite days")
    grid = np.unique(grid)
    lloq = float(observed["lloq"].median())
    simulated = _simulate_vpc(converged, assay, grid, int(n_simulations), seed)
    simulated = np.where(np.isnan(simulated) | (simulated >= lloq), simulated, lloq)
    sim_q = np.nanquantile(simulated, q, axis=0)
    ax = axes(ax)
    band = f"simulated {100 * (q[-1] - q[0]):g}% PI ({n_simulations} VPs)"
    ax.fill_between(grid, sim_q[0], sim_q[-1], color="C0", alpha=0.2, lw=0, label=band)
    for i, quantile in enumerate(q):
        ax.plot(grid, sim_q[i], "--", color="C0", label=f"simulated {100 * quantile:g}%")
    obs_q = _observed_quantiles(observed, lloq, q)
    for i, quantile in enumerate(q):
        ax.plot(obs_q.index, obs_q.iloc[:, i], "o-", color="C3", ms=3, lw=1.2,
                label=f"observed {100 * quantile:g}%")  # fmt: skip
    quantified = observed[~observed["blq"].astype(bool)]
    ax.plot(quantified["nominal"], quantified["value"], ".", color="0.5", ms=3, alpha=0.5)
    ax.axhline(lloq, color="0.3", ls=":", lw=1, label=f"LLOQ {lloq:g}")
    ax.set_yscale("log")
    unit = observed["unit"].dropna().iloc[0] if observed["unit"].notna().any() else ""
    ax.set_xlabel(_DAYS)
    ax.set_ylabel(f"{assay} ({unit})" if unit else assay)
    ax.set_title(f"VPC ({len(converged)} converged fits; two-stage)", fontsize="medium")
    ax.legend(fontsize="x-small")
    return ax


# ----------------------------------------------------------------------------- metrics


_METRICS = {"cmax", "tmax", "auc_0_28", "auc_0_84", "auc_inf", "clast", "auc_last",
            "time_back_to_baseline", "half_life", "half_life_terminal"}  # fmt: skip


def _metric_pairs(nca_table: pd.DataFrame, model_table: pd.DataFrame, metric: str,
                  assay: str) -> pd.DataFrame:  # fmt: skip
    """One row per subject with ``nca``, ``model``, ``lower``, ``upper`` (and ``censored``)."""
    for name, table in (("nca_table", nca_table), ("model_metrics", model_table)):
        if not isinstance(table, pd.DataFrame) or not {"subject", "assay"} <= set(table):
            raise DataError(f"`{name}` must be a metrics table with `subject` and `assay`")
        if metric not in table:
            common = sorted(set(nca_table) & set(model_table) & _METRICS)
            raise DataError(f"metric {metric!r} is not a column of `{name}`; metrics in both "
                            f"tables: {common}")  # fmt: skip
        if not (table["assay"] == assay).any():
            raise DataError(f"no {assay!r} rows in `{name}`; assays: "
                            f"{sorted(map(str, table['assay'].unique()))}")  # fmt: skip
    nca = nca_table[nca_table["assay"] == assay]
    model = model_table[model_table["assay"] == assay]
    if "success" in model:
        model = model[model["success"].astype(bool)]
    censored = f"{metric}_censored"
    frame = pd.DataFrame({
        "subject": nca["subject"].astype(str),
        "nca": pd.to_numeric(nca[metric], errors="coerce"),
        "censored": nca[censored].fillna(False).astype(bool) if censored in nca else False,
    }).merge(pd.DataFrame({
        "subject": model["subject"].astype(str),
        "model": pd.to_numeric(model[metric], errors="coerce"),
        "lower": pd.to_numeric(model.get(f"{metric}_ci_lower", np.nan), errors="coerce"),
        "upper": pd.to_numeric(model.get(f"{metric}_ci_upper", np.nan), errors="coerce"),
    }), on="subject", how="inner")  # fmt: skip
    return frame


def _metric_label(table: pd.DataFrame, metric: str) -> str:
    if metric.startswith("auc") and "auc_unit" in table:
        unit = table["auc_unit"].dropna()
    elif metric in ("cmax", "clast") and "unit" in table:
        unit = table["unit"].dropna()
    else:
        unit = pd.Series(["day"] if "time" in metric or "tmax" in metric
                         or "half_life" in metric else [])  # fmt: skip
    return f"{metric} ({unit.iloc[0]})" if len(unit) else metric


def metric_agreement(
    nca_table: pd.DataFrame,
    model_metrics: pd.DataFrame | BatchFit,
    *,
    metric: str = "cmax",
    assay: str = "qpcr",
    ax: Any = None,
    log: bool = True,
) -> Any:
    """Model-based against NCA (observed) value of a metric, one point per subject.

    The x axis is the NCA value (:func:`cellkin.nca`), the y axis the model-based value of a
    converged fit (:meth:`BatchFit.metrics` or :meth:`FitResult.metrics`) with its 95% CI as an
    error bar; the dashed line is the identity. A text box gives the geometric mean ratio
    model/NCA ``GMR = exp(mean(ln(model/NCA)))`` over the subjects with both values positive,
    with its t-based 95% CI ``exp(m ± t(0.975, n−1)·s/√n)``. For time back to baseline, NCA
    values censored at the last sample are drawn open and left out of the GMR (they are
    lower bounds).

    Parameters
    ----------
    nca_table : pandas.DataFrame
        Output of :func:`cellkin.nca` (one row per subject × assay).
    model_metrics : pandas.DataFrame or BatchFit
        Model-based metrics (its ``metrics`` table for a batch); columns named as in the NCA
        table, with ``<metric>_ci_lower``/``_ci_upper``.
    metric : str, default "cmax"
        A metric in both tables (``cmax``, ``tmax``, ``auc_0_28``, ``auc_0_84``, ``auc_inf``,
        ``time_back_to_baseline``).
    assay : str, default "qpcr"
    ax : matplotlib.axes.Axes, optional
    log : bool, default True
        Log–log axes (non-positive values are then left out and counted in a note).

    Returns
    -------
    matplotlib.axes.Axes
    """
    table = model_metrics.metrics() if isinstance(model_metrics, BatchFit) else model_metrics
    pairs = _metric_pairs(nca_table, table, metric, assay)
    labels = [_metric_label(t[t["assay"] == assay], metric) for t in (nca_table, table)]
    finite = np.isfinite(pairs[["nca", "model"]]).all(axis=1)
    shown = finite & ((pairs["nca"] > 0) & (pairs["model"] > 0) if log else True)
    pairs, left_out = pairs[shown], int((~shown).sum())
    if pairs.empty:
        raise DataError(f"no subject has both an NCA and a model-based {metric} for {assay!r}")
    ax = axes(ax)
    error = np.vstack([pairs["model"] - pairs["lower"], pairs["upper"] - pairs["model"]])
    error = np.clip(np.nan_to_num(error), 0, None)
    for censored, style in ((False, {}), (True, {"mfc": "none"})):
        rows = (pairs["censored"] == censored).to_numpy()
        if rows.any():
            label = "NCA censored at last sample" if censored else "subjects"
            ax.errorbar(pairs["nca"][rows], pairs["model"][rows], yerr=error[:, rows], fmt="o",
                        color="C0", ms=5, capsize=2, elinewidth=0.8, label=label,
                        **style)  # fmt: skip
    _identity(ax, pairs[["nca", "model"]].to_numpy(float).ravel())
    used = pairs[~pairs["censored"] & (pairs["nca"] > 0) & (pairs["model"] > 0)]
    ratios = (used["model"] / used["nca"]).to_numpy(float)
    gmr, lower, upper = _log_mean_ci(ratios) if ratios.size else (math.nan,) * 3
    text = f"GMR model/NCA = {gmr:.3g} (95% CI {lower:.3g}–{upper:.3g}), n = {len(used)}"
    ax.text(0.98, 0.02, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=8,
            bbox={"boxstyle": "round", "fc": "white", "ec": "0.7"}, gid="gmr")  # fmt: skip
    if left_out:
        ax.text(0.98, 0.09, f"{left_out} subject(s) without two positive values not shown",
                transform=ax.transAxes, ha="right", fontsize=7, color="0.35")  # fmt: skip
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel(f"NCA {labels[0]}")
    ax.set_ylabel(f"model-based {labels[1]}")
    ax.set_title(f"{metric}: model-based vs NCA ({assay})", fontsize="medium")
    ax.legend(fontsize="small", loc="upper left")
    return ax
