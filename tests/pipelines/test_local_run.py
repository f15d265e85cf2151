"""The real components run by kfp.local: convert → norm-stats on tiny data (normal suite), and
today's whole finetune DAG on tiny sim data (slow)."""

import json

import pytest
from kfp import dsl

from components.convert.component import convert
from components.generate_demos.component import generate_demos
from components.norm_stats.component import norm_stats
from pipelines import local
from pipelines.finetune import finetune
from vlaops.data.synthetic import aloha_episode


@dsl.pipeline(name="data-path")
def _data_path(raw_uri: str, dataset_uri: str):
    raw = generate_demos(sim_task="", episodes=0, raw_uri=raw_uri, raw_format="aloha-hdf5", seed=0)
    ds = convert(
        raw=raw.outputs["demos"],
        dataset_uri=dataset_uri,
        repo_id="t/kfp",
        fps=50,
        task_prompt="pick",
        workers=1,
    )
    norm_stats(dataset=ds.outputs["dataset"], action_horizon=0)


def _artifact(root, task, name):
    """The file kfp.local wrote for output ``name`` of ``task`` (its only one under the root)."""
    (path,) = [p for p in (root / "pipeline-root").rglob(name) if p.parent.name == task]
    return path


def test_kfp_local_runs_convert_then_norm_stats(tmp_path):
    (tmp_path / "raw").mkdir()
    for i in range(2):
        aloha_episode(tmp_path / "raw" / f"episode_{i}.hdf5", 10, ("top",), (32, 48), seed=i)
    with local.StepTimer() as timer:
        root = local.init(tmp_path / "run")
        _data_path(raw_uri=str(tmp_path / "raw"), dataset_uri=str(tmp_path / "ds"))
    print("\n" + local.table(timer.seconds, timer.status))
    assert set(timer.status.values()) == {"SUCCESS"} and len(timer.seconds) == 3
    assert (tmp_path / "ds" / "_SUCCESS").exists()  # the dataset at its URI, not in the store
    pointer = json.loads(_artifact(root, "convert", "dataset").read_text())
    assert pointer["uri"] == str(tmp_path / "ds") and pointer["frames"] == 20
    stats = json.loads(_artifact(root, "norm-stats", "stats").read_text())
    assert len(stats["norm_stats"]["state"]["q99"]) == 14
    assert "| 13 |" in _artifact(root, "norm-stats", "table").read_text()

    # caching: the same inputs again run nothing
    with local.StepTimer() as again:
        _data_path(raw_uri=str(tmp_path / "raw"), dataset_uri=str(tmp_path / "ds"))
    assert set(again.status.values()) == {"CACHED"} and len(again.status) == 3


@pytest.mark.slow
def test_today_finetune_dag_through_kfp_local(tmp_path):
    """generate-demos (sim) → convert → norm-stats, and the scripted-expert evaluation."""
    with local.StepTimer() as timer:
        root = local.init(tmp_path / "run")
        finetune(
            sim_task="transfer_cube",
            demo_episodes=2,
            raw_uri=str(tmp_path / "raw"),
            dataset_uri=str(tmp_path / "ds"),
            repo_id="t/finetune",
            eval_episodes=1,
            eval_uri=str(tmp_path / "eval"),
        )
    print("\n" + local.table(timer.seconds, timer.status))
    assert set(timer.seconds) == {
        "generate-demos",
        "convert",
        "norm-stats",
        "evaluate",  # kfp.local names tasks by their component, not their display name
    }, timer.seconds
    assert set(timer.status.values()) == {"SUCCESS"}
    assert (tmp_path / "ds" / "meta" / "info.json").exists()
    assert "data:video/mp4" in (tmp_path / "eval" / "report.html").read_text()
    metrics = json.loads(_artifact(root, "evaluate", "metrics").read_text())
    assert metrics["success_rate"] == 1.0 and metrics["episodes"] == 1  # the expert's baseline
