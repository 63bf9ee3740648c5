"""Execute the example notebooks and store their outputs in place.

Run it after editing a notebook, so that the committed file shows what the code produces::

    python examples/_execute.py                   # every notebook in examples/
    python examples/_execute.py quickstart.ipynb  # one notebook

Each notebook runs top to bottom with nbclient on the ``python3`` Jupyter kernel (ipykernel,
from the ``[test]`` extra) with ``examples/`` as its working directory, and is saved with its
outputs (tables as HTML, figures as PNG). The kernel imports the cellkin of this checkout:
its root is put first on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parent
ROOT = EXAMPLES.parent
TIMEOUT_S = 600  # per cell


def execute(path: Path) -> float:
    """Execute the notebook at `path`, save it with its outputs; return the seconds taken."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=TIMEOUT_S,
        kernel_name="python3",
        record_timing=False,  # no timestamps in the stored cells: smaller, stabler diffs
        resources={"metadata": {"path": str(EXAMPLES)}},
    )
    path_entries = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path_entries if p)}
    start = time.perf_counter()
    client.execute(env=env)
    elapsed = time.perf_counter() - start
    nbformat.write(notebook, path)
    return elapsed


def main(argv: list[str]) -> int:
    names = argv or sorted(p.name for p in EXAMPLES.glob("*.ipynb"))
    for name in names:
        path = EXAMPLES / name
        seconds = execute(path)
        size = path.stat().st_size / 1e6
        sys.stdout.write(f"{path.relative_to(ROOT)}: executed in {seconds:.1f} s, {size:.2f} MB\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
