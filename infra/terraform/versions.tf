terraform {
  required_version = ">= 1.6"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.14, < 8.0"
    }
  }

  # State lives in a bucket you create once by hand (see infra/README.md):
  #   terraform init -backend-config="bucket=<state-bucket>" -backend-config="prefix=vlaops"
  backend "gcs" {}
}

provider "google" {
  project = var.project_id
  region  = var.region
}
