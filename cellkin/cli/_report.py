"""``cellkin report``: the whole study analysis as one HTML file plus CSV tables."""

from __future__ import annotations

import argparse
from pathlib import Path

from cellkin._display import Summary
from cellkin._output import OutputFolder
from cellkin.cli._options import (
    add_fit_options,
    add_nca_options,
    add_overwrite_option,
    add_table_options,
    command_parser,
    jobs,
    nca_keywords,
)
from cellkin.cli._output import command_line
from cellkin.errors import OptionError
from cellkin.io import STUDY_TABLES
from cellkin.report import load_example_inputs, load_inputs, study_report

__all__ = ["EXAMPLES", "add_parser", "run"]

EXAMPLES = """examples:
  cellkin report --example -o kd025_report
  cellkin report pk.csv subjects.csv lesions.csv ae.csv -o report --jobs 4
  cellkin report --kinetics pk.csv --subjects subjects.csv --model stein2019_lag
  cellkin report --example -o quick_report --no-population
"""


def add_parser(commands: argparse._SubParsersAction, parents: list) -> None:
    """Declare ``cellkin report`` and its options."""
    parser = command_parser(
        commands,
        "report",
        EXAMPLES,
        parents,
        help="the whole study analysis as one HTML report",
        description="Validate the study tables, run NCA, fit a model to every subject, "
        "derive model-based metrics, safety, efficacy (RECIST 1.1, PFS, OS) and "
        "exposure-response by dose level, and write DIR/report.html (self-contained) with "
        "DIR/tables/*.csv. FILES are recognised by their columns; name them with --kinetics, "
        "--subjects, --lesions, --adverse-events when that fails.",
    )
    parser.add_argument("files", nargs="*", metavar="FILES", help="study tables")
    parser.add_argument("--example", action="store_true", help="use the bundled example study")
    add_table_options(parser)
    parser.add_argument("-o", "--output", metavar="DIR", default="cellkin_report",
                        help="output folder (default cellkin_report)")  # fmt: skip
    add_overwrite_option(parser, "write into a non-empty output folder, replacing the files "
                         "a previous cellkin run wrote there")  # fmt: skip
    parser.add_argument("--title", default="CAR-T cellular kinetics study report")
    add_fit_options(parser)
    add_nca_options(parser)
    parser.add_argument("--jobs", type=jobs, metavar="N",
                        help="worker processes for the fits (default: all CPUs)")  # fmt: skip
    parser.add_argument("--no-population", action="store_true", dest="no_population",
                        help="skip the population (mixed-effects) model: per-subject fits "
                        "only")  # fmt: skip
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Read the study (or the example), analyse it and write the report folder."""
    named = {name: getattr(args, name) for name in STUDY_TABLES}
    if args.example == bool(args.files or any(named.values())):
        raise OptionError("give the study FILES (or --kinetics FILE ...) or --example")
    OutputFolder(args.output, overwrite=args.overwrite, argument="-o/--output")  # check now
    if args.example:
        inputs = load_example_inputs()
    else:
        inputs = load_inputs(
            args.files,
            tables=named,
            exclude_before=args.exclude_before,
            mapping=args.mapping,
            normalise_ids=args.normalise_ids,
        )
    report = study_report(
        inputs,
        title=args.title,
        command=command_line(args),
        model=args.model,
        **{
            ("nca_blq" if key == "blq" else key): value for key, value in nca_keywords(args).items()
        },
        fit_blq=args.blq,
        error=args.error,
        n_starts=args.starts,
        seed=args.seed,
        n_jobs=args.jobs,
        population=not args.no_population,
        progress=not args.no_progress,
    )
    paths = report.write(args.output, overwrite=args.overwrite)
    tables = Path(args.output) / "tables"
    summary = report.summary()
    notes = (f"{len(report.failures)} failure/exclusion row(s): see {tables / 'failures.csv'}",)
    print(Summary(summary.title, summary.tables, notes))
    print(f"\nwrote {paths['report']} and {len(paths) - 1} CSV tables to {tables}")
    if len(report.failures):
        print(f"{len(report.failures)} step(s) or subject(s) left out: listed in "
              f"{paths['failures']} and under 'Failures and exclusions' in the report")  # fmt: skip
    return 0
