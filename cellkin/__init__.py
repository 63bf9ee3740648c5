"""cellkin — CAR-T cellular kinetics: models, fitting, NCA metrics and clinical links.

The top-level namespace is small on purpose; everything else is reachable by module
(``cellkin.models``, ``cellkin.io``, ``cellkin.simulate``, ...).
"""

from __future__ import annotations

from cellkin import models
from cellkin._version import __version__
from cellkin.datasets import ExampleStudy, load_example
from cellkin.errors import (
    CellkinError,
    CellkinWarning,
    DataError,
    DataWarning,
    FitError,
    IdentifiabilityWarning,
    ModelError,
    OptionError,
)
from cellkin.fit import BatchFit, FitResult, compare_models, fit, fit_all
from cellkin.io import (
    read_adverse_events,
    read_kinetics,
    read_lesions,
    read_subjects,
    write_nonmem,
)
from cellkin.metrics import exposure_response, nca
from cellkin.population import PopulationFit, fit_population

__all__ = [
    "BatchFit",
    "CellkinError",
    "CellkinWarning",
    "DataError",
    "DataWarning",
    "ExampleStudy",
    "FitError",
    "FitResult",
    "IdentifiabilityWarning",
    "ModelError",
    "OptionError",
    "PopulationFit",
    "__version__",
    "compare_models",
    "exposure_response",
    "fit",
    "fit_all",
    "fit_population",
    "load_example",
    "models",
    "nca",
    "read_adverse_events",
    "read_kinetics",
    "read_lesions",
    "read_subjects",
    "write_nonmem",
]
