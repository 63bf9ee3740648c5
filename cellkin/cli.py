"""The ``cellkin`` command line.

Subcommands
-----------
``cellkin validate``
    Read and validate study tables (or the bundled example study with ``--example``) and
    print a summary of each; exit code 2 and one clear line on bad input.
``cellkin nca``
    Observed (non-compartmental) metrics per subject × assay from a kinetics file (or the
    example study), written as CSV, with a summary by dose level.
``cellkin simulate``
    Simulate a virtual population from a registered model and write a kinetics table; a
    ``.parquet`` output is streamed in compiled chunks with bounded memory (10^6 patients).
``cellkin report``
    The whole study analysis (NCA, fits, model-based metrics, safety, efficacy,
    exposure-response by dose level) as one self-contained HTML file plus CSV tables.
``cellkin fit``
    Fit a model to every subject of a kinetics file (or the example study) and write the
    parameter, metric, fit-statistic and failure tables as CSV, optionally with figures;
    ``--scheduler ADDRESS`` fits on a Dask cluster.

Run ``cellkin COMMAND --help`` for the options and examples of each. The options are shared
where they mean the same: ``--example``, ``-o/--output``, ``--model``, ``--seed``, ``--jobs``,
``--no-progress``. Bad input prints one line starting with ``cellkin: error:`` and exits with
status 2; ``--verbose`` (before or after the command) shows the traceback too.
"""

from __future__ import annotations

import argparse
import re
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cellkin import io, models
from cellkin._version import __version__
from cellkin.errors import CellkinError, DataError

__all__ = ["main"]

_EPILOG = """examples:
  cellkin report --example -o kd025_report
  cellkin validate pk.csv subjects.csv lesions.csv ae.csv
  cellkin nca --example -o nca.csv --auc-method linup-logdown
  cellkin nca pk.csv --intervals 0-28,0-84,0-180 --long -o nca_long.csv
  cellkin simulate --model stein2019 --n 1000 --seed 1 --times 1,4,7,14,28 --lloq 50 -o sim.csv
  cellkin simulate --n 1000000 --seed 1 -o pop.parquet --summary summary.csv
  cellkin fit pk.csv --model stein2019 -o fits --jobs 4 --checkpoint fits.jsonl --plots
  cellkin fit pk.csv --scheduler tcp://scheduler:8786 -o fits

Run `cellkin COMMAND --help` for each command's options and examples.
"""


_SUBCOMMAND_EXAMPLES = {
    "report": """examples:
  cellkin report --example -o kd025_report
  cellkin report pk.csv subjects.csv lesions.csv ae.csv -o report --jobs 4
  cellkin report --kinetics pk.csv --subjects subjects.csv --model stein2019_lag
""",
    "validate": """examples:
  cellkin validate --example
  cellkin validate pk.csv subjects.csv lesions.csv ae.csv
  cellkin validate --kinetics pk.csv --exclude-before -7
""",
    "nca": """examples:
  cellkin nca --example -o nca.csv --auc-method linup-logdown
  cellkin nca pk.csv --subjects subjects.csv --intervals 0-28,0-84,0-180
  cellkin nca pk.csv --long -o nca_long.parquet
""",
    "simulate": """examples:
  cellkin simulate --model stein2019 --n 1000 --seed 1 --lloq 50 -o sim.csv
  cellkin simulate --n 1000000 --seed 1 -o pop.parquet --summary summary.csv
  cellkin simulate --model kimmel2021 --n 10000 --seed 2 --schedule visits.csv -o k.parquet
""",
    "fit": """examples:
  cellkin fit --example -o fits --plots
  cellkin fit pk.csv --model stein2019 -o fits --jobs 4 --checkpoint fits.jsonl
  cellkin fit pk.csv --assay qpcr,flow --subject KD025-109
  cellkin fit pk.csv --scheduler tcp://scheduler:8786 -o fits
""",
}


def _subjects_summary(subjects: pd.DataFrame) -> pd.DataFrame:
    by = "dose_level" if "dose_level" in subjects else "dose"
    summary = subjects.groupby(by, sort=True).agg(subjects=("subject", "size"))
    for column in ("responder", "dlt"):
        if column in subjects:
            summary[column] = subjects.groupby(by, sort=True)[column].sum().astype(int)
    return summary.reset_index()


def _write_table(frame: pd.DataFrame, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    else:
        raise DataError(f"{path}: unsupported output extension {suffix!r}; use .csv or .parquet")


def _cmd_validate(args: argparse.Namespace) -> int:
    from cellkin.io import identify_table, kinetics_summary

    if args.example:
        from cellkin.datasets import load_example

        study = load_example()
        tables = {
            "kinetics": study.kinetics,
            "subjects": study.subjects,
            "lesions": study.lesions,
            "adverse_events": study.adverse_events,
        }
        print(f"cellkin {__version__}: bundled example study (synthetic) from {study.source}")
    else:
        readers = {
            "kinetics": lambda p: io.read_kinetics(p, exclude_before=args.exclude_before),
            "subjects": io.read_subjects,
            "lesions": io.read_lesions,
            "adverse_events": io.read_adverse_events,
        }
        paths = {name: getattr(args, name) for name in readers if getattr(args, name)}
        for path in args.files:
            name = identify_table(path)
            if name in paths:
                raise DataError(f"{path}: a second {name} table (the first is {paths[name]})")
            paths[name] = path
        if not paths:
            raise DataError("nothing to validate: give at least one table or --example")
        tables = {name: readers[name](path) for name, path in paths.items()}
        print(f"cellkin {__version__}: validated {', '.join(map(str, paths.values()))}")
    for name, table in tables.items():
        print(f"\n{name}: {len(table)} rows, {table['subject'].nunique()} subjects — valid")
        if name == "kinetics":
            print(kinetics_summary(table).to_string(index=False))
        elif name == "subjects":
            print(_subjects_summary(table).to_string(index=False))
    return 0


def _parse_intervals(text: str) -> list[tuple[float, float]]:
    try:
        pairs = [item.split("-") for item in text.split(",") if item.strip()]
        return [(float(start), float(end)) for start, end in pairs]
    except ValueError:
        raise DataError(
            f"--intervals: {text!r} is not a list of START-END days, e.g. 0-28,0-84"
        ) from None


def _cmd_nca(args: argparse.Namespace) -> int:
    from cellkin.metrics import nca, summarize
    from cellkin.metrics.nca import nca_long

    if args.example == bool(args.file):
        raise DataError("give either a kinetics FILE or --example")
    subjects = None
    if args.example:
        from cellkin.datasets import load_example

        study = load_example()
        kinetics, subjects = study.kinetics, study.subjects
    else:
        kinetics = io.read_kinetics(args.file)
        if args.subjects:
            subjects = io.read_subjects(args.subjects)
    options = {
        "intervals": _parse_intervals(args.intervals),
        "auc_method": args.auc_method,
        "blq_rule": args.blq_rule,
        "tbb_method": args.tbb_method,
        "baseline": args.baseline,
    }
    table = nca(kinetics, **options)
    output = nca_long(table) if args.long else table
    if args.output:
        _write_table(output, Path(args.output))
        print(f"wrote {len(output)} rows to {args.output}")
    by = "dose_level" if subjects is not None and "dose_level" in subjects else None
    summary = summarize(table, by=by, subjects=subjects)
    columns = [c for c in (by, "assay", "metric", "unit", "n", "geo_mean", "geo_cv_pct",
                           "median", "min", "max") if c]  # fmt: skip
    print(f"NCA ({args.auc_method} trapezoid, BLQ rule {args.blq_rule}), cellkin {__version__}")
    print(summary.loc[:, columns].to_string(index=False, float_format="{:.4g}".format))
    return 0


def _parse_times(text: str) -> np.ndarray:
    try:
        times = np.array([float(item) for item in text.split(",") if item.strip()])
    except ValueError:
        raise DataError(
            f"--times: {text!r} is not a comma-separated list of days, e.g. 1,4,7,14,28"
        ) from None
    if times.size == 0 or not np.isfinite(times).all():
        raise DataError("--times: give at least one finite day, e.g. 1,4,7,14,28")
    return times


def _cmd_simulate(args: argparse.Namespace) -> int:
    from cellkin.simulate import sample_trial, simulate_population, virtual_population

    model = models.get(args.model)
    if args.schedule and args.times:
        raise DataError("give either --times or --schedule, not both")
    if args.schedule:
        path = Path(args.schedule)
        if not path.is_file():
            raise DataError(f"{path}: no such file (--schedule)")
        frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
        if "time" not in frame:
            raise DataError(f"{path}: no `time` column (sampling days since infusion)")
        times = pd.to_numeric(frame["time"], errors="coerce").to_numpy(dtype=float)
        if times.size == 0 or not np.isfinite(times).all():
            raise DataError(f"{path}: column `time` must hold finite days, e.g. 1, 4, 7, 14")
        times = np.unique(times)
    else:
        times = _parse_times(args.times or "1,4,7,10,14,21,28,56,84,180,365")
    omega = None
    if args.omega:
        try:
            omega = {k.strip(): float(v) for k, v in (i.split("=") for i in args.omega.split(","))}
        except ValueError:
            raise DataError(f"--omega: {args.omega!r} is not NAME=SD,..., e.g. cmax=0.8") from None
    output = Path(args.output) if args.output else None
    if (output and output.suffix.lower() in (".parquet", ".pq")) or (args.summary and not output):
        result = simulate_population(
            model,
            args.n,
            seed=args.seed,
            times=times,
            chunk_size=args.chunk_size,
            output=output,
            sigma=args.sigma,
            lloq=args.lloq,
            omega=omega,
            progress=not args.no_progress,
        )
        if args.summary:
            _write_table(result.summary, Path(args.summary))
        if args.params_output:
            _write_table(result.read(["subject", *model.param_names]), Path(args.params_output))
        where = f" to {output} (one row per patient)" if output else ""
        print(f"simulated {args.n} patients x {times.size} times{where}")
        print(result.summary.to_string(index=False, float_format="{:.4g}".format))
        return 0
    if args.summary:
        raise DataError("--summary needs a .parquet output (-o out.parquet) or no -o at all")
    population = virtual_population(model, args.n, seed=args.seed, omega=omega)
    if args.lloq is None:
        levels = model.simulate_many(times, population)
        table = pd.DataFrame(
            {
                "subject": np.repeat(population["subject"].to_numpy(), times.size),
                "time": np.tile(times, args.n),
                "value": levels.ravel(),
                "unit": model.observed_unit,
            }
        )
    else:
        table = sample_trial(
            model, population, times, lloq=args.lloq, sigma=args.sigma, seed=args.seed + 1
        )
    if output:
        _write_table(table, output)
        if args.params_output:
            _write_table(population, Path(args.params_output))
        print(f"wrote {len(table)} rows for {args.n} subjects to {args.output}")
    else:
        print(table.to_string(index=False, max_rows=20))
    return 0


def _plot_fits(results: dict, folder: Path) -> int:
    """One PNG per fitted subject (matplotlib ``Figure``, no pyplot state); returns the count."""
    from matplotlib.figure import Figure

    folder.mkdir(parents=True, exist_ok=True)
    names: set[str] = set()
    for subject, result in results.items():
        name = re.sub(r"[^A-Za-z0-9._-]", "_", subject)
        while name in names:
            name += "_"
        names.add(name)
        figure = Figure(figsize=(6, 4), layout="constrained")
        try:
            result.plot(ax=figure.add_subplot())
            figure.savefig(folder / f"{name}.png", dpi=100)
        except Exception as exc:  # one figure failing must not lose the others
            print(f"cellkin: warning: no figure for {subject}: {exc}", file=sys.stderr)
            names.discard(name)
    return len(names)


def _dask_client(address: str):  # -> dask.distributed.Client (an optional dependency)
    """A ``dask.distributed.Client`` connected to ``address`` (``cellkin fit --scheduler``).

    Raises :class:`~cellkin.errors.FitError` with a one-line fix when dask is not installed
    or the scheduler cannot be reached (within dask's connect timeout,
    ``distributed.comm.timeouts.connect``, 30 s by default).
    """
    from cellkin.errors import FitError

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


def _cmd_fit(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    from cellkin.fit.batch import fit_all

    if args.example == bool(args.file):
        raise DataError("give either a kinetics FILE or --example")
    if args.example:
        from cellkin.datasets import load_example

        kinetics = load_example().kinetics
    else:
        kinetics = io.read_kinetics(args.file)
    assays = [a.strip() for item in args.assay or () for a in item.split(",") if a.strip()]
    client = _dask_client(args.scheduler) if args.scheduler else None
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
            error=args.error,
            blq=args.blq,
            n_starts=args.starts,
            seed=args.seed,
        )
    output = Path(args.output or f"fit_{args.model}")
    paths = batch.to_csv(output)
    print(batch.summary())
    print(f"\nwrote {', '.join(path.name for path in paths.values())} to {output}")
    if args.plots:
        count = _plot_fits(dict(batch.results), output / "plots")
        print(f"wrote {count} figure(s) to {output / 'plots'}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from cellkin.report import load_example_inputs, load_inputs, study_report

    named = {name: getattr(args, name) for name in ("kinetics", "subjects", "lesions",
                                                    "adverse_events")}  # fmt: skip
    if args.example == bool(args.files or any(named.values())):
        raise DataError("give the study FILES (or --kinetics FILE ...) or --example")
    if args.example:
        inputs = load_example_inputs()
    else:
        inputs = load_inputs(args.files, tables=named, exclude_before=args.exclude_before)
    report = study_report(
        inputs,
        title=args.title,
        command=" ".join(["cellkin", *args.argv]),
        model=args.model,
        auc_method=args.auc_method,
        blq_rule=args.blq_rule,
        baseline=args.baseline,
        fit_blq=args.blq,
        error=args.error,
        n_starts=args.starts,
        seed=args.seed,
        n_jobs=args.jobs,
        progress=not args.no_progress,
    )
    paths = report.write(args.output)
    print(report.summary())
    tables = Path(args.output) / "tables"
    print(f"\nwrote {paths['report']} and {len(paths) - 1} CSV tables to {tables}")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _add_table_options(parser: argparse.ArgumentParser) -> None:
    """The study-table options shared by ``validate`` and ``report``."""
    parser.add_argument("--kinetics", metavar="FILE", help="qPCR/flow samples (CSV/Excel/parquet)")
    parser.add_argument("--subjects", metavar="FILE", help="one row per subject")
    parser.add_argument("--lesions", metavar="FILE", help="RECIST lesion measurements")
    parser.add_argument("--adverse-events", metavar="FILE", dest="adverse_events",
                        help="adverse events (CTCAE grades)")  # fmt: skip
    parser.add_argument(
        "--exclude-before",
        type=float,
        metavar="DAY",
        help="exclude kinetics samples before this day (listed, not lost)",
    )


def _add_nca_options(parser: argparse.ArgumentParser) -> None:
    """The NCA options shared by ``nca`` and ``report``."""
    parser.add_argument("--auc-method", default="linear",
                        choices=["linear", "linup-logdown", "log"])  # fmt: skip
    parser.add_argument("--blq-rule", default="positional",
                        choices=["positional", "zero", "lloq/2", "drop"])  # fmt: skip
    parser.add_argument("--baseline", default="lloq",
                        choices=["lloq", "lloq_only", "max_pre_infusion"])  # fmt: skip


def _add_fit_options(parser: argparse.ArgumentParser) -> None:
    """The fit options shared by ``fit`` and ``report``."""
    parser.add_argument("--model", default="stein2019", choices=models.available())
    parser.add_argument("--error", default="log-additive", choices=["log-additive", "combined"])
    parser.add_argument("--blq", default="m3", choices=["m3", "m1", "lloq/2"],
                        help="BLQ method of the fits (default m3)")  # fmt: skip
    parser.add_argument("--starts", type=_positive_int, default=4, help="starts per subject")
    parser.add_argument("--seed", type=int, default=0, help="seed of the multi-start design")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cellkin",
        description="CAR-T cellular kinetics: validate study tables, simulate, analyse.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"cellkin {__version__}")
    parser.add_argument("--verbose", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    # --verbose also after the subcommand (`cellkin fit x.csv --verbose`); SUPPRESS keeps a
    # --verbose given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks on errors")  # fmt: skip

    validate = commands.add_parser(
        "validate",
        epilog=_SUBCOMMAND_EXAMPLES["validate"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
        help="validate study tables and print a summary",
        description="Read, validate and summarise study tables.",
    )
    validate.add_argument("files", nargs="*", metavar="FILES",
                          help="study tables, recognised by their columns")  # fmt: skip
    validate.add_argument("--example", action="store_true", help="use the bundled example study")
    _add_table_options(validate)
    validate.set_defaults(handler=_cmd_validate)

    nca = commands.add_parser(
        "nca",
        epilog=_SUBCOMMAND_EXAMPLES["nca"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
        help="observed (NCA) metrics per subject and assay",
        description="Cmax, Tmax, AUCs, lambda_z, half-life and time back to baseline per "
        "subject x assay (PKNCA conventions), with a summary by dose level.",
    )
    nca.add_argument("file", nargs="?", help="kinetics table (CSV/Excel/parquet)")
    nca.add_argument("--example", action="store_true", help="use the bundled example study")
    nca.add_argument("--subjects", metavar="FILE", help="subject table (for dose levels)")
    nca.add_argument("-o", "--output", metavar="FILE", help="write .csv or .parquet")
    nca.add_argument("--long", action="store_true", help="write one row per metric")
    nca.add_argument("--intervals", default="0-28,0-84", help="AUC intervals, days")
    _add_nca_options(nca)
    nca.add_argument("--tbb-method", default="observed", choices=["observed", "interpolated"])
    nca.set_defaults(handler=_cmd_nca)

    simulate = commands.add_parser(
        "simulate",
        epilog=_SUBCOMMAND_EXAMPLES["simulate"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
        help="simulate a virtual population",
        description="Draw a virtual population from a model's published variability and "
        "simulate its levels (with --lloq: observed samples with residual error and BLQ). "
        "A .parquet output is streamed in compiled chunks with bounded memory (any --n): one "
        "row per patient (subject, parameters, failed, one day_<t> column per time; BLQ "
        "empty), patients drawn in seeded blocks, so the file does not depend on "
        "--chunk-size; --summary writes per-time n, mean, min, 5th/50th/95th percentiles, "
        "max. A .csv output (or none) is a long table of the same patients as "
        "cellkin.simulate.virtual_population.",
    )
    simulate.add_argument("--model", default="stein2019", choices=models.available())
    simulate.add_argument("--n", type=int, default=100, help="number of subjects")
    simulate.add_argument("--seed", type=int, required=True, help="random seed (required)")
    simulate.add_argument(
        "--times", help="comma-separated sampling days (default 1,4,7,10,14,21,28,56,84,180,365)"
    )
    simulate.add_argument(
        "--schedule", metavar="FILE", help="CSV/parquet with a `time` column of sampling days"
    )
    simulate.add_argument("--lloq", type=float, help="LLOQ: add residual error and BLQ")
    simulate.add_argument("--sigma", type=float, help="log-scale residual SD (model default)")
    simulate.add_argument(
        "--omega", metavar="NAME=SD,...", help="between-subject SDs (default: the model's)"
    )
    simulate.add_argument("-o", "--output", metavar="FILE", help="write .csv or .parquet (streams)")
    simulate.add_argument("--params-output", metavar="FILE", help="write individual parameters")
    simulate.add_argument(
        "--summary", metavar="FILE", help="streamed run: write the per-time summary (.csv)"
    )
    simulate.add_argument(
        "--chunk-size",
        type=_positive_int,
        default=50_000,
        metavar="N",
        help="patients per compiled chunk when streaming (default 50000)",
    )
    simulate.add_argument("--no-progress", action="store_true", help="no progress bar")
    simulate.set_defaults(handler=_cmd_simulate)

    fit = commands.add_parser(
        "fit",
        epilog=_SUBCOMMAND_EXAMPLES["fit"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
        help="fit a kinetic model to every subject",
        description="Fit a model to each subject by maximum likelihood (M3 for BLQ samples) "
        "and write params.csv, metrics.csv, statistics.csv and failures.csv (one row per "
        "subject that could not be fitted or did not converge).",
    )
    fit.add_argument("file", nargs="?", help="kinetics table (CSV/Excel/parquet)")
    fit.add_argument("--example", action="store_true", help="use the bundled example study")
    _add_fit_options(fit)
    fit.add_argument("--assay", action="append", metavar="ASSAY",
                     help="assay to fit (repeat or comma-separate for a joint fit; "
                     "default qpcr)")  # fmt: skip
    fit.add_argument("--subject", action="append", metavar="ID", help="fit only ID (repeatable)")
    fit.add_argument("-o", "--output", metavar="DIR", help="output folder (default fit_MODEL)")
    fit.add_argument("--jobs", type=_positive_int, metavar="N",
                     help="worker processes (default: all CPUs; 1: in-process); with "
                     "--scheduler, only sizes the tasks")  # fmt: skip
    fit.add_argument("--scheduler", metavar="ADDRESS",
                     help="fit on a Dask cluster, e.g. tcp://host:8786 (pip install "
                     '"cellkin[dask]"); workers need cellkin installed')  # fmt: skip
    fit.add_argument("--checkpoint", metavar="FILE",
                     help="append finished subjects here; rerun to resume")  # fmt: skip
    fit.add_argument("--plots", action="store_true", help="write DIR/plots/SUBJECT.png")
    fit.set_defaults(handler=_cmd_fit)

    report = commands.add_parser(
        "report",
        help="the whole study analysis as one HTML report",
        description="Validate the study tables, run NCA, fit a model to every subject, "
        "derive model-based metrics, safety, efficacy (RECIST 1.1, PFS, OS) and "
        "exposure-response by dose level, and write DIR/report.html (self-contained) with "
        "DIR/tables/*.csv. FILES are recognised by their columns; name them with --kinetics, "
        "--subjects, --lesions, --adverse-events when that fails.",
        epilog=_SUBCOMMAND_EXAMPLES["report"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    report.add_argument("files", nargs="*", metavar="FILES", help="study tables")
    report.add_argument("--example", action="store_true", help="use the bundled example study")
    _add_table_options(report)
    report.add_argument("-o", "--output", metavar="DIR", default="cellkin_report",
                        help="output folder (default cellkin_report)")  # fmt: skip
    report.add_argument("--title", default="CAR-T cellular kinetics study report")
    _add_fit_options(report)
    _add_nca_options(report)
    report.add_argument("--jobs", type=_positive_int, metavar="N",
                        help="worker processes for the fits (default: all CPUs)")  # fmt: skip
    report.set_defaults(handler=_cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = _build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # the report shows the command line that made it
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.handler(args)
    except CellkinError as exc:
        if args.verbose:
            traceback.print_exc()
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"cellkin: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
