# ----- project and placement -------------------------------------------------------------------

variable "project_id" {
  description = "Google Cloud project that holds the cluster, buckets, registry and service accounts."
  type        = string
}

variable "region" {
  description = "Region of the cluster control plane, the VPC subnet and the buckets."
  type        = string
  default     = "us-central1"
}

variable "node_zones" {
  description = "Zones the node pools may use. A100 and L4 capacity is zonal: pick zones that offer them (`gcloud compute accelerator-types list --filter=zone~<region>`)."
  type        = list(string)
  default     = ["us-central1-a", "us-central1-c"]

  validation {
    condition     = length(var.node_zones) > 0
    error_message = "node_zones needs at least one zone."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name; bucket names are `<bucket_prefix>-raw` etc. (bucket_prefix defaults to `<project_id>-<name_prefix>`)."
  type        = string
  default     = "vlaops"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name_prefix))
    error_message = "name_prefix: lower-case letters, digits and dashes, 2 to 21 characters, starting with a letter."
  }
}

variable "bucket_prefix" {
  description = "Prefix of the bucket names (globally unique). Empty: `<project_id>-<name_prefix>`."
  type        = string
  default     = ""
}

variable "labels" {
  description = "Labels put on every resource that takes labels (cost reports group by them)."
  type        = map(string)
  default     = { app = "vlaops" }
}

# ----- cluster ---------------------------------------------------------------------------------

variable "release_channel" {
  description = "GKE release channel (auto-upgrades the control plane and nodes)."
  type        = string
  default     = "REGULAR"

  validation {
    condition     = contains(["RAPID", "REGULAR", "STABLE"], var.release_channel)
    error_message = "release_channel: RAPID, REGULAR or STABLE."
  }
}

variable "master_authorized_networks" {
  description = "CIDR blocks allowed to reach the public control-plane endpoint (your office, VPN, CI runners). Empty: only from inside the VPC."
  type = list(object({
    cidr_block   = string
    display_name = string
  }))
  default = []
}

variable "rbac_security_group" {
  description = "Google Group for Kubernetes RBAC (Google Groups for GKE), e.g. gke-security-groups@example.com. Empty: RBAC by individual users and service accounts."
  type        = string
  default     = ""
}

variable "master_ipv4_cidr_block" {
  description = "/28 range for the control plane's private endpoint (must not overlap the subnet ranges)."
  type        = string
  default     = "172.16.0.0/28"
}

variable "subnet_cidr" {
  description = "Primary range of the cluster subnet (nodes)."
  type        = string
  default     = "10.10.0.0/20"
}

variable "pods_cidr" {
  description = "Secondary range for pod IPs."
  type        = string
  default     = "10.20.0.0/14"
}

variable "services_cidr" {
  description = "Secondary range for Service IPs."
  type        = string
  default     = "10.24.0.0/20"
}

variable "deletion_protection" {
  description = "Refuse `terraform destroy` of the cluster until this is set to false and applied."
  type        = bool
  default     = true
}

# ----- node pools ------------------------------------------------------------------------------

variable "cpu_machine_type" {
  description = "Machine type of the CPU pool (KFP, data conversion, norm stats, sim evaluation, system pods)."
  type        = string
  default     = "n2-standard-8"
}

variable "cpu_min_nodes" {
  description = "Minimum CPU nodes in total. Keep at least 1: Kubeflow Pipelines and the add-ons live here."
  type        = number
  default     = 1
}

variable "cpu_max_nodes" {
  description = "Maximum CPU nodes in total (data conversion and sim evaluation fan out here)."
  type        = number
  default     = 6
}

variable "train_gpu" {
  description = "A100 variant of the training pool: `a100-80gb` (a2-ultragpu, bundled local SSD) or `a100-40gb` (a2-highgpu)."
  type        = string
  default     = "a100-80gb"

  validation {
    condition     = contains(["a100-80gb", "a100-40gb"], var.train_gpu)
    error_message = "train_gpu: a100-80gb or a100-40gb."
  }
}

variable "train_gpus_per_node" {
  description = "A100s per training node (1, 2, 4 or 8); FSDP shards over the GPUs of a node, JobSet spans nodes."
  type        = number
  default     = 8

  validation {
    condition     = contains([1, 2, 4, 8], var.train_gpus_per_node)
    error_message = "train_gpus_per_node: 1, 2, 4 or 8."
  }
}

variable "train_spot" {
  description = "Spot A100 nodes (about a third of the on-demand price, can be preempted; the trainer saves on SIGTERM and resumes). false: on-demand."
  type        = bool
  default     = true
}

variable "train_max_nodes" {
  description = "Maximum training nodes in total (the pool scales from zero)."
  type        = number
  default     = 2
}

variable "train_local_ssd_count" {
  description = "Local NVMe SSDs (375 GB each) backing the training nodes' ephemeral storage (data and frame caches). null: the machine's bundled SSDs on a2-ultragpu, one per GPU on a2-highgpu."
  type        = number
  default     = null
}

variable "train_node_zones" {
  description = "Zones of the training pool. Empty: node_zones. A100 80GB exists in fewer zones than L4."
  type        = list(string)
  default     = []
}

variable "serve_machine_type" {
  description = "Machine type of the inference pool (g2-standard-8: 8 vCPU, 32 GB, one L4 with 24 GB)."
  type        = string
  default     = "g2-standard-8"
}

variable "serve_gpu_type" {
  description = "Accelerator of the inference pool; must match serve_machine_type."
  type        = string
  default     = "nvidia-l4"
}

variable "serve_gpus_per_node" {
  description = "GPUs per inference node."
  type        = number
  default     = 1
}

variable "serve_min_nodes" {
  description = "Minimum inference nodes in total. 0 lets the pool go away when Triton is uninstalled."
  type        = number
  default     = 0
}

variable "serve_max_nodes" {
  description = "Maximum inference nodes in total; the Triton HPA's maxReplicas plus one for rolling-update surge."
  type        = number
  default     = 5
}

variable "serve_spot" {
  description = "Spot inference nodes (cheaper, preemptible: only for non-critical serving)."
  type        = bool
  default     = false
}

variable "gpu_driver_version" {
  description = "NVIDIA driver GKE installs on GPU nodes: DEFAULT, LATEST, or INSTALLATION_DISABLED (then apply the driver installer DaemonSet yourself, see infra/README.md)."
  type        = string
  default     = "LATEST"

  validation {
    condition     = contains(["DEFAULT", "LATEST", "INSTALLATION_DISABLED"], var.gpu_driver_version)
    error_message = "gpu_driver_version: DEFAULT, LATEST or INSTALLATION_DISABLED."
  }
}

# ----- storage and registry --------------------------------------------------------------------

variable "bucket_location" {
  description = "Location of the buckets. The region of the cluster avoids cross-region egress on every training read."
  type        = string
  default     = "US-CENTRAL1"
}

variable "force_destroy_buckets" {
  description = "Let `terraform destroy` delete non-empty buckets. Keep false unless you are tearing everything down on purpose."
  type        = bool
  default     = false
}

variable "noncurrent_version_retention_days" {
  description = "Days a replaced or deleted object version stays recoverable in the versioned buckets (raw, datasets, models)."
  type        = number
  default     = 30
}

variable "checkpoint_retention_days" {
  description = "Days after which checkpoints are deleted (the exported model version in the models bucket stays). 0: keep forever."
  type        = number
  default     = 180
}

variable "pipeline_root_retention_days" {
  description = "Days after which KFP run artifacts under gs://<checkpoints>/pipeline-root/ are deleted."
  type        = number
  default     = 90
}

variable "raw_nearline_after_days" {
  description = "Days after which raw demonstrations move to Nearline storage (cheaper at rest, read fee on access)."
  type        = number
  default     = 60
}

variable "registry_location" {
  description = "Artifact Registry location. `us` gives `us-docker.pkg.dev/<project>/vlaops`, the default image registry in vlaops/images.py."
  type        = string
  default     = "us"
}

variable "untagged_image_retention_days" {
  description = "Days after which untagged images (superseded builds) are deleted from the registry."
  type        = number
  default     = 14
}

# ----- Kubernetes identities -------------------------------------------------------------------

variable "pipeline_namespace" {
  description = "Namespace of Kubeflow Pipelines and the pipeline steps."
  type        = string
  default     = "vlaops"
}

variable "pipeline_ksa" {
  description = "Kubernetes service account the pipeline steps run as."
  type        = string
  default     = "vlaops-pipeline"
}

variable "serving_namespace" {
  description = "Namespace of the Triton release."
  type        = string
  default     = "vlaops-serving"
}

variable "triton_ksa" {
  description = "Kubernetes service account of the Triton pods (chart value serviceAccount.name)."
  type        = string
  default     = "vlaops-triton"
}
