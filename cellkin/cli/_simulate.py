"""``cellkin simulate``: a virtual population from a registered model, as a kinetics table.

A ``.parquet`` output (or ``--summary`` alone) is streamed in compiled chunks with bounded
memory (:func:`cellkin.simulate.simulate_population`); a ``.csv`` output (or none) is a long
table of the patients of :func:`cellkin.simulate.virtual_population`, noise-free or, with
``--lloq``, as a laboratory reports them (:func:`cellkin.simulate.sample_trial`). That table
is held in memory, so its size is estimated before anything is drawn and a table too large
for the memory available is refused with the amount and the streamed alternative.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from cellkin import models
from cellkin._memory import check_memory
from cellkin._output import OutputFiles
from cellkin.cli._options import add_overwrite_option, command_parser
from cellkin.cli._output import command_line, table_target, write_table
from cellkin.cli._types import MAX_CHUNK_SIZE, MAX_PATIENTS, integer, number
from cellkin.errors import DataError, OptionError
from cellkin.simulate import sample_trial, simulate_population, virtual_population

__all__ = ["EXAMPLES", "add_parser", "run"]

EXAMPLES = """examples:
  cellkin simulate --model stein2019 --n 1000 --seed 1 --lloq 50 -o sim.csv
  cellkin simulate --n 1000000 --seed 1 -o pop.parquet --summary summary.csv
  cellkin simulate --model kimmel2021 --n 10000 --seed 2 --schedule visits.csv -o k.parquet
"""
_DEFAULT_TIMES = "1,4,7,10,14,21,28,56,84,180,365"
_DESCRIPTION = (
    "Draw a virtual population from a model's published variability and simulate its levels "
    "(with --lloq: observed samples with residual error and BLQ). A .parquet output is "
    "streamed in compiled chunks with bounded memory (any --n): one row per patient (subject, "
    "parameters, failed, one day_<t> column per time; BLQ empty), patients drawn in seeded "
    "blocks, so the file does not depend on --chunk-size; --summary writes per-time n, mean, "
    "min, 5th/50th/95th percentiles, max. A .csv output (or none) is a long table of the same "
    "patients as cellkin.simulate.virtual_population."
)


def add_parser(commands: argparse._SubParsersAction, parents: list) -> None:
    """Declare ``cellkin simulate`` and its options."""
    parser = command_parser(
        commands,
        "simulate",
        EXAMPLES,
        parents,
        help="simulate a virtual population",
        description=_DESCRIPTION,
    )
    parser.add_argument("--model", default="stein2019", choices=models.available())
    parser.add_argument("--n", type=integer(1, MAX_PATIENTS), default=100,
                        help="number of subjects (default 100)")  # fmt: skip
    parser.add_argument("--seed", type=integer(0), required=True,
                        help="random seed, >= 0 (required)")  # fmt: skip
    parser.add_argument("--times", help=f"comma-separated sampling days (default {_DEFAULT_TIMES})")
    parser.add_argument(
        "--schedule", metavar="FILE", help="CSV/parquet with a `time` column of sampling days"
    )
    parser.add_argument("--lloq", type=number(0, above=True),
                        help="LLOQ (> 0): add residual error and BLQ")  # fmt: skip
    parser.add_argument("--sigma", type=number(0, 10),
                        help="log-scale residual SD, 0 to 10 (model default)")  # fmt: skip
    parser.add_argument(
        "--omega", metavar="NAME=SD,...", help="between-subject SDs (default: the model's)"
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write .csv or .parquet (streams)")
    parser.add_argument("--params-output", metavar="FILE", help="write individual parameters")
    parser.add_argument(
        "--summary", metavar="FILE", help="streamed run: write the per-time summary (.csv)"
    )
    parser.add_argument(
        "--chunk-size",
        type=integer(1, MAX_CHUNK_SIZE),
        default=50_000,
        metavar="N",
        help="patients per compiled chunk when streaming (default 50000)",
    )
    add_overwrite_option(parser, "replace existing output files")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Simulate, streamed to parquet (or summarised) or as one long table."""
    model = models.get(args.model)
    outputs = OutputFiles(command_line(args))
    output = _target(outputs, args.output, args, "-o/--output")
    if args.summary and not (output is None or output.suffix.lower() in (".parquet", ".pq")):
        raise OptionError("--summary needs a .parquet output (-o out.parquet) or no -o at all")
    summary = _target(outputs, args.summary, args, "--summary")
    params = _target(outputs, args.params_output, args, "--params-output")
    if params is not None and output is None:
        raise OptionError("--params-output needs an output file (-o sim.csv or -o pop.parquet)")
    times = _sampling_times(args)
    omega = _parse_omega(args.omega)
    if (output and output.suffix.lower() in (".parquet", ".pq")) or (summary and not output):
        _streamed(args, model, times, omega, (outputs, output, summary, params))
    else:
        _long_table(args, model, times, omega, (outputs, output, params))
    outputs.finish()
    return 0


def _target(outputs: OutputFiles, path: str | None, args: argparse.Namespace, argument: str):
    if not path:
        return None
    return table_target(outputs, path, overwrite=args.overwrite, argument=argument)


def _sampling_times(args: argparse.Namespace) -> np.ndarray:
    """Sampling days from --schedule (a file) or --times (a list), sorted and unique."""
    if args.schedule and args.times:
        raise OptionError("give either --times or --schedule, not both")
    if not args.schedule:
        return _parse_times(args.times or _DEFAULT_TIMES)
    path = Path(args.schedule)
    if not path.is_file():
        raise DataError(f"{path}: no such file (--schedule)")
    frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    if "time" not in frame:
        raise DataError(f"{path}: no `time` column (sampling days since infusion)")
    times = pd.to_numeric(frame["time"], errors="coerce").to_numpy(dtype=float)
    if times.size == 0 or not np.isfinite(times).all():
        raise DataError(f"{path}: column `time` must hold finite days, e.g. 1, 4, 7, 14")
    return np.unique(times)


def _parse_times(text: str) -> np.ndarray:
    """``"7,1,7"`` -> ``[1, 7]``: finite days, sorted, each once (with a note when the list
    was not), so that the table written has one sample per subject and day, as
    :func:`cellkin.read_kinetics` requires."""
    try:
        given = np.array([float(item) for item in text.split(",") if item.strip()])
    except ValueError:
        raise OptionError(
            f"--times: {text!r} is not a comma-separated list of days, e.g. 1,4,7,14,28"
        ) from None
    if given.size == 0 or not np.isfinite(given).all():
        raise OptionError("--times: give at least one finite day, e.g. 1,4,7,14,28")
    times = np.unique(given)
    if times.size != given.size or (np.diff(given) <= 0).any():
        listed = ",".join(f"{t:g}" for t in times)
        print(f"cellkin: note: --times sorted, each day once: {listed}", file=sys.stderr)
    return times


def _parse_omega(text: str | None) -> dict[str, float] | None:
    """``"cmax=0.8,tmax=0.2"`` -> ``{"cmax": 0.8, "tmax": 0.2}`` (None: the model's own)."""
    if not text:
        return None
    sd = number(0, 10)
    try:
        return {k.strip(): sd(v) for k, v in (item.split("=") for item in text.split(","))}
    except (ValueError, argparse.ArgumentTypeError):
        raise OptionError(
            f"--omega: {text!r} is not NAME=SD,... with each SD from 0 to 10, e.g. cmax=0.8"
        ) from None


def _streamed(
    args: argparse.Namespace,
    model: models.Model,
    times: np.ndarray,
    omega: dict[str, float] | None,
    targets: tuple,
) -> None:
    """Stream the population in compiled chunks; write the file, summary and parameters."""
    outputs, output, summary, params = targets
    result = simulate_population(
        model,
        args.n,
        seed=args.seed,
        times=times,
        chunk_size=args.chunk_size,
        output=output,
        sigma=args.sigma,
        lloq=args.lloq,
        omega=omega,
        progress=not args.no_progress,
        overwrite=args.overwrite,
    )
    if output is not None:
        outputs.add(output, rows=args.n)
    if summary is not None:
        write_table(outputs, result.summary, summary)
    if params is not None:
        write_table(outputs, result.read(["subject", *model.param_names]), params)
    where = f" to {output} (one row per patient)" if output else ""
    print(f"simulated {args.n} patients x {times.size} times{where}")
    print(result.summary.to_string(index=False, float_format="{:.4g}".format))


#: Bytes per row of the long table in memory (subject, time, value, unit and, with --lloq,
#: assay, lloq, blq), with the copies made while it is built and written.
_BYTES_PER_ROW = 200


def _long_table(
    args: argparse.Namespace,
    model: models.Model,
    times: np.ndarray,
    omega: dict[str, float] | None,
    targets: tuple,
) -> None:
    """One row per patient × time: noise-free levels, or lab-like samples with --lloq."""
    outputs, output, params = targets
    rows = args.n * times.size
    check_memory(
        rows * _BYTES_PER_ROW + 16 * args.n * len(model.param_names),
        f"--n {args.n} with {times.size} times as one table ({rows:,} rows)",
        "lower --n, or write a .parquet output (-o pop.parquet), which streams in bounded memory",
    )
    population = virtual_population(model, args.n, seed=args.seed, omega=omega)
    if args.lloq is None:
        levels = model.simulate_many(times, population)
        table = pd.DataFrame(
            {
                "subject": np.repeat(population["subject"].to_numpy(), times.size),
                "time": np.tile(times, args.n),
                "value": levels.ravel(),
                "unit": model.observed_unit,
            }
        )
    else:
        table = sample_trial(
            model, population, times, lloq=args.lloq, sigma=args.sigma, seed=args.seed + 1
        )
    if output is None:
        print(table.to_string(index=False, max_rows=20))
        return
    write_table(outputs, table, output)
    if params is not None:
        write_table(outputs, population, params)
    print(f"wrote {len(table)} rows for {args.n} subjects to {args.output}")
