"""The KFP pipeline: compiled YAML, and the real components run by kfp.local on tiny data."""

import json

import kfp.local
import pytest
import yaml
from kfp import dsl
from kfp.dsl import Dataset

from components.convert.component import convert
from components.norm_stats.component import norm_stats
from pipelines.finetune import compile_pipeline
from vlaops import images
from vlaops.data.synthetic import aloha_episode


def test_compiled_pipeline(tmp_path):
    path = compile_pipeline(str(tmp_path / "finetune.yaml"))
    spec, platform = yaml.safe_load_all((tmp_path / path).read_text())
    assert spec["pipelineInfo"]["name"] == "finetune"
    executors = spec["deploymentSpec"]["executors"]
    used = {e["container"]["image"] for e in executors.values()}
    assert used == {images.DATA, images.SIM, images.TRAIN, images.SERVE}
    tasks = spec["root"]["dag"]["tasks"]
    assert {"generate-demos", "convert", "norm-stats", "train", "evaluate", "condition-1"} <= set(
        tasks
    )
    assert "success_threshold" in json.dumps(tasks["condition-1"])
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert {
        "train_config",
        "steps",
        "base_checkpoint",
        "model_repository",
        "success_threshold",
        "accelerator_type",
        "accelerator_count",
    } <= set(params)
    # the training step asks for the GPUs of the A100 pool, with its taints tolerated and /dev/shm in memory
    accel = executors["exec-train"]["container"]["resources"]["accelerator"]
    assert (
        "accelerator_type" in accel["resourceType"]
        and "accelerator_count" in accel["resourceCount"]
    )
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert k8s["exec-train"]["nodeSelector"]["labels"] == {"vlaops.dev/pool": "train"}
    tolerated = {t["key"] for t in k8s["exec-train"]["tolerations"]}
    assert tolerated == {"nvidia.com/gpu", "vlaops.dev/pool"}
    assert k8s["exec-train"]["emptyDirMounts"][0]["mountPath"] == "/dev/shm"
    for step in ("exec-convert", "exec-norm-stats", "exec-generate-demos"):
        assert k8s[step]["nodeSelector"]["labels"] == {"vlaops.dev/pool": "cpu"}
    # caching stays on for every step, so re-runs skip what did not change
    assert all(t.get("cachingOptions", {}).get("enableCache") is not False for t in tasks.values())


@dsl.component(base_image=images.DATA)
def _pointer(uri: str, fmt: str, raw: dsl.Output[Dataset]):
    raw.metadata.update({"uri": uri, "format": fmt})


@dsl.pipeline(name="data-path")
def _data_path(raw_uri: str, dataset_uri: str):
    raw = _pointer(uri=raw_uri, fmt="aloha-hdf5")
    ds = convert(
        raw=raw.outputs["raw"],
        dataset_uri=dataset_uri,
        repo_id="t/kfp",
        fps=50,
        task="pick",
        workers=1,
    )
    norm_stats(dataset=ds.outputs["dataset"], action_horizon=0)


@pytest.mark.slow
def test_kfp_local_runs_convert_then_norm_stats(tmp_path):
    (tmp_path / "raw").mkdir()
    for i in range(2):
        aloha_episode(tmp_path / "raw" / f"episode_{i}.hdf5", 10, ("top",), (32, 48), seed=i)
    kfp.local.init(
        runner=kfp.local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root")
    )
    _data_path(raw_uri=str(tmp_path / "raw"), dataset_uri=str(tmp_path / "ds"))
    assert (tmp_path / "ds" / "_SUCCESS").exists()
    stats = list((tmp_path / "root").rglob("stats"))
    assert stats and json.loads(stats[0].read_text())["norm_stats"]["state"]["mean"]
    tables = list((tmp_path / "root").rglob("table"))
    assert "q99" in tables[0].read_text()
