"""``cellkin validate``: read and validate study tables and print a summary of each."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from cellkin._version import __version__
from cellkin.cli._options import add_table_options, command_parser
from cellkin.datasets import load_example
from cellkin.errors import DataError
from cellkin.io import (
    STUDY_TABLES,
    identify_table,
    kinetics_summary,
    read_adverse_events,
    read_kinetics,
    read_lesions,
    read_subjects,
)

__all__ = ["EXAMPLES", "add_parser", "run"]

EXAMPLES = """examples:
  cellkin validate --example
  cellkin validate pk.csv subjects.csv lesions.csv ae.csv
  cellkin validate --kinetics pk.csv --exclude-before -7
"""


def add_parser(commands: argparse._SubParsersAction, parents: list) -> None:
    """Declare ``cellkin validate`` and its options."""
    parser = command_parser(
        commands,
        "validate",
        EXAMPLES,
        parents,
        help="validate study tables and print a summary",
        description="Read, validate and summarise study tables.",
    )
    parser.add_argument("files", nargs="*", metavar="FILES",
                        help="study tables, recognised by their columns")  # fmt: skip
    parser.add_argument("--example", action="store_true", help="use the bundled example study")
    add_table_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Validate the tables named in `args` (or the example study) and print their summaries."""
    if args.example:
        study = load_example()
        tables = {
            "kinetics": study.kinetics,
            "subjects": study.subjects,
            "lesions": study.lesions,
            "adverse_events": study.adverse_events,
        }
        print(f"cellkin {__version__}: bundled example study (synthetic) from {study.source}")
    else:
        paths = _table_paths(args)
        readers = _readers(args.exclude_before)
        tables = {name: readers[name](path) for name, path in paths.items()}
        print(f"cellkin {__version__}: validated {', '.join(map(str, paths.values()))}")
    for name, table in tables.items():
        print(f"\n{name}: {len(table)} rows, {table['subject'].nunique()} subjects — valid")
        if name == "kinetics":
            print(kinetics_summary(table).to_string(index=False))
        elif name == "subjects":
            print(_subjects_summary(table).to_string(index=False))
    return 0


def _readers(exclude_before: float | None) -> dict[str, Callable[[Path | str], pd.DataFrame]]:
    return {
        "kinetics": lambda path: read_kinetics(path, exclude_before=exclude_before),
        "subjects": read_subjects,
        "lesions": read_lesions,
        "adverse_events": read_adverse_events,
    }


def _table_paths(args: argparse.Namespace) -> dict[str, Path | str]:
    """Table name -> file: the named options first, then FILES recognised by their columns."""
    paths = {name: getattr(args, name) for name in STUDY_TABLES if getattr(args, name)}
    for path in args.files:
        name = identify_table(path)
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
