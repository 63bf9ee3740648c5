"""Progress bars (private core): tqdm in a terminal or a notebook, nothing when turned off.

``tqdm.auto`` picks the notebook widget in Jupyter; without ipywidgets it falls back to the
text bar but first emits a ``TqdmWarning`` ("IProgress not found ..."), which a notebook shows
as a red block on every first run. The text bar is the right fallback and the warning asks a
user to install a package they did not choose, so that one warning is silenced around the
import (the only place tqdm emits it), nothing else.
"""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["NoBar", "progress_bar"]


class NoBar:
    """Stands in for tqdm when progress is off (no output, no monitor thread)."""

    n = 0
    total = 0

    def update(self, n: int = 1) -> None:
        """Do nothing."""

    def set_postfix(self, *_: Any, **__: Any) -> None:
        """Do nothing."""

    def set_postfix_str(self, *_: Any, **__: Any) -> None:
        """Do nothing."""

    def refresh(self) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""


def _tqdm() -> Any:
    from tqdm import TqdmWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)
        from tqdm.auto import tqdm
    return tqdm


def progress_bar(enabled: bool, **tqdm_options: Any) -> Any:
    """A ``tqdm.auto`` bar with `tqdm_options` (``total``, ``desc``, ``unit`` ...), or a
    :class:`NoBar` when `enabled` is false."""
    if not enabled:
        return NoBar()
    return _tqdm()(**tqdm_options)
