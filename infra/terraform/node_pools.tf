# Three pools, told apart by the label vlaops.dev/pool (cpu | train | serve) plus GKE's own
# cloud.google.com/gke-accelerator and cloud.google.com/gke-spot labels:
#   cpu   — KFP, add-ons, data conversion, norm stats, sim evaluation; never empty.
#   train — A100 nodes for pi0 fine-tuning; scale from zero; tainted so only training pods land
#           (tolerate nvidia.com/gpu and vlaops.dev/pool=train).
#   serve — L4 nodes for Triton; tainted nvidia.com/gpu (the chart tolerates it).
# GKE installs the NVIDIA driver and runs its device plugin on GPU nodes (gpu_driver_version).

resource "google_container_node_pool" "cpu" {
  name           = "cpu"
  cluster        = google_container_cluster.main.id
  node_locations = var.node_zones

  autoscaling {
    total_min_node_count = var.cpu_min_nodes
    total_max_node_count = var.cpu_max_nodes
    location_policy      = "BALANCED"
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  upgrade_settings {
    max_surge       = 1
    max_unavailable = 0
  }

  node_config {
    machine_type    = var.cpu_machine_type
    image_type      = "COS_CONTAINERD"
    disk_type       = "pd-balanced"
    disk_size_gb    = 200
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
    labels          = { (local.pool_label) = "cpu" }
    resource_labels = local.labels

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
    metadata = {
      disable-legacy-endpoints = "true"
    }
  }
}

resource "google_container_node_pool" "train" {
  name           = "train-${var.train_gpu}"
  cluster        = google_container_cluster.main.id
  node_locations = local.train_node_zones

  # From zero: a node exists only while a training step runs. ANY lets the autoscaler take
  # whichever zone has A100 (spot) capacity.
  autoscaling {
    total_min_node_count = 0
    total_max_node_count = var.train_max_nodes
    location_policy      = "ANY"
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  # Never surge a second 8-GPU node to upgrade: replace in place (training resumes from checkpoints).
  upgrade_settings {
    max_surge       = 0
    max_unavailable = 1
  }

  node_config {
    machine_type    = local.train_machine_type
    image_type      = "COS_CONTAINERD"
    disk_type       = "pd-ssd"
    disk_size_gb    = 200
    spot            = var.train_spot
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
    resource_labels = local.labels
    labels = {
      (local.pool_label) = "train"
    }

    guest_accelerator {
      type  = local.train_accelerator
      count = var.train_gpus_per_node
      gpu_driver_installation_config {
        gpu_driver_version = var.gpu_driver_version
      }
    }

    # Local NVMe SSDs back emptyDir/ephemeral storage: the dataset and frame caches.
    ephemeral_storage_local_ssd_config {
      local_ssd_count = local.train_local_ssds
    }

    taint {
      key    = "nvidia.com/gpu"
      value  = "present"
      effect = "NO_SCHEDULE"
    }
    taint {
      key    = local.pool_label
      value  = "train"
      effect = "NO_SCHEDULE"
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
    metadata = {
      disable-legacy-endpoints = "true"
    }
  }
}

resource "google_container_node_pool" "serve" {
  name           = "serve-${var.serve_gpu_type}"
  cluster        = google_container_cluster.main.id
  node_locations = var.node_zones

  autoscaling {
    total_min_node_count = var.serve_min_nodes
    total_max_node_count = var.serve_max_nodes
    location_policy      = "BALANCED"
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  upgrade_settings {
    max_surge       = 1
    max_unavailable = 0
  }

  node_config {
    machine_type    = var.serve_machine_type
    image_type      = "COS_CONTAINERD"
    disk_type       = "pd-balanced"
    disk_size_gb    = 200
    spot            = var.serve_spot
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
    resource_labels = local.labels
    labels = {
      (local.pool_label) = "serve"
    }

    guest_accelerator {
      type  = var.serve_gpu_type
      count = var.serve_gpus_per_node
      gpu_driver_installation_config {
        gpu_driver_version = var.gpu_driver_version
      }
    }

    taint {
      key    = "nvidia.com/gpu"
      value  = "present"
      effect = "NO_SCHEDULE"
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
    metadata = {
      disable-legacy-endpoints = "true"
    }
  }
}
