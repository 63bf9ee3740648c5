"""Virtual populations, simulated trials and streamed population simulations.

* :func:`virtual_population` — individual parameters drawn around a model's typical values
  with its published between-subject variability;
* :func:`sample_trial` — a kinetics table as a laboratory would report it (log-normal
  residual error, BLQ below the LLOQ); :func:`round_significant` — values rounded to the
  significant digits a laboratory reports;
* :func:`virtual_trial` — a whole synthetic trial in one call (dose levels or a 3+3
  escalation, visit windows, missed visits, dropout, several assays); the generator of the
  bundled example study;
* :func:`simulate_population` — millions of virtual patients simulated in compiled chunks and
  streamed to parquet with bounded memory, with per-time-point summaries.

Every random draw comes from an explicit ``seed``.
"""

from __future__ import annotations

from cellkin.simulate._population import round_significant, sample_trial, virtual_population
from cellkin.simulate._stream import PopulationSimulation, simulate_population, time_column
from cellkin.simulate._trial import Assay, VirtualTrial, Visit, virtual_trial

__all__ = [
    "Assay",
    "PopulationSimulation",
    "VirtualTrial",
    "Visit",
    "round_significant",
    "sample_trial",
    "simulate_population",
    "time_column",
    "virtual_population",
    "virtual_trial",
]
