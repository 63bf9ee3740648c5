"""The report's figures (private): which ones, their captions, and rendering them to PNG.

Each entry of :data:`FIGURES` names a figure, the report section it belongs to, its caption
and the function that lays it out from a :class:`~cellkin.report.StudyAnalysis` on a
matplotlib ``Figure`` (no pyplot state). The drawing itself is done by :mod:`cellkin.plot`
(directly, or through a result's ``.plot()``). A figure whose inputs are absent (no lesions
table, no converged fit) is skipped with the reason; one that fails to draw is listed in the
report's failures, never dropped silently.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cellkin import outcomes, plot
from cellkin.errors import CellkinError

if TYPE_CHECKING:  # annotations only: the public name, whichever module defines it
    from cellkin.report import StudyAnalysis

__all__ = ["FIGURES", "FigureSpec", "RenderedFigure", "render_figures"]


class _Skip(Exception):
    """Raised by a figure function whose inputs are not in the analysis."""


@dataclass(frozen=True)
class FigureSpec:
    """One report figure: name, section, caption, size (inches) and drawing function."""

    name: str
    section: str
    caption: str
    size: tuple[float, float]
    draw: Callable[[Any, StudyAnalysis], Any]


@dataclass(frozen=True)
class RenderedFigure:
    """A drawn figure: its spec and PNG bytes."""

    spec: FigureSpec
    png: bytes

    @property
    def data_uri(self) -> str:
        """``data:image/png;base64,...`` for embedding in HTML."""
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def _need(analysis: StudyAnalysis, key: str) -> Any:
    value = analysis.objects.get(key)
    if value is None:
        raise _Skip(f"no {key.replace('_', ' ')} in this analysis")
    return value


def _grid(figure: Any, ncols: int) -> list[Any]:
    return list(figure.subplots(1, ncols, squeeze=False)[0])


def _fitted_assay(batch: Any) -> str:
    """The reference assay of the batch's fits (the first fitted one)."""
    return next(iter(batch.results.values())).assays[0] if batch.results else "qpcr"


def _spaghetti(figure: Any, analysis: StudyAnalysis) -> None:
    kinetics = analysis.inputs.kinetics
    assays = list(dict.fromkeys(kinetics["assay"]))
    for ax, assay in zip(_grid(figure, len(assays)), assays, strict=True):
        plot.spaghetti(kinetics, analysis.inputs.subjects, assay=assay,
                       by=analysis.options["group_by"] or "dose_level", ax=ax)  # fmt: skip
        ax.set_title(assay)


def _individual_fits(figure: Any, analysis: StudyAnalysis) -> None:
    batch = _need(analysis, "batch")
    if not batch.results:
        raise _Skip("no subject could be fitted")
    plot.individual_fits(batch, fig=figure, ncols=6)


def _diagnostics(figure: Any, analysis: StudyAnalysis) -> None:
    batch = _need(analysis, "batch")
    left, middle, right = _grid(figure, 3)
    plot.observed_vs_predicted(batch, ax=left)
    plot.residuals(batch, x="time", ax=middle)
    plot.residuals(batch, x="prediction", ax=right)


def _vpc(figure: Any, analysis: StudyAnalysis) -> None:
    batch = _need(analysis, "batch")
    chosen = _need(analysis, "model_metrics_selected")["subject"]
    fits = {subject: batch.results[subject] for subject in dict.fromkeys(chosen)}
    if len(fits) < 2:
        fits_of = analysis.options.get("model_fits", "reliable")
        raise _Skip(f"fewer than 2 {fits_of} fits (the VPC draws from their distribution)")
    plot.vpc(fits, analysis.inputs.kinetics, assay=_fitted_assay(batch),
             seed=analysis.options["fit"]["seed"], ax=figure.add_subplot())  # fmt: skip


def _population_gof(figure: Any, analysis: StudyAnalysis) -> None:
    population = _need(analysis, "population")
    for ax, kind in zip(_grid(figure, 2), ("gof", "npde"), strict=True):
        population.plot(kind, ax=ax)


def _population_trajectories(figure: Any, analysis: StudyAnalysis) -> None:
    _need(analysis, "population").plot("trajectories", ax=figure.add_subplot())


def _population_vpc(figure: Any, analysis: StudyAnalysis) -> None:
    population = _need(analysis, "population")
    if population.vpc.empty:
        raise _Skip("the population fit simulated no replicates")
    population.plot("vpc", ax=figure.add_subplot())


def _agreement(figure: Any, analysis: StudyAnalysis) -> None:
    batch, nca = _need(analysis, "batch"), _need(analysis, "nca")
    metrics = ["cmax", "tmax", "auc_0_28", "time_back_to_baseline"]
    assay = _fitted_assay(batch)
    for ax, metric in zip(_grid(figure, len(metrics)), metrics, strict=True):
        plot.metric_agreement(
            nca, _need(analysis, "model_metrics"), metric=metric, assay=assay, ax=ax
        )


def _km(endpoint: str) -> Callable[[Any, StudyAnalysis], None]:
    def draw(figure: Any, analysis: StudyAnalysis) -> None:
        plot.kaplan_meier(_need(analysis, f"km_{endpoint}"), ax=figure.add_subplot())

    return draw


def _waterfall(figure: Any, analysis: StudyAnalysis) -> None:
    bor = _need(analysis, "bor")
    if "best_pct_change" not in bor:
        raise _Skip("no lesion measurements (best overall response taken from the subjects)")
    plot.waterfall(bor, ax=figure.add_subplot())


def _swimmer(figure: Any, analysis: StudyAnalysis) -> None:
    lesions = analysis.inputs.lesions
    if lesions is None:
        raise _Skip("no lesions table")
    subjects = analysis.inputs.subjects
    follow_up = None
    if subjects is not None and "os_days" in subjects:
        follow_up = subjects.set_index("subject")["os_days"]
    plot.swimmer(outcomes.recist_timepoints(lesions), ax=figure.add_subplot(),
                 follow_up=follow_up)  # fmt: skip


def _unit(analysis: StudyAnalysis, metric: str, assay: str | None) -> str | None:
    """Unit of an NCA metric of `assay` (``unit``, ``auc_unit`` or ``time_unit`` column)."""
    nca = analysis.objects.get("nca")
    if nca is None:
        return None
    column = "auc_unit" if metric.startswith("auc") else "unit"
    if metric.startswith(("tmax", "tlast", "half_life", "time_")):
        column = "time_unit"
    rows = nca[nca["assay"] == assay] if assay is not None else nca
    units = rows[column].dropna().unique() if column in rows else []
    return str(units[0]) if len(units) == 1 else None


def _exposure_response(figure: Any, analysis: StudyAnalysis) -> None:
    result = _need(analysis, "exposure_response")
    pairs = list(dict.fromkeys(zip(result.table["outcome"], result.table["exposure"],
                                   strict=True)))[:4]  # fmt: skip
    ncols = 2 if len(pairs) > 1 else 1
    nrows = -(-len(pairs) // ncols)
    grid = list(figure.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in grid[len(pairs) :]:
        ax.set_visible(False)
    for ax, (outcome, exposure) in zip(grid, pairs, strict=False):
        plot.exposure_response(result, ax=ax, exposure=exposure, outcome=outcome,
                               unit=_unit(analysis, exposure, result.assay))  # fmt: skip


def _exposure_pfs(figure: Any, analysis: StudyAnalysis) -> None:
    result = _need(analysis, "exposure_pfs")
    plot.kaplan_meier(result.km, ax=figure.add_subplot(),
                      by_unit=_unit(analysis, result.exposure, result.assay))  # fmt: skip


def _dose_exposure(figure: Any, analysis: StudyAnalysis) -> None:
    result = _need(analysis, "dose_exposure")
    exposures = list(dict.fromkeys(result.table["exposure"]))
    for ax, exposure in zip(_grid(figure, len(exposures)), exposures, strict=True):
        plot.dose_exposure(result, ax=ax, exposure=exposure,
                           unit=_unit(analysis, exposure, result.assay))  # fmt: skip


#: Every figure of the report, in order.
FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("spaghetti", "kinetics",
               "Observed levels by dose level: one line per subject, BLQ samples as open "
               "markers at the LLOQ, geometric mean with 95% CI at each nominal day (the "
               "visit's protocol day; a table without visits or nominal times has its actual "
               "days binned into windows, as the figure notes).",
               (13, 4.5), _spaghetti),
    FigureSpec("individual_fits", "fit",
               "Individual model fits: observations, BLQ samples at the LLOQ, fitted curve "
               "and 95% confidence band. Fits that are not reliable are drawn with a dashed "
               "curve and an orange title naming their issues.", (15, 10), _individual_fits),
    FigureSpec("diagnostics", "fit",
               "Goodness of fit: observed vs predicted, standardised residuals vs time and vs "
               "prediction (BLQ samples: M3 arguments).", (15, 4.5), _diagnostics),
    FigureSpec("vpc", "fit",
               "Visual predictive check from the fitted population (two-stage: parameters "
               "drawn from the distribution of the individual estimates of the fits the "
               "model-based summaries use, with the fitted residual error and LLOQ "
               "censoring).", (8, 5), _vpc),
    FigureSpec("population_gof", "population",
               "Population model: observed vs individual predictions (at the EBEs; censored "
               "samples at their LLOQ as open markers) and NPDE vs time with 0 and ±1.96.",
               (12, 4.5), _population_gof),
    FigureSpec("population_vpc", "population",
               "Prediction-corrected visual predictive check of the population model: "
               "observed 10th, 50th and 90th percentiles of the prediction-corrected data per "
               "time bin against the 90% intervals of the same percentiles over data sets "
               "simulated from the fitted model (with its residual error and LLOQ "
               "censoring).", (8, 5), _population_vpc),
    FigureSpec("population_trajectories", "population",
               "SAEM's parameter trajectories relative to their final values, the end of the "
               "exploratory phase marked (convergence of the population fit).", (10, 5),
               _population_trajectories),
    FigureSpec("metric_agreement", "metrics",
               "Model-based vs observed (NCA) metrics per subject, with the model's 95% CI; "
               "fits that are not reliable as open grey markers, left out of the ratio.",
               (16, 4.2), _agreement),
    FigureSpec("km_pfs", "efficacy", "Progression-free survival (Kaplan–Meier) by dose level.",
               (8, 5.5), _km("pfs")),
    FigureSpec("km_os", "efficacy", "Overall survival (Kaplan–Meier) by dose level.",
               (8, 5.5), _km("os")),
    FigureSpec("waterfall", "efficacy",
               "Best percentage change in the sum of target lesion diameters (RECIST 1.1), "
               "coloured by best overall response.", (9, 4.5), _waterfall),
    FigureSpec("swimmer", "efficacy",
               "Swimmer plot: RECIST 1.1 assessments over follow-up.", (9, 7), _swimmer),
    FigureSpec("exposure_response", "exposure",
               "Exposure–response: logistic regression of each outcome on the log exposure "
               "(NCA), with the data.", (12, 9), _exposure_response),
    FigureSpec("exposure_pfs", "exposure",
               "PFS by exposure group (AUC0–28 above vs below the median).", (8, 5.5),
               _exposure_pfs),
    FigureSpec("dose_exposure", "exposure",
               "Dose–exposure: power model on log axes.", (10, 4.2), _dose_exposure),
)  # fmt: skip


def render_figures(
    analysis: StudyAnalysis, *, dpi: int = 90
) -> tuple[dict[str, RenderedFigure], list[dict[str, str]]]:
    """Draw every figure of :data:`FIGURES` that the analysis supports.

    Returns
    -------
    figures : dict
        Name → :class:`RenderedFigure`, in report order.
    problems : list of dict
        ``step, subject, reason`` rows: figures skipped (inputs absent) or failed to draw.
    """
    from matplotlib.figure import Figure

    figures: dict[str, RenderedFigure] = {}
    problems: list[dict[str, str]] = []
    for spec in FIGURES:
        figure = Figure(figsize=spec.size, layout="constrained")
        try:
            spec.draw(figure, analysis)
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=dpi)
        except _Skip as reason:
            problems.append({"step": f"figure {spec.name}", "subject": "",
                             "reason": f"skipped: {reason}"})  # fmt: skip
            continue
        except (CellkinError, ValueError, KeyError, IndexError) as exc:
            # One figure failing must not lose the report; the failure is listed in it.
            problems.append({"step": f"figure {spec.name}", "subject": "",
                             "reason": f"{type(exc).__name__}: {exc}"})  # fmt: skip
            continue
        figures[spec.name] = RenderedFigure(spec, buffer.getvalue())
    return figures, problems
