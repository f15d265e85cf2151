"""`vlaops train --config debug` end to end: real converted dataset, pi0_tiny, checkpoints, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vlaops.cli import main
from vlaops.data.synthetic import aloha_dataset
from vlaops.train import checkpoint


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train_cli")
    aloha_dataset(tmp, (16,) * 4, task="pick up the cube", repo_id="t/tc")
    assert main(["norm-stats", "--dataset", str(tmp / "ds"), "--output", str(tmp / "ns.json")]) == 0
    return tmp


def _debug_args(dataset, ckpt, cache, steps: int, config: str = "debug") -> list[str]:
    return [
        *("train", "--config", config, "--dataset", str(dataset / "ds")),
        *("--norm-stats", str(dataset / "ns.json"), "--checkpoint-dir", str(ckpt)),
        *("--cache-dir", str(cache), "--steps", str(steps)),
    ]


@pytest.mark.slow
def test_debug_training_end_to_end_and_resume(dataset, tmp_path, capsys):
    ckpt = tmp_path / "run"
    args = _debug_args(dataset, ckpt, tmp_path / "cache", 12)
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "train: 100%" in err and "12/12" in err  # the progress bar, on stderr
    stdout_rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    rows = [json.loads(line) for line in (ckpt / "metrics.jsonl").read_text().splitlines()]
    assert stdout_rows == rows  # the same metrics on stdout as in the file
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 12 and sum(losses[-3:]) < sum(losses[:3])
    assert {"grad_norm", "lr", "samples_per_sec", "data_wait_frac"} <= set(rows[0])
    assert (ckpt / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assets = checkpoint.read_assets(str(ckpt / "12"))
    cfg = json.loads(assets["config.json"])
    assert cfg["model"] == "pi0_tiny" and cfg["data"]["cameras"]["base_0_rgb"] == "cam_high"
    assert "aloha_sim/norm_stats.json" in assets
    # an existing run is not overwritten by accident; --resume continues it
    assert main(args) == 2
    assert main([*args[:-1], "16", "--resume"]) == 0
    assert checkpoint.manager(str(ckpt)).latest_step() == 16


def test_dataset_that_does_not_fit_fails_before_training(dataset, tmp_path, capsys):
    ns = json.loads((dataset / "ns.json").read_text())
    ns["norm_stats"]["state"]["mean"] = ns["norm_stats"]["state"]["mean"][:7]
    (tmp_path / "bad_ns.json").write_text(json.dumps(ns))
    rc = main(
        [
            "train",
            "--config",
            "debug",
            "--dataset",
            str(dataset / "ds"),
            "--norm-stats",
            str(tmp_path / "bad_ns.json"),
            "--checkpoint-dir",
            str(tmp_path / "run"),
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
    )
    assert rc == 2 and "is for 7-d state" in capsys.readouterr().err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_unknown_config(capsys):
    rc = main(
        [
            "train",
            "--config",
            "pi0_aloha_sim_loar",
            "--dataset",
            "x",
            "--norm-stats",
            "y",
            "--checkpoint-dir",
            "z",
        ]
    )
    assert rc == 2 and "did you mean 'pi0_aloha_sim_lora'" in capsys.readouterr().err


def _train_process(dataset, tmp_path, ckpt, devices: int, env_extra: dict, tag: str):
    import os
    import subprocess
    import sys

    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
        **env_extra,
    )
    # each process gets its own cache dir, as each pod has its own disk
    args = [
        sys.executable,
        "-m",
        "vlaops.cli",
        *_debug_args(dataset, ckpt, tmp_path / f"cache-{tag}", 4),
    ]
    with open(tmp_path / f"{tag}.log", "w") as log:  # the child keeps its own descriptor
        return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)


def _metrics(ckpt) -> list[dict]:
    return [json.loads(line) for line in (ckpt / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_processes_train_like_one_with_as_many_devices(dataset, tmp_path, free_ports):
    """Real ``jax.distributed`` on localhost: two processes, one CPU device each, each loading
    its half of every batch, give the losses of one process with two devices — which they can
    only do if their shards differ and together make the whole batch — and write one checkpoint."""
    one = _train_process(dataset, tmp_path, tmp_path / "one", 2, {}, "one")
    assert one.wait(timeout=600) == 0, (tmp_path / "one.log").read_text()[-3000:]

    coordinator = f"127.0.0.1:{free_ports()}"
    procs = [
        _train_process(
            dataset,
            tmp_path,
            tmp_path / "two",
            1,
            {
                "JAX_COORDINATOR_ADDRESS": coordinator,
                "JAX_NUM_PROCESSES": "2",
                "JAX_PROCESS_ID": str(i),
            },
            f"p{i}",
        )
        for i in range(2)
    ]
    for i, p in enumerate(procs):
        assert p.wait(timeout=600) == 0, (tmp_path / f"p{i}.log").read_text()[-3000:]
    assert "process 1 of 2" in (tmp_path / "p1.log").read_text()
    assert any((tmp_path / "cache-one" / "xla").iterdir())  # the persistent compilation cache

    single, multi = _metrics(tmp_path / "one"), _metrics(tmp_path / "two")
    assert [r["step"] for r in multi] == [1, 2, 3, 4]  # logged once, by process 0
    np.testing.assert_allclose([r["loss"] for r in multi], [r["loss"] for r in single], rtol=2e-3)
    assert checkpoint.manager(str(tmp_path / "two")).latest_step() == 4
    assert json.loads(checkpoint.read_assets(str(tmp_path / "two" / "4"))["config.json"])


@pytest.mark.slow
def test_lora_run_keeps_its_base_frozen_in_bf16_and_exports_merged(dataset, tmp_path):
    """``debug_lora``: only adapters (and the parts openpi trains with them) change, the frozen
    LLM weights are stored in bf16 exactly as they started, and export folds the adapters in."""
    from flax import nnx

    from vlaops.model import weights
    from vlaops.model.config import get_config
    from vlaops.model.pi0 import Pi0
    from vlaops.serve import export, policy

    assert main(_debug_args(dataset, tmp_path / "run", tmp_path / "cache", 4, "debug_lora")) == 0
    saved = weights.flatten(weights.load(str(tmp_path / "run" / "4" / "params")))
    start = weights.flatten(
        nnx.state(Pi0(get_config("pi0_tiny_lora"), nnx.Rngs(42)), nnx.Param).to_pure_dict()
    )
    adapters = [k for k in saved if "lora" in str(k[-1])]
    frozen = [k for k in saved if "llm" in map(str, k) and k not in adapters]
    assert adapters and frozen
    for k in frozen:
        assert saved[k].dtype == np.dtype("bfloat16"), k
        np.testing.assert_array_equal(saved[k], np.asarray(start[k]).astype(saved[k].dtype))
    assert all(saved[k].dtype == np.float32 for k in adapters)
    assert any(not np.array_equal(saved[k], start[k]) for k in adapters)  # the adapters trained

    version = export.export(str(tmp_path / "run"), str(tmp_path / "repo"), "pi0")
    served = weights.flatten(weights.load(str(tmp_path / "repo" / "pi0" / str(version) / "params")))
    assert not [k for k in served if "lora" in str(k[-1])]  # merged away
    obs = {"images": {}, "state": np.zeros(14, np.float32), "prompt": "pick up the cube"}
    actions = policy.load(tmp_path / "repo" / "pi0" / str(version)).infer(obs)["actions"]
    horizon = get_config("pi0_tiny_lora").action_horizon
    assert actions.shape == (horizon, 14) and np.isfinite(actions).all()
