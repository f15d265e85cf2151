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


def test_pipeline_parameters_and_steps(compiled):
    spec, _ = compiled
    assert spec["pipelineInfo"]["name"] == finetune.NAME
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert set(params) >= ISSUE_PARAMETERS
    assert set(finetune.NOT_YET_USED) <= set(params)
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"generate-demos", "convert", "norm-stats", "evaluate"}
    assert tasks["convert"]["dependentTasks"] == ["generate-demos"]
    assert tasks["norm-stats"]["dependentTasks"] == ["convert"]
    # large data moves by URI: the dataset step gets the URI parameter, the artifact is a pointer
    assert tasks["convert"]["inputs"]["parameters"]["dataset_uri"]["componentInputParameter"] == (
        "dataset_uri"
    )
    executors = spec["deploymentSpec"]["executors"]
    used = {name: e["container"]["image"] for name, e in executors.items()}
    assert used == {
        "exec-generate-demos": images.SIM,
        "exec-convert": images.DATA,
        "exec-norm-stats": images.DATA,
        "exec-evaluate": images.SIM,
    }
    # production components install nothing at start-up: the image carries the code
    for e in executors.values():
        assert "pip install" not in " ".join(e["container"]["command"])


def test_caching_is_on_for_every_step(compiled):
    spec, _ = compiled
    for name, task in spec["root"]["dag"]["tasks"].items():
        assert task["cachingOptions"] == {"enableCache": True}, name


def test_data_and_sim_steps_run_on_the_cpu_pool_without_gpus(compiled):
    spec, k8s = compiled
    for name, e in spec["deploymentSpec"]["executors"].items():
        assert k8s[name]["nodeSelector"]["labels"] == {"vlaops.dev/pool": "cpu"}, name
        assert "tolerations" not in k8s[name]
        resources = e["container"]["resources"]
        assert "accelerator" not in resources and resources["resourceCpuRequest"] == "2"


@dsl.component(base_image=images.TRAIN, install_kfp_package=False)
def _dummy_train(steps: int) -> str:
    return f"{steps} steps"


@dsl.pipeline(name="train-settings")
def _train_settings(accelerator_type: str = "nvidia-a100-80gb", accelerator_count: int = 8):
    selector = task_settings.train_node_selector(accelerator_type=accelerator_type)
    task = _dummy_train(steps=2)
    task_settings.on_train_pool(task, accelerator_count, selector.output)


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
    assert selector["producerTask"] == "train-node-selector"
    assert spec["root"]["dag"]["tasks"]["dummy-train"]["dependentTasks"] == ["train-node-selector"]
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
    ("accelerator", "expected"),
    [
        ("nvidia-tesla-a100", {"cloud.google.com/gke-accelerator": "nvidia-tesla-a100"}),
        ("", {}),  # any GPU model the train pool has
    ],
)
def test_train_node_selector_function(accelerator, expected):
    got = task_settings.train_node_selector.python_func(accelerator_type=accelerator)
    assert got == {"vlaops.dev/pool": "train", **expected}
