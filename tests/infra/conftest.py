"""Fixtures for the infra/ tests: Terraform parsed with python-hcl2, one checkov run over infra/.

    .venv/bin/pytest tests/infra -q          # ~10 s; needs `make setup` (checkov in .tools/)

No terraform binary, cloud project or Kubernetes API server can run here: Terraform is parsed and
checked structurally, manifests are validated against the Kubernetes OpenAPI schemas, and checkov
runs its Terraform and Kubernetes policies. `terraform plan` / `kubectl apply` are not exercised.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import hcl2
import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
TERRAFORM = INFRA / "terraform"
CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"

HCL_OPTIONS = hcl2.SerializationOptions(
    with_comments=False, explicit_blocks=False, strip_string_quotes=True
)


def load_hcl(path: Path) -> dict:
    with open(path) as f:
        return hcl2.load(f, serialization_options=HCL_OPTIONS)


@pytest.fixture(scope="session")
def tf() -> dict[str, dict]:
    """Every .tf file under infra/terraform, parsed: {file name: parsed dict}."""
    files = sorted(TERRAFORM.glob("*.tf"))
    assert files, "no Terraform files"
    return {p.name: load_hcl(p) for p in files}


@pytest.fixture(scope="session")
def tf_text() -> str:
    return "\n".join(p.read_text() for p in sorted(TERRAFORM.glob("*.tf")))


def blocks(tf: dict[str, dict], kind: str) -> dict[str, dict]:
    """Top-level blocks of one kind (variable, output, locals...) merged across files by name."""
    out: dict[str, dict] = {}
    for parsed in tf.values():
        for block in parsed.get(kind, []):
            out.update(block)
    return out


def resources(tf: dict[str, dict], rtype: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for parsed in tf.values():
        for block in parsed.get("resource", []):
            out.update(block.get(rtype, {}))
    return out


def local_values(tf: dict[str, dict]) -> dict:
    out: dict = {}
    for parsed in tf.values():
        for block in parsed.get("locals", []):
            out.update(block)
    return out


@pytest.fixture(scope="module")
def checkov_reports() -> dict[str, dict]:
    """One checkov run over infra/ (Terraform and Kubernetes frameworks): {check_type: report}."""
    if not os.access(CHECKOV, os.X_OK):
        pytest.fail(f"{CHECKOV.relative_to(ROOT)} is missing: run `make setup` (or `make tools`)")
    proc = subprocess.run(
        [
            str(CHECKOV),
            "--skip-download",
            "-d",
            str(INFRA),
            "--framework",
            "terraform",
            "kubernetes",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.stdout, proc.stderr[-3000:]
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    return {r["check_type"]: r for r in reports}
