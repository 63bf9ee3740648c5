"""The ``cellkin`` parser and entry point: global options, the subcommands, error handling."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from cellkin._version import __version__
from cellkin.cli import _fit, _nca, _report, _simulate, _validate
from cellkin.errors import CellkinError

__all__ = ["build_parser", "main"]

EPILOG = """examples:
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
#: The subcommands in the order ``cellkin --help`` lists them, one module each.
COMMANDS = (_validate, _nca, _simulate, _fit, _report)


def build_parser() -> argparse.ArgumentParser:
    """The ``cellkin`` argument parser with every subcommand (e.g. for sphinx-argparse).

    Each subcommand's parser has a ``handler`` default: the function that runs it and returns
    the exit status.
    """
    parser = argparse.ArgumentParser(
        prog="cellkin",
        description="CAR-T cellular kinetics: validate study tables, simulate, analyse.",
        epilog=EPILOG,
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
    for command in COMMANDS:
        command.add_parser(commands, [common])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success; 2 on bad input or options (any :class:`~cellkin.errors.CellkinError`),
        after printing one line ``cellkin: error: ...`` to stderr (and the traceback with
        ``--verbose``). ``--help`` and ``--version`` exit through ``SystemExit(0)``.
    """
    parser = build_parser()
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
