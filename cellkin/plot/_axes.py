"""Lazy matplotlib access for every figure (private).

The modules of :mod:`cellkin.plot` import matplotlib only here, and only when a figure is
drawn, never at module level. Without matplotlib, drawing raises :class:`ImportError` with the
command that installs it (never a silent no-op).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

__all__ = ["axes", "matplotlib_module", "new_figure"]

INSTALL_HINT = (
    "cellkin's figures need matplotlib: install it with `pip install matplotlib` "
    "(it comes with `pip install cellkin`)"
)


def matplotlib_module(name: str = "matplotlib.pyplot") -> ModuleType:
    """Import the matplotlib module `name`, or raise ImportError with an install hint."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc


def axes(ax: Any) -> Any:
    """Return `ax`, or the current pyplot axes when `ax` is None."""
    return matplotlib_module("matplotlib.pyplot").gca() if ax is None else ax


def new_figure(fig: Any, size: tuple[float, float]) -> Any:
    """Return `fig`, or a new constrained-layout ``Figure`` of `size` inches (not in pyplot)."""
    if fig is not None:
        return fig
    return matplotlib_module("matplotlib.figure").Figure(figsize=size, layout="constrained")
