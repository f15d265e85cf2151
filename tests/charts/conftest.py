"""Fixtures for the Helm chart tests: rendered ci/ scenarios and one checkov run.

    .venv/bin/pytest tests/charts -q

needs `make setup` (helm, checkov in .tools/).
"""

from __future__ import annotations

import json
import subprocess

import pytest
from helm_chart import CHECKOV, SCENARIOS, Rendered, render, scenario_name, tool


@pytest.fixture(scope="session")
def rendered_scenarios() -> dict[str, Rendered]:
    """Every ci/*-values.yaml scenario, each under its own release name (checkov's graph checks
    match NetworkPolicies to pods by labels: distinct releases keep scenarios apart)."""
    return {scenario_name(p): render(p, release=scenario_name(p)) for p in SCENARIOS}


@pytest.fixture(scope="session")
def default() -> Rendered:
    return render()


@pytest.fixture(scope="module")
def checkov_report(rendered_scenarios, tmp_path_factory) -> dict:
    """One checkov run over all rendered scenarios (checkov is slow to start)."""
    out = tmp_path_factory.mktemp("rendered")
    for name, r in rendered_scenarios.items():
        (out / f"{name}.yaml").write_text(r.text)
    proc = subprocess.run(
        [
            str(tool(CHECKOV)),
            "--skip-download",
            "--framework",
            "kubernetes",
            "-d",
            str(out),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.stdout, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert isinstance(report, dict), "expected one (kubernetes) report"
    return report
