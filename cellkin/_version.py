"""The installed cellkin version (``cellkin.__version__``), importable without the package root.

Modules that record provenance import ``__version__`` from here, never from ``cellkin``
itself, so that nothing reads the package root while it is still being imported.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__: str = version("cellkin")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"
