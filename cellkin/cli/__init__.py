"""The ``cellkin`` command line (``cellkin.cli:main``; also ``python -m cellkin``).

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
where they mean the same: ``--example``, ``-o/--output``, ``--overwrite``, ``--model``,
``--seed``, ``--jobs``, ``--no-progress``.

Errors and exit status. No traceback reaches a user: every error is one line starting with
``cellkin: error:`` on stderr, and the exit status says what happened — 0 success; 1 a
failure (a fit or file operation that could not be carried out, out of memory, an
unexpected error); 2 bad input or usage (an invalid table, a bad option value, an output the
policy below refuses); 130 interrupted (Ctrl-C; a fit's checkpoint keeps the finished
subjects). ``--debug`` (before or after the command) also prints the traceback. Every numeric
option is checked by the parser (finite, in its range: e.g. ``--seed`` >= 0, ``--starts``
1 to 1000) before any work; warnings are one ``cellkin: warning:`` line each.

Outputs. Every target is checked before any work starts: an existing output file, or an
output folder that is not empty, is refused unless ``--overwrite`` is given, which replaces
only the files a previous cellkin run wrote there (listed in its manifest); ``-o`` naming a
file where a folder is expected (or the reverse), or a place that cannot be written, is one
error line. Files are written under a temporary name and renamed when complete, and a
manifest — ``cellkin-manifest.json`` in an output folder, ``NAME.manifest.json`` beside a
file — lists each file's rows, bytes and SHA-256 with the cellkin version and the command;
it is written last, so an output without it is an interrupted run. CSV text cells that start
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (e.g. a subject id
``=HYPERLINK(...)``) are written with a leading apostrophe so that spreadsheets show them as
text instead of running them (OWASP's CSV-injection rule; numbers are untouched). See
:mod:`cellkin._output` and :mod:`cellkin._csv`.

Layout: one private module per command (``_validate``, ``_nca``, ``_simulate``, ``_fit``,
``_report``: its options, examples and handler), the option groups they share
(``_options``), the argument types with their limits (``_types``), output targets and table
output (``_output``) and the parser with the entry point (``_main``). Commands call the
library through its public names only (and the private core helpers for outputs).
"""

from __future__ import annotations

from cellkin.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
