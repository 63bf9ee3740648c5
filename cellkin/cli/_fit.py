"""``cellkin fit``: fit a model to every subject and write the tables (and figures).

Runs :func:`cellkin.fit_all` on this machine's cores, or on a Dask cluster with
``--scheduler ADDRESS`` (``dask.distributed`` is an optional dependency), and writes the
parameter, metric, fit-statistic and failure tables of the :class:`cellkin.BatchFit` as CSV
(and the figures) into the output folder, under the output policy of
:mod:`cellkin.cli._output`, with the manifest last.
"""

from __future__ import annotations

import argparse
import re
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from cellkin._display import Summary
from cellkin._output import OutputFolder
from cellkin._version import __version__
from cellkin.cli import _fit_population
from cellkin.cli._options import (
    add_fit_options,
    add_mapping_option,
    add_overwrite_option,
    comma_list,
    command_parser,
    fit_keywords,
    jobs,
)
from cellkin.cli._output import command_line
from cellkin.datasets import load_example
from cellkin.errors import DataError, FitError, OptionError
from cellkin.fit import fit_all
from cellkin.io import read_kinetics, read_subjects
from cellkin.models.base import describe_solver

__all__ = ["EXAMPLES", "add_parser", "dask_client", "run"]

EXAMPLES = """examples:
  cellkin fit --example -o fits --plots
  cellkin fit pk.csv --model stein2019 -o fits --jobs 4 --checkpoint fits.jsonl
  cellkin fit pk.csv --assay qpcr,flow --subject KD025-109
  cellkin fit pk.csv --scheduler tcp://scheduler:8786 -o fits
  cellkin fit --example --population --covariate cmax=dose_level -o population
  cellkin fit pk.csv --population --subjects subjects.csv --covariate tmax=log_dose -o pop
"""


def add_parser(commands: argparse._SubParsersAction, parents: list) -> None:
    """Declare ``cellkin fit`` and its options."""
    parser = command_parser(
        commands,
        "fit",
        EXAMPLES,
        parents,
        help="fit a kinetic model to every subject",
        description="Fit a model to each subject by maximum likelihood (M3 for BLQ samples) "
        "and write params.csv, metrics.csv, statistics.csv and failures.csv (one row per "
        "subject that could not be fitted or did not converge). With --population, fit one "
        "mixed-effects model to all subjects (SAEM) and write fixed_effects.csv, "
        "random_effects.csv, residual_error.csv, individual.csv, metrics.csv (from each "
        "subject's conditional distribution), diagnostics.csv, trajectory.csv, failures.csv "
        "and plots/{gof,npde,vpc,trajectories}.png.",
    )
    parser.add_argument("file", nargs="?", help="kinetics table (CSV/Excel/parquet)")
    parser.add_argument("--example", action="store_true", help="use the bundled example study")
    add_mapping_option(parser)
    add_fit_options(parser)
    parser.add_argument("--assay", action="append", metavar="ASSAY",
                        help="assay to fit (repeat or comma-separate for a joint fit; "
                        "default qpcr)")  # fmt: skip
    parser.add_argument("--subject", action="append", metavar="ID",
                        help="fit only ID (repeatable)")  # fmt: skip
    parser.add_argument("-o", "--output", metavar="DIR", help="output folder (default fit_MODEL)")
    add_overwrite_option(parser, "write into a non-empty output folder, replacing the files "
                         "a previous cellkin run wrote there")  # fmt: skip
    parser.add_argument("--jobs", type=jobs, metavar="N",
                        help="worker processes (default: all CPUs; 1: in-process); with "
                        "--scheduler, only sizes the tasks")  # fmt: skip
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="fit on a Dask cluster, e.g. tcp://host:8786 (pip install "
                        '"cellkin[dask]"); workers need cellkin installed')  # fmt: skip
    parser.add_argument("--checkpoint", metavar="FILE",
                        help="append finished subjects here; rerun to resume")  # fmt: skip
    parser.add_argument("--plots", action="store_true", help="write DIR/plots/SUBJECT.png "
                        "(a population fit always writes its figures)")  # fmt: skip
    _fit_population.add_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Fit every subject, write the batch's tables, and the figures with ``--plots``."""
    if args.example == bool(args.file):
        raise OptionError("give either a kinetics FILE or --example")
    _fit_population.check_options(args)
    default = f"population_{args.model}" if args.population else f"fit_{args.model}"
    folder = OutputFolder(
        args.output or default,
        overwrite=args.overwrite,
        argument="-o/--output",
        command=command_line(args),
        keep=(args.checkpoint,) if args.checkpoint else (),
    )
    kinetics = (
        load_example().kinetics if args.example else read_kinetics(args.file, mapping=args.mapping)
    )
    _check_subjects(kinetics, args.subject)
    assays = comma_list(args.assay)
    if args.population:
        subjects = (
            read_subjects(args.subjects) if args.subjects
            else load_example().subjects if args.example else None
        )  # fmt: skip
        return _fit_population.run(args, folder, kinetics, subjects, assays or None)
    client = dask_client(args.scheduler) if args.scheduler else None
    with client if client is not None else nullcontext():  # closes the client, not the cluster
        executor = None if client is None else client.get_executor()
        # On a cluster, --jobs only sizes the tasks: by default, by the cluster's threads.
        threads = None if client is None else sum(client.nthreads().values())
        batch = fit_all(
            kinetics,
            args.model,
            subjects=args.subject,
            n_jobs=args.jobs or threads or None,
            executor=executor,
            progress=not args.no_progress,
            checkpoint=args.checkpoint,
            assays=assays or None,
            **fit_keywords(args),
        )
    tables = {name: getattr(batch, name) for name in ("params", "statistics", "failures")}
    tables["metrics"] = batch.metrics()
    for name, table in tables.items():
        folder.csv(f"{name}.csv", table)
    print(_summary(batch))
    print(f"\nwrote {', '.join(f'{name}.csv' for name in tables)} to {folder.folder}")
    if args.plots:
        count = _plot_fits(dict(batch.results), folder)
        print(f"wrote {count} figure(s) to {folder.folder / 'plots'}")
    folder.finish()
    _outcome_line(batch, folder.folder / "failures.csv")
    return 0


def _summary(batch: Any) -> Summary:
    """The batch's summary with its options as words (no dict) and where the failures are."""
    summary = batch.summary()
    options = batch.settings.get("fit_options", {})
    words = ", ".join(f"{k} {v}" for k, v in options.items() if v is not None)
    solver = describe_solver(batch.settings.get("solver"))
    notes = [f"cellkin {__version__}; {batch.settings.get('model')}; {solver}; options: {words}"]
    if len(batch.failures):
        notes.append(f"{len(batch.failures)} failure row(s): see failures.csv")
    return Summary(summary.title, summary.tables, tuple(notes))


def _check_subjects(kinetics: Any, asked: list[str] | None) -> None:
    """Refuse --subject ids the kinetics table does not have (nothing would be fitted)."""
    if not asked:
        return
    present = set(map(str, kinetics["subject"]))
    unknown = [s for s in dict.fromkeys(asked) if s not in present]
    if unknown:
        shown = ", ".join(sorted(present)[:8]) + (" ..." if len(present) > 8 else "")
        raise DataError(
            f"--subject: {len(unknown)} unknown subject(s) {', '.join(map(repr, unknown))}; "
            f"the kinetics table has {len(present)} subjects: {shown}"
        )


def _outcome_line(batch: Any, failures: Path) -> None:
    """One line on what is missing; FitError when no subject was fitted."""
    failed = set(batch.failures["subject"].astype(str))
    total = len(failed | set(map(str, batch.results)))
    if total and len(failed) >= total:
        first = batch.failures.iloc[0]
        raise FitError(
            f"no subject was fitted: all {total} failed (first {first['subject']}: "
            f"{first['reason']}); every reason is in {failures}"
        )
    if failed:
        print(f"{len(failed)} of {total} subject(s) not fitted or not converged: listed in "
              f"{failures}")  # fmt: skip


def dask_client(address: str) -> Any:  # a dask.distributed.Client (an optional dependency)
    """A ``dask.distributed.Client`` connected to ``address`` (``cellkin fit --scheduler``).

    Raises :class:`~cellkin.errors.FitError` with a one-line fix when dask is not installed
    or the scheduler cannot be reached (within dask's connect timeout,
    ``distributed.comm.timeouts.connect``, 30 s by default).
    """
    try:
        from dask.distributed import Client
    except ImportError:
        raise FitError(
            "--scheduler needs dask.distributed, which is not installed: "
            'pip install "cellkin[dask]"'
        ) from None
    try:
        return Client(address)
    except Exception as exc:  # refused, timed out, bad address: all mean "cannot connect"
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise FitError(
            f"--scheduler: cannot reach the Dask scheduler at {address} ({reason}); start one "
            f"with `dask scheduler` and workers with `dask worker ADDRESS`, or fix the address"
        ) from None


def _plot_fits(results: dict, folder: OutputFolder) -> int:
    """One PNG per fitted subject (matplotlib ``Figure``, no pyplot state), each written
    atomically into ``plots/``; returns the count."""
    from matplotlib.figure import Figure

    names: set[str] = set()
    for subject, result in results.items():
        name = re.sub(r"[^A-Za-z0-9._-]", "_", subject)
        while name in names:
            name += "_"
        figure = Figure(figsize=(6, 4), layout="constrained")
        try:
            result.plot(ax=figure.add_subplot())
            with folder.file(f"plots/{name}.png") as temporary:
                figure.savefig(temporary, dpi=100, format="png")
        except OSError:
            raise  # the folder, not the figure: stop
        except Exception as exc:  # one figure failing must not lose the others
            print(f"cellkin: warning: no figure for {subject}: {exc}", file=sys.stderr)
            continue
        names.add(name)
    return len(names)
