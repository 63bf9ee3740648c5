"""Stop a batch fit from a script without ``if __name__ == "__main__":`` at once (private).

Process pools that start clean workers (``forkserver``, ``spawn``) run the main script again
in every worker, as ``__mp_main__``, so that functions and classes defined there can be
unpickled. A script that calls :func:`cellkin.fit_all` at its top level, outside an
``if __name__ == "__main__":`` block, then calls it again in each worker, which
multiprocessing refuses ("An attempt has been made to start a new process before the current
process has finished its bootstrapping phase"): every task's worker breaks, and each subject
used to come back as a ``worker`` failure after the whole batch had run.

The only start method that does not import the main script again is ``fork``, which is
unsafe once the parent has run a numba parallel kernel (GNU OpenMP; see
:func:`cellkin.fit._execution._default_pool`), and would still lose a model class defined in
such a script for any later pool. So :func:`check_main_guard` looks, before the pool starts,
for the line of the main script that led to the call: when that line is top-level code outside
an ``if __name__ == "__main__":`` block of a script the workers would import again, it raises
one :class:`~cellkin.errors.FitError` that names the script and line and says what to add.
Notebooks, ``python -c``, ``python -m package`` (a ``__main__`` module) and guarded scripts
pass unchanged; when the source cannot be read, nothing is checked.
"""

from __future__ import annotations

import ast
import os
import sys
import tokenize
from types import FrameType, ModuleType

from cellkin.errors import FitError

__all__ = ["check_main_guard", "unguarded_call"]


def _reimported(main: ModuleType | None) -> bool:
    """Whether the workers of a ``spawn``/``forkserver`` pool import `main` again (the rule
    of :func:`multiprocessing.spawn.get_preparation_data` and the ``_fixup_main_*``
    functions)."""
    if main is None:
        return False
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if name is not None:
        return name != "__main__" and not name.endswith(".__main__")
    path = getattr(main, "__file__", None)
    return path is not None and os.path.splitext(os.path.basename(path))[0] != "ipython"


def _main_frame(main: ModuleType) -> FrameType | None:
    """The frame running `main`'s top-level code, if it is on the current stack."""
    frame: FrameType | None = sys._getframe(1)
    namespace = vars(main)
    while frame is not None:
        if frame.f_globals is namespace and frame.f_code.co_name == "<module>":
            return frame
        frame = frame.f_back
    return None


def _is_main_test(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return False
    if not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s.id for s in sides if isinstance(s, ast.Name)]
    texts = [s.value for s in sides if isinstance(s, ast.Constant)]
    return names == ["__name__"] and texts == ["__main__"]


def _guarded(tree: ast.Module, line: int) -> bool:
    """Whether `line` lies in the body of an ``if __name__ == "__main__":`` block."""
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and node.body and _is_main_test(node.test):
            end = node.body[-1].end_lineno or node.body[-1].lineno
            if node.body[0].lineno <= line <= end:
                return True
    return False


def unguarded_call() -> tuple[str, int] | None:
    """``(script, line)`` when the current call comes from top-level code of a main script
    that pool workers import again, outside ``if __name__ == "__main__":``; else None."""
    main = sys.modules.get("__main__")
    if not _reimported(main):
        return None
    assert main is not None
    frame = _main_frame(main)
    if frame is None:
        return None
    script, line = frame.f_code.co_filename, frame.f_lineno
    try:
        with tokenize.open(script) as handle:
            tree = ast.parse(handle.read(), filename=script)
    except (OSError, SyntaxError, ValueError):
        return None  # source not readable: cannot tell
    return None if _guarded(tree, line) else (script, line)


def check_main_guard() -> None:
    """Raise :class:`~cellkin.errors.FitError` for an unguarded call (see the module
    docstring); do nothing otherwise."""
    found = unguarded_call()
    if found is None:
        return
    script, line = found
    raise FitError(
        f"fit_all with worker processes was called from top-level code of {script} (line "
        f'{line}) that is not under `if __name__ == "__main__":`; each worker imports that '
        f"script again and would rerun it. Move the script's top-level code under "
        f'`if __name__ == "__main__":` (or pass n_jobs=1 to fit in this process)'
    )
