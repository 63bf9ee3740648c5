"""``cellkin simulate``: a virtual population from a registered model, as a kinetics table.

A ``.parquet`` output (or ``--summary`` alone) is streamed in compiled chunks with bounded
memory (:func:`cellkin.simulate.simulate_population`); a ``.csv`` output (or none) is a long
table of the patients of :func:`cellkin.simulate.virtual_population`, noise-free or, with
``--lloq``, as a laboratory reports them (:func:`cellkin.simulate.sample_trial`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from cellkin import models
from cellkin.cli._options import command_parser, positive_int
from cellkin.cli._output import write_table
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
    parser.add_argument("--n", type=int, default=100, help="number of subjects")
    parser.add_argument("--seed", type=int, required=True, help="random seed (required)")
    parser.add_argument("--times", help=f"comma-separated sampling days (default {_DEFAULT_TIMES})")
    parser.add_argument(
        "--schedule", metavar="FILE", help="CSV/parquet with a `time` column of sampling days"
    )
    parser.add_argument("--lloq", type=float, help="LLOQ: add residual error and BLQ")
    parser.add_argument("--sigma", type=float, help="log-scale residual SD (model default)")
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
        type=positive_int,
        default=50_000,
        metavar="N",
        help="patients per compiled chunk when streaming (default 50000)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Simulate, streamed to parquet (or summarised) or as one long table."""
    model = models.get(args.model)
    times = _sampling_times(args)
    omega = _parse_omega(args.omega)
    output = Path(args.output) if args.output else None
    if (output and output.suffix.lower() in (".parquet", ".pq")) or (args.summary and not output):
        return _streamed(args, model, times, omega, output)
    if args.summary:
        raise OptionError("--summary needs a .parquet output (-o out.parquet) or no -o at all")
    return _long_table(args, model, times, omega, output)


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
    try:
        times = np.array([float(item) for item in text.split(",") if item.strip()])
    except ValueError:
        raise OptionError(
            f"--times: {text!r} is not a comma-separated list of days, e.g. 1,4,7,14,28"
        ) from None
    if times.size == 0 or not np.isfinite(times).all():
        raise OptionError("--times: give at least one finite day, e.g. 1,4,7,14,28")
    return times


def _parse_omega(text: str | None) -> dict[str, float] | None:
    """``"cmax=0.8,tmax=0.2"`` -> ``{"cmax": 0.8, "tmax": 0.2}`` (None: the model's own)."""
    if not text:
        return None
    try:
        return {k.strip(): float(v) for k, v in (item.split("=") for item in text.split(","))}
    except ValueError:
        raise OptionError(f"--omega: {text!r} is not NAME=SD,..., e.g. cmax=0.8") from None


def _streamed(
    args: argparse.Namespace,
    model: models.Model,
    times: np.ndarray,
    omega: dict[str, float] | None,
    output: Path | None,
) -> int:
    """Stream the population in compiled chunks; write the file, summary and parameters."""
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
    )
    if args.summary:
        write_table(result.summary, Path(args.summary))
    if args.params_output:
        write_table(result.read(["subject", *model.param_names]), Path(args.params_output))
    where = f" to {output} (one row per patient)" if output else ""
    print(f"simulated {args.n} patients x {times.size} times{where}")
    print(result.summary.to_string(index=False, float_format="{:.4g}".format))
    return 0


def _long_table(
    args: argparse.Namespace,
    model: models.Model,
    times: np.ndarray,
    omega: dict[str, float] | None,
    output: Path | None,
) -> int:
    """One row per patient × time: noise-free levels, or lab-like samples with --lloq."""
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
    if output:
        write_table(table, output)
        if args.params_output:
            write_table(population, Path(args.params_output))
        print(f"wrote {len(table)} rows for {args.n} subjects to {args.output}")
    else:
        print(table.to_string(index=False, max_rows=20))
    return 0
