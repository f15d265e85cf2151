"""The vlaops-triton chart, checked with the real helm 3.18 binary, kubernetes-validate and checkov.

    .venv/bin/pytest tests/charts -q

What cannot run here: `helm install` and `helm test` need a Kubernetes API server (none can run on
these machines), so the rendered manifests are checked instead — structure, the rollout contract,
schema validation against the Kubernetes OpenAPI schemas, and checkov's policies.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from helm_chart import CHART, NAMESPACE, SCENARIOS, helm, render_error, scenario_name

KUBE_VERSIONS = ("1.30.0", "1.33.0")  # GKE's oldest supported and a current one


def container(deployment: dict) -> dict:
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return c


# --- helm lint / package -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values", [None, *SCENARIOS], ids=["chart-defaults", *map(scenario_name, SCENARIOS)]
)
def test_helm_lint_strict(values):
    args = ["lint", "--strict", str(CHART)] + (["-f", str(values)] if values else [])
    proc = helm(*args, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


def test_ci_scenarios_cover_the_features():
    names = {scenario_name(p) for p in SCENARIOS}
    assert {
        "default",
        "gpu-l4",
        "autoscaling-cpu-fallback",
        "servicemonitor-networkpolicy",
    } <= names


def test_helm_package(tmp_path):
    proc = helm("package", str(CHART), "-d", str(tmp_path))
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert (tmp_path / f"vlaops-triton-{chart['version']}.tgz").exists(), proc.stdout


# --- the Triton Deployment -----------------------------------------------------------------------


def test_triton_pulls_the_gs_model_repository_and_polls_it(default):
    c = container(default.one("Deployment"))
    assert c["command"] == ["tritonserver"]
    assert "--model-repository=gs://PROJECT-vlaops-models" in c["args"]
    assert "--model-control-mode=poll" in c["args"]
    assert "--repository-poll-secs=60" in c["args"]
    assert c["image"] == "us-docker.pkg.dev/PROJECT/vlaops/serve:0.1.0"  # tag = appVersion


def test_explicit_model_control_loads_the_listed_models(rendered_scenarios):
    args = container(rendered_scenarios["explicit-no-autoscaling"].one("Deployment"))["args"]
    assert "--model-control-mode=explicit" in args
    assert "--load-model=pi0" in args
    assert not any(a.startswith("--repository-poll-secs") for a in args)


def test_probes(default):
    c = container(default.one("Deployment"))
    ready = c["readinessProbe"]["httpGet"]
    assert (ready["path"], ready["port"]) == ("/v2/health/ready", "http")
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    startup = c["startupProbe"]
    # Triton answers only after downloading the model from the bucket: allow at least 10 minutes.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600


def test_rolling_update_loses_no_requests(default):
    d = default.one("Deployment")
    strategy = d["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    assert strategy["rollingUpdate"]["maxSurge"] >= 1
    pod = d["spec"]["template"]["spec"]
    c = container(d)
    sleep = c["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep" and int(sleep[1]) >= 5
    exit_timeout = int(
        next(a for a in c["args"] if a.startswith("--exit-timeout-secs=")).split("=")[1]
    )
    assert pod["terminationGracePeriodSeconds"] > int(sleep[1]) + exit_timeout
    pdb = default.one("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == d["spec"]["selector"]["matchLabels"]


def test_grace_period_shorter_than_drain_is_refused():
    err = render_error("rollout.terminationGracePeriodSeconds=20")
    assert "terminationGracePeriodSeconds" in err


def test_security_context_non_root_read_only(rendered_scenarios):
    for name, r in rendered_scenarios.items():
        for pod_spec in [r.one("Deployment")["spec"]["template"]["spec"], r.test_pod()["spec"]]:
            assert pod_spec["securityContext"]["runAsNonRoot"] is True, name
            assert pod_spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
            assert pod_spec["automountServiceAccountToken"] is False
            (c,) = pod_spec["containers"]
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            # A read-only root needs writable scratch space.
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            volumes = {v["name"]: v for v in pod_spec["volumes"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], name


def test_shared_memory_for_the_python_backend(default):
    pod = default.one("Deployment")["spec"]["template"]["spec"]
    mounts = {
        m["mountPath"]: m["name"] for m in container(default.one("Deployment"))["volumeMounts"]
    }
    shm = next(v for v in pod["volumes"] if v["name"] == mounts["/dev/shm"])
    assert shm["emptyDir"]["medium"] == "Memory"


def test_gpu_resources_node_selector_tolerations(default, rendered_scenarios):
    pod = default.one("Deployment")["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 1}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    l4 = rendered_scenarios["gpu-l4"].one("Deployment")["spec"]["template"]["spec"]
    assert l4["nodeSelector"]["cloud.google.com/gke-accelerator"] == "nvidia-l4"
    assert l4["nodeSelector"]["vlaops.dev/pool"] == "serve"
    limits = l4["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == 1 and limits["memory"] == "26Gi"
    assert (
        l4["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"]
        == (rendered_scenarios["gpu-l4"].one("Deployment")["spec"]["selector"]["matchLabels"])
    )


def test_no_resource_numbers_baked_in(default):
    resources = container(default.one("Deployment"))["resources"]
    assert set(resources) == {"limits"} and set(resources["limits"]) == {"nvidia.com/gpu"}


def test_image_digest_wins_over_tag(rendered_scenarios):
    image = container(rendered_scenarios["gpu-l4"].one("Deployment"))["image"]
    assert image == "us-docker.pkg.dev/PROJECT/vlaops/serve@sha256:" + "0" * 64


# --- labels and selectors ------------------------------------------------------------------------


def test_selectors_are_stable_and_consistent(rendered_scenarios):
    for name, r in rendered_scenarios.items():
        d = r.one("Deployment")
        selector = d["spec"]["selector"]["matchLabels"]
        assert not any(k == "helm.sh/chart" or k.endswith("/version") for k in selector), name
        assert selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        assert r.one("Service")["spec"]["selector"] == selector
        for np in r.kind("NetworkPolicy"):
            if np["metadata"]["name"] == d["metadata"]["name"]:
                assert np["spec"]["podSelector"]["matchLabels"] == selector
        # The test pod must never become a Service endpoint.
        test_labels = r.test_pod()["metadata"]["labels"]
        assert not selector.items() <= test_labels.items(), name
        for doc in r.docs:
            labels = doc["metadata"]["labels"]
            assert labels["app.kubernetes.io/name"] == "vlaops-triton"
            assert labels["app.kubernetes.io/managed-by"] == "Helm"
            assert doc["metadata"]["namespace"] == NAMESPACE


# --- Service, ServiceAccount, HPA, ServiceMonitor, NetworkPolicy ---------------------------------


def test_service_exposes_http_grpc_metrics(default):
    ports = {p["name"]: p for p in default.one("Service")["spec"]["ports"]}
    assert {n: p["port"] for n, p in ports.items()} == {"http": 8000, "grpc": 8001, "metrics": 8002}
    container_ports = {p["name"] for p in container(default.one("Deployment"))["ports"]}
    assert {p["targetPort"] for p in ports.values()} == container_ports


def test_service_account_carries_the_workload_identity_annotation(default, rendered_scenarios):
    sa = rendered_scenarios["gpu-l4"].one("ServiceAccount")
    assert sa["metadata"]["name"] == "vlaops-triton"  # the KSA infra/ binds
    assert sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == (
        "vlaops-triton@my-project.iam.gserviceaccount.com"
    )
    d = rendered_scenarios["gpu-l4"].one("Deployment")
    assert d["spec"]["template"]["spec"]["serviceAccountName"] == "vlaops-triton"
    assert "annotations" not in default.one("ServiceAccount")["metadata"]
    assert not rendered_scenarios["explicit-no-autoscaling"].kind("ServiceAccount")


def test_hpa_scales_on_triton_queue_time(default):
    hpa = default.one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == default.one("Deployment")["metadata"]["name"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] == "triton_queue_time_avg_us"
    assert metric["pods"]["target"] == {"type": "AverageValue", "averageValue": "50000"}
    assert "replicas" not in default.one("Deployment")["spec"]  # the HPA owns it


def test_hpa_metric_is_what_the_prometheus_adapter_rule_serves(default):
    rules = yaml.safe_load((CHART / "prometheus-adapter-rules.yaml").read_text())
    (rule,) = rules["rules"]["custom"]
    hpa_metric = default.one("HorizontalPodAutoscaler")["spec"]["metrics"][0]["pods"]["metric"]
    assert rule["name"]["as"] == hpa_metric["name"]
    assert re.search(r"nv_inference_queue_duration_us", rule["seriesQuery"])
    q = rule["metricsQuery"]
    assert "rate(nv_inference_queue_duration_us{<<.LabelMatchers>>}" in q
    assert "rate(nv_inference_request_success{<<.LabelMatchers>>}" in q
    assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}


def test_cpu_fallback_metric(rendered_scenarios):
    hpa = rendered_scenarios["autoscaling-cpu-fallback"].one("HorizontalPodAutoscaler")
    kinds = [m["type"] for m in hpa["spec"]["metrics"]]
    assert kinds == ["Pods", "Resource"]
    cpu = hpa["spec"]["metrics"][1]["resource"]
    assert cpu == {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}
    assert hpa["spec"]["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 600}}


def test_cpu_fallback_without_cpu_request_is_refused():
    err = render_error("autoscaling.cpuFallback.enabled=true")
    assert "resources.requests.cpu" in err


def test_autoscaling_off_sets_replicas(rendered_scenarios):
    r = rendered_scenarios["explicit-no-autoscaling"]
    assert not r.kind("HorizontalPodAutoscaler") and not r.kind("PodDisruptionBudget")
    assert r.one("Deployment")["spec"]["replicas"] == 2


def test_servicemonitor_toggle(default, rendered_scenarios):
    assert not default.kind("ServiceMonitor")
    r = rendered_scenarios["servicemonitor-networkpolicy"]
    sm = r.one("ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"
    assert (
        sm["spec"]["selector"]["matchLabels"].items()
        <= r.one("Service")["metadata"]["labels"].items()
    )


def test_network_policy_restricts_sources_but_lets_the_test_pod_in(rendered_scenarios):
    r = rendered_scenarios["servicemonitor-networkpolicy"]
    name = r.one("Deployment")["metadata"]["name"]
    np = next(n for n in r.kind("NetworkPolicy") if n["metadata"]["name"] == name)
    assert np["spec"]["policyTypes"] == ["Ingress", "Egress"]
    inference, metrics = np["spec"]["ingress"]
    assert {p["port"] for p in inference["ports"]} == {"http", "grpc"}
    sources = [f.get("podSelector", {}).get("matchLabels") for f in inference["from"]]
    assert r.test_pod()["metadata"]["labels"].items() >= sources[-1].items()
    assert metrics["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    dns = np["spec"]["egress"][0]["ports"]
    assert {"port": 53, "protocol": "UDP"} in dns


# --- helm test pod, NOTES ------------------------------------------------------------------------


def test_helm_test_pod_runs_one_inference_through_the_service(default):
    pod = default.test_pod()
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    (c,) = pod["spec"]["containers"]
    svc = default.one("Service")["metadata"]["name"]
    assert c["command"] == [
        "vlaops",
        "infer",
        "--server",
        f"{svc}.{NAMESPACE}.svc.cluster.local:8001",
        "--model-name",
        "pi0",
        "--repeat",
        "1",
    ]
    assert c["image"] == container(default.one("Deployment"))["image"]


def render_notes(tmp_path: Path, *set_: str) -> str:
    """NOTES.txt as helm renders it. `helm install --dry-run=client` still asks a cluster for its
    version in helm 3.18, so a copy of the chart wraps NOTES.txt in a named template and a ConfigMap,
    and `helm template` renders that."""
    chart = tmp_path / "vlaops-triton"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "_notes.tpl").write_text('{{- define "notes" }}' + notes + "{{- end }}")
    (chart / "templates" / "notes-configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n"
        '  notes: {{ include "notes" . | toJson }}\n'
    )
    args = ["template", "vlaops-triton", str(chart), "-n", NAMESPACE]
    args += ["--show-only", "templates/notes-configmap.yaml"]
    for s in set_:
        args += ["--set", s]
    return yaml.safe_load(helm(*args).stdout)["data"]["notes"]


def test_notes_render(tmp_path):
    notes = render_notes(tmp_path, "modelRepository=gs://acme-models")
    assert "gRPC     vlaops-triton.vlaops-serving.svc.cluster.local:8001" in notes
    assert "helm test vlaops-triton -n vlaops-serving --logs" in notes
    assert (
        "/apis/custom.metrics.k8s.io/v1beta1/namespaces/vlaops-serving/pods/*/triton_queue_time_avg_us"
        in notes
    )
    assert "WARNING: serviceAccount.gcpServiceAccount is empty" in notes
    quiet = render_notes(
        tmp_path / "2", "serviceAccount.gcpServiceAccount=vlaops-triton@p.iam.gserviceaccount.com"
    )
    assert "WARNING" not in quiet


# --- values.yaml and values.schema.json ----------------------------------------------------------


def _undocumented_keys(node: yaml.MappingNode, lines: list[str], path: str = "") -> list[str]:
    """helm-docs rule: a key needs a `# --` comment right above it, unless it is a plain group
    (a non-empty map) whose keys are each documented."""
    missing = []
    for key, value in node.value:
        line = key.start_mark.line
        above = []
        i = line - 1
        while i >= 0 and lines[i].strip().startswith("#"):
            above.append(lines[i].strip())
            i -= 1
        name = f"{path}.{key.value}" if path else key.value
        if any(a.startswith("# --") for a in above):
            continue
        if isinstance(value, yaml.MappingNode) and value.value:
            missing += _undocumented_keys(value, lines, name)
        else:
            missing.append(name)
    return missing


def test_every_value_is_documented():
    text = (CHART / "values.yaml").read_text()
    assert _undocumented_keys(yaml.compose(text), text.splitlines()) == []


def test_documentation_check_catches_an_undocumented_key():
    text = "a:\n  # -- fine\n  b: 1\n  c: 2\n"
    assert _undocumented_keys(yaml.compose(text), text.splitlines()) == ["a.c"]


def test_schema_and_values_cover_the_same_keys():
    import json

    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(schema["properties"]) - {"global"} == set(values)

    def walk(s: dict, v: dict, path: str):
        if s.get("additionalProperties") is False and isinstance(v, dict):
            assert set(v) <= set(s["properties"]), f"{path}: {set(v) - set(s['properties'])}"
            for k, sub in v.items():
                if isinstance(sub, dict) and "properties" in s["properties"][k]:
                    walk(s["properties"][k], sub, f"{path}.{k}")

    walk(schema, values, "")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"typo": 1}, "Additional property typo is not allowed"),
        ({"triton": {"modelControlMode": "sometimes"}}, "modelControlMode"),
        ({"modelRepository": "http://example.com/models"}, "modelRepository"),
        ({"gpu": {"count": -1}}, "gpu.count"),
        ({"image": {"digest": "latest"}}, "image.digest"),
        (
            {"autoscaling": {"cpuFallback": {"targetUtilizationPercentage": 150}}},
            "targetUtilizationPercentage",
        ),
        ({"serviceAccount": {"gcpServiceAccount": "not-an-email"}}, "gcpServiceAccount"),
        ({"rollout": {"maxUnavailable": "one"}}, "maxUnavailable"),
    ],
)
def test_schema_rejects_bad_values(values, message, tmp_path):
    err = render_error(values=values, tmp_path=tmp_path)
    assert "values don't meet the specifications of the schema" in err
    assert message in err


def test_pdb_refuses_both_bounds():
    err = render_error("podDisruptionBudget.minAvailable=1", "podDisruptionBudget.maxUnavailable=1")
    assert "not both" in err


# --- kubernetes-validate and checkov -------------------------------------------------------------


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_rendered_manifests_are_valid_kubernetes(rendered_scenarios, kube_version):
    crds = set()
    for name, r in rendered_scenarios.items():
        for doc in r.docs:
            try:
                kubernetes_validate.validate(doc, kube_version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                crds.add(f"{doc['apiVersion']}/{doc['kind']}")
            except kubernetes_validate.ValidationError as e:
                pytest.fail(
                    f"{name}: {doc['kind']}/{doc['metadata']['name']}: {e.message} at {e.path}"
                )
    assert crds <= {"monitoring.coreos.com/v1/ServiceMonitor"}  # a CRD: no schema offline


def test_kubernetes_validate_catches_a_broken_manifest(default):
    d = default.one("Deployment")
    bad = yaml.safe_load(yaml.safe_dump(d))
    bad["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = [8000]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBE_VERSIONS[-1], strict=True)


def test_checkov_passes_with_every_skip_explained(checkov_report):
    summary = checkov_report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} ({Path(c['file_path']).name})"
        for c in checkov_report["results"]["failed_checks"]
    ]
    assert failed == [], "checkov failures without a written reason:\n" + "\n".join(failed)
    assert summary["passed"] > 100 and summary["parsing_errors"] == 0
    for c in checkov_report["results"]["skipped_checks"]:
        assert len(c["check_result"].get("suppress_comment", "")) >= 30, (
            f"{c['check_id']}: reason too short"
        )


def test_checkov_skips_disappear_when_values_fix_them(checkov_report):
    """The resource/digest skips are only emitted while those values are unset."""
    skipped = {
        (Path(c["file_path"]).stem, c["resource"].split(".")[0], c["check_id"])
        for c in checkov_report["results"]["skipped_checks"]
    }
    for check in ("CKV_K8S_10", "CKV_K8S_11", "CKV_K8S_12", "CKV_K8S_13", "CKV_K8S_43"):
        assert ("default", "Deployment", check) in skipped
        assert ("gpu-l4", "Deployment", check) not in skipped
