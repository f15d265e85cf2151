# One Docker repository for the four images (data, train, sim, serve). Tags are immutable: a
# version tag always means the same image, which the chart's IfNotPresent pull policy relies on.

resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84:Google-managed encryption; a CMEK key ring adds a KMS dependency to every image pull for images that hold no secrets
  location      = var.registry_location
  repository_id = "vlaops"
  description   = "vlaops images: data, train, sim, serve"
  format        = "DOCKER"
  labels        = local.labels

  docker_config {
    immutable_tags = true
  }

  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "delete-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "${var.untagged_image_retention_days * 86400}s"
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_artifact_registry_repository_iam_member" "nodes_pull" {
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.reader"
  member     = "serviceAccount:${google_service_account.nodes.email}"
}
