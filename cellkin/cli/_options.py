"""Option groups shared by several commands, and how they turn into library arguments.

An option that means the same in two commands is declared once here (``--kinetics`` ...,
the NCA options, the fit options) and translated to the library's keywords in one place
(:func:`nca_keywords`, :func:`fit_keywords`), so that a renamed library argument is one edit.
"""

from __future__ import annotations

import argparse
from typing import Any

from cellkin import models
from cellkin.cli._types import MAX_JOBS, MAX_STARTS, integer, number

__all__ = [
    "add_fit_options",
    "add_mapping_option",
    "add_nca_options",
    "add_overwrite_option",
    "add_table_options",
    "comma_list",
    "command_parser",
    "fit_keywords",
    "jobs",
    "nca_keywords",
]

#: ``argparse`` type of ``--jobs``: 1 to :data:`~cellkin.cli._types.MAX_JOBS` processes.
jobs = integer(1, MAX_JOBS)


def command_parser(
    commands: Any, name: str, examples: str, parents: list[argparse.ArgumentParser], **kwargs: Any
) -> argparse.ArgumentParser:
    """Add subcommand `name` with its examples as the epilog (kept as written)."""
    return commands.add_parser(
        name,
        epilog=examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=parents,
        **kwargs,
    )


def add_table_options(parser: argparse.ArgumentParser) -> None:
    """The study-table options shared by ``validate`` and ``report``."""
    parser.add_argument("--kinetics", metavar="FILE", help="qPCR/flow samples (CSV/Excel/parquet)")
    parser.add_argument("--subjects", metavar="FILE", help="one row per subject")
    parser.add_argument("--lesions", metavar="FILE", help="RECIST lesion measurements")
    parser.add_argument("--adverse-events", metavar="FILE", dest="adverse_events",
                        help="adverse events (CTCAE grades)")  # fmt: skip
    parser.add_argument(
        "--exclude-before",
        type=number(),
        metavar="DAY",
        help="exclude kinetics samples before this day (listed, not lost)",
    )
    add_mapping_option(parser)
    parser.add_argument("--normalise-ids", action="store_true", dest="normalise_ids",
                        help="treat subject ids that differ only in case or surrounding "
                        "blanks as one subject (reported)")  # fmt: skip


def add_mapping_option(parser: argparse.ArgumentParser) -> None:
    """``--mapping FILE``: how to read the kinetics file (a TOML column mapping)."""
    parser.add_argument(
        "--mapping",
        metavar="FILE.toml",
        help="TOML file saying how to read the kinetics file (column renames, "
        "constants such as assay/unit/lloq, date_format, sep, decimal)",
    )


def add_nca_options(parser: argparse.ArgumentParser) -> None:
    """The NCA options shared by ``nca`` and ``report``."""
    parser.add_argument("--auc-method", default="linear",
                        choices=["linear", "linup-logdown", "log"])  # fmt: skip
    parser.add_argument("--blq-rule", default="positional",
                        choices=["positional", "zero", "lloq/2", "drop"])  # fmt: skip
    parser.add_argument("--baseline", default="lloq",
                        choices=["lloq", "lloq_only", "max_pre_infusion"])  # fmt: skip


def nca_keywords(args: argparse.Namespace) -> dict[str, Any]:
    """The keywords of :func:`cellkin.nca` set by :func:`add_nca_options`."""
    return {"auc_method": args.auc_method, "blq": args.blq_rule, "baseline": args.baseline}


def add_fit_options(parser: argparse.ArgumentParser) -> None:
    """The fit options shared by ``fit`` and ``report``."""
    parser.add_argument("--model", default="stein2019", choices=models.available())
    parser.add_argument("--error", default="log-additive", choices=["log-additive", "combined"])
    parser.add_argument("--blq", default="m3", choices=["m3", "drop", "lloq/2"],
                        help="BLQ method of the fits (default m3)")  # fmt: skip
    parser.add_argument("--starts", type=integer(1, MAX_STARTS), default=4, metavar="N",
                        help=f"starts per subject (1 to {MAX_STARTS}; default 4)")  # fmt: skip
    parser.add_argument("--seed", type=integer(0), default=0,
                        help="seed of the multi-start design (>= 0)")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def comma_list(items: list[str] | None) -> list[str]:
    """The names of a repeatable, comma-separated option (``--assay qpcr,flow --assay x``),
    blanks dropped, in the order given."""
    return [name.strip() for item in items or () for name in item.split(",") if name.strip()]


def add_overwrite_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--overwrite``: accept an existing output, replacing only what cellkin wrote."""
    parser.add_argument("--overwrite", action="store_true", help=what)


def fit_keywords(args: argparse.Namespace) -> dict[str, Any]:
    """The keywords of :func:`cellkin.fit_all` set by :func:`add_fit_options` (not the model)."""
    return {"error": args.error, "blq": args.blq, "n_starts": args.starts, "seed": args.seed}
