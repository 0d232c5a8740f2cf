"""The package's declared dependencies cover what its code imports, and every one is pinned."""

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

from tests.conftest import REPO_ROOT


def _catches_import_error(node: ast.Try) -> bool:
    names = []
    for handler in node.handlers:
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        names += [getattr(k, "id", None) for k in kinds]
    return "ImportError" in names or "ModuleNotFoundError" in names


class _Imports(ast.NodeVisitor):
    """Top-level modules imported, imports inside functions included; optional ones (try/except ImportError) apart."""

    def __init__(self) -> None:
        self.required, self.optional, self._optional_depth = set(), set(), 0

    def _add(self, module: str) -> None:
        (self.optional if self._optional_depth else self.required).add(module.split(".")[0])

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self._add(node.module)

    def visit_Try(self, node: ast.Try) -> None:
        optional = _catches_import_error(node)
        self._optional_depth += optional
        for child in node.body:
            self.visit(child)
        self._optional_depth -= optional
        for child in [*node.handlers, *node.orelse, *node.finalbody]:
            self.visit(child)


def _imported_top_level_modules(package: Path) -> set:
    """Every top-level module the package needs (imports guarded by ``except ImportError`` are optional)."""
    visitor = _Imports()
    for path in package.rglob("*.py"):
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return visitor.required


def _setup_requires() -> list:
    tree = ast.parse((REPO_ROOT / "setup.py").read_text(encoding="utf-8"))
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
    keywords = {k.arg: k.value for k in call.keywords}
    return [ast.literal_eval(e) for e in keywords["install_requires"].elts], ast.literal_eval(
        keywords["python_requires"]
    )


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_install_requires_names_every_third_party_module_the_package_imports():
    requires, _ = _setup_requires()
    declared = {_normalize(r) for r in requires}
    distributions = packages_distributions()
    missing = {}
    for module in sorted(_imported_top_level_modules(REPO_ROOT / "espnet_distill")):
        if module == "espnet_distill" or module in sys.stdlib_module_names:
            continue
        dists = {_normalize(d) for d in distributions.get(module, [])}
        assert dists, f"espnet_distill imports {module}, which no installed distribution provides"
        if not dists & declared:
            missing[module] = sorted(dists)
    assert not missing, f"setup.py's install_requires lacks: {missing}"


def test_every_requirement_is_pinned_and_the_python_versions_agree():
    requires, python_requires = _setup_requires()
    pins = {}
    for line in (REPO_ROOT / "tools" / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"tools/requirements.txt: {line!r} is not pinned"
            pins[_normalize(name)] = version
    # numpy and scipy come pinned through torch, espnet and scikit-learn's own pins.
    unpinned = {_normalize(r) for r in requires} - set(pins) - {"numpy", "scipy"}
    assert not unpinned, f"tools/requirements.txt does not pin {sorted(unpinned)}"
    ruff_target = re.search(r'target-version = "py3(\d+)"', (REPO_ROOT / "ruff.toml").read_text()).group(1)
    assert python_requires == f">=3.{ruff_target}"
    install = (REPO_ROOT / "tools" / "install.sh").read_text()
    assert f"sys.version_info < (3, {ruff_target})" in install and f"Python 3.{ruff_target} or newer" in install
