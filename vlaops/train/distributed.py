"""Multi-host JAX from the environment a JobSet or a Kubeflow Trainer ``TrainJob`` sets.

Kubeflow Trainer's jax runtime injects ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and
``JAX_PROCESS_ID``; a bare JobSet gives ``JOB_COMPLETION_INDEX`` (this pod's index) and
``REPLICATED_JOB_REPLICAS`` plus whatever coordinator address the manifest passes. JAX itself reads
only the coordinator address from the environment, so count and id are passed explicitly.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from vlaops.errors import VlaopsError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessSpec:
    coordinator: str | None  # host:port of process 0; None = single process
    num_processes: int
    process_id: int


def from_env(env: dict[str, str] | None = None) -> ProcessSpec:
    env = dict(os.environ if env is None else env)
    coordinator = env.get("JAX_COORDINATOR_ADDRESS")
    count = env.get("JAX_NUM_PROCESSES") or env.get("REPLICATED_JOB_REPLICAS")
    pid = env.get("JAX_PROCESS_ID") or env.get("JOB_COMPLETION_INDEX")
    if not coordinator:
        return ProcessSpec(None, 1, 0)
    if count is None or pid is None:
        raise VlaopsError(
            "JAX_COORDINATOR_ADDRESS is set but the process count/id are not: set JAX_NUM_PROCESSES and "
            "JAX_PROCESS_ID (Kubeflow Trainer) or run under a JobSet (JOB_COMPLETION_INDEX, REPLICATED_JOB_REPLICAS)"
        )
    if ":" not in coordinator:
        coordinator += ":1234"
    spec = ProcessSpec(coordinator, int(count), int(pid))
    if not 0 <= spec.process_id < spec.num_processes:
        raise VlaopsError(f"process id {spec.process_id} is outside 0..{spec.num_processes - 1}")
    return spec


def initialize(spec: ProcessSpec | None = None) -> ProcessSpec:
    """``jax.distributed.initialize`` when the environment asks for several processes."""
    import jax

    spec = spec or from_env()
    if spec.num_processes > 1:
        log.info(
            "jax.distributed: process %d of %d, coordinator %s",
            spec.process_id,
            spec.num_processes,
            spec.coordinator,
        )
        jax.distributed.initialize(
            spec.coordinator, num_processes=spec.num_processes, process_id=spec.process_id
        )
    return spec
