"""The package's layering: no import cycles between its modules, ``validate`` at the bottom,
and every file short enough to read in one sitting.

Imports are read from the source with ``ast`` (function-local ones included, relative ones
resolved), so a cycle that only shows at call time is caught too. An import of ``a.b.c``
counts as an edge to ``a.b.c`` itself; ``from a.b import c`` is an edge to ``a.b.c`` when
``c`` is a module (its package ``a.b`` is already being imported, and only the module is
needed) and to ``a.b`` when ``c`` is a name defined there.
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
from pathlib import Path

import reprtut

PACKAGE = reprtut.__name__
ROOT = Path(reprtut.__file__).parent
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    """Every module of the package (packages as their ``__init__.py``), name -> file."""
    out = {PACKAGE: ROOT / "__init__.py"}
    for info in pkgutil.walk_packages([str(ROOT)], prefix=PACKAGE + "."):
        spec = importlib.util.find_spec(info.name)
        out[info.name] = Path(spec.origin)
    return out


def _imports(name: str, path: Path, modules: set[str]) -> set[str]:
    """The modules of the package that module ``name`` (file ``path``) imports anywhere."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            subs = {f"{target}.{alias.name}" for alias in node.names}
            found |= subs & modules
            if not subs <= modules:  # a name defined in the module or package itself
                found.add(target)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` (node -> successors) as its nodes, the first repeated at the end
    (e.g. ``["a", "b", "a"]``), or None when the graph has none. Depth-first search."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_import_graph_sees_local_and_relative_imports():
    graph = import_graph()
    assert f"{PACKAGE}.cache" in graph[f"{PACKAGE}.recipes.adversarial"]     # from ..cache import
    assert f"{PACKAGE}.methods.base" in graph[f"{PACKAGE}.cache"]            # from .methods.base
    assert f"{PACKAGE}.attacks.norms" in graph[f"{PACKAGE}.attacks.gradient"]  # from . import norms


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_validate_imports_nothing_from_the_package():
    graph = import_graph()
    assert graph[f"{PACKAGE}.validate"] == set(), graph[f"{PACKAGE}.validate"]


def test_declare_imports_only_validate():
    """The declarations sit just above the checks they call: anything may declare."""
    graph = import_graph()
    assert graph[f"{PACKAGE}.declare"] == {f"{PACKAGE}.validate"}, graph[f"{PACKAGE}.declare"]


def test_methods_import_nothing_above_the_training_loop():
    graph = import_graph()
    above = {f"{PACKAGE}.{m}" for m in ("cache", "recipes")}
    for name, targets in graph.items():
        if name.startswith(f"{PACKAGE}.methods"):
            bad = {t for t in targets if any(t == a or t.startswith(a + ".") for a in above)}
            assert not bad, f"{name} imports {sorted(bad)}"


def test_no_file_of_the_package_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in ROOT.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"files over {MAX_LINES} lines: {long}"
