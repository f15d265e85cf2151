"""The Kubernetes API for steps that drive the cluster (multi-node training, deploy)."""

from __future__ import annotations

from vlaops.errors import VlaopsError

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def api_client():
    """In-cluster credentials inside a pod (the step's service account), else the kubeconfig."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            config.load_kube_config()
        except (config.ConfigException, FileNotFoundError) as e:
            raise VlaopsError(
                f"no Kubernetes credentials (in-cluster or kubeconfig): {e}"
            ) from None
    return client.ApiClient()


def own_namespace(default: str = "vlaops") -> str:
    """The namespace this pod runs in (its service account's), or ``default`` outside a pod."""
    try:
        with open(f"{SERVICE_ACCOUNT_DIR}/namespace") as f:
            return f.read().strip() or default
    except OSError:
        return default
