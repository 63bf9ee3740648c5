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
where they mean the same: ``--example``, ``-o/--output``, ``--model``, ``--seed``, ``--jobs``,
``--no-progress``. Bad input prints one line starting with ``cellkin: error:`` and exits with
status 2; ``--verbose`` (before or after the command) shows the traceback too.

Layout: one private module per command (``_validate``, ``_nca``, ``_simulate``, ``_fit``,
``_report``: its options, examples and handler), the option groups they share
(``_options``), table output (``_output``) and the parser with the entry point (``_main``).
Commands call the library through its public names only.
"""

from __future__ import annotations

from cellkin.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
