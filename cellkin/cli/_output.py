"""The commands' output files: format by extension, the output policy, the manifest.

Every output target is checked before any work starts (:func:`table_target`, or a
:class:`~cellkin._output.OutputFolder` for ``-o DIR``): an unsupported extension, an
existing file or non-empty folder without ``--overwrite``, a folder given for a file (or the
reverse) and a place that cannot be written are each one ``cellkin: error:`` line. Tables
are then written atomically and, for CSV, injection-safe (see :mod:`cellkin._output` and
:mod:`cellkin._csv`), and the run's manifest last.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import pandas as pd

from cellkin._output import OutputFiles
from cellkin.errors import OptionError

__all__ = ["command_line", "table_target", "write_table"]

_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def command_line(args: argparse.Namespace) -> str:
    """The command that is running, as a shell would take it (for manifests)."""
    return shlex.join(["cellkin", *getattr(args, "argv", [])])


def table_target(
    outputs: OutputFiles, path: str, *, overwrite: bool, argument: str = "-o/--output"
) -> Path:
    """Check a table's output file (extension and policy) before any work; reserve it."""
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMATS:
        raise OptionError(
            f"{argument}: {path}: unsupported output extension {suffix!r}; use .csv or .parquet"
        )
    return outputs.target(path, overwrite=overwrite, argument=argument)


def write_table(outputs: OutputFiles, frame: pd.DataFrame, path: Path) -> None:
    """Write `frame` as CSV or parquet, chosen by the extension of `path` (no index)."""
    if _FORMATS[path.suffix.lower()] == "csv":
        outputs.csv(path, frame)
    else:
        outputs.parquet(path, frame)
