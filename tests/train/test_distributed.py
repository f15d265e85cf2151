"""Reading the multi-host setup from a JobSet / Kubeflow Trainer environment (no cluster here)."""

import pytest

from vlaops.errors import VlaopsError
from vlaops.train.distributed import ProcessSpec, from_env


def test_single_process_by_default():
    assert from_env({}) == ProcessSpec(None, 1, 0)


def test_kubeflow_trainer_variables():
    env = {
        "JAX_COORDINATOR_ADDRESS": "train-0.train:1234",
        "JAX_NUM_PROCESSES": "4",
        "JAX_PROCESS_ID": "2",
    }
    assert from_env(env) == ProcessSpec("train-0.train:1234", 4, 2)


def test_jobset_indices_and_default_port():
    env = {
        "JAX_COORDINATOR_ADDRESS": "run-workers-0-0.run",
        "REPLICATED_JOB_REPLICAS": "2",
        "JOB_COMPLETION_INDEX": "1",
    }
    assert from_env(env) == ProcessSpec("run-workers-0-0.run:1234", 2, 1)


def test_incomplete_environment_is_a_clear_error():
    with pytest.raises(VlaopsError, match="process count/id are not"):
        from_env({"JAX_COORDINATOR_ADDRESS": "x:1"})
    with pytest.raises(VlaopsError, match="outside 0..1"):
        from_env(
            {"JAX_COORDINATOR_ADDRESS": "x:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "5"}
        )
