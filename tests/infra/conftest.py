"""Fixtures for the infra/ tests: parsed Terraform and one checkov run over infra/.

    .venv/bin/pytest tests/infra -q

needs `make setup` (checkov in .tools/).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from infra_files import CHECKOV, INFRA, ROOT, TERRAFORM, load_hcl


@pytest.fixture(scope="session")
def tf() -> dict[str, dict]:
    """Every .tf file under infra/terraform, parsed: {file name: parsed dict}."""
    files = sorted(TERRAFORM.glob("*.tf"))
    assert files, "no Terraform files"
    return {p.name: load_hcl(p) for p in files}


@pytest.fixture(scope="session")
def tf_text() -> str:
    return "\n".join(p.read_text() for p in sorted(TERRAFORM.glob("*.tf")))


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
