output "cluster_name" {
  description = "GKE cluster name."
  value       = google_container_cluster.main.name
}

output "cluster_location" {
  description = "GKE cluster location (region)."
  value       = google_container_cluster.main.location
}

output "get_credentials" {
  description = "Command that points kubectl at the cluster."
  value       = "gcloud container clusters get-credentials ${google_container_cluster.main.name} --region ${google_container_cluster.main.location} --project ${var.project_id}"
}

output "buckets" {
  description = "Bucket URIs by role: raw, datasets, checkpoints, models."
  value       = { for k, b in google_storage_bucket.data : k => "gs://${b.name}" }
}

output "model_repository" {
  description = "Triton model repository URI (chart value modelRepository; the export step publishes versions here)."
  value       = "gs://${google_storage_bucket.data["models"].name}"
}

output "pipeline_root" {
  description = "KFP pipeline root for run artifacts (expired after pipeline_root_retention_days)."
  value       = "gs://${google_storage_bucket.data["checkpoints"].name}/pipeline-root"
}

output "image_registry" {
  description = "Image registry prefix (VLAOPS_IMAGE_REGISTRY); images are <registry>/{data,train,sim,serve}:<tag>."
  value       = "${google_artifact_registry_repository.images.location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}

output "pipeline_gcp_service_account" {
  description = "Google service account of the pipeline steps (annotation on KSA vlaops/vlaops-pipeline)."
  value       = google_service_account.workload["pipeline"].email
}

output "triton_gcp_service_account" {
  description = "Google service account of Triton (chart value serviceAccount.gcpServiceAccount)."
  value       = google_service_account.workload["triton"].email
}

output "node_pools" {
  description = "Node selectors and tolerations of each pool, for pipeline steps and the chart."
  value = {
    cpu = {
      node_selector = { (local.pool_label) = "cpu" }
      tolerations   = []
    }
    train = {
      node_selector = { (local.pool_label) = "train", "cloud.google.com/gke-accelerator" = local.train_accelerator }
      tolerations   = ["nvidia.com/gpu=present:NoSchedule", "${local.pool_label}=train:NoSchedule"]
      gpus_per_node = var.train_gpus_per_node
      machine_type  = local.train_machine_type
    }
    serve = {
      node_selector = { (local.pool_label) = "serve", "cloud.google.com/gke-accelerator" = var.serve_gpu_type }
      tolerations   = ["nvidia.com/gpu=present:NoSchedule"]
    }
  }
}

output "pipeline_parameters" {
  description = "Values for the pipeline's parameters and environment (make deploy-pipeline / run-pipeline)."
  value = {
    namespace       = var.pipeline_namespace
    service_account = var.pipeline_ksa
    raw_uri         = "gs://${google_storage_bucket.data["raw"].name}"
    datasets_uri    = "gs://${google_storage_bucket.data["datasets"].name}"
    checkpoints_uri = "gs://${google_storage_bucket.data["checkpoints"].name}"
    model_repo_uri  = "gs://${google_storage_bucket.data["models"].name}"
    pipeline_root   = "gs://${google_storage_bucket.data["checkpoints"].name}/pipeline-root"
    image_registry  = "${google_artifact_registry_repository.images.location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
  }
}

output "triton_helm_values" {
  description = "Values file for charts/vlaops-triton on this cluster: terraform output -raw triton_helm_values > triton-values.yaml"
  value = yamlencode({
    image           = { repository = "${google_artifact_registry_repository.images.location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}/serve" }
    modelRepository = "gs://${google_storage_bucket.data["models"].name}"
    serviceAccount  = { name = var.triton_ksa, gcpServiceAccount = google_service_account.workload["triton"].email }
    nodeSelector    = { (local.pool_label) = "serve", "cloud.google.com/gke-accelerator" = var.serve_gpu_type }
    gpu             = { count = var.serve_gpus_per_node }
    serviceMonitor  = { enabled = true, labels = { release = "kube-prometheus-stack" } }
    autoscaling     = { maxReplicas = max(1, var.serve_max_nodes - 1) }
  })
}
