"""The package's layers: who may import whom (issue 13: one owner per contract).

Lower layers never import higher ones, and ``train`` and ``generate`` never import each other:
both go through the shared ``checkpoint``, ``search`` and ``data`` packages. Imports inside
functions count too (they are how a cycle would sneak back in).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "nmt_preln"

TOOLS = ("export", "interop", "analysis")  # the side commands, above everything
# package -> packages it must never import (directly, at any depth of the module).
FORBIDDEN = {
    "data": {
        "models",
        "checkpoint",
        "search",
        "train",
        "generate",
        "export",
        "interop",
        "analysis",
    },
    "models": {"checkpoint", "search", "train", "generate", "export", "interop", "analysis"},
    "checkpoint": {"search", "train", "generate", "export", "interop", "analysis"},
    "search": {"train", "generate", "export", "interop", "analysis"},
    "train": {"generate", "export", "interop", "analysis"},
    "generate": {"train", "export", "interop", "analysis"},
}


def _imported_packages(path: Path) -> set[str]:
    """The first-level subpackages of nmt_preln that ``path`` imports anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "nmt_preln" and len(parts) > 1:
                found.add(parts[1])
    return found


def _modules(package: str) -> list[Path]:
    return sorted((PACKAGE / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_forbidden_imports(package: str) -> None:
    assert _modules(package), f"nmt_preln/{package} has no modules: is FORBIDDEN out of date?"
    bad = {
        f"{path.relative_to(PACKAGE)} imports nmt_preln.{other}"
        for path in _modules(package)
        for other in _imported_packages(path) & FORBIDDEN[package]
    }
    assert not bad, sorted(bad)


def test_the_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from nmt_preln.generate.run import generate\n")
    assert _imported_packages(module) == {"generate"}
