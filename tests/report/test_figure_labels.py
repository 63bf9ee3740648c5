"""What a newcomer sees in the report's figures (issue 20 item 9): every quantity axis says
its unit, and no title, axis label or note runs off the figure or into another panel (the
titles of figure 5, the labels of figures 3, 6, 10 and 12 and the notes of figures 10 and 12
did)."""

from __future__ import annotations

import importlib
import re

import pytest

# Measured: the module's shared fixture takes over 5 s (pytest --durations).
pytestmark = pytest.mark.slow

figures = importlib.import_module("cellkin.report._figures")

#: A label states its unit: "name (unit)", a time axis in days, a probability, or a unit alone.
_WITH_UNIT = re.compile(r"\(.+\)$|^days |^Days |probability|^P\(|^[\w%]+/[\w%*]+$")


def _drawn(example_report):
    """Every report figure, laid out and drawn, as (name, figure, renderer)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    for spec in figures.FIGURES:
        figure = Figure(figsize=spec.size, layout="constrained")
        FigureCanvasAgg(figure)
        spec.draw(figure, example_report.analysis)
        figure.canvas.draw()
        yield spec.name, figure, figure.canvas.get_renderer()


@pytest.fixture(scope="module")
def drawn(example_report):
    return list(_drawn(example_report))


def test_every_quantity_axis_states_its_unit(drawn):
    missing = []
    for name, figure, _ in drawn:
        for ax in figure.axes:
            if not ax.get_visible():
                continue
            for label in (ax.get_xlabel(), ax.get_ylabel()):
                if label and not _WITH_UNIT.search(label):
                    missing.append(f"{name}: {label!r}")
    assert missing == []


def _inside(inner, outer, slack: float = 0.0) -> bool:
    return (inner.x0 >= outer.x0 - slack and inner.x1 <= outer.x1 + slack
            and inner.y0 >= outer.y0 - slack and inner.y1 <= outer.y1 + slack)  # fmt: skip


def test_no_title_label_or_note_is_cut_off(drawn):
    cut = []
    for name, figure, renderer in drawn:
        page = figure.bbox
        titles = []
        for ax in figure.axes:
            if not ax.get_visible():
                continue
            texts = [ax.title, ax.xaxis.label, ax.yaxis.label]
            for text in texts:
                if text.get_text() and not _inside(text.get_window_extent(renderer), page):
                    cut.append(f"{name}: {text.get_text()!r} runs off the figure")
            if ax.title.get_text():
                titles.append(ax.title.get_window_extent(renderer))
            others = [o.get_tightbbox(renderer) for o in figure.axes
                      if o is not ax and o.get_visible()]  # fmt: skip
            for note in ax.texts:  # notes stay on the figure and off the other panels
                extent = note.get_window_extent(renderer)
                if note.get_text() and (
                    not _inside(extent, page) or any(extent.overlaps(o) for o in others)
                ):
                    cut.append(f"{name}: note {note.get_text()[:40]!r} is cut off")
        for i, first in enumerate(titles):
            for second in titles[i + 1 :]:
                if first.overlaps(second):
                    cut.append(f"{name}: two panel titles overlap")
    assert cut == []
