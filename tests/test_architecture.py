"""The package's architecture, checked from its source with :mod:`ast` (issue #14).

The rules (decided in #14; DESIGN §1 "Data flows one way"):

1. **Layers.** Every module of ``cellkin`` belongs to one layer (:data:`LAYERS`) and a
   module-level import may only reach a layer listed in :data:`MAY_IMPORT` for its own::

       core (errors, _version and the root's private helpers)
         -> data (io, datasets)
              -> models
                   -> fit (fit, population; population builds on fit, never back)
              -> outcomes (clinical endpoints: RECIST, Kaplan-Meier, safety, the 3+3 rule;
                           computed from the clinical tables alone)
         -> metrics (NCA, model metrics, summaries and the exposure-outcome link; uses
                     models and outcomes; fit only lazily, never at module level)
         -> simulate (virtual populations and trials: models + the 3+3 rule)
         -> plot (beside everything: may import any layer but the face)
         -> face (cli, report, the package root ``cellkin/__init__`` and ``__main__``)

   ``cellkin.outcomes`` is placed below ``cellkin.metrics``: it derives endpoints from the
   clinical tables only, and the *link* between exposure and outcome (the "Outcomes link" of
   the issue) is :mod:`cellkin.metrics`' exposure-response, exposure-survival and
   time-to-event analyses, which use the Kaplan-Meier estimator of ``cellkin.outcomes``.
   Module-level imports between ``cellkin.fit`` and ``cellkin.metrics`` are forbidden in both
   directions, and no module below the face imports ``cellkin.plot`` at module level.
2. **Lazy imports** (inside a function) may go down the layers (the FORBIDDEN pairs are
   module-level rules: a lazy import does not run when the package is imported), and upward
   only along the documented edges of :data:`LAZY_UPWARD`: result objects' ``.plot()``
   delegate to ``cellkin.plot`` and ``.metrics()`` to ``cellkin.metrics``. They never reach
   the face, and, like every import, only through a public module.
   ``if TYPE_CHECKING:`` imports never run; they are exempt from the layering but not from
   rule 3.
3. **Private modules stay home.** A private module inside a subpackage (``cellkin.fit._result``)
   is imported only from within that subpackage; other subpackages use its public
   ``__init__`` or a public module. The root's private modules (``cellkin._validation``,
   ``cellkin._stats``, ...) are the shared core, importable from anywhere. No private *name*
   (``_x``) is imported from another subpackage.
4. **No cycles** between modules at import time (module-level imports, counting the package
   ``__init__`` that importing a submodule of another package runs first).
5. **Modules of at most 600 lines**, except those listed in :data:`KNOWN_OVERSIZE`.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "cellkin"
MAX_LINES = 600

#: Modules over MAX_LINES that are being split elsewhere; the lead empties this set on merge.
KNOWN_OVERSIZE: set[str] = set()

#: The layer of each top-level part of the package (first name after ``cellkin.``).
LAYERS = {
    "errors": "core",
    "_version": "core",
    "_csv": "core",
    "_display": "core",
    "_lock": "core",
    "_memory": "core",
    "_output": "core",
    "_progress": "core",
    "_stats": "core",
    "_tables": "core",
    "_validation": "core",
    "io": "data",
    "datasets": "data",
    "models": "models",
    "fit": "fit",
    "population": "fit",
    "outcomes": "outcomes",
    "metrics": "metrics",
    "simulate": "simulate",
    "plot": "plot",
    "cli": "face",
    "report": "face",
    "__main__": "face",
    "": "face",  # the package root, cellkin/__init__.py
}

#: The layers a module of each layer may import at module level (its own included).
MAY_IMPORT = {
    "core": {"core"},
    "data": {"core", "data"},
    "models": {"core", "data", "models"},
    "fit": {"core", "data", "models", "fit"},
    "outcomes": {"core", "data", "outcomes"},
    "metrics": {"core", "data", "models", "fit", "outcomes", "metrics"},
    "simulate": {"core", "data", "models", "outcomes", "simulate"},
    "plot": {"core", "data", "models", "fit", "outcomes", "metrics", "simulate", "plot"},
    "face": {"core", "data", "models", "fit", "outcomes", "metrics", "simulate", "plot", "face"},
}

#: Pairs of top-level parts with no module-level import from the first to the second (lazy
#: imports may still go down: metrics checks ``isinstance(x, FitResult)`` inside a function).
FORBIDDEN = {("metrics", "fit"), ("fit", "metrics"), ("fit", "population")}

#: Documented lazy (function-level) imports to a higher layer: target module -> reason.
LAZY_UPWARD = {
    "cellkin.plot": "result objects' .plot() delegate to the plot subpackage",
    "cellkin.metrics": "fit and population results' .metrics() delegate to model_metrics",
}


@dataclass(frozen=True)
class Import:
    source: str  # importing module, dotted
    target: str  # imported module, dotted (a package means its __init__)
    names: tuple[str, ...]  # names taken from the target ('from x import a, b'); () for 'import x'
    line: int
    kind: str  # "module" (runs on import), "lazy" (in a function) or "typing" (TYPE_CHECKING)


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (path, is_package) for every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


MODULES = _modules()


def _resolve(source: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = source.split(".") if is_package else source.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _statements(body: list[ast.stmt], kind: str):
    """(statement, kind) for every import, walking into if/try/with/class but not functions."""
    for stmt in body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            yield stmt, kind
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(stmt):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    yield inner, "lazy"
        elif isinstance(stmt, ast.If):
            typing = "TYPE_CHECKING" in ast.unparse(stmt.test)
            yield from _statements(stmt.body, "typing" if typing else kind)
            yield from _statements(stmt.orelse, kind)
        elif isinstance(stmt, ast.Try):
            for block in (stmt.body, stmt.orelse, stmt.finalbody):
                yield from _statements(block, kind)
            for handler in stmt.handlers:
                yield from _statements(handler.body, kind)
        elif isinstance(stmt, (ast.With, ast.ClassDef)):
            yield from _statements(stmt.body, kind)


def _imports() -> list[Import]:
    found = []
    for source, (path, is_package) in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for stmt, kind in _statements(tree.body, "module"):
            if isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    if alias.name.split(".")[0] == "cellkin":
                        found.append(Import(source, alias.name, (), stmt.lineno, kind))
                continue
            target = _resolve(source, is_package, stmt)
            if target.split(".")[0] != "cellkin":
                continue
            plain = []
            for alias in stmt.names:  # `from cellkin import plot` imports the module cellkin.plot
                sub = f"{target}.{alias.name}"
                if sub in MODULES:
                    found.append(Import(source, sub, (), stmt.lineno, kind))
                else:
                    plain.append(alias.name)
            if plain:
                found.append(Import(source, target, tuple(plain), stmt.lineno, kind))
    return found


IMPORTS = _imports()


def _part(module: str) -> str:
    """The top-level part of a dotted module name: 'cellkin.fit._result' -> 'fit'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _layer(module: str) -> str:
    return LAYERS[_part(module)]


def _where(imp: Import) -> str:
    names = f" ({', '.join(imp.names)})" if imp.names else ""
    return f"{imp.source}:{imp.line} imports {imp.target}{names} [{imp.kind}]"


def test_every_part_has_a_layer():
    missing = sorted({_part(m) for m in MODULES} - set(LAYERS))
    assert not missing, f"give these parts of cellkin a layer in LAYERS: {missing}"


def test_the_rules_find_what_they_should():
    """The checks see module-level, lazy and TYPE_CHECKING imports (guards against a vacuous
    pass if the package layout or the parser changes)."""
    kinds = {imp.kind for imp in IMPORTS}
    assert kinds == {"module", "lazy", "typing"}
    assert len(MODULES) > 100
    assert any(i.source == "cellkin" and i.target == "cellkin.fit" for i in IMPORTS)


def test_module_level_imports_follow_the_layers():
    bad = []
    for imp in IMPORTS:
        if imp.kind != "module":
            continue
        src, tgt = _layer(imp.source), _layer(imp.target)
        if tgt not in MAY_IMPORT[src] or (_part(imp.source), _part(imp.target)) in FORBIDDEN:
            bad.append(f"{_where(imp)}: layer {src} may not import {tgt}")
    assert not bad, "\n".join(bad)


def test_lazy_imports_go_up_only_where_documented():
    bad = []
    for imp in IMPORTS:
        if imp.kind != "lazy":
            continue
        src, tgt = _layer(imp.source), _layer(imp.target)
        if tgt in MAY_IMPORT[src]:
            continue
        if imp.target in LAZY_UPWARD and src != "face":
            continue
        if _part(imp.source) == _part(imp.target):
            continue
        bad.append(f"{_where(imp)}: an undocumented lazy import from {src} up to {tgt}")
    assert not bad, "\n".join(bad)


def test_no_private_module_or_name_across_subpackages():
    bad = []
    for imp in IMPORTS:
        src, tgt = _part(imp.source), _part(imp.target)
        if src == tgt:
            continue
        inner = imp.target.split(".")[2:]  # below the subpackage: cellkin.fit._result -> [_result]
        if any(p.startswith("_") for p in inner):
            bad.append(f"{_where(imp)}: private module of cellkin.{tgt}")
        private = [n for n in imp.names if n.startswith("_") and n != "__version__"]
        if private and not tgt.startswith("_"):
            bad.append(f"{_where(imp)}: private name(s) {private} of cellkin.{tgt}")
    assert not bad, "\n".join(bad)


def _graph() -> dict[str, set[str]]:
    """Module -> modules whose code runs when it is imported (module-level imports only)."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for imp in IMPORTS:
        if imp.kind != "module" or imp.target not in MODULES:
            continue
        graph[imp.source].add(imp.target)
        # importing cellkin.a.b runs cellkin.a's __init__ first, unless the source is inside it
        parts = imp.target.split(".")
        for n in range(2, len(parts)):
            parent = ".".join(parts[:n])
            if not (imp.source == parent or imp.source.startswith(parent + ".")):
                graph[imp.source].add(parent)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    cycles = _cycles(_graph())
    assert not cycles, "modules that import each other (directly or through others):\n" + (
        "\n".join(" <-> ".join(c) for c in cycles)
    )


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_modules_are_at_most_600_lines():
    over, stale = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if rel in KNOWN_OVERSIZE and lines <= MAX_LINES:
            stale.append(f"{rel} is {lines} lines now: remove it from KNOWN_OVERSIZE")
        elif rel not in KNOWN_OVERSIZE and lines > MAX_LINES:
            over.append(f"{rel} has {lines} lines (> {MAX_LINES}): split it by concept")
    assert not over + stale, "\n".join(over + stale)
