"""Where each step runs on the cluster: node pools, GPUs, volumes (kfp-kubernetes / task settings).

Names follow infra/terraform: pools are told apart by the node label ``vlaops.dev/pool``
(``cpu`` | ``train`` | ``serve``); the A100 train pool carries the taints ``nvidia.com/gpu`` and
``vlaops.dev/pool=train`` (NoSchedule) and backs emptyDir volumes with local NVMe SSDs; GKE labels
GPU nodes with ``cloud.google.com/gke-accelerator``. The Kubernetes service account of the steps
(``vlaops-pipeline``, Workload Identity for gs://) is a property of the *run* in KFP v2, not of a
task: ``pipelines/cluster.py run`` sets it (see ``SERVICE_ACCOUNT``).
"""

from kfp import dsl, kubernetes
from kfp.dsl import PipelineTask, pipeline_channel

from vlaops import images

SERVICE_ACCOUNT = "vlaops-pipeline"  # infra/k8s/pipeline-rbac.yaml, bound to a GCP SA
NAMESPACE = "vlaops"  # the KFP profile namespace the steps run in (multi-user KFP)
POOL_LABEL = "vlaops.dev/pool"
GKE_ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"
GPU_RESOURCE = "nvidia.com/gpu"  # KFP's "accelerator type" is the resource name it limits
TRAIN_SCRATCH_DIR = "/var/cache/vlaops"  # dataset/frame cache of the train step (local SSD)


def on_cpu_pool(task: PipelineTask, cpu: str = "2", memory: str = "8G") -> PipelineTask:
    """A data or sim step: the always-on CPU pool."""
    kubernetes.add_node_selector(task, POOL_LABEL, "cpu")
    return task.set_cpu_request(cpu).set_memory_request(memory)


def on_train_pool(
    task: PipelineTask,
    accelerator_count: int | pipeline_channel.PipelineChannel,
    node_selector: dict | pipeline_channel.PipelineChannel,
    shm_size: str = "64Gi",
    scratch_size: str = "500Gi",
    cpu: str = "8",
    memory: str = "64G",
) -> PipelineTask:
    """The training step: ``accelerator_count`` GPUs on an A100 node of the train pool.

    ``node_selector``: a dict fixed at compile time, or the output of ``train_node_selector``
    (one pipeline parameter picks the GPU model per run). ``/dev/shm`` is memory-backed for the
    loader's worker processes; ``TRAIN_SCRATCH_DIR`` is scratch space on the node's local SSDs.
    """
    task.set_accelerator_type(GPU_RESOURCE).set_accelerator_limit(accelerator_count)
    task.set_cpu_request(cpu).set_memory_request(memory)
    if isinstance(node_selector, dict):
        for key, value in node_selector.items():
            kubernetes.add_node_selector(task, key, value)
    else:
        kubernetes.add_node_selector_json(task, node_selector)
    kubernetes.add_toleration(task, key=GPU_RESOURCE, operator="Exists", effect="NoSchedule")
    kubernetes.add_toleration(
        task, key=POOL_LABEL, operator="Equal", value="train", effect="NoSchedule"
    )
    kubernetes.empty_dir_mount(
        task, volume_name="dshm", mount_path="/dev/shm", medium="Memory", size_limit=shm_size
    )
    kubernetes.empty_dir_mount(
        task, volume_name="scratch", mount_path=TRAIN_SCRATCH_DIR, size_limit=scratch_size
    )
    return task.set_env_variable("VLAOPS_CACHE_DIR", TRAIN_SCRATCH_DIR)


@dsl.component(base_image=images.DATA, install_kfp_package=False)
def train_node_selector(accelerator_type: str) -> dict:
    """The train pool's node selector for one GPU model (a GKE accelerator label value such as
    ``nvidia-tesla-a100`` or ``nvidia-a100-80gb``). A node selector can only take a run-time
    value as a whole JSON object, hence this tiny step; it is cached after the first run."""
    selector = {"vlaops.dev/pool": "train"}
    if accelerator_type:
        selector["cloud.google.com/gke-accelerator"] = accelerator_type
    return selector
