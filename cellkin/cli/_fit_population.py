"""``cellkin fit --population``: a population (mixed-effects) fit of the whole study.

Runs :func:`cellkin.fit_population` (SAEM, M3 for BLQ samples) and writes its tables —
``fixed_effects``, ``random_effects``, ``residual_error``, ``individual`` (EBE, conditional
mean and SD), ``metrics`` (per subject, from the conditional distribution), ``diagnostics``
(PRED, IPRED, IWRES, NPDE per sample), ``trajectory`` (SAEM's convergence trajectory) and
``failures`` — as injection-safe CSV, and its figures (GOF, NPDE, pcVPC, trajectories) as
PNG under ``plots/``, through the output folder's atomic writes, with the manifest last.
Covariates (``--covariate cmax=dose_level``) come from the subject table (``--subjects
FILE``, read by :func:`cellkin.io.read_subjects`; the example's with ``--example``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import pandas as pd

from cellkin import models
from cellkin._output import OutputFolder
from cellkin.cli._options import comma_list
from cellkin.errors import OptionError
from cellkin.population import fit_population

__all__ = ["add_options", "check_options", "covariates", "run"]

#: The figures written (``plots/<kind>.png``), kinds of :func:`cellkin.plot.population`.
FIGURES = ("gof", "npde", "vpc", "trajectories")


def add_options(parser: argparse.ArgumentParser) -> None:
    """The population options of ``cellkin fit``."""
    group = parser.add_argument_group("population (mixed-effects) fit")
    group.add_argument("--population", action="store_true",
                       help="fit one population model to all subjects (SAEM, M3) instead of "
                       "one fit per subject; writes the population tables and figures")  # fmt: skip
    group.add_argument("--covariate", action="append", metavar="PARAM=COLUMN[,COLUMN]",
                       help="covariate of a parameter from the subject table, e.g. "
                       "cmax=dose_level or tmax=log_dose (repeatable)")  # fmt: skip
    group.add_argument("--random", action="append", metavar="PARAM[,PARAM]",
                       help="parameters with a random effect (default all free kinetic "
                       "ones; repeatable or comma-separated)")  # fmt: skip
    group.add_argument("--subjects", metavar="FILE",
                       help="subject table holding the covariates (with --example: the "
                       "example's)")  # fmt: skip


def check_options(args: argparse.Namespace) -> None:
    """Refuse population options without ``--population`` and per-subject-only options
    with it (one line each, before any work)."""
    given = [name for name in ("covariate", "random", "subjects") if getattr(args, name)]
    if not args.population:
        if given:
            raise OptionError(f"--{given[0]} needs --population")
        return
    for name in ("checkpoint", "scheduler"):
        if getattr(args, name):
            raise OptionError(f"--{name} is for per-subject fits; drop it with --population")
    if args.covariate and not (args.subjects or args.example):
        raise OptionError("--covariate needs the subject table: give --subjects FILE")


def covariates(items: list[str] | None) -> dict[str, list[str]]:
    """``{"cmax": ["dose_level"], ...}`` from ``--covariate PARAM=COLUMN[,COLUMN]`` items."""
    found: dict[str, list[str]] = {}
    for item in items or ():
        name, sign, columns = item.partition("=")
        names = [c.strip() for c in columns.split(",") if c.strip()]
        if not sign or not name.strip() or not names:
            raise OptionError(
                f"--covariate {item!r}: write PARAM=COLUMN, e.g. --covariate cmax=dose_level"
            )
        found.setdefault(name.strip(), [])
        found[name.strip()] += [c for c in names if c not in found[name.strip()]]
    return found


def _check_names(args: argparse.Namespace, assays: list[str] | None) -> None:
    """Refuse a --covariate or --random parameter the model does not have, naming them."""
    model = models.get(args.model)
    known = [*model.param_names, *(f"scale_{a}" for a in (assays or [])[1:])]
    for option, names in (("--covariate", list(covariates(args.covariate))),
                          ("--random", comma_list(args.random))):  # fmt: skip
        unknown = [n for n in names if n not in known]
        if unknown:
            raise OptionError(
                f"{option}: {', '.join(map(repr, unknown))} not a parameter of {model.name}; "
                f"its parameters: {', '.join(known)}"
            )


def run(
    args: argparse.Namespace,
    folder: OutputFolder,
    kinetics: pd.DataFrame,
    subjects: pd.DataFrame | None,
    assays: list[str] | None,
) -> int:
    """Fit the population, write its tables and figures; 0 when written."""
    _check_names(args, assays)
    fit = fit_population(
        kinetics,
        args.model,
        subjects=args.subject,
        assays=assays,
        error=args.error,
        blq=args.blq,
        covariates=covariates(args.covariate) or None,
        subjects_table=subjects,
        random=comma_list(args.random) or None,
        seed=args.seed,
        n_jobs=args.jobs,
        progress=not args.no_progress,
    )
    tables = {
        "fixed_effects": fit.fixed_effects,
        "random_effects": fit.random_effects,
        "residual_error": fit.residual_error,
        "individual": fit.individual,
        "metrics": fit.metrics(),
        "diagnostics": fit.diagnostics(),
        "trajectory": fit.trajectory,
        "failures": fit.failures,
    }
    for name, table in tables.items():
        folder.csv(f"{name}.csv", table)
    print(fit.summary())
    print(f"\nwrote {', '.join(f'{name}.csv' for name in tables)} to {folder.folder}")
    count = _figures(fit, folder)
    print(f"wrote {count} figure(s) to {folder.folder / 'plots'}")
    folder.finish()
    if len(fit.failures):
        print(f"{len(fit.failures)} subject(s) not in the population fit: listed in "
              f"{folder.folder / 'failures.csv'}")  # fmt: skip
    if not fit.converged:
        print(f"cellkin: warning: SAEM did not converge ({fit.reason}); see trajectory.csv "
              f"and plots/trajectories.png", file=sys.stderr)  # fmt: skip
    return 0


def _figures(fit: Any, folder: OutputFolder) -> int:
    """``plots/<kind>.png`` for each figure of :data:`FIGURES` (matplotlib ``Figure``, no
    pyplot state); a figure that cannot be drawn (e.g. no pcVPC without simulated
    replicates) is a warning, not a lost run."""
    from matplotlib.figure import Figure

    count = 0
    for kind in FIGURES:
        figure = Figure(figsize=(6, 4), layout="constrained")
        try:
            fit.plot(kind, ax=figure.add_subplot())
            with folder.file(f"plots/{kind}.png") as temporary:
                figure.savefig(temporary, dpi=100, format="png")
        except OSError:
            raise
        except Exception as exc:  # one figure failing must not lose the others
            print(f"cellkin: warning: no {kind} figure: {exc}", file=sys.stderr)
            continue
        count += 1
    return count
