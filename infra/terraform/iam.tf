# Workload Identity: each Kubernetes service account acts as one Google service account, which
# holds only the bucket roles its pods need.
#   vlaops/vlaops-pipeline        → read/write raw (generate-demos writes simulated demos there;
#                                   the bucket is versioned, so nothing recorded is ever lost),
#                                   datasets, checkpoints, models
#   vlaops-serving/vlaops-triton  → read models

locals {
  workload_pool = "${var.project_id}.svc.id.goog"

  # GSA → bucket → role. objectAdmin (not objectCreator) where a step publishes atomically:
  # write under a temporary name, then rename (copy + delete).
  bucket_roles = {
    pipeline = {
      raw         = "roles/storage.objectAdmin"
      datasets    = "roles/storage.objectAdmin"
      checkpoints = "roles/storage.objectAdmin"
      models      = "roles/storage.objectAdmin"
    }
    triton = {
      models = "roles/storage.objectViewer"
    }
  }
  bucket_bindings = merge([
    for gsa, roles in local.bucket_roles : {
      for bucket, role in roles : "${gsa}-${bucket}" => { gsa = gsa, bucket = bucket, role = role }
    }
  ]...)

  workload_identities = {
    pipeline = { namespace = var.pipeline_namespace, ksa = var.pipeline_ksa }
    triton   = { namespace = var.serving_namespace, ksa = var.triton_ksa }
  }
}

resource "google_service_account" "workload" {
  for_each     = local.workload_identities
  account_id   = "${var.name_prefix}-${each.key}"
  display_name = "vlaops ${each.key} (KSA ${each.value.namespace}/${each.value.ksa})"
  depends_on   = [google_project_service.apis]
}

resource "google_service_account_iam_member" "workload_identity" {
  for_each           = local.workload_identities
  service_account_id = google_service_account.workload[each.key].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${local.workload_pool}[${each.value.namespace}/${each.value.ksa}]"
  # The pool exists once the cluster has Workload Identity.
  depends_on = [google_container_cluster.main]
}

resource "google_storage_bucket_iam_member" "workload" {
  for_each = local.bucket_bindings
  bucket   = google_storage_bucket.data[each.value.bucket].name
  role     = each.value.role
  member   = "serviceAccount:${google_service_account.workload[each.value.gsa].email}"
}
