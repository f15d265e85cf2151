"""Helpers for the infra/ tests: paths and Terraform parsed with python-hcl2.

    .venv/bin/pytest tests/infra -q          # ~10 s; needs `make setup` (checkov in .tools/)

No terraform binary, cloud project or Kubernetes API server can run here: Terraform is parsed and
checked structurally, manifests are validated against the Kubernetes OpenAPI schemas, and checkov
runs its Terraform and Kubernetes policies. `terraform plan` / `kubectl apply` are not exercised.
"""

from __future__ import annotations

from pathlib import Path

import hcl2

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
