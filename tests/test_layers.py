"""The import graph of `audit`: no cycles, and no module imports one of a higher layer.

Every import counts, wherever it is written (top of the module, inside a function, under
`TYPE_CHECKING`): a function-level import still ties the two modules together. The graph is read
from the source with `ast`, without importing anything. Importing `audit.a.b` also runs the package
`audit.a`; that implicit step is Python's, not the module's, and is not an edge here: a package's
`__init__` that imports its submodules (to register checks, to re-export) is the usual shape.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "audit"

# Lowest first. A module may import its own layer's modules and those of lower layers. Every
# module of audit belongs to exactly one layer (a name covers its submodules).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("records", ("audit", "audit.records", "audit.frames", "audit.textnorm", "audit.phrases", "audit.privacy")),
    ("config", ("audit.config",)),  # the typed sections; nothing of the checks or the rules
    ("measure", ("audit.measure",)),
    ("judge", ("audit.judge",)),
    ("load", ("audit.configload",)),  # the full config: sections, the checks' parameters, the rulebook
    ("present", ("audit.present",)),
    ("run", ("audit.run",)),
    ("cli", ("audit.cli", "audit.__main__")),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The audit modules `name` imports anywhere in its source."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package this module is in
                package = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            # `from audit import sidecar` imports the module audit.sidecar; `from audit.x import f` audit.x
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports(name, path, known) for name, path in found.items()}


def layer_of(name: str) -> int:
    matches = [(len(prefix), index) for index, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if name == prefix or name.startswith(prefix + ".")]
    assert matches, f"{name} is in no layer: add it to LAYERS in {Path(__file__).name}"
    return max(matches)[1]


def tangles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan): each member reaches every other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path a -> ... -> a) through each tangle."""
    return [_path_through(group, edges) for group in tangles(edges)]


def _path_through(group: list[str], edges: dict[str, set[str]]) -> list[str]:
    """A cycle from the group's first module back to it, by breadth-first search inside the group."""
    start, members = group[0], set(group)
    came_from = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target in sorted(edges[node] & members):
            if target == start:
                path = [node]
                while came_from[path[-1]] is not None:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if target not in came_from:
                came_from[target] = node
                queue.append(target)
    return group


def test_the_import_graph_has_no_cycle():
    edges = graph()
    assert not tangles(edges), "import cycles: " + "; ".join(
        f"{' -> '.join(cycle)} (tangled: {', '.join(group)})" for group, cycle in zip(tangles(edges), cycles(edges)))


def test_no_module_imports_a_higher_layer():
    edges = graph()
    wrong = [f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
             for name in sorted(edges) for target in sorted(edges[name]) if layer_of(target) > layer_of(name)]
    assert not wrong, "\n".join(wrong)


def test_the_folders_are_the_layers():
    """A newcomer sees the layers in the folder list: the foundation, the full config and the CLI are
    the top-level modules; every stage is in the folder of its layer."""
    folders = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert folders == ["judge", "measure", "present", "run"]
    top = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert top == ["__init__", "__main__", "cli", "config", "configload", "frames", "phrases", "privacy",
                   "records", "textnorm"]


def test_every_layer_names_modules_that_exist():
    known = set(modules())
    for layer, prefixes in LAYERS:
        for prefix in prefixes:
            assert any(m == prefix or m.startswith(prefix + ".") for m in known), (layer, prefix)


def test_the_graph_reader_sees_function_level_and_from_imports(tmp_path):
    source = tmp_path / "audit" / "x.py"
    source.parent.mkdir()
    source.write_text("from audit import b\n\ndef f():\n    from audit.c import thing\n    import audit.d\n",
                      encoding="utf-8")
    known = {"audit", "audit.b", "audit.c", "audit.d", "audit.x"}
    assert imports("audit.x", source, known) == {"audit.b", "audit.c", "audit.d"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
