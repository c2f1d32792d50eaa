"""The code's shape: dependencies run one way (entry points → use cases → channels → accounts → models and leaf
modules) and nothing imports in a circle, as .importlinter says; an import written inside a function counts
too, and none is needed except in the app factory, which puts the parts together."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FACTORY = ROOT / "app" / "__init__.py"


def test_the_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", str(ROOT / ".importlinter"), "--no-cache"], cwd=ROOT,
                            capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert "Contracts: 2 kept, 0 broken." in result.stdout, result.stdout + result.stderr
    assert result.returncode == 0


def _imports_inside_functions(source: str) -> list[int]:
    """The lines of `source` where a function imports a module of the app."""
    tree = ast.parse(source)
    found = []
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            own = (isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("app"))
                   or isinstance(node, ast.Import) and any(a.name.startswith("app") for a in node.names))
            if own:
                found.append(node.lineno)
    return found


def test_no_module_of_the_app_imports_another_inside_a_function():
    found = [f"{path.relative_to(ROOT)}:{line}" for path in sorted((ROOT / "app").rglob("*.py")) if path != FACTORY
             for line in _imports_inside_functions(path.read_text(encoding="utf-8"))]
    assert found == [], "import at the top of the module (a circle it would close is a design to fix):\n" + \
        "\n".join(found)


def test_the_check_sees_an_import_inside_a_function():
    source = ("import os\n\ndef late():\n    from .models import Shop\n    import json\n    import app.urls\n"
              "    return Shop\n")
    assert _imports_inside_functions(source) == [4, 6]
