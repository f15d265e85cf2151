"""Multi-node training as a JobSet: one pod per node, each running ``vlaops train`` as one
``jax.distributed`` process, and a launcher that waits for it.

    m = jobset.manifest("train-3f2a", "vlaops", image, ["vlaops", "train", ...], num_nodes=4,
                        gpus_per_node=8, node_selector={"vlaops.dev/pool": "train"})
    jobset.run(api_client, m)        # creates it (or attaches to it), streams status, raises on failure

The JobSet (jobset.x-k8s.io/v1alpha2, installed by infra/addons) has one replicated job ``workers``
with ``num_nodes`` indexed pods; DNS hostnames give process 0 a stable address,
``<name>-workers-0-0.<name>``, which every pod gets as ``JAX_COORDINATOR_ADDRESS``; Kubernetes gives
each pod its ``JOB_COMPLETION_INDEX``, which ``vlaops.train.distributed`` reads as the process id.
A pod lost to a spot reclaim fails the set, which JobSet restarts as a whole (``max_restarts``):
every process resumes from the newest checkpoint, the same way a single-node run does.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from vlaops.errors import VlaopsError

GROUP, VERSION, PLURAL = "jobset.x-k8s.io", "v1alpha2", "jobsets"
WORKERS = "workers"
COORDINATOR_PORT = 1234
# The A100 train pool (infra/terraform): told apart by a node label, tainted for GPU work only.
POOL_LABEL = "vlaops.dev/pool"
GKE_ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"
TRAIN_POOL_TOLERATIONS = (
    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    {"key": POOL_LABEL, "operator": "Equal", "value": "train", "effect": "NoSchedule"},
)


def train_pool_selector(accelerator_type: str = "") -> dict[str, str]:
    """Nodes of the train pool with one GPU model (a GKE accelerator label value such as
    ``nvidia-tesla-a100`` or ``nvidia-a100-80gb``; empty: any model the pool has)."""
    selector = {POOL_LABEL: "train"}
    if accelerator_type:
        selector[GKE_ACCELERATOR_LABEL] = accelerator_type
    return selector


def launcher_placement(accelerator_type: str, accelerator_count: int, num_nodes: int) -> dict:
    """Where the pipeline's train step itself runs. One node: on a GPU node of the train pool,
    training in the step's own pod. Several: the step only launches and watches the JobSet, so it
    waits on the CPU pool without GPUs, and the JobSet's pods take the GPU nodes."""
    if num_nodes > 1:
        return {"node_selector": {POOL_LABEL: "cpu"}, "gpus": 0, "cpu": "1", "memory": "2G"}
    return {
        "node_selector": train_pool_selector(accelerator_type),
        "gpus": accelerator_count,
        "cpu": "8",
        "memory": "64G",
    }


def job_name(run_id: str, prefix: str = "train") -> str:
    """A JobSet name for one pipeline run: DNS-1035, short enough for the pods' hostnames. The same
    run gets the same name, so a retried launcher attaches to its JobSet instead of starting over."""
    slug = re.sub(r"[^a-z0-9]+", "-", run_id.lower()).strip("-")[:24].strip("-") or "run"
    return f"{prefix}-{slug}"


def manifest(
    name: str,
    namespace: str,
    image: str,
    command: list[str],
    num_nodes: int,
    gpus_per_node: int,
    node_selector: dict[str, str] | None = None,
    tolerations: list[dict] | None = None,
    service_account: str = "vlaops-pipeline",
    env: dict[str, str] | None = None,
    shm_size: str = "64Gi",
    scratch_size: str = "500Gi",
    max_restarts: int = 3,
) -> dict:
    """The JobSet object (a plain dict, as the API takes it)."""
    if num_nodes < 1:
        raise VlaopsError(f"num_nodes must be ≥ 1, got {num_nodes}")
    env = {
        "JAX_COORDINATOR_ADDRESS": f"{name}-{WORKERS}-0-0.{name}:{COORDINATOR_PORT}",
        "JAX_NUM_PROCESSES": str(num_nodes),
        "VLAOPS_CACHE_DIR": "/var/cache/vlaops",
        **(env or {}),
    }
    resources = {"limits": {"nvidia.com/gpu": gpus_per_node}} if gpus_per_node else {}
    pod = {
        "serviceAccountName": service_account,
        "restartPolicy": "Never",
        "nodeSelector": dict(train_pool_selector() if node_selector is None else node_selector),
        "tolerations": [
            dict(t) for t in (TRAIN_POOL_TOLERATIONS if tolerations is None else tolerations)
        ],
        "containers": [
            {
                "name": "train",
                "image": image,
                "command": list(command),
                "env": [{"name": k, "value": v} for k, v in env.items()],
                "ports": [{"name": "coordinator", "containerPort": COORDINATOR_PORT}],
                "resources": resources,
                "volumeMounts": [
                    {"name": "dshm", "mountPath": "/dev/shm"},
                    {"name": "scratch", "mountPath": "/var/cache/vlaops"},
                ],
            }
        ],
        "volumes": [
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": shm_size}},
            {"name": "scratch", "emptyDir": {"sizeLimit": scratch_size}},
        ],
    }
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "JobSet",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "vlaops", "vlaops.dev/role": "train"},
        },
        "spec": {
            "network": {"enableDNSHostnames": True, "subdomain": name},
            "failurePolicy": {"maxRestarts": max_restarts},
            "successPolicy": {"operator": "All", "targetReplicatedJobs": [WORKERS]},
            "replicatedJobs": [
                {
                    "name": WORKERS,
                    "replicas": 1,
                    "template": {
                        "spec": {
                            "parallelism": num_nodes,
                            "completions": num_nodes,
                            "completionMode": "Indexed",
                            "backoffLimit": 0,
                            "template": {"spec": pod},
                        }
                    },
                }
            ],
        },
    }


def status_line(obj: dict) -> tuple[str | None, str]:
    """(``Completed``/``Failed``/None, a one-line summary) of a JobSet's status."""
    status = obj.get("status") or {}
    for c in status.get("conditions") or []:
        if c.get("status") == "True" and c.get("type") in ("Completed", "Failed"):
            detail = ": ".join(x for x in (c.get("reason"), c.get("message")) if x)
            return c["type"], detail
    parts = []
    for rj in status.get("replicatedJobsStatus") or []:
        counts = ", ".join(
            f"{k} {rj.get(k, 0)}" for k in ("ready", "active", "succeeded", "failed")
        )
        parts.append(f"{rj.get('name', '?')}: {counts}")
    if status.get("restarts"):
        parts.append(f"restarts {status['restarts']}")
    return None, "; ".join(parts) or "pending"


def run(
    api_client,
    obj: dict,
    timeout_s: float = 7 * 24 * 3600,
    poll_s: float = 15.0,
    say: Callable[[str], None] = print,
) -> dict:
    """Create the JobSet (or attach to the one a previous attempt created) and wait until it
    completes; returns its final object. A failed JobSet raises with its reason; an interrupted
    wait (the pipeline run was cancelled) deletes the JobSet so its GPUs are released."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = client.CustomObjectsApi(api_client)
    name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
    try:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, obj)
        say(f"created JobSet {namespace}/{name}: {_nodes(obj)} nodes")
    except ApiException as e:
        if e.status == 409:
            say(f"attaching to the existing JobSet {namespace}/{name} (a retried step)")
        elif e.status == 404:
            raise VlaopsError(
                f"JobSet API ({GROUP}/{VERSION}) not found in the cluster: install JobSet "
                "(infra/addons) to train on several nodes"
            ) from None
        else:
            raise VlaopsError(
                f"creating JobSet {namespace}/{name}: {e.status} {e.reason}"
            ) from None
    deadline, last = time.monotonic() + timeout_s, None
    try:
        while True:
            current = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            outcome, text = status_line(current)
            if text != last:
                say(f"JobSet {name}: {outcome or text}" + (f" ({text})" if outcome else ""))
                last = text
            if outcome == "Completed":
                return current
            if outcome == "Failed":
                raise VlaopsError(
                    f"JobSet {namespace}/{name} failed: {text or 'no reason given'} "
                    f"(kubectl -n {namespace} logs -l jobset.sigs.k8s.io/jobset-name={name})"
                )
            if time.monotonic() > deadline:
                raise VlaopsError(f"JobSet {namespace}/{name} not done after {timeout_s:.0f}s")
            time.sleep(poll_s)
    except (KeyboardInterrupt, SystemExit):
        say(f"interrupted: deleting JobSet {namespace}/{name}")
        api.delete_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, propagation_policy="Foreground"
        )
        raise


def _nodes(obj: dict) -> int:
    return obj["spec"]["replicatedJobs"][0]["template"]["spec"]["parallelism"]
