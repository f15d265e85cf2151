"""Helpers for the Helm chart tests: paths, the real helm binary, rendering.

    .venv/bin/pytest tests/charts -q          # ~15 s; needs `make setup` (helm, checkov in .tools/)

No Kubernetes API server can run here, so nothing is installed: the chart is linted, rendered,
validated against the Kubernetes OpenAPI schemas (kubernetes-validate) and scanned (checkov).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "vlaops-triton"
HELM = ROOT / ".tools" / "helm" / "helm"
CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"
NAMESPACE = "vlaops-serving"


def tool(path: Path) -> Path:
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path.relative_to(ROOT)} is missing: run `make setup` (or `make tools`)")
    return path


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(tool(HELM)), *args], capture_output=True, text=True, check=check, timeout=120
    )


@dataclass
class Rendered:
    """The documents `helm template` produced, looked up by kind (and name)."""

    text: str
    docs: list[dict]

    def kind(self, kind: str) -> list[dict]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str) -> dict:
        found = [d for d in self.kind(kind) if "helm.sh/hook" not in _annotations(d)]
        assert len(found) == 1, f"expected one {kind}, got {[d['metadata']['name'] for d in found]}"
        return found[0]

    def test_pod(self) -> dict:
        pods = [d for d in self.kind("Pod") if _annotations(d).get("helm.sh/hook") == "test"]
        assert len(pods) == 1
        return pods[0]


def _annotations(doc: dict) -> dict:
    return doc["metadata"].get("annotations") or {}


def render(
    *values_files: Path, release: str = "vlaops-triton", set_: tuple[str, ...] = ()
) -> Rendered:
    args = ["template", release, str(CHART), "-n", NAMESPACE]
    for f in values_files:
        args += ["-f", str(f)]
    for s in set_:
        args += ["--set", s]
    text = helm(*args).stdout
    return Rendered(text, [d for d in yaml.safe_load_all(text) if d])


def render_error(*set_: str, values: dict | None = None, tmp_path: Path | None = None) -> str:
    """Render expecting failure; return helm's error message."""
    args = ["template", "t", str(CHART), "-n", NAMESPACE]
    if values is not None:
        assert tmp_path is not None
        f = tmp_path / "bad-values.yaml"
        f.write_text(yaml.safe_dump(values))
        args += ["-f", str(f)]
    for s in set_:
        args += ["--set", s]
    proc = helm(*args, check=False)
    assert proc.returncode != 0, f"helm template accepted {set_ or values}"
    return proc.stderr


SCENARIOS = sorted(CHART.glob("ci/*-values.yaml"))


def scenario_name(path: Path) -> str:
    return path.name.removesuffix("-values.yaml")
