"""People-facing display objects shared by cellkin's results (private)."""

from __future__ import annotations

import html
from dataclasses import dataclass

import pandas as pd

__all__ = ["Summary"]


@dataclass(frozen=True, eq=False)
class Summary:
    """A people-facing summary: a title, named tables and notes, shown as text or HTML.

    Returned by the ``summary()`` method of outcome results; the numbers themselves come from
    ``to_frame()``.
    """

    title: str
    tables: tuple[tuple[str, pd.DataFrame], ...]
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        parts = [self.title, "=" * len(self.title)]
        for name, table in self.tables:
            parts += ["", name, table.to_string(index=False) if len(table) else "(none)"]
        if self.notes:
            parts += ["", *(f"Note: {note}" for note in self.notes)]
        return "\n".join(parts)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        parts = [f"<h4>{html.escape(self.title)}</h4>"]
        for name, table in self.tables:
            parts.append(f"<p><b>{html.escape(name)}</b></p>")
            if not len(table):
                parts.append("<p>(none)</p>")
                continue
            parts.append(table.to_html(index=False, float_format=lambda v: f"{v:.4g}"))
        parts += [f"<p><i>{html.escape(note)}</i></p>" for note in self.notes]
        return "\n".join(parts)
