"""The compiled pipeline YAML: parameters, steps, images, caching, and where each step runs
(node pools, GPUs, tolerations, volumes) — what the KFP backend turns into pods."""

from pathlib import Path

import pytest
import yaml
from kfp import compiler, dsl

from pipelines import finetune, task_settings
from vlaops import images

# The parameters issue 7 asks the UI to show.
ISSUE_PARAMETERS = {
    "raw_uri",
    "raw_format",
    "sim_task",
    "dataset_uri",
    "train_config",
    "finetune_mode",
    "steps",
    "batch_size",
    "base_checkpoint",
    "accelerator_type",
    "accelerator_count",
    "num_nodes",
    "eval_task",
    "eval_episodes",
    "success_threshold",
    "model_repository",
    "model_name",
    "serving_release",
    "serving_namespace",
}


def _compile(func, tmp_path):
    path = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(func, str(path))
    spec, platform = yaml.safe_load_all(path.read_text())
    return spec, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    path = finetune.compile_pipeline(str(tmp_path_factory.mktemp("c") / "finetune.yaml"))
    spec, platform = yaml.safe_load_all(Path(path).read_text())
    return spec, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


CPU_STEPS = {"generate-demos", "convert", "norm-stats", "train-placement", "export", "deploy"}


def test_pipeline_parameters_and_steps(compiled):
    spec, _ = compiled
    assert spec["pipelineInfo"]["name"] == finetune.NAME
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert set(params) >= ISSUE_PARAMETERS
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {
        "generate-demos",
        "convert",
        "norm-stats",
        "train-placement",
        "train",
        "evaluate",
        "condition-1",
    }
    assert tasks["convert"]["dependentTasks"] == ["generate-demos"]
    assert tasks["norm-stats"]["dependentTasks"] == ["convert"]
    assert sorted(tasks["train"]["dependentTasks"]) == ["convert", "norm-stats", "train-placement"]
    assert tasks["evaluate"]["dependentTasks"] == ["train"]
    # large data moves by URI: the dataset step gets the URI parameter, the artifact is a pointer
    assert tasks["convert"]["inputs"]["parameters"]["dataset_uri"]["componentInputParameter"] == (
        "dataset_uri"
    )
    # the checkpoint the evaluation rolls out is the one train wrote
    ckpt = tasks["evaluate"]["inputs"]["artifacts"]["checkpoint"]["taskOutputArtifact"]
    assert ckpt == {"outputArtifactKey": "checkpoint", "producerTask": "train"}
    # the multi-node JobSet is named after the run, so a retried step re-attaches to it
    run_id = tasks["train"]["inputs"]["parameters"]["run_id"]["runtimeValue"]["constant"]
    assert run_id == "{{$.pipeline_job_uuid}}"
    executors = spec["deploymentSpec"]["executors"]
    used = {name: e["container"]["image"] for name, e in executors.items()}
    assert used == {
        "exec-generate-demos": images.SIM,
        "exec-convert": images.DATA,
        "exec-norm-stats": images.DATA,
        "exec-train-placement": images.DATA,
        "exec-train": images.TRAIN,
        "exec-evaluate": images.SIM,
        "exec-export": images.SERVE,
        "exec-deploy": images.SERVE,
    }
    # production components install nothing at start-up: the image carries the code
    for e in executors.values():
        assert "pip install" not in " ".join(e["container"]["command"])


def test_export_and_deploy_only_when_the_evaluation_passes(compiled):
    spec, _ = compiled
    gate = spec["root"]["dag"]["tasks"]["condition-1"]
    assert gate["triggerPolicy"]["condition"] == (
        "inputs.parameter_values['pipelinechannel--evaluate-Output'] >= "
        "inputs.parameter_values['pipelinechannel--success_threshold']"
    )
    inner = spec["components"]["comp-condition-1"]["dag"]["tasks"]
    assert set(inner) == {"export", "deploy"}
    assert inner["deploy"]["dependentTasks"] == ["export"]
    served = inner["deploy"]["inputs"]["artifacts"]["served"]["taskOutputArtifact"]
    assert served == {"outputArtifactKey": "served", "producerTask": "export"}


def test_caching_is_on_for_every_step_but_deploy(compiled):
    spec, _ = compiled
    tasks = {
        **spec["root"]["dag"]["tasks"],
        **spec["components"]["comp-condition-1"]["dag"]["tasks"],
    }
    for name, task in tasks.items():
        if name == "condition-1":
            continue
        want = {} if name == "deploy" else {"enableCache": True}  # a deploy always happens
        assert task["cachingOptions"] == want, name


def test_data_and_control_steps_run_on_the_cpu_pool_without_gpus(compiled):
    spec, k8s = compiled
    for step in CPU_STEPS:
        name = f"exec-{step}"
        assert k8s[name]["nodeSelector"]["labels"] == {"vlaops.dev/pool": "cpu"}, name
        assert "tolerations" not in k8s[name]
        resources = spec["deploymentSpec"]["executors"][name]["container"]["resources"]
        assert "accelerator" not in resources, name


def test_train_step_placement_comes_from_the_run_parameters(compiled):
    spec, k8s = compiled
    resources = spec["deploymentSpec"]["executors"]["exec-train"]["container"]["resources"]
    for key, output in [
        (resources["accelerator"]["resourceCount"], "gpus"),
        (resources["resourceCpuRequest"], "cpu"),
        (resources["resourceMemoryRequest"], "memory"),
    ]:
        assert key == f"{{{{$.inputs.parameters['pipelinechannel--train-placement-{output}']}}}}"
    assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
    selector = k8s["exec-train"]["nodeSelector"]["nodeSelectorJson"]["taskOutputParameter"]
    assert selector == {"outputParameterKey": "node_selector", "producerTask": "train-placement"}
    assert {t["key"] for t in k8s["exec-train"]["tolerations"]} == {
        "nvidia.com/gpu",
        "vlaops.dev/pool",
    }
    placement = spec["root"]["dag"]["tasks"]["train-placement"]["inputs"]["parameters"]
    assert {k: v["componentInputParameter"] for k, v in placement.items()} == {
        "accelerator_type": "accelerator_type",
        "accelerator_count": "accelerator_count",
        "num_nodes": "num_nodes",
    }


def test_checkpoint_evaluation_gets_one_gpu_of_the_train_pool(compiled):
    spec, k8s = compiled
    resources = spec["deploymentSpec"]["executors"]["exec-evaluate"]["container"]["resources"]
    accel = resources["accelerator"]
    assert (accel["resourceCount"], accel["resourceType"]) == ("1", "nvidia.com/gpu")
    assert k8s["exec-evaluate"]["nodeSelector"]["labels"] == {"vlaops.dev/pool": "train"}
    container = spec["deploymentSpec"]["executors"]["exec-evaluate"]["container"]
    assert {"name": "XLA_PYTHON_CLIENT_PREALLOCATE", "value": "false"} in container["env"]


@dsl.component(base_image=images.TRAIN, install_kfp_package=False)
def _dummy_train(steps: int) -> str:
    return f"{steps} steps"


@dsl.pipeline(name="train-settings")
def _train_settings(accelerator_type: str = "nvidia-a100-80gb", accelerator_count: int = 8):
    placement = task_settings.train_placement(
        accelerator_type=accelerator_type, accelerator_count=accelerator_count, num_nodes=1
    )
    task = _dummy_train(steps=2)
    task_settings.on_train_pool(task, accelerator_count, placement.outputs["node_selector"])


def test_train_step_settings_gpus_pool_tolerations_and_volumes(tmp_path):
    spec, k8s = _compile(_train_settings, tmp_path)
    container = spec["deploymentSpec"]["executors"]["exec-dummy-train"]["container"]
    accel = container["resources"]["accelerator"]
    assert accel["resourceType"] == "nvidia.com/gpu"
    assert "accelerator_count" in accel["resourceCount"]  # a run parameter
    assert container["resources"]["resourceCpuRequest"] == "8"
    assert {"name": "VLAOPS_CACHE_DIR", "value": "/var/cache/vlaops"} in container["env"]

    train = k8s["exec-dummy-train"]
    # the node selector comes whole from the selector step (a run parameter picks the GPU model)
    selector = train["nodeSelector"]["nodeSelectorJson"]["taskOutputParameter"]
    assert selector["producerTask"] == "train-placement"
    assert spec["root"]["dag"]["tasks"]["dummy-train"]["dependentTasks"] == ["train-placement"]
    assert {
        (t["key"], t["operator"], t.get("value"), t["effect"]) for t in train["tolerations"]
    } == {
        ("nvidia.com/gpu", "Exists", None, "NoSchedule"),
        ("vlaops.dev/pool", "Equal", "train", "NoSchedule"),
    }
    mounts = {m["mountPath"]: m for m in train["emptyDirMounts"]}
    assert mounts["/dev/shm"]["medium"] == "Memory" and mounts["/dev/shm"]["sizeLimit"] == "64Gi"
    assert mounts["/var/cache/vlaops"]["sizeLimit"] == "500Gi"
    assert spec["root"]["dag"]["tasks"]["dummy-train"]["cachingOptions"] == {"enableCache": True}


def test_train_step_with_a_node_selector_fixed_at_compile_time(tmp_path):
    @dsl.pipeline(name="train-fixed")
    def fixed():
        task = _dummy_train(steps=2)
        task_settings.on_train_pool(
            task, 4, {"vlaops.dev/pool": "train", task_settings.GKE_ACCELERATOR_LABEL: "a"}
        )

    spec, k8s = _compile(fixed, tmp_path)
    resources = spec["deploymentSpec"]["executors"]["exec-dummy-train"]["container"]["resources"]
    assert resources["accelerator"]["resourceCount"] == "4"
    assert k8s["exec-dummy-train"]["nodeSelector"]["labels"] == {
        "vlaops.dev/pool": "train",
        "cloud.google.com/gke-accelerator": "a",
    }


@pytest.mark.parametrize(
    ("accelerator", "nodes", "expected"),
    [
        ("nvidia-tesla-a100", 1, {"cloud.google.com/gke-accelerator": "nvidia-tesla-a100"}),
        ("", 1, {}),  # any GPU model the train pool has
    ],
)
def test_train_placement_function(accelerator, nodes, expected):
    got = task_settings.train_placement.python_func(
        accelerator_type=accelerator, accelerator_count=4, num_nodes=nodes
    )
    assert got.node_selector == {"vlaops.dev/pool": "train", **expected} and got.gpus == 4
    several = task_settings.train_placement.python_func(
        accelerator_type=accelerator, accelerator_count=4, num_nodes=3
    )
    assert several.node_selector == {"vlaops.dev/pool": "cpu"} and several.gpus == 0
