"""infra/k8s manifests and infra/addons (Helm values, install script): validated offline.

    .venv/bin/pytest tests/infra -q

kubectl/helm against a cluster cannot run here (no API server); the manifests are validated
against the Kubernetes OpenAPI schemas, the values files against what the chart and the adapter
rule expect, and the install script for syntax and pinned versions.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from infra_files import INFRA, ROOT

K8S = INFRA / "k8s"
ADDONS = INFRA / "addons"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize("kube_version", ["1.30.0", "1.33.0"])
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifests_are_valid_kubernetes(path, kube_version):
    for doc in docs(path):
        kubernetes_validate.validate(doc, kube_version, strict=True)


def test_kustomization_lists_every_manifest():
    k = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(k["resources"]) == [p.name for p in MANIFESTS]


def test_namespaces_and_pod_security():
    ns = {d["metadata"]["name"]: d["metadata"]["labels"] for d in docs(K8S / "namespaces.yaml")}
    assert {"vlaops", "vlaops-serving", "monitoring"} <= set(ns)
    # The chart's pods meet `restricted` (tests/charts checks their security contexts).
    assert ns["vlaops-serving"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert ns["vlaops"]["pod-security.kubernetes.io/enforce"] == "baseline"


def test_pipeline_roles_grant_only_what_training_launch_and_deploy_need():
    rbac = [d for d in docs(K8S / "pipeline-rbac.yaml") if d["kind"] in ("Role", "RoleBinding")]
    roles = {d["metadata"]["namespace"]: d["rules"] for d in rbac if d["kind"] == "Role"}
    # train: launch and follow JobSets / TrainJobs in the pipeline namespace
    assert {g for r in roles["vlaops"] for g in r["apiGroups"]} == {
        "jobset.x-k8s.io",
        "trainer.kubeflow.org",
        "batch",
        "",
    }
    # deploy: patch Deployments and read Services of the serving namespace, nothing else
    assert {(tuple(r["apiGroups"]), tuple(r["resources"])) for r in roles["vlaops-serving"]} == {
        (("apps",), ("deployments",)),
        (("",), ("services",)),
    }
    assert not any({"create", "delete"} & set(r["verbs"]) for r in roles["vlaops-serving"])
    for rule in roles["vlaops"] + roles["vlaops-serving"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
    bindings = [d for d in rbac if d["kind"] == "RoleBinding"]
    assert len(bindings) == 2
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "vlaops-pipeline", "namespace": "vlaops"}
        ]


def test_prometheus_adapter_gets_the_chart_rule():
    values = yaml.safe_load((ADDONS / "prometheus-adapter-values.yaml").read_text())
    rules = yaml.safe_load(
        (ROOT / "charts/vlaops-triton/prometheus-adapter-rules.yaml").read_text()
    )
    assert values["rules"]["default"] is False
    assert "custom" not in values["rules"]  # comes from the chart's file (lists don't merge)
    assert rules["rules"]["custom"][0]["name"]["as"] == "triton_queue_time_avg_us"
    # The adapter queries the Prometheus that install.sh installs: release kube-prometheus-stack
    # in namespace monitoring → Service kube-prometheus-stack-prometheus.
    assert values["prometheus"]["url"] == "http://kube-prometheus-stack-prometheus.monitoring.svc"
    script = (ADDONS / "install.sh").read_text()
    assert "helm upgrade --install kube-prometheus-stack" in script
    assert "--namespace monitoring" in script
    assert "-f charts/vlaops-triton/prometheus-adapter-rules.yaml" in script


def test_prometheus_selects_the_chart_servicemonitor():
    values = yaml.safe_load((ADDONS / "kube-prometheus-stack-values.yaml").read_text())
    assert (
        values["prometheus"]["prometheusSpec"]["serviceMonitorSelectorNilUsesHelmValues"] is False
    )


def test_install_script_is_valid_bash_with_pinned_versions():
    script = ADDONS / "install.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    versions = dict(re.findall(r"^([A-Z_]+_VERSION)=(\S+)", text, re.M))
    assert set(versions) == {
        "KFP_VERSION",
        "TRAINER_VERSION",
        "KUBE_PROMETHEUS_STACK_VERSION",
        "PROMETHEUS_ADAPTER_VERSION",
    }
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in versions.values()), versions
    for path in re.findall(r"-[fk] ((?:infra|charts)/\S+)", text):
        assert (ROOT / path).exists(), path
    # Every executed command line (comments aside) uses the pinned versions, never a branch.
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "master" not in code and "latest" not in code
