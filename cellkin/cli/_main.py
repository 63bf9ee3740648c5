"""The ``cellkin`` parser and entry point: global options, the subcommands, error handling.

No traceback reaches a user: :func:`main` turns every error into one ``cellkin: error:``
line on stderr and an exit status (:data:`EXIT_CODES`), and every warning into one
``cellkin: warning:`` line; ``--debug`` also prints the traceback. The parser's own errors
(an unknown option, a value out of range) are one line too, instead of argparse's usage
block.
"""

from __future__ import annotations

import _thread
import argparse
import os
import sys
import threading
import traceback
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

from cellkin._version import __version__
from cellkin.cli import _fit, _nca, _report, _simulate, _validate
from cellkin.errors import CellkinError, FitError

__all__ = ["EXIT_CODES", "build_parser", "main"]

#: Exit status by outcome.
EXIT_CODES = {"success": 0, "failure": 1, "usage": 2, "interrupted": 130}

EPILOG = """examples:
  cellkin report --example -o kd025_report
  cellkin validate pk.csv subjects.csv lesions.csv ae.csv
  cellkin nca --example -o nca.csv --auc-method linup-logdown
  cellkin nca pk.csv --intervals 0-28,0-84,0-180 --long -o nca_long.csv
  cellkin simulate --model stein2019 --n 1000 --seed 1 --times 1,4,7,14,28 --lloq 50 -o sim.csv
  cellkin simulate --n 1000000 --seed 1 -o pop.parquet --summary summary.csv
  cellkin fit pk.csv --model stein2019 -o fits --jobs 4 --checkpoint fits.jsonl --plots
  cellkin fit pk.csv --scheduler tcp://scheduler:8786 -o fits

outputs: an existing output file or non-empty folder is refused unless --overwrite is given
(which replaces only files a previous cellkin run wrote there); files are written
atomically, with a manifest (files, rows, SHA-256, version, command) written last; CSV text
cells starting with = + - @ tab or CR get a leading apostrophe (spreadsheet formula
injection).

exit status: 0 success; 1 failure (a fit, a file or memory problem, an unexpected error);
2 bad input or usage; 130 interrupted (Ctrl-C). --debug shows the traceback.

Run `cellkin COMMAND --help` for each command's options and examples.
"""
#: The subcommands in the order ``cellkin --help`` lists them, one module each.
COMMANDS = (_validate, _nca, _simulate, _fit, _report)


class _UsageError(Exception):
    """A command line the parser refused (its message is one line)."""


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (raised to :func:`main`), not a usage
    block and ``SystemExit``."""

    def error(self, message: str) -> NoReturn:
        """Raise the parser's complaint as one line naming the command's ``--help``."""
        raise _UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    """The ``cellkin`` argument parser with every subcommand (e.g. for sphinx-argparse).

    Each subcommand's parser has a ``handler`` default: the function that runs it and returns
    the exit status.
    """
    parser = _Parser(
        prog="cellkin",
        description="CAR-T cellular kinetics: validate study tables, simulate, analyse.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"cellkin {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--verbose", action="store_true", dest="debug", help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    # --debug also after the subcommand (`cellkin fit x.csv --debug`); SUPPRESS keeps a
    # --debug given before it. --verbose is the former name.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks on errors")  # fmt: skip
    common.add_argument("--verbose", action="store_true", dest="debug",
                        default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # fmt: skip
    for command in COMMANDS:
        command.add_parser(commands, [common])
    return parser


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _os_message(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or _first_line(exc)}{where}"


def _message(exc: BaseException) -> tuple[str, int]:
    """One line and the exit status for an error that ended a command."""
    if isinstance(exc, FitError):
        return _first_line(exc), EXIT_CODES["failure"]
    if isinstance(exc, CellkinError):
        return _first_line(exc), EXIT_CODES["usage"]
    if isinstance(exc, MemoryError):
        return (
            "out of memory; use a smaller input or option (--n, --chunk-size, --jobs), or a "
            ".parquet output where there is one",
            EXIT_CODES["failure"],
        )
    if isinstance(exc, OSError):
        return _os_message(exc), EXIT_CODES["failure"]
    return (
        f"unexpected {type(exc).__name__}: {_first_line(exc)} (rerun with --debug for the "
        f"traceback, and please report it)",
        EXIT_CODES["failure"],
    )


def _interrupted(args: argparse.Namespace) -> int:
    checkpoint = getattr(args, "checkpoint", None)
    hint = (
        f"; finished subjects are kept in {checkpoint}: rerun the same command to resume"
        if checkpoint
        else ""
    )
    print(f"\ncellkin: interrupted{hint}", file=sys.stderr)
    return EXIT_CODES["interrupted"]


@contextmanager
def _interrupts_delivered() -> Iterator[None]:
    """A Ctrl-C that lands inside a C callback (numba's cache loading calls back into Python
    through ctypes) is printed by CPython as "Exception ignored on calling ctypes callback
    function" with a traceback, and swallowed. Deliver it again to the main thread instead, so
    that it ends the command as any other Ctrl-C does (one line, exit 130). It is delivered
    from a timer thread a moment later: raised in the hook itself, it would only be reported
    as an exception in the hook; should it land in a callback again, it is delivered again."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            threading.Timer(0.01, _thread.interrupt_main).start()
        else:
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


@contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Show each warning as one ``cellkin: warning:`` line (no source line, no file name)."""

    def show(message: Any, category: type[Warning], *_: Any, **__: Any) -> None:
        print(f"cellkin: warning: {_first_line(message)}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success; 1 on a failure (a fit or file operation that could not be carried out,
        out of memory, an unexpected error); 2 on bad input or usage (a bad option value,
        an invalid table, an output the output policy refuses); 130 when interrupted
        (Ctrl-C). Each error prints one line ``cellkin: error: ...`` to stderr (and the
        traceback with ``--debug``). ``--help`` and ``--version`` exit through
        ``SystemExit(0)``.
    """
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        print(f"cellkin: error: {exc}", file=sys.stderr)
        return EXIT_CODES["usage"]
    args.argv = argv  # the report and the manifests record the command line
    if args.command is None:
        parser.print_help()
        return EXIT_CODES["success"]
    with _one_line_warnings(), _interrupts_delivered():
        try:
            return args.handler(args)
        except KeyboardInterrupt:
            return _interrupted(args)
        except BrokenPipeError:  # output piped into `head` & co.: stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_CODES["failure"]
        except Exception as exc:
            if args.debug:
                traceback.print_exc()
            message, status = _message(exc)
            print(f"cellkin: error: {message}", file=sys.stderr)
            return status
