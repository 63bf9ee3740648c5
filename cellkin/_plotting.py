"""Shared plotting helper (private): matplotlib is imported lazily, only when a plot is drawn."""

from __future__ import annotations

from typing import Any

__all__ = ["axes"]


def axes(ax: Any) -> Any:
    """Return ``ax``, or the current axes; raise ImportError with a hint without matplotlib."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is a dependency
        raise ImportError(
            "cellkin's plots need matplotlib: pip install matplotlib (or pip install cellkin)"
        ) from exc
    return plt.gca() if ax is None else ax
