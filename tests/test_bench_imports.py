"""The benchmarks import what exists: every ``import``/``from … import`` in bench/*.py — most of
them inside functions, so running ``--help`` would not reach them — names a real module and
attribute. (A renamed test helper once broke ``bench/sim.py`` without any test noticing.)"""

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHES = sorted((ROOT / "bench").glob("*.py"))


@pytest.mark.parametrize("script", BENCHES, ids=lambda p: p.name)
def test_every_import_resolves(script, monkeypatch):
    # the paths the scripts add to sys.path themselves
    for extra in (ROOT / "bench", ROOT / "tests" / "sim", ROOT):
        monkeypatch.syspath_prepend(str(extra))
    missing = []
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if importlib.util.find_spec(alias.name) is None:
                    missing.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "__future__":
                continue
            module = importlib.import_module(node.module)
            for alias in node.names:
                submodule = hasattr(module, "__path__") and importlib.util.find_spec(
                    f"{node.module}.{alias.name}"
                )
                if not hasattr(module, alias.name) and not submodule:
                    missing.append(f"line {node.lineno}: from {node.module} import {alias.name}")
    assert not missing, f"{script.name}: " + "; ".join(missing)
