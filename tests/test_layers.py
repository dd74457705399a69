"""The package's layers: imports go only downward, and no modules import each other in a circle.

The layer order is DESIGN.md §2's, lowest first, with one change the code
asks for (see ``talaria_storage/config/__init__.py``): ``config`` sits above
``storage``, because what it validates is the storage layer's vocabulary.
``backends/`` (installed as ``talaria_storage.backends``) sits beside
``storage``; the top-level ``talaria_storage`` module is the documented API
and re-exports from the layers below it; ``testing`` may import anything
below ``cli``.

Every ``import`` counts, at module level or inside a function, except those
under ``if TYPE_CHECKING:`` (annotations only, never run).
"""

from __future__ import annotations

import ast
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "talaria_storage"

#: Layer of each room, lowest first. A module may import its own layer and lower ones.
LAYERS: dict[str, int] = {
    "core": 0,
    "storage": 1,
    "backends": 1,
    "config": 2,
    "index": 3,
    "formats": 4,
    "sequences": 5,
    "reduction": 6,
    "io": 7,
    "optimization": 8,
    "sync": 9,
    "jobs": 10,
    "server": 11,
    "": 12,  # talaria_storage/__init__.py: the top-level API
    "testing": 13,
    "cli": 14,
    "__main__": 14,
}


def package_modules(repo: Path) -> dict[str, Path]:
    """Dotted module name -> file, for the engine and the backends installed inside it."""
    modules: dict[str, Path] = {}
    for root, prefix in ((repo / PACKAGE, PACKAGE), (repo / "backends", f"{PACKAGE}.backends")):
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([prefix, *parts])] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(nodes: Iterable[ast.AST]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that runs, skipping the bodies of ``if TYPE_CHECKING:``."""
    for node in nodes:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _imports(node.orelse)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        else:
            yield from _imports(ast.iter_child_nodes(node))


def import_graph(repo: Path) -> dict[str, set[str]]:
    """Module -> the package modules it imports (``from pkg import submodule`` names the submodule)."""
    modules = package_modules(repo)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _imports([ast.parse(path.read_text(), str(path))]):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base]) if base else ".".join(anchor)
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def layer_of(module: str) -> int:
    """The layer of a module: that of its room (the first name under ``talaria_storage``)."""
    rest = module[len(PACKAGE) + 1 :] if module != PACKAGE else ""
    return LAYERS[rest.partition(".")[0]]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """``a -> b`` for each import from a lower layer into a higher one."""
    return sorted(
        f"{a} -> {b}" for a, targets in graph.items() for b in targets if layer_of(b) > layer_of(a)
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_every_module_belongs_to_a_layer() -> None:
    unknown = [m for m in package_modules(REPO) if (m[len(PACKAGE) + 1 :].partition(".")[0]) not in LAYERS]
    assert unknown == []


def test_imports_go_only_downward() -> None:
    assert upward_imports(import_graph(REPO)) == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    assert cycles(import_graph(REPO)) == []


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    """A copy of the package's source, to break on purpose."""
    for folder in (PACKAGE, "backends"):
        shutil.copytree(REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_an_import_of_the_database_layer_into_the_store_is_reported_as_upward(tree_copy: Path) -> None:
    store = tree_copy / PACKAGE / "storage" / "store.py"
    store.write_text(store.read_text() + "\nfrom talaria_storage.sequences.database import SequenceDatabase\n")
    assert upward_imports(import_graph(tree_copy)) == [
        "talaria_storage.storage.store -> talaria_storage.sequences.database"
    ]


def test_an_import_hidden_in_a_function_still_counts(tree_copy: Path) -> None:
    store = tree_copy / PACKAGE / "storage" / "store.py"
    store.write_text(store.read_text() + "\n\ndef _late():\n    from talaria_storage.sync import protocol\n")
    assert upward_imports(import_graph(tree_copy)) == ["talaria_storage.storage.store -> talaria_storage.sync.protocol"]


def test_an_import_for_annotations_only_does_not_count(tree_copy: Path) -> None:
    store = tree_copy / PACKAGE / "storage" / "store.py"
    store.write_text(
        store.read_text() + "\nif TYPE_CHECKING:\n    from talaria_storage.sequences.database import SequenceDatabase\n"
    )
    assert upward_imports(import_graph(tree_copy)) == []


def test_two_modules_importing_each_other_are_a_cycle(tree_copy: Path) -> None:
    hashing = tree_copy / PACKAGE / "core" / "hashing.py"
    hashing.write_text(hashing.read_text() + "\nfrom talaria_storage.core import keys\n")
    assert ["talaria_storage.core.hashing", "talaria_storage.core.keys"] in cycles(import_graph(tree_copy))
