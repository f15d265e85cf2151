"""Where each step runs on the cluster: node pools, GPUs, volumes (kfp-kubernetes / task settings).

Names follow infra/terraform: pools are told apart by the node label ``vlaops.dev/pool``
(``cpu`` | ``train`` | ``serve``); the A100 train pool carries the taints ``nvidia.com/gpu`` and
``vlaops.dev/pool=train`` (NoSchedule) and backs emptyDir volumes with local NVMe SSDs; GKE labels
GPU nodes with ``cloud.google.com/gke-accelerator``. The Kubernetes service account of the steps
(``vlaops-pipeline``, Workload Identity for gs://) is a property of the *run* in KFP v2, not of a
task: ``pipelines/cluster.py run`` sets it (see ``SERVICE_ACCOUNT``).
"""

from typing import NamedTuple

from kfp import dsl, kubernetes
from kfp.dsl import PipelineTask
from kfp.dsl.pipeline_channel import PipelineChannel

from vlaops import images
from vlaops.train import jobset

SERVICE_ACCOUNT = "vlaops-pipeline"  # infra/k8s/pipeline-rbac.yaml, bound to a GCP SA
NAMESPACE = "vlaops"  # the KFP profile namespace the steps run in (multi-user KFP)
POOL_LABEL = jobset.POOL_LABEL
GKE_ACCELERATOR_LABEL = jobset.GKE_ACCELERATOR_LABEL
GPU_RESOURCE = "nvidia.com/gpu"  # KFP's "accelerator type" is the resource name it limits
TRAIN_SCRATCH_DIR = "/var/cache/vlaops"  # dataset/frame cache of the train step (local SSD)


def on_cpu_pool(task: PipelineTask, cpu: str = "2", memory: str = "8G") -> PipelineTask:
    """A data or sim step: the always-on CPU pool."""
    kubernetes.add_node_selector(task, POOL_LABEL, "cpu")
    return task.set_cpu_request(cpu).set_memory_request(memory)


def on_train_pool(
    task: PipelineTask,
    accelerator_count: int | PipelineChannel,
    node_selector: dict | PipelineChannel,
    cpu: str | PipelineChannel = "8",
    memory: str | PipelineChannel = "64G",
    shm_size: str = "64Gi",
    scratch_size: str = "500Gi",
) -> PipelineTask:
    """The training step: ``accelerator_count`` GPUs on a node that ``node_selector`` picks.

    Values fixed at compile time, or outputs of ``train_placement`` (run parameters pick the GPU
    model and the node count; with several nodes the step only launches a JobSet, on the CPU
    pool with no GPUs). ``/dev/shm`` is memory-backed for the loader's worker processes;
    ``TRAIN_SCRATCH_DIR`` is scratch space on the node's local SSDs.
    """
    task.set_accelerator_type(GPU_RESOURCE).set_accelerator_limit(accelerator_count)
    task.set_cpu_request(cpu).set_memory_request(memory)
    if isinstance(node_selector, dict):
        for key, value in node_selector.items():
            kubernetes.add_node_selector(task, key, value)
    else:
        kubernetes.add_node_selector_json(task, node_selector)
    for t in jobset.TRAIN_POOL_TOLERATIONS:
        kubernetes.add_toleration(task, **t)
    kubernetes.empty_dir_mount(
        task, volume_name="dshm", mount_path="/dev/shm", medium="Memory", size_limit=shm_size
    )
    kubernetes.empty_dir_mount(
        task, volume_name="scratch", mount_path=TRAIN_SCRATCH_DIR, size_limit=scratch_size
    )
    return task.set_env_variable("VLAOPS_CACHE_DIR", TRAIN_SCRATCH_DIR)


@dsl.component(base_image=images.DATA, install_kfp_package=False)
def train_placement(accelerator_type: str, accelerator_count: int, num_nodes: int) -> NamedTuple(
    "Placement", [("node_selector", dict), ("gpus", int), ("cpu", str), ("memory", str)]
):
    """Where the train step runs, from run parameters (``vlaops.train.jobset.launcher_placement``):
    a node selector or a GPU count can only take a run-time value as a whole, hence this tiny step;
    it is cached after the first run."""
    from collections import namedtuple

    from vlaops.train import jobset

    p = jobset.launcher_placement(accelerator_type, accelerator_count, num_nodes)
    return namedtuple("Placement", "node_selector gpus cpu memory")(**p)
