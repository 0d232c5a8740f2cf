"""Finds every way a Python source reaches ``torch.load``: the guard tests' scanner (see docs/seams.md).

It reads the syntax tree, not the text, so a docstring or comment that
mentions ``torch.load(`` is not a use, while an aliased one is.
"""

import ast
from typing import Dict, List, Optional, Set, Tuple

LOAD_MODULES = ("torch", "torch.serialization")


def _dotted(node: ast.AST) -> Optional[str]:
    """``a.b.c`` for a chain of names and attributes; None for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def _aliases(tree: ast.AST) -> Tuple[Dict[str, str], Set[str]]:
    """Local names bound to ``torch`` / ``torch.serialization``, and names bound to their ``load``."""
    modules = {"torch": "torch"}
    loads = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in LOAD_MODULES and alias.asname:
                    modules[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            for alias in node.names:
                if node.module in LOAD_MODULES and alias.name == "load":
                    loads.add(alias.asname or "load")
                elif node.module == "torch" and alias.name == "serialization":
                    modules[alias.asname or "serialization"] = "torch.serialization"
    return modules, loads


def find_torch_loads(source: str, filename: str = "<string>") -> List[Tuple[int, str]]:
    """``(line, what)`` for each ``torch.load(``, ``torch.serialization.load(`` (under any alias),
    ``from torch import load`` and ``from torch.serialization import load`` (and calls of the name they bind)."""
    tree = ast.parse(source, filename=filename)
    modules, loads = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in LOAD_MODULES:
            if any(alias.name == "load" for alias in node.names):
                found.append((node.lineno, f"from {node.module} import load"))
        elif isinstance(node, ast.Call):
            dotted = _dotted(node.func)
            if dotted is None:
                continue
            head, _, rest = dotted.partition(".")
            resolved = f"{modules[head]}.{rest}" if head in modules and rest else dotted
            if resolved in ("torch.load", "torch.serialization.load") or dotted in loads:
                found.append((node.lineno, f"{resolved}("))
    return sorted(found)
