"""Every dotted path ``cellkin.…`` that the README, the data README and the docstrings name
resolves to a module or an object (issue #14: names that mean one thing)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import cellkin

ROOT = Path(cellkin.__file__).parent
PATTERN = re.compile(r"(?<![\w./-])cellkin(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


def _documents() -> dict[str, str]:
    texts = {p.name: p.read_text() for p in (ROOT.parent / "README.md", ROOT.parent / "data" /
                                            "README.md") if p.exists()}  # fmt: skip
    for path in ROOT.rglob("*.py"):
        texts[str(path.relative_to(ROOT.parent))] = path.read_text()
    return texts


def _resolves(path: str) -> bool:
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return True
    return False


PATHS = sorted({(match.rstrip("."), where) for where, text in _documents().items()
                for match in PATTERN.findall(text)})  # fmt: skip


@pytest.mark.parametrize(("path", "where"), PATHS, ids=[p for p, _ in PATHS])
def test_dotted_path_resolves(path, where):
    assert _resolves(path), f"{where} names `{path}`, which does not resolve"
