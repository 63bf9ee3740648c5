"""``cellkin nca``: observed (non-compartmental) metrics per subject × assay, with a summary."""

from __future__ import annotations

import argparse

from cellkin._output import OutputFiles
from cellkin._version import __version__
from cellkin.cli._options import (
    add_mapping_option,
    add_nca_options,
    add_overwrite_option,
    command_parser,
    nca_keywords,
)
from cellkin.cli._output import command_line, table_target, write_table
from cellkin.cli._types import number
from cellkin.datasets import load_example
from cellkin.errors import OptionError
from cellkin.io import read_kinetics, read_subjects
from cellkin.metrics import nca, nca_long, summarize

__all__ = ["EXAMPLES", "add_parser", "parse_intervals", "run"]

EXAMPLES = """examples:
  cellkin nca --example -o nca.csv --auc-method linup-logdown
  cellkin nca pk.csv --subjects subjects.csv --intervals 0-28,0-84,0-180
  cellkin nca pk.csv --long -o nca_long.parquet
"""
_SUMMARY_COLUMNS = ("assay", "metric", "unit", "n", "geo_mean", "geo_cv_pct", "median", "min",
                    "max")  # fmt: skip


def add_parser(commands: argparse._SubParsersAction, parents: list) -> None:
    """Declare ``cellkin nca`` and its options."""
    parser = command_parser(
        commands,
        "nca",
        EXAMPLES,
        parents,
        help="observed (NCA) metrics per subject and assay",
        description="Cmax, Tmax, AUCs, lambda_z, half-life and time back to baseline per "
        "subject x assay (PKNCA conventions), with a summary by dose level.",
    )
    parser.add_argument("file", nargs="?", help="kinetics table (CSV/Excel/parquet)")
    parser.add_argument("--example", action="store_true", help="use the bundled example study")
    parser.add_argument("--subjects", metavar="FILE", help="subject table (for dose levels)")
    add_mapping_option(parser)
    parser.add_argument("-o", "--output", metavar="FILE", help="write .csv or .parquet")
    add_overwrite_option(parser, "replace an existing output file")
    parser.add_argument("--long", action="store_true", help="write one row per metric")
    parser.add_argument("--intervals", default="0-28,0-84", help="AUC intervals, days")
    add_nca_options(parser)
    parser.add_argument("--tbb-method", default="observed", choices=["observed", "interpolated"])
    parser.set_defaults(handler=run)


def parse_intervals(text: str) -> list[tuple[float, float]]:
    """``"0-28,0-84"`` -> ``[(0.0, 28.0), (0.0, 84.0)]`` (finite days, start < end)."""
    day = number()
    try:
        pairs = [item.split("-") for item in text.split(",") if item.strip()]
        intervals = [(day(start), day(end)) for start, end in pairs]
    except (ValueError, argparse.ArgumentTypeError):
        intervals = []
    if not intervals or any(start >= end for start, end in intervals):
        raise OptionError(
            f"--intervals: {text!r} is not a list of START-END days with START < END, "
            f"e.g. 0-28,0-84"
        )
    return intervals


def run(args: argparse.Namespace) -> int:
    """Compute the NCA table, write it (wide or long) and print the summary by dose level."""
    if args.example == bool(args.file):
        raise OptionError("give either a kinetics FILE or --example")
    outputs = OutputFiles(command_line(args))
    target = table_target(outputs, args.output, overwrite=args.overwrite) if args.output else None
    options = {
        "intervals": parse_intervals(args.intervals),
        **nca_keywords(args),
        "tbb_method": args.tbb_method,
    }
    subjects = None
    if args.example:
        study = load_example()
        kinetics, subjects = study.kinetics, study.subjects
    else:
        if args.subjects:
            subjects = read_subjects(args.subjects)
        infusion = subjects if subjects is not None and "infusion_date" in subjects else None
        kinetics = read_kinetics(args.file, mapping=args.mapping, infusion_dates=infusion)
    table = nca(kinetics, **options)
    if target is not None:
        output = nca_long(table) if args.long else table
        write_table(outputs, output, target)
        outputs.finish()
        print(f"wrote {len(output)} rows to {args.output}")
    by = "dose_level" if subjects is not None and "dose_level" in subjects else None
    summary = summarize(table, by=by, subjects=subjects)
    columns = [by, *_SUMMARY_COLUMNS] if by else list(_SUMMARY_COLUMNS)
    print(f"NCA ({args.auc_method} trapezoid, BLQ rule {args.blq_rule}), cellkin {__version__}")
    print(summary.loc[:, columns].to_string(index=False, float_format="{:.4g}".format))
    return 0
