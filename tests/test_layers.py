"""The package's imports form layers: no import cycle between modules or between rooms, counting the
imports inside functions (a lazy import is still a dependency); and no function of the package is over
60 lines.

A room is a subpackage (``teacher``, ``inference``, ...) or a top-level module
(``seams``, ``components``, ...).  The package's ``__init__`` is the top: it may
import anything, and every module's import runs it, so it is left out.
"""

import ast
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Set

from tests.conftest import REPO_ROOT

PACKAGE = "espnet_distill"


def module_imports(root: Path = REPO_ROOT) -> Dict[str, Set[str]]:
    """Each module of the package -> the modules of the package it imports, anywhere in its code."""
    paths = {
        ".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p
        for p in (root / PACKAGE).rglob("*.py")
    }
    graph: Dict[str, Set[str]] = {}
    for module, path in paths.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                submodules = {f"{node.module}.{alias.name}" for alias in node.names} & paths.keys()
                targets.update(submodules if len(submodules) == len(node.names) else {node.module, *submodules})
        graph[module] = {t for t in targets if t in paths and t not in (module, PACKAGE)}
    graph.pop(PACKAGE, None)
    return graph


def room(module: str) -> str:
    return module.split(".")[1]


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """One cycle through each node that is on one (depth-first search; empty when the graph is layered)."""
    found, done = [], set()
    for start in sorted(graph):
        stack, on_path = [(start, iter(sorted(graph[start])))], [start]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                on_path.pop()
                done.add(node)
            elif child in on_path:
                found.append(on_path[on_path.index(child) :] + [child])
            elif child not in done and child in graph:
                stack.append((child, iter(sorted(graph[child]))))
                on_path.append(child)
    return found


def test_no_import_cycle_between_modules_or_rooms():
    graph = module_imports()
    assert len(graph) > 50 and "espnet_distill.seams" in graph["espnet_distill.utils.checkpoint"]
    assert cycles(graph) == []
    rooms: Dict[str, Set[str]] = defaultdict(set)
    for module, targets in graph.items():
        rooms[room(module)].update(room(t) for t in targets if room(t) != room(module))
    assert cycles(dict(rooms)) == []


def test_seams_imports_nothing_of_the_package():
    """Every module may use the seam to other packages' internals, so it depends on none of them."""
    assert module_imports()["espnet_distill.seams"] == set()


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def long_functions(root: Path = REPO_ROOT, limit: int = 60) -> List[str]:
    """``path:line name (n lines)`` of each function of the package longer than ``limit`` lines."""
    found = []
    for path in sorted((root / PACKAGE).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_of_the_package_is_over_60_lines():
    assert long_functions() == []
    assert long_functions(limit=30) != []  # the measure sees functions at all
