"""The real components run by kfp.local: convert → norm-stats on tiny data (normal suite), and
the whole finetune pipeline as ``make run-local`` runs it (slow; CI runs it)."""

import json

import pytest
from kfp import dsl

from components.convert.component import convert
from components.generate_demos.component import generate_demos
from components.norm_stats.component import norm_stats
from pipelines import local, run_local
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


def test_bad_raw_uri_fails_the_first_step_with_its_message(tmp_path, capfd):
    local.init(tmp_path / "run")
    with pytest.raises(RuntimeError, match="Inner task failed: .*generate-demos"):
        _data_path(raw_uri=str(tmp_path / "no-such-demos"), dataset_uri=str(tmp_path / "ds"))
    log = capfd.readouterr().out
    assert f"VlaopsError: raw_uri '{tmp_path / 'no-such-demos'}': nothing there" in log
    assert not (tmp_path / "ds").exists()


STEPS = {
    "generate-demos",
    "convert",
    "norm-stats",
    "train-placement",
    "train",
    "evaluate",
    "export",
    "deploy",
}


@pytest.mark.slow
def test_run_local_whole_pipeline_then_a_cached_rerun(tmp_path):
    """``make run-local``'s path: sim demos → … → debug LoRA training → evaluation → export → deploy to
    a real local Triton with a smoke inference; the re-run redoes only the deploy."""
    result = run_local.run(tmp_path)
    print("\n" + local.table(result["seconds"], result["status"]))
    assert result["status"] == dict.fromkeys(STEPS, "SUCCESS")

    pointer = json.loads(_artifact(tmp_path, "train", "checkpoint").read_text())
    assert pointer == {
        "uri": str(tmp_path / "checkpoints" / "30"),
        "config": "debug_lora",
        "step": 30,
    }
    train_metrics = json.loads(_artifact(tmp_path, "train", "metrics").read_text())
    assert train_metrics["step"] == 30 and train_metrics["loss"] > 0
    assert "data:image/png;base64," in _artifact(tmp_path, "train", "loss_curve").read_text()
    evaluation = json.loads(_artifact(tmp_path, "evaluate", "metrics").read_text())
    assert evaluation["episodes"] == 2 and 0 <= evaluation["success_rate"] <= 1
    assert "data:video/mp4" in (tmp_path / "eval" / "report.html").read_text()
    assert (tmp_path / "models" / "pi0" / "1" / "params").is_dir()
    served = json.loads(_artifact(tmp_path, "deploy", "metrics").read_text())
    assert served["version"] == 1 and served["smoke_latency_ms"] > 0
    assert "pi0 version 1 is serving" in _artifact(tmp_path, "deploy", "report").read_text()

    again = run_local.run(tmp_path)
    assert again["status"] == dict.fromkeys(STEPS - {"deploy"}, "CACHED") | {"deploy": "SUCCESS"}
    assert not (tmp_path / "models" / "pi0" / "2").exists()  # nothing new was exported
