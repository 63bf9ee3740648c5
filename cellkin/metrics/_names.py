"""Names of metric columns shared by the observed (NCA) and model-based tables (private)."""

from __future__ import annotations

__all__ = ["interval_name"]


def interval_name(start: float, end: float) -> str:
    """Column name of the AUC over ``[start, end]`` days: ``auc_0_28``, ``auc_0p5_7``, ...

    >>> interval_name(0, 28), interval_name(0.5, 7.0)
    ('auc_0_28', 'auc_0p5_7')
    """

    def text(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else str(x).replace(".", "p")

    return f"auc_{text(start)}_{text(end)}"
