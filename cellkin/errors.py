"""Exceptions and warnings raised by cellkin.

The hierarchy lets callers catch everything cellkin raises with one class, or one kind of
problem precisely::

    CellkinError
    ├── DataError   (ValueError)  bad or inconsistent input tables
    ├── ModelError  (ValueError)  bad model declarations or parameter values
    ├── OptionError (ValueError)  an argument or option with a value it cannot take
    └── FitError    (RuntimeError) a fit that cannot be carried out or did not converge

Warnings have classes too, so that they can be filtered one by one::

    CellkinWarning (UserWarning)
    ├── DataWarning            input accepted, but something looks wrong
    └── IdentifiabilityWarning a parameter is poorly determined by the data

A fit that stops short of its tolerance is not a warning: it is reported on the result
(``FitResult.success`` and the ``not_converged`` issue, ``PopulationFit.converged``), so that a
batch of thousands of subjects does not flood the caller's warning filters.
"""

from __future__ import annotations

__all__ = [
    "CellkinError",
    "CellkinWarning",
    "DataError",
    "DataWarning",
    "FitError",
    "IdentifiabilityWarning",
    "ModelError",
    "OptionError",
]


class CellkinError(Exception):
    """Base class of every error cellkin raises on purpose."""


class DataError(CellkinError, ValueError):
    """Input data are missing, malformed or inconsistent.

    The message names the file (when there is one), the column and the first offending row
    or subject, and says how to fix the problem.
    """


class ModelError(CellkinError, ValueError):
    """A model declaration or a set of model parameters is invalid."""


class OptionError(CellkinError, ValueError):
    """An argument or option has a value it cannot take.

    The message names the argument, the value given and the values (or range) allowed, e.g.
    "`blq` must be one of ('m3', 'drop', 'lloq/2'), got 'm2'". Every module raises this one
    class for a bad option value, so ``except cellkin.OptionError`` catches them all.
    """


class FitError(CellkinError, RuntimeError):
    """A fit could not be carried out or did not converge."""


class CellkinWarning(UserWarning):
    """Base class of every warning cellkin emits."""


class DataWarning(CellkinWarning):
    """Input was accepted, but something in it deserves a look."""


class IdentifiabilityWarning(CellkinWarning):
    """A parameter is poorly determined by the data (large relative standard error)."""
