# Buckets: uniform access, no public access, versioning where a lost object cannot be rebuilt.
#   raw          demonstrations as recorded: irreplaceable → versioned; older data to Nearline
#   datasets     LeRobot datasets + norm stats: rebuildable but slow to rebuild → versioned
#   checkpoints  orbax training state (large, rewritten often) → not versioned; expire; KFP root
#   models       the Triton model repository Triton serves → versioned (a deleted version is back in a call)

locals {
  buckets = {
    raw = {
      versioned          = true
      delete_after_days  = 0
      nearline_after     = var.raw_nearline_after_days
      expire_prefix_days = {}
    }
    datasets = {
      versioned          = true
      delete_after_days  = 0
      nearline_after     = 0
      expire_prefix_days = {}
    }
    checkpoints = {
      versioned          = false
      delete_after_days  = var.checkpoint_retention_days
      nearline_after     = 0
      expire_prefix_days = { "pipeline-root/" = var.pipeline_root_retention_days }
    }
    models = {
      versioned          = true
      delete_after_days  = 0
      nearline_after     = 0
      expire_prefix_days = {}
    }
  }
}

resource "google_storage_bucket" "data" {
  #checkov:skip=CKV_GCP_62:Access logs via Cloud Audit Logs (Data Access logs on storage.googleapis.com) instead of legacy usage-log buckets
  #checkov:skip=CKV_GCP_78:Versioning is on for raw, datasets and models; checkpoints are rewritten every few hundred steps and versioning them would multiply the largest storage bill for state the trainer can rebuild
  for_each = local.buckets

  name                        = "${local.bucket_prefix}-${each.key}"
  location                    = var.bucket_location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy_buckets
  labels                      = merge(local.labels, { bucket = each.key })

  versioning {
    enabled = each.value.versioned
  }

  # Replaced or deleted versions stay recoverable for a while, then go.
  dynamic "lifecycle_rule" {
    for_each = each.value.versioned ? [1] : []
    content {
      condition {
        days_since_noncurrent_time = var.noncurrent_version_retention_days
        with_state                 = "ARCHIVED"
      }
      action {
        type = "Delete"
      }
    }
  }

  dynamic "lifecycle_rule" {
    for_each = each.value.delete_after_days > 0 ? [1] : []
    content {
      condition {
        age = each.value.delete_after_days
      }
      action {
        type = "Delete"
      }
    }
  }

  dynamic "lifecycle_rule" {
    for_each = each.value.nearline_after > 0 ? [1] : []
    content {
      condition {
        age                   = each.value.nearline_after
        matches_storage_class = ["STANDARD"]
      }
      action {
        type          = "SetStorageClass"
        storage_class = "NEARLINE"
      }
    }
  }

  dynamic "lifecycle_rule" {
    for_each = { for prefix, days in each.value.expire_prefix_days : prefix => days if days > 0 }
    content {
      condition {
        age            = lifecycle_rule.value
        matches_prefix = [lifecycle_rule.key]
      }
      action {
        type = "Delete"
      }
    }
  }

  # Interrupted parallel/resumable uploads (large checkpoint shards) leave invisible parts.
  lifecycle_rule {
    condition {
      age = 7
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_project_service.apis]
}
