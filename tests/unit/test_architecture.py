"""The shape of the house, read from the source with `ast` (nothing is imported).

No import circles among Pombo's modules: imports inside functions count too (a lazy import can
hide a circle as well as a top-level one); imports under `if TYPE_CHECKING:` do not (they never
run).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "pombo"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement under `node`, skipping the bodies of `if TYPE_CHECKING:`."""
    found: list[ast.Import | ast.ImportFrom] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _type_checking(child.test):
            for other in child.orelse:
                found.extend(_imports_of(other))
            continue
        found.extend(_imports_of(child))
    return found


def _imports_of(node: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        return [node]
    return _imports(node)


def _resolve(filename: str, importer: str, node: ast.Import | ast.ImportFrom, known: set[str]) -> list[str]:
    """The Pombo modules one import statement loads (a `from x import y` of a module means y)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in known]
    base = node.module or ""
    if node.level:  # relative: from the importer's package
        package = importer.split(".") if filename == "__init__.py" else importer.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    targets = []
    for alias in node.names:
        child = f"{base}.{alias.name}"
        if child in known:
            targets.append(child)
        elif base in known:
            targets.append(base)
    return targets


def import_graph() -> dict[str, set[str]]:
    """Module -> the Pombo modules it imports, anywhere in its body."""
    found = modules()
    known = set(found)
    graph: dict[str, set[str]] = {}
    for name, path in found.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges: set[str] = set()
        for node in _imports(tree):
            edges.update(_resolve(path.name, name, node, known))
        edges.discard(name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_graph_sees_the_modules_and_their_imports() -> None:
    graph = import_graph()
    assert {"pombo.bootstrap", "pombo.api.app", "pombo.adapters.sql.store", "pombo.errors"} <= set(graph)
    assert "pombo.adapters.sql.store" in graph["pombo.adapters.sql.sqlite"]
    assert "pombo.bootstrap" in graph["pombo.api.app"]
    # a lazy import inside a function counts
    assert "pombo.adapters.sql.postgres" in graph["pombo.adapters.sql.factory"]


def test_no_import_circles() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_circles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_type_checking_imports_do_not_count() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pombo.x\nelse:\n    import pombo.y\n"
        "def f():\n    import pombo.z\n"
    )
    names = {a.name for node in _imports(tree) if isinstance(node, ast.Import) for a in node.names}
    assert names == {"pombo.y", "pombo.z"}


def _imports_of_package(graph: dict[str, set[str]], importer_prefix: str, target: str) -> list[str]:
    return sorted(
        f"{importer} -> {imported}"
        for importer, imported_set in graph.items()
        if importer.startswith(importer_prefix)
        for imported in imported_set
        if imported == target or imported.startswith(target + ".")
    )


def test_arrows_point_one_way() -> None:
    """cli/console/api -> services -> ports <- adapters; bootstrap.py is the one place that
    wires adapters in (issue 10)."""
    graph = import_graph()
    outside = [
        line
        for line in _imports_of_package(graph, "pombo", "pombo.adapters")
        if not line.startswith(("pombo.adapters", "pombo.bootstrap "))
    ]
    assert not outside, outside
    assert not _imports_of_package(graph, "pombo.adapters", "pombo.services")
    assert not _imports_of_package(graph, "pombo.domain", "pombo.services")
    assert not _imports_of_package(graph, "pombo.domain", "pombo.adapters")
    assert not _imports_of_package(graph, "pombo.ports", "pombo.services")
    assert not _imports_of_package(graph, "pombo.services", "pombo.api")
    assert not _imports_of_package(graph, "pombo.services", "pombo.console")
