"""Training throughput: is the accelerator ever starved of data, and how close to peak does it run?

    .venv/bin/python bench/train.py                       # CPU: loader vs lerobot + the debug run (~5 min)
    .venv/bin/python bench/train.py --gpu                 # GPU: pi0 full and LoRA, batch 32 per device
    .venv/bin/python bench/train.py --gpu --model pi0_tiny --batch 4   # the same code path on a CPU
    .venv/bin/python bench/train.py --estimate            # any machine: pi0's step memory from XLA

CPU mode, in one run:

1. the loader (``bench/loader.py``): samples/s per core of ``LeRobotDataset`` with
   ``delta_timestamps`` random access against the vlaops ``Loader`` (3 cameras at 224×224, H=50);
2. ``vlaops train --config debug`` (pi0_tiny, 3 cameras 480×640 converted and cached, the real
   loader with its prefetch thread): median samples/s and ``data_wait_frac`` — the share of
   step time the loop waits for the next batch — over the steps after compilation.

Estimate mode compiles the real pi0 train step for one device at batch 32 without allocating it
and reads XLA's buffer plan: the state handed in plus the temporaries — the figure the trainer
checks against the device before its first step. Measured here (CPU compiler, 2026-12-05):
LoRA 28.8 GiB in one piece, 23.9 with 2 microbatches, 20.5 with 4 (goal < 20.95 GiB); the
full fine-tune 77.3 GiB on one device (its state alone is 48 GiB), 23.5 GiB a device when FSDP
shards it over 8 (``XLA_FLAGS=--xla_force_host_platform_device_count=8``: 8 CPU devices).

GPU mode trains real-size pi0 — full fine-tune (fp32 params, AdamW, EMA) and LoRA (openpi's
adapters; frozen weights ride along) — on one prepared batch repeated, so the numbers are the
model's own: steps/s, samples/s per device, MFU (model FLOPs per step — 3× XLA's count of the
forward pass — ÷ the device's bf16 peak) and peak device memory, against the goals MFU ≥ 40 %
(full) and LoRA < 22.5 GB.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))

import jax
import numpy as np
from flax import nnx


def debug_run(steps: int, episodes: int = 6, length: int = 100) -> dict:
    """``vlaops train --config debug`` on synthetic 3-camera 480×640 episodes; steady-state rows."""
    from loader import CAMERAS  # the three ALOHA cameras, as bench/loader.py makes them

    from vlaops import storage
    from vlaops.data import norm_stats, synthetic
    from vlaops.train import config
    from vlaops.train.cli import train

    with tempfile.TemporaryDirectory(prefix="vlaops-bench-train-") as tmp:
        tmp = Path(tmp)
        ds = synthetic.aloha_dataset(
            tmp, (length,) * episodes, CAMERAS, (480, 640), task="pick up the cube"
        )
        storage.write_json(str(tmp / "ns.json"), norm_stats.compute(str(ds)))
        metrics = tmp / "metrics.jsonl"
        cfg = config.get("debug").override(steps=steps, save_every=10**9)
        t0 = time.perf_counter()
        train(cfg, str(ds), str(tmp / "ns.json"), str(tmp / "ckpt"), None, str(metrics), False, tmp)
        wall = time.perf_counter() - t0
        rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    steady = [r for r in rows if "data_wait_frac" in r][3:]  # past compilation and warm-up
    return {
        "batch": cfg.trainer.batch_size,
        "steps": steps,
        "wall_s": wall,
        "samples_per_sec": statistics.median(r["samples_per_sec"] for r in steady),
        "data_wait_frac": statistics.median(r["data_wait_frac"] for r in steady),
        "data_wait_frac_max": max(r["data_wait_frac"] for r in steady),
    }


class RepeatedBatch:
    """A loader that yields one prepared batch forever: the step rate is the model's alone."""

    seed = 0

    def __init__(self, batch: dict):
        self.batch = batch

    def __iter__(self):
        return itertools.repeat(self.batch)

    def load_state_dict(self, state: dict) -> None:
        pass


def prepared_batch(model_cfg, batch: int, seed: int = 0) -> dict:
    """What the ``Loader`` yields: bench/model.py's prepared observation plus an action chunk."""
    from model import observation

    rng = np.random.default_rng(seed + 1)
    h, a = model_cfg.action_horizon, model_cfg.action_dim
    return observation(model_cfg, batch, seed) | {
        "actions": rng.normal(size=(batch, h, a)).astype(np.float32),
        "action_is_pad": np.zeros((batch, h), bool),
    }


def _trainer(
    train_config: str,
    model: str,
    per_device_batch: int,
    steps: int,
    abstract: bool,
    microbatches: int | None = None,
):
    """The Trainer as ``vlaops train`` builds it (model in host memory, state on the mesh), on
    one prepared batch; ``abstract``: from ``nnx.eval_shape``, nothing allocated."""
    from vlaops.model.pi0 import Pi0
    from vlaops.train import config, sharding
    from vlaops.train.trainer import Trainer

    cfg = dataclasses.replace(config.get(train_config), model=model)
    batch = per_device_batch * jax.device_count()
    cfg = cfg.override(batch_size=batch, steps=steps + 1, microbatches=microbatches)

    def build():
        return Pi0(cfg.model_config, nnx.Rngs(0))

    with sharding.on_host():
        pi0 = nnx.eval_shape(build) if abstract else build()

    def loss_fn(model, rng, b):
        return model.compute_loss(rng, b, b["actions"]).mean()

    trainer = Trainer(
        pi0,
        loss_fn,
        cfg.trainer,
        RepeatedBatch(prepared_batch(cfg.model_config, batch)),
        "",  # never saves
        trainable=cfg.trainable(),
    )
    trainer._setup(materialize=not abstract)  # as run() does, without checkpointing
    trainer.model = None  # the host copy is not needed any more
    return trainer


def step_rate(
    train_config: str,
    model: str,
    per_device_batch: int,
    steps: int,
    microbatches: int | None = None,
) -> dict:
    """Steps/s, MFU and peak memory of one fine-tuning mode, timed over ``steps`` steady steps."""
    from vlaops.train import sharding

    trainer = _trainer(train_config, model, per_device_batch, steps, False, microbatches)
    on_mesh = sharding.shard_batch(trainer.loader.batch, trainer.mesh)
    t0 = time.perf_counter()
    step = trainer._compile(on_mesh)
    state, out = step(trainer.state, on_mesh)
    jax.block_until_ready(out)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        state, out = step(state, on_mesh)
    jax.block_until_ready(out)
    secs = (time.perf_counter() - t0) / steps
    stats = jax.local_devices()[0].memory_stats() or {}
    peak = trainer.peak_flops_per_device
    return {
        "mode": train_config.rsplit("_", 1)[-1],
        "microbatches": trainer.microbatches,  # as given, or the fewest that fit the device
        "trainable": trainer.n_trainable,
        "compile_s": compile_s,
        "step_s": secs,
        "samples_per_sec_per_device": per_device_batch / secs,
        "mfu": trainer.flops_per_step / secs / peak if peak and trainer.flops_per_step else None,
        "peak_gib": stats.get("peak_bytes_in_use", 0) / 2**30,
        "loss": float(out["loss"]),
    }


def memory_estimate(
    train_config: str, model: str, per_device_batch: int, microbatches: int = 1
) -> dict:
    """XLA's own account of one train step's device memory — the state it is handed, the
    temporaries it needs — from the step compiled at real shapes with nothing allocated. Runs on
    a CPU (the CPU compiler's plan; a GPU's fuses differently, so treat it as an estimate)."""
    from vlaops.train import sharding
    from vlaops.train.metrics import step_memory

    trainer = _trainer(train_config, model, per_device_batch, 1, True, microbatches)
    on_mesh = sharding.batch_sharding(trainer.mesh)
    batch = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=on_mesh), trainer.loader.batch
    )
    t0 = time.perf_counter()
    compiled = trainer._step_fn.lower(trainer.state, batch).compile()
    m, gib = compiled.memory_analysis(), 2**30
    by_part = {  # what one device holds of each: its shard
        k: sum(
            np.prod(x.sharding.shard_shape(x.shape)) * x.dtype.itemsize
            for x in jax.tree.leaves(trainer.state[k])
        )
        / gib
        for k in ("params", "frozen", "opt_state", "ema")
    }
    return {
        "mode": train_config.rsplit("_", 1)[-1],
        "microbatches": microbatches,
        "trainable": trainer.n_trainable,
        "compile_s": time.perf_counter() - t0,
        **by_part,
        "arguments": m.argument_size_in_bytes / gib,
        "temporaries": m.temp_size_in_bytes / gib,
        "total": step_memory(compiled) / gib,  # what the trainer checks against the device
    }


MODES = ("pi0_aloha_sim_lora", "pi0_aloha_sim_full")  # LoRA first: the peak counter never resets


def _models(model: str) -> dict[str, str]:
    return {MODES[0]: "pi0_lora" if model == "pi0" else f"{model}_lora", MODES[1]: model}


def estimate(args) -> None:
    print(
        f"{args.model}: device memory of one train step at batch {args.batch} per device, "
        f"{jax.device_count()} device(s), from XLA's compiled step (nothing allocated); "
        "GiB per device"
    )
    cols = ("params", "frozen", "opt_state", "ema", "arguments", "temporaries", "total")
    print(
        f"| {'mode':<5} | {'micro':>5} | {'trainable':>13} | "
        + " | ".join(f"{c:>11}" for c in cols)
        + " |"
    )
    print(f"|{'-' * 7}|{'-' * 7}|{'-' * 15}|" + "|".join("-" * 13 for _ in cols) + "|")
    lora, full = _models(args.model).items()
    runs = [(*lora, n) for n in (1, 2, 4) if args.batch % n == 0] + [(*full, 1)]
    for name, model, micro in runs:
        r = memory_estimate(name, model, args.batch, micro)
        print(
            f"| {r['mode']:<5} | {micro:>5} | {r['trainable']:>13,} | "
            + " | ".join(f"{r[c]:>7.2f} GiB" for c in cols)
            + f" |   (compiled in {r['compile_s']:.0f} s)",
            flush=True,
        )
    print(
        "goal: LoRA < 22.5 GB (20.95 GiB). micro: microbatches per step, same batch (the "
        "trainer picks the fewest that fit). The full fine-tune shards its state with FSDP."
    )


def cpu(args) -> None:
    import loader

    logging.disable(logging.INFO)
    loader.report(loader.measure())
    d = debug_run(args.steps)
    print(f"\nvlaops train --config debug: pi0_tiny, batch {d['batch']}, {d['steps']} steps")
    print("3 cameras 480×640 → 224×224 frame cache, the real Loader and its prefetch thread")
    print(f"| {'samples/s':>9} | {'data_wait_frac (median)':>23} | {'max':>5} | {'wall s':>6} |")
    print(f"|{'-' * 11}|{'-' * 25}|{'-' * 7}|{'-' * 8}|")
    print(
        f"| {d['samples_per_sec']:>9.1f} | {d['data_wait_frac']:>23.3f} "
        f"| {d['data_wait_frac_max']:>5.2f} | {d['wall_s']:>6.1f} |"
    )


def gpu(args) -> None:
    if jax.default_backend() == "cpu" and args.model == "pi0":
        sys.exit("--gpu with real pi0 needs an accelerator; try --model pi0_tiny to check the path")
    kind = jax.devices()[0].device_kind
    print(
        f"{args.model} on {jax.device_count()}× {kind}, batch {args.batch} per device, "
        f"{args.steps} timed steps"
    )
    print(
        f"| {'mode':<5} | {'micro':>5} | {'trainable':>13} | {'compile s':>9} | {'step s':>7} "
        f"| {'samples/s/dev':>13} | {'MFU':>6} | {'peak GiB':>8} |"
    )
    print(f"|{'-' * 7}|{'-' * 7}|{'-' * 15}|{'-' * 11}|{'-' * 9}|{'-' * 15}|{'-' * 8}|{'-' * 10}|")
    for name, model in _models(args.model).items():
        r = step_rate(name, model, args.batch, args.steps, args.microbatches)
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "n/a"
        print(
            f"| {r['mode']:<5} | {r['microbatches']:>5} | {r['trainable']:>13,} "
            f"| {r['compile_s']:>9.1f} | {r['step_s']:>7.3f} "
            f"| {r['samples_per_sec_per_device']:>13.1f} | {mfu:>6} | {r['peak_gib']:>8.2f} |",
            flush=True,
        )
    print("goals: MFU ≥ 40 % for the full fine-tune; LoRA peak < 22.5 GB (20.95 GiB)")
    print("micro: microbatches per step, the fewest whose step fits the device unless given")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gpu", action="store_true", help="pi0 full and LoRA step rate, MFU, memory")
    p.add_argument(
        "--estimate",
        action="store_true",
        help="device memory of the pi0 steps from XLA's compiled plan, on any machine (CPU)",
    )
    p.add_argument("--model", default="pi0", help="pi0, or pi0_tiny to test the path on a CPU")
    p.add_argument("--batch", type=int, default=32, help="with --gpu/--estimate: batch per device")
    p.add_argument(
        "--microbatches",
        type=int,
        help="with --gpu: microbatches per step (default: the fewest that fit the device)",
    )
    p.add_argument("--steps", type=int, default=None, help="timed steps (debug run: its length)")
    a = p.parse_args()
    a.steps = a.steps or (5 if a.gpu else 40)
    (estimate if a.estimate else gpu if a.gpu else cpu)(a)
