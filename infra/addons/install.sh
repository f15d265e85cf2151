#!/usr/bin/env bash
# Cluster add-ons for vlaops, in order. Idempotent: re-run after changing a version below.
#
#   gcloud container clusters get-credentials ...   # terraform output get_credentials
#   infra/addons/install.sh
#
# Needs kubectl, helm 3 and git, and network access to GitHub, ghcr.io and the chart repos.
set -euo pipefail
cd "$(dirname "$0")/../.."

KFP_VERSION=2.14.3                  # Kubeflow Pipelines, standalone
TRAINER_VERSION=2.2.0               # Kubeflow Trainer (brings JobSet)
KUBE_PROMETHEUS_STACK_VERSION=82.6.0
PROMETHEUS_ADAPTER_VERSION=4.14.1
PIPELINE_NAMESPACE=vlaops

step() { printf '\n== %s\n' "$*"; }

step "namespaces, priority classes, pipeline service account (infra/k8s)"
kubectl apply -k infra/k8s

step "NVIDIA driver and device plugin"
# GKE installs the driver (node pool gpu_driver_version, LATEST by default) and runs its own
# device plugin on GPU nodes: nothing to apply. Only with gpu_driver_version=INSTALLATION_DISABLED:
#   kubectl apply -f https://raw.githubusercontent.com/GoogleCloudPlatform/container-engine-accelerators/master/nvidia-driver-installer/cos/daemonset-preloaded-latest.yaml
kubectl get nodes -l cloud.google.com/gke-accelerator -o name || true

step "Kubeflow Pipelines ${KFP_VERSION} (standalone) in namespace ${PIPELINE_NAMESPACE}"
# KFP runs pipeline steps in its own namespace; its manifests are retargeted the documented way
# (the namespace field of both kustomizations) so that steps run in ${PIPELINE_NAMESPACE}.
kfp_dir=$(mktemp -d)
trap 'rm -rf "$kfp_dir"' EXIT
git clone --quiet --depth 1 --branch "${KFP_VERSION}" https://github.com/kubeflow/pipelines.git "$kfp_dir"
for k in cluster-scoped-resources env/platform-agnostic; do
  sed -i "s/^namespace: kubeflow$/namespace: ${PIPELINE_NAMESPACE}/" "$kfp_dir/manifests/kustomize/$k/kustomization.yaml"
done
kubectl apply -k "$kfp_dir/manifests/kustomize/cluster-scoped-resources"
kubectl wait --for condition=established --timeout=60s crd/applications.app.k8s.io
kubectl apply -k "$kfp_dir/manifests/kustomize/env/platform-agnostic"
kubectl -n "${PIPELINE_NAMESPACE}" rollout status deployment/ml-pipeline --timeout=10m

step "Kubeflow Trainer ${TRAINER_VERSION} + JobSet"
helm upgrade --install kubeflow-trainer oci://ghcr.io/kubeflow/charts/kubeflow-trainer \
  --version "${TRAINER_VERSION}" --namespace kubeflow-system --create-namespace \
  --set runtimes.defaultEnabled=true --wait

step "kube-prometheus-stack ${KUBE_PROMETHEUS_STACK_VERSION}"
helm repo add prometheus-community https://prometheus-community.github.io/helm-charts --force-update >/dev/null
helm upgrade --install kube-prometheus-stack prometheus-community/kube-prometheus-stack \
  --version "${KUBE_PROMETHEUS_STACK_VERSION}" --namespace monitoring \
  -f infra/addons/kube-prometheus-stack-values.yaml --wait --timeout 15m

step "prometheus-adapter ${PROMETHEUS_ADAPTER_VERSION} with the Triton queue-time rule"
helm upgrade --install prometheus-adapter prometheus-community/prometheus-adapter \
  --version "${PROMETHEUS_ADAPTER_VERSION}" --namespace monitoring \
  -f infra/addons/prometheus-adapter-values.yaml \
  -f charts/vlaops-triton/prometheus-adapter-rules.yaml --wait

step "done"
echo "KFP UI:  kubectl -n ${PIPELINE_NAMESPACE} port-forward svc/ml-pipeline-ui 8080:80"
echo "Metric:  kubectl get --raw /apis/custom.metrics.k8s.io/v1beta1 | grep triton_queue_time_avg_us"
