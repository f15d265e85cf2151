"""components/train and components/export called as plain functions: the debug config on a tiny
dataset, then a model-repository version from its checkpoint; bad run parameters fail first."""

import json
from pathlib import Path

import pytest
from component_helpers import output
from kfp.dsl import HTML, Artifact, Dataset, Metrics, Model

from components.export.component import export
from components.train.component import train
from vlaops.data import norm_stats
from vlaops.data.synthetic import aloha_dataset
from vlaops.errors import VlaopsError


def _inputs(tmp_path):
    ds = aloha_dataset(tmp_path, [12, 12])
    stats_file = tmp_path / "stats.json"
    stats_file.write_text(json.dumps(norm_stats.compute(str(ds))))
    dataset = Dataset(name="dataset", uri=str(tmp_path / "pointer"), metadata={"uri": str(ds)})
    stats = Artifact(name="stats", uri=str(stats_file), metadata={})
    return dataset, stats


def _train(tmp_path, dataset, stats, **kw):
    outs = {
        "checkpoint": output(Model, tmp_path, "checkpoint"),
        "metrics": output(Metrics, tmp_path, "metrics"),
        "loss_curve": output(HTML, tmp_path, "loss_curve"),
    }
    args = {
        "config": "debug",
        "finetune_mode": "lora",
        "steps": 4,
        "batch_size": 2,
        "base_checkpoint": "",
        "checkpoint_uri": str(tmp_path / "ckpt"),
        "num_nodes": 1,
        "accelerator_type": "",
        "gpus_per_node": 0,
        "run_id": "test",
        **kw,
    }
    train.python_func(dataset=dataset, stats=stats, **args, **outs)
    return outs


def test_train_then_export_a_new_version(tmp_path, monkeypatch):
    monkeypatch.setenv("VLAOPS_CACHE_DIR", str(tmp_path / "scratch"))
    dataset, stats = _inputs(tmp_path)
    outs = _train(tmp_path, dataset, stats)
    pointer = json.loads(Path(outs["checkpoint"].path).read_text())
    assert pointer == {"uri": str(tmp_path / "ckpt" / "4"), "config": "debug_lora", "step": 4}
    assert outs["checkpoint"].metadata == pointer
    assert outs["metrics"].metadata["step"] == 4 and outs["metrics"].metadata["loss"] > 0
    assert "data:image/png;base64," in Path(outs["loss_curve"].path).read_text()
    assert (tmp_path / "scratch" / "frames").is_dir()  # the loader cache used the scratch disk

    served, metrics = output(Model, tmp_path, "served"), output(Metrics, tmp_path, "m2")
    repo = tmp_path / "models"
    export.python_func(
        checkpoint=outs["checkpoint"],
        model_repository=str(repo),
        model_name="pi0",
        served=served,
        metrics=metrics,
    )
    assert served.metadata["version"] == 1 and served.metadata["uri"] == str(repo / "pi0" / "1")
    assert (repo / "pi0" / "config.pbtxt").exists() and (repo / "pi0" / "1" / "params").is_dir()


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"config": "pi0_alhoa_sim"}, "unknown training config 'pi0_alhoa_sim'"),
        ({"finetune_mode": "half"}, "fine-tune mode 'half'"),
    ],
)
def test_a_bad_run_parameter_fails_before_training(tmp_path, kw, message):
    dataset = Dataset(name="dataset", uri=str(tmp_path / "p"), metadata={"uri": str(tmp_path)})
    stats = Artifact(name="stats", uri=str(tmp_path / "s.json"), metadata={})
    with pytest.raises(VlaopsError, match=message):
        _train(tmp_path, dataset, stats, **kw)
    assert not (tmp_path / "ckpt").exists()
