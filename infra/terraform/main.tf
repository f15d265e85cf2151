# vlaops platform on GKE: what a platform team applies once so that `make deploy-pipeline` and
# `helm install charts/vlaops-triton` have somewhere to run. Apply order and costs: infra/README.md.

locals {
  bucket_prefix = var.bucket_prefix != "" ? var.bucket_prefix : "${var.project_id}-${var.name_prefix}"
  labels        = merge(var.labels, { managed-by = "terraform" })

  # Training pool shape from the A100 variant: a2-ultragpu = A100 80GB, a2-highgpu = A100 40GB.
  train_machine_type = format("%s-%dg", var.train_gpu == "a100-80gb" ? "a2-ultragpu" : "a2-highgpu", var.train_gpus_per_node)
  train_accelerator  = var.train_gpu == "a100-80gb" ? "nvidia-a100-80gb" : "nvidia-tesla-a100"
  # a2-ultragpu machines come with a fixed set of local SSDs (0 = use them all); a2-highgpu takes
  # 1, 2, 4 or 8 and at least one per GPU.
  train_local_ssds = var.train_local_ssd_count != null ? var.train_local_ssd_count : (var.train_gpu == "a100-80gb" ? 0 : var.train_gpus_per_node)
  train_node_zones = length(var.train_node_zones) > 0 ? var.train_node_zones : var.node_zones

  pool_label = "vlaops.dev/pool"
}

resource "google_project_service" "apis" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "compute.googleapis.com",
    "container.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "storage.googleapis.com",
  ])
  service = each.value
  # Other workloads in the project may use these APIs: never switch them off on destroy.
  disable_on_destroy = false
}
