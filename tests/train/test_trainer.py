"""The training loop's mechanics — loss goes down, exact resume, SIGTERM, fallback on a corrupt
checkpoint, layout and gs:// — on a small NNX regression model with the real loader.

The model is a stand-in for pi0 (whose own tests live with it): the trainer only sees an NNX
module and ``loss_fn(model, rng, batch)``, and the stand-in's loss uses the RNG, so exact resume
must restore the key, the step, the optimizer and the loader position to pass.
"""

from __future__ import annotations

import json
import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from vlaops import storage
from vlaops.data import lerobot_io, norm_stats
from vlaops.data.loader import DatasetArrays, Loader, LoaderConfig
from vlaops.errors import VlaopsError
from vlaops.train import checkpoint
from vlaops.train.trainer import OptimizerConfig, Trainer, TrainerConfig


class Regressor(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(32, 256, rngs=rngs)
        self.out = nnx.Linear(256, 32, rngs=rngs)

    def __call__(self, x):
        return self.out(jax.nn.gelu(self.hidden(x)))


def loss_fn(model, rng, batch):
    x = batch["state"] + 0.01 * jax.random.normal(rng, batch["state"].shape)
    return jnp.mean((model(x) - batch["actions"][:, 0]) ** 2)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("train") / "ds"
    rng = np.random.default_rng(0)
    eps = []
    for n in (30, 40, 26):
        state = rng.normal(size=(n, 6)).astype(np.float32)
        eps.append({"state": state, "action": (state[:, :4] * 2 - 1).astype(np.float32)})
    lerobot_io.write_vectors(root, "t/train", 10, eps)
    return root


def _trainer(dataset, ckpt, steps=8, lr=3e-3, trainable=nnx.Param, loss=loss_fn, **kw):
    stats = norm_stats.compute(str(dataset))
    from vlaops.data.transforms import Normalizer

    loader = Loader(
        DatasetArrays.load(dataset),
        None,
        LoaderConfig(action_horizon=4),
        batch_size=8,
        seed=3,
        normalizer=Normalizer.from_norm_stats(stats),
        prefetch=1,
    )
    cfg = TrainerConfig(
        steps=steps,
        batch_size=8,
        seed=1,
        log_every=1,
        save_every=2,
        optimizer=OptimizerConfig(peak_lr=lr, warmup_steps=2),
        **kw,
    )
    return Trainer(
        Regressor(nnx.Rngs(0)),
        loss,
        cfg,
        loader,
        str(ckpt),
        norm_stats=stats,
        config_json={"name": "test"},
        metrics_file=str(ckpt) + ".jsonl" if not storage.is_remote(ckpt) else None,
        trainable=trainable,
    )


def _losses(path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in map(json.loads, open(path))}


def test_loss_goes_down_and_layout(dataset, tmp_path):
    t = _trainer(dataset, tmp_path / "ckpt", steps=30, lr=2e-2)
    t.run()
    losses = _losses(str(tmp_path / "ckpt") + ".jsonl")
    first, last = (
        np.mean([losses[s] for s in range(1, 6)]),
        np.mean([losses[s] for s in range(26, 31)]),
    )
    assert last < 0.5 * first, (first, last)
    step_dir = tmp_path / "ckpt" / "30"
    assert (step_dir / "params").is_dir() and (step_dir / "train_state").is_dir()
    assets = checkpoint.read_assets(str(step_dir))
    assert json.loads(assets["robot/norm_stats.json"])["norm_stats"]["state"]["mean"]
    assert json.loads(assets["config.json"])["trainer"]["steps"] == 30
    assert sorted(int(p.name) for p in (tmp_path / "ckpt").iterdir() if p.name.isdigit()) == [
        26,
        28,
        30,
    ]


def _crash_after_step_5(step, _):
    if step == 5:
        raise KeyboardInterrupt("killed")  # no final save: like SIGKILL after step 5


def test_killed_run_resumes_with_identical_losses(dataset, tmp_path):
    _trainer(dataset, tmp_path / "a").run()
    straight = _losses(str(tmp_path / "a") + ".jsonl")

    crashing = _trainer(dataset, tmp_path / "b")
    crashing.add_hook(_crash_after_step_5)
    with pytest.raises(KeyboardInterrupt):
        crashing.run()
    resumed = _trainer(dataset, tmp_path / "b")
    resumed.run()  # restores step 4 (the last save), replays 5..8
    after = _losses(str(tmp_path / "b") + ".jsonl")
    for step in range(1, 9):
        assert after[step] == straight[step], step  # bit-exact on CPU


def test_frozen_weights_in_bf16_train_the_rest_and_resume_exactly(dataset, tmp_path):
    """LoRA's setup in small: the frozen layer is stored in bf16 (openpi's memory saving), the
    trainable one stays fp32 and learns, and a killed run still resumes bit-exactly."""
    kw = dict(trainable=nnx.PathContains("out"), frozen_dtype="bfloat16")
    straight = _trainer(dataset, tmp_path / "a", **kw)
    initial = np.asarray(straight.model.hidden.kernel.value)
    straight.run()
    frozen = jax.tree.leaves(straight.state["frozen"])
    assert frozen and all(x.dtype == jnp.bfloat16 for x in frozen)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(straight.state["params"]))
    hidden = straight.full_params()["hidden"]["kernel"].value
    np.testing.assert_array_equal(np.asarray(hidden), initial.astype(jnp.bfloat16))
    trained = straight.full_params()["out"]["kernel"].value
    assert not np.allclose(trained, straight.model.out.kernel.value)

    crashing = _trainer(dataset, tmp_path / "b", **kw)
    crashing.add_hook(_crash_after_step_5)
    with pytest.raises(KeyboardInterrupt):
        crashing.run()
    resumed = _trainer(dataset, tmp_path / "b", **kw)
    resumed.run()
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(resumed.state["frozen"]))
    assert _losses(str(tmp_path / "b") + ".jsonl") == _losses(str(tmp_path / "a") + ".jsonl")


def wide_loss(model, rng, batch):
    """Noise-free (each microbatch would draw its own noise), with a [B, 256, 256] activation
    so that the step's memory grows with the batch: 2.4 MB at 8 rows, 0.9 MB at 2."""
    h = jax.nn.gelu(model.hidden(batch["state"]))
    outer = jnp.einsum("bi,bj->bij", h, h)
    fit = jnp.mean((model.out(h) - batch["actions"][:, 0]) ** 2)
    return fit + 1e-6 * jnp.mean(jnp.tanh(outer))


def test_microbatches_fit_the_device_and_give_the_same_updates(dataset, tmp_path):
    """With room for ~1.2 MB the trainer settles on 4 microbatches of 2 rows on its own, and
    their averaged gradients train exactly like one batch of 8 (to float rounding)."""
    whole = _trainer(dataset, tmp_path / "whole", loss=wide_loss, microbatches=1)
    whole.run()
    auto = _trainer(dataset, tmp_path / "auto", loss=wide_loss)
    auto.device_memory = 1_200_000
    auto.run()
    assert (whole.microbatches, auto.microbatches) == (1, 4)
    losses = [_losses(str(tmp_path / name) + ".jsonl") for name in ("whole", "auto")]
    assert losses[0].keys() == losses[1].keys() == set(range(1, 9))
    np.testing.assert_allclose(list(losses[1].values()), list(losses[0].values()), rtol=1e-5)
    assert losses[0][8] < losses[0][1]  # it trained: the comparison is not between constants


def test_a_step_too_big_for_the_device_is_refused_before_it_runs(dataset, tmp_path):
    fixed = _trainer(dataset, tmp_path / "fixed", loss=wide_loss, microbatches=1)
    fixed.device_memory = 1_200_000
    with pytest.raises(VlaopsError, match=r"needs 0\.\d+ GiB .* --microbatches 2"):
        fixed.run()
    auto = _trainer(dataset, tmp_path / "auto", loss=wide_loss)
    auto.device_memory = 100_000  # less than the state itself
    with pytest.raises(VlaopsError, match="at 8 microbatch.* batch size 8 splits no further"):
        auto.run()
    assert not list(tmp_path.glob("*/[0-9]*"))  # stopped before any step or checkpoint


def test_a_batch_that_does_not_split_into_microbatches_is_refused(dataset, tmp_path):
    with pytest.raises(VlaopsError, match="batch size 8 does not split into 3 microbatch"):
        _trainer(dataset, tmp_path / "x", microbatches=3).run()


def test_sigterm_saves_and_stops(dataset, tmp_path):
    t = _trainer(dataset, tmp_path / "c", steps=50)
    t.add_hook(lambda step, _: os.kill(os.getpid(), signal.SIGTERM) if step == 3 else None)
    t.run()
    assert checkpoint.manager(str(tmp_path / "c")).latest_step() == 3


def test_validation_pauses_are_not_counted_as_waiting_on_data(dataset, tmp_path):
    """A slow hook (validation) or a checkpoint between steps is not training time: it must not
    deflate ``samples_per_sec`` nor dilute ``data_wait_frac`` (the share of *step* time)."""
    import time

    t = _trainer(dataset, tmp_path / "w", steps=6)  # also saves every 2 steps
    t.add_hook(lambda step, _: time.sleep(0.5))
    t.run()
    with open(str(tmp_path / "w") + ".jsonl") as f:
        rows = [json.loads(line) for line in f]
    after_a_pause = [r for r in rows if r["step"] > 1]
    assert all(r["samples_per_sec"] > 8 / 0.5 for r in after_a_pause), after_a_pause
    assert all(0 <= r["data_wait_frac"] <= 1 for r in after_a_pause), after_a_pause


def test_mfu_from_the_compiled_step_flops(dataset, tmp_path):
    """MFU = model FLOPs per step (3× XLA's forward count) × steps/s ÷ the device's peak. A CPU has no known
    peak (no ``mfu`` logged), so the test names one; the FLOPs must be those of the stand-in."""
    t = _trainer(dataset, tmp_path / "m", steps=3)
    t.peak_flops_per_device = 1e9
    t.run()
    forward = 2 * 8 * (32 * 256 + 256 * 32)  # two dense layers, batch 8
    assert 3 * forward <= t.flops_per_step < 3.5 * forward  # forward + backward, model FLOPs
    with open(str(tmp_path / "m") + ".jsonl") as f:
        rows = [json.loads(line) for line in f]
    for r in rows:
        steps_per_sec = r["samples_per_sec"] / 8
        assert r["mfu"] == pytest.approx(t.flops_per_step * steps_per_sec / 1e9)
    plain = _trainer(dataset, tmp_path / "n", steps=1)
    assert "mfu" not in plain.run() and plain.peak_flops_per_device is None


def test_corrupt_latest_checkpoint_falls_back(dataset, tmp_path, caplog):
    _trainer(dataset, tmp_path / "d", steps=4).run()
    for f in (tmp_path / "d" / "4" / "train_state").rglob("*"):
        if f.is_file() and f.stat().st_size > 0:
            f.write_bytes(b"\0" * 7)
    t = _trainer(dataset, tmp_path / "d", steps=6)
    t.run()
    assert "does not restore" in caplog.text
    assert (tmp_path / "d" / "4.corrupt").is_dir()  # kept aside, not deleted
    assert int(t.state["step"]) == 6 and (tmp_path / "d" / "6").is_dir()


@pytest.mark.slow
def test_checkpoints_on_gcs(dataset, bucket):
    ckpt = storage.join(bucket, "runs/r1")
    _trainer(dataset, ckpt, steps=4).run()
    assert storage.exists(storage.join(ckpt, "4/assets/robot/norm_stats.json"))
    t = _trainer(dataset, ckpt, steps=6)
    t.run()
    assert int(t.state["step"]) == 6


@pytest.mark.slow
def test_fsdp_over_8_devices_gives_the_same_losses_as_1(dataset, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parent / "fsdp_run.py"
    out = {}
    for n in (1, 8):
        env = dict(
            os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}", JAX_PLATFORMS="cpu"
        )
        res = subprocess.run(
            [sys.executable, str(script), str(dataset), str(tmp_path / f"ckpt{n}")],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        out[n] = json.loads(res.stdout.strip().splitlines()[-1])
    assert out[8]["devices"] == 8 and out[1]["devices"] == 1
    assert any("fsdp" in s for s in out[8]["specs"])  # parameters really are sharded
    np.testing.assert_allclose(out[8]["losses"], out[1]["losses"], rtol=1e-4)
