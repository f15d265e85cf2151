"""pi0 compile and step times: a pi0_tiny train step and sample_actions on the CPU; real-size pi0
sample_actions latency on a GPU.

    .venv/bin/python bench/model.py                    # CPU, pi0_tiny: ~1 min
    python bench/model.py --gpu                        # GPU machine: real pi0, bf16, batch 1 and 8

CPU mode prints compile time and steady-state time per call of a jitted train step (loss + grad +
AdamW) at batch 8 and of ``sample_actions`` (10 Euler steps, prefix KV cache) at batch 1 and 8.
GPU mode builds real-size pi0 (bf16 params), times ``sample_actions`` (3 cameras 224², 48 prompt
tokens, 10 steps) at batch 1 and 8, and compares with the lower bound in reference/pi0.md
(H100 ≈ 5.8 ms, A100 ≈ 15.5 ms at batch 1) and openpi's reported ~75 ms on an RTX 4090; it also
prints peak device memory.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from vlaops.model.config import get_config
from vlaops.model.pi0 import CAMERAS, Pi0

BOUND_MS = {"H100": 5.8, "A100": 15.5}


def observation(cfg, batch: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    s = cfg.siglip.image_size
    return {
        "images": {
            c: jnp.asarray(rng.integers(0, 255, (batch, s, s, 3), np.uint8)) for c in CAMERAS
        },
        "image_masks": {c: jnp.ones(batch, bool) for c in CAMERAS},
        "state": jnp.asarray(rng.normal(size=(batch, cfg.action_dim)), jnp.float32),
        "tokenized_prompt": jnp.asarray(
            rng.integers(1, 200, (batch, cfg.max_token_len)), jnp.int32
        ),
        "tokenized_prompt_mask": jnp.ones((batch, cfg.max_token_len), bool),
    }


def timed(fn, *args, repeat: int = 5) -> tuple[float, float]:
    """(first call incl. compile, median steady-state call) in seconds."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return first, float(np.median(times))


def cpu() -> None:
    cfg = get_config("pi0_tiny")
    model = Pi0(cfg, nnx.Rngs(0))
    graphdef, params = nnx.split(model, nnx.Param)
    tx = optax.adamw(1e-4)
    opt = tx.init(params)
    obs8 = observation(cfg, 8)
    actions = jnp.zeros((8, cfg.action_horizon, cfg.action_dim))

    @jax.jit
    def train_step(params, opt):
        def f(p):
            return nnx.merge(graphdef, p).compute_loss(jax.random.key(0), obs8, actions).mean()

        loss, g = jax.value_and_grad(f)(params)
        up, opt = tx.update(g, opt, params)
        return optax.apply_updates(params, up), opt, loss

    @jax.jit
    def sample(params, obs):
        return nnx.merge(graphdef, params).sample_actions(jax.random.key(1), obs)

    rows = [("train step, batch 8", *timed(train_step, params, opt))]
    for b in (1, 8):
        rows.append((f"sample_actions, batch {b}", *timed(sample, params, observation(cfg, b))))
    print(f"pi0_tiny on {jax.devices()[0].device_kind} ({jax.device_count()} device)")
    print(f"| {'what':<24} | {'compile+first s':>15} | {'steady ms':>10} |")
    print(f"|{'-' * 26}|{'-' * 17}|{'-' * 12}|")
    for name, first, steady in rows:
        print(f"| {name:<24} | {first:>15.2f} | {steady * 1e3:>10.2f} |")


def gpu() -> None:
    cfg = get_config("pi0")
    model = nnx.jit(lambda: Pi0(cfg, nnx.Rngs(0)))()
    graphdef, params = nnx.split(model, nnx.Param)
    params = jax.tree.map(lambda x: x.astype(jnp.bfloat16), params)
    del model

    @jax.jit
    def sample(params, obs):
        return nnx.merge(graphdef, params).sample_actions(jax.random.key(1), obs)

    kind = jax.devices()[0].device_kind
    print(f"pi0 (3.24B, bf16) on {kind}")
    print(f"| {'batch':>5} | {'compile+first s':>15} | {'p50 ms':>8} | {'ms / sample':>11} |")
    print(f"|{'-' * 7}|{'-' * 17}|{'-' * 10}|{'-' * 13}|")
    results = {}
    for b in (1, 8):
        first, steady = timed(sample, params, observation(cfg, b), repeat=20)
        results[b] = steady * 1e3
        print(f"| {b:>5} | {first:>15.1f} | {steady * 1e3:>8.2f} | {steady * 1e3 / b:>11.2f} |")
    stats = jax.devices()[0].memory_stats() or {}
    print(f"peak device memory: {stats.get('peak_bytes_in_use', 0) / 2**30:.2f} GiB")
    for name, bound in BOUND_MS.items():
        if name in kind:
            print(
                f"batch 1: {results[1] / bound:.2f}× the {name} lower bound of {bound} ms (goal ≤ 3×)"
            )
    print(f"batch 1 vs openpi's reported ~75 ms on an RTX 4090: {75 / results[1]:.1f}× faster")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gpu", action="store_true", help="real-size pi0 on the accelerator")
    (gpu if p.parse_args().gpu else cpu)()
