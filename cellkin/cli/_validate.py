"""``cellkin validate``: read and validate study tables and print a summary of each."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from cellkin._version import __version__
from cellkin.cli._options import add_table_options, command_parser
from cellkin.datasets import load_example
from cellkin.errors import DataError
from cellkin.io import STUDY_TABLES, identify_table, kinetics_summary, read_study

__all__ = ["EXAMPLES", "add_parser", "run"]

EXAMPLES = """examples:
  cellkin validate --example
  cellkin validate pk.csv subjects.csv lesions.csv ae.csv
  cellkin validate --kinetics pk.csv --exclude-before -7
  cellkin validate lims_export.csv subjects.csv --mapping lab.toml --normalise-ids
"""


def add_parser(commands: argparse._SubParsersAction, parents: list) -> None:
    """Declare ``cellkin validate`` and its options."""
    parser = command_parser(
        commands,
        "validate",
        EXAMPLES,
        parents,
        help="validate study tables and print a summary",
        description="Read, validate and summarise study tables: print what was recognised and "
        "converted in each (BLQ text, dates, visit labels, units, column names) and every "
        "problem found, within and across the tables, in one pass (exit 2 on errors).",
    )
    parser.add_argument("files", nargs="*", metavar="FILES",
                        help="study tables, recognised by their columns")  # fmt: skip
    parser.add_argument("--example", action="store_true", help="use the bundled example study")
    add_table_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Validate the tables named in `args` (or the example study), print their summaries, what
    was recognised and converted, and every problem found (exit 2 when there are errors)."""
    if args.example:
        study = load_example()
        paths: dict = {name: getattr(study, name) for name in STUDY_TABLES}
        print(f"cellkin {__version__}: bundled example study (synthetic) from {study.source}")
    else:
        paths = _table_paths(args)
        print(f"cellkin {__version__}: validating {', '.join(map(str, paths.values()))}")
    result = read_study(
        paths,
        mapping=args.mapping,
        exclude_before=args.exclude_before,
        normalise_ids=args.normalise_ids,
    )
    notes = result.notes()
    for name, table in result.tables.items():
        if table is None:
            continue
        print(f"\n{name}: {len(table)} rows, {table['subject'].nunique()} subjects — read")
        if name == "kinetics":
            print(kinetics_summary(table).to_string(index=False))
        elif name == "subjects":
            print(_subjects_summary(table).to_string(index=False))
        mine = notes[notes["table"] == name]
        if len(mine):
            print("recognised and converted:")
            for note in mine.itertuples():
                where = f"`{note.column}`: " if note.column else ""
                print(f"  - {where}{note.note} ({note.rows} rows)")
    return _report_problems(result.problems)


def _report_problems(problems: pd.DataFrame) -> int:
    """Print every problem; raise (exit 2) when any is an error."""
    if problems.empty:
        print("\nno problems found: the tables are valid and agree with each other")
        return 0
    print(f"\nproblems ({len(problems)}):")
    for row in problems.itertuples():
        who = f" {row.subject}" if row.subject else ""
        cols = f" [{row.columns}]" if row.columns else ""
        print(f"  {row.severity.upper()} {row.table}{who}{cols}: {row.message}")
    errors = int((problems["severity"] == "error").sum())
    if errors:
        first = problems[problems["severity"] == "error"].iloc[0]
        raise DataError(
            f"{errors} error(s) in the study tables, all listed above; the first: "
            f"{first['message']}"
        )
    return 0


def _table_paths(args: argparse.Namespace) -> dict[str, Path | str]:
    """Table name -> file: the named options first, then FILES recognised by their columns."""
    paths = {name: getattr(args, name) for name in STUDY_TABLES if getattr(args, name)}
    for path in args.files:
        name = identify_table(path, mapping=args.mapping)
        if name in paths:
            raise DataError(f"{path}: a second {name} table (the first is {paths[name]})")
        paths[name] = path
    if not paths:
        raise DataError("nothing to validate: give at least one table or --example")
    return paths


def _subjects_summary(subjects: pd.DataFrame) -> pd.DataFrame:
    """Subjects (and responders, DLTs when known) by dose level (or dose)."""
    by = "dose_level" if "dose_level" in subjects else "dose"
    summary = subjects.groupby(by, sort=True).agg(subjects=("subject", "size"))
    for column in ("responder", "dlt"):
        if column in subjects:
            summary[column] = subjects.groupby(by, sort=True)[column].sum().astype(int)
    return summary.reset_index()
