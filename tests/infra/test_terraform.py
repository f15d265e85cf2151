"""infra/terraform: parsed with python-hcl2 (no terraform binary runs here) and checked for the
contracts the pipeline and the chart rely on; checkov's Terraform policies run in test_checkov.py.

    .venv/bin/pytest tests/infra -q
"""

from __future__ import annotations

import re
import subprocess

import hcl2
import pytest
import yaml
from infra_files import HCL_OPTIONS, ROOT, TERRAFORM, blocks, load_hcl, local_values, resources

CHART = ROOT / "charts" / "vlaops-triton"


def test_every_file_parses(tf):
    assert {
        "variables.tf",
        "outputs.tf",
        "cluster.tf",
        "node_pools.tf",
        "storage.tf",
        "iam.tf",
    } <= set(tf)


def test_parser_rejects_broken_hcl():
    with pytest.raises(Exception):  # noqa: B017 - any parse error will do
        hcl2.loads('resource "a" "b" {\n  x = \n', serialization_options=HCL_OPTIONS)


def test_variables_have_descriptions_types_and_are_used(tf, tf_text):
    variables = blocks(tf, "variable")
    assert len(variables) > 20
    for name, v in variables.items():
        assert len(v.get("description", "")) >= 20, f"variable {name}: no useful description"
        assert "type" in v, f"variable {name}: no type"
    referenced = set(re.findall(r"\bvar\.([a-z0-9_]+)", tf_text))
    assert referenced - set(variables) == set(), "referenced but not declared"
    assert set(variables) - referenced == set(), "declared but never used"


def test_only_the_project_needs_a_value(tf):
    required = {n for n, v in blocks(tf, "variable").items() if "default" not in v}
    assert required == {"project_id"}


def test_locals_are_defined(tf, tf_text):
    defined = set(local_values(tf))
    assert set(re.findall(r"\blocal\.([a-z0-9_]+)", tf_text)) <= defined


def test_outputs_have_descriptions(tf):
    outputs = blocks(tf, "output")
    for name, o in outputs.items():
        assert len(o.get("description", "")) >= 15, f"output {name}"
    needed = {
        "get_credentials",
        "model_repository",
        "pipeline_root",
        "image_registry",
        "pipeline_gcp_service_account",
        "triton_gcp_service_account",
        "pipeline_parameters",
        "triton_helm_values",
        "node_pools",
        "buckets",
    }
    assert needed <= set(outputs)


def test_tfvars_example_sets_only_declared_variables(tf):
    example = load_hcl(TERRAFORM / "terraform.tfvars.example")
    assert set(example) <= set(blocks(tf, "variable"))
    assert "project_id" in example


def test_cluster_has_workload_identity_and_hardening(tf):
    (cluster,) = resources(tf, "google_container_cluster").values()
    assert (
        cluster["workload_identity_config"][0]["workload_pool"] == "${var.project_id}.svc.id.goog"
    )
    assert cluster["remove_default_node_pool"] is True
    assert cluster["datapath_provider"] == "ADVANCED_DATAPATH"  # enforces NetworkPolicy
    assert cluster["private_cluster_config"][0]["enable_private_nodes"] is True
    assert cluster["deletion_protection"] == "${var.deletion_protection}"


def test_node_pools(tf):
    pools = resources(tf, "google_container_node_pool")
    assert set(pools) == {"cpu", "train", "serve"}
    locals_ = local_values(tf)
    assert locals_["pool_label"] == "vlaops.dev/pool"
    for name, pool in pools.items():
        nc = pool["node_config"][0]
        assert nc["labels"] == {"${(local.pool_label)}": name}, name
        assert nc["workload_metadata_config"][0]["mode"] == "GKE_METADATA", name
        assert nc["image_type"] == "COS_CONTAINERD"
        assert pool["management"][0] == {"auto_repair": True, "auto_upgrade": True}

    train = pools["train"]
    assert train["autoscaling"][0]["total_min_node_count"] == 0  # from zero
    nc = train["node_config"][0]
    assert nc["spot"] == "${var.train_spot}"
    assert nc["guest_accelerator"][0]["type"] == "${local.train_accelerator}"
    assert nc["guest_accelerator"][0]["gpu_driver_installation_config"][0]["gpu_driver_version"]
    taints = {(t["key"], t["effect"]) for t in nc["taint"]}
    assert {("nvidia.com/gpu", "NO_SCHEDULE"), ("${local.pool_label}", "NO_SCHEDULE")} <= taints
    assert (
        nc["ephemeral_storage_local_ssd_config"][0]["local_ssd_count"]
        == "${local.train_local_ssds}"
    )

    serve = pools["serve"]["node_config"][0]
    assert serve["guest_accelerator"][0]["type"] == "${var.serve_gpu_type}"
    assert ("nvidia.com/gpu", "NO_SCHEDULE") in {(t["key"], t["effect"]) for t in serve["taint"]}


def test_a100_variants_are_selectable(tf):
    variables = blocks(tf, "variable")
    assert variables["train_gpu"]["default"] == "a100-80gb"
    condition = variables["train_gpu"]["validation"][0]["condition"]
    assert "a100-80gb" in condition and "a100-40gb" in condition
    locals_ = local_values(tf)
    # a2-ultragpu carries A100 80GB, a2-highgpu A100 40GB.
    assert (
        "a2-ultragpu" in locals_["train_machine_type"]
        and "a2-highgpu" in locals_["train_machine_type"]
    )
    assert "nvidia-a100-80gb" in locals_["train_accelerator"]
    assert "nvidia-tesla-a100" in locals_["train_accelerator"]
    assert variables["train_spot"]["type"] == "bool"


def test_buckets(tf):
    (bucket,) = resources(tf, "google_storage_bucket").values()
    specs = local_values(tf)["buckets"]
    assert set(specs) == {"raw", "datasets", "checkpoints", "models"}
    assert bucket["name"] == "${local.bucket_prefix}-${each.key}"
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    versioned = {k for k, v in specs.items() if v["versioned"] is True}
    assert versioned == {"raw", "datasets", "models"}
    # Lifecycle rules: noncurrent versions expire, checkpoints/KFP artifacts expire, raw → Nearline.
    dynamic = [next(iter(d)) for d in bucket["dynamic"]]
    assert dynamic.count("lifecycle_rule") >= 3
    assert bucket["lifecycle_rule"][0]["action"][0]["type"] == "AbortIncompleteMultipartUpload"


def test_workload_identity_bindings_and_least_privilege(tf):
    locals_ = local_values(tf)
    roles = locals_["bucket_roles"]
    assert roles["triton"] == {"models": "roles/storage.objectViewer"}
    # generate-demos publishes simulated demos into raw (versioned: overwrites keep the old data)
    assert roles["pipeline"]["raw"] == "roles/storage.objectAdmin"
    assert {roles["pipeline"][b] for b in ("datasets", "checkpoints", "models")} == {
        "roles/storage.objectAdmin"
    }
    binding = resources(tf, "google_service_account_iam_member")["workload_identity"]
    assert binding["role"] == "roles/iam.workloadIdentityUser"
    assert binding["member"] == (
        "serviceAccount:${local.workload_pool}[${each.value.namespace}/${each.value.ksa}]"
    )
    # No project-wide grants to the workload identities: only the node SA's default role.
    project_roles = resources(tf, "google_project_iam_member")
    assert [r["role"] for r in project_roles.values()] == [
        "roles/container.defaultNodeServiceAccount"
    ]


def test_kubernetes_names_match_the_chart_and_manifests(tf):
    variables = blocks(tf, "variable")
    assert variables["serving_namespace"]["default"] == "vlaops-serving"
    assert variables["triton_ksa"]["default"] == "vlaops-triton"
    assert variables["pipeline_namespace"]["default"] == "vlaops"
    assert variables["pipeline_ksa"]["default"] == "vlaops-pipeline"
    docs = list(yaml.safe_load_all((ROOT / "infra/k8s/pipeline-rbac.yaml").read_text()))
    sa = next(d for d in docs if d["kind"] == "ServiceAccount")
    assert (sa["metadata"]["namespace"], sa["metadata"]["name"]) == ("vlaops", "vlaops-pipeline")


def test_artifact_registry(tf):
    repo = resources(tf, "google_artifact_registry_repository")["images"]
    assert repo["repository_id"] == "vlaops" and repo["format"] == "DOCKER"
    assert repo["docker_config"][0]["immutable_tags"] is True
    # `us` → us-docker.pkg.dev/<project>/vlaops, the default registry in vlaops/images.py.
    assert blocks(tf, "variable")["registry_location"]["default"] == "us"


# Terraform expressions in the triton_helm_values output → what they evaluate to for a project
# "my-project" with the default variables.
EXAMPLE_EVALUATION = {
    "${google_artifact_registry_repository.images.location}": "us",
    "${var.project_id}": "my-project",
    "${google_artifact_registry_repository.images.repository_id}": "vlaops",
    '${google_storage_bucket.data["models"].name}': "my-project-vlaops-models",
    "${var.triton_ksa}": "vlaops-triton",
    '${google_service_account.workload["triton"].email}': "vlaops-triton@my-project.iam.gserviceaccount.com",
    "${(local.pool_label)}": "vlaops.dev/pool",
    "${var.serve_gpu_type}": "nvidia-l4",
    "${var.serve_gpus_per_node}": 1,
    "${max(1, var.serve_max_nodes - 1)}": 4,
}


def _evaluate(node):
    if isinstance(node, dict):
        return {_evaluate(k): _evaluate(v) for k, v in node.items()}
    if isinstance(node, str):
        if node in EXAMPLE_EVALUATION:
            return EXAMPLE_EVALUATION[node]
        for expr, value in EXAMPLE_EVALUATION.items():
            node = node.replace(expr, str(value))
        assert "${" not in node, f"unknown expression in {node}"
    return node


def test_triton_helm_values_output_renders_the_chart(tf, tmp_path):
    """The values file Terraform writes for the chart passes its schema and renders."""
    expr = blocks(tf, "output")["triton_helm_values"]["value"]
    assert expr.startswith("${yamlencode(") and expr.endswith(")}")
    obj = hcl2.loads("x = " + expr[len("${yamlencode(") : -2], serialization_options=HCL_OPTIONS)[
        "x"
    ]
    values = _evaluate(obj)
    assert values["modelRepository"] == "gs://my-project-vlaops-models"
    f = tmp_path / "triton-values.yaml"
    f.write_text(yaml.safe_dump(values))
    helm = ROOT / ".tools" / "helm" / "helm"
    if not helm.exists():
        pytest.fail("helm is missing: run `make setup`")
    out = subprocess.run(
        [str(helm), "template", "vlaops-triton", str(CHART), "-n", "vlaops-serving", "-f", str(f)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    docs = {d["kind"]: d for d in yaml.safe_load_all(out.stdout) if d}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "vlaops-triton"
    assert pod["nodeSelector"] == {
        "vlaops.dev/pool": "serve",
        "cloud.google.com/gke-accelerator": "nvidia-l4",
    }
    assert pod["containers"][0]["image"] == "us-docker.pkg.dev/my-project/vlaops/serve:0.1.0"
    assert docs["ServiceAccount"]["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == (
        "vlaops-triton@my-project.iam.gserviceaccount.com"
    )
    assert "ServiceMonitor" in docs
