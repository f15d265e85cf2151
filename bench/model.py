"""pi0 compile and step times: pi0_tiny on the CPU; real-size pi0 sampling latency on a GPU.

    .venv/bin/python bench/model.py            # CPU, pi0_tiny, ~1–2 min on 2 cores
    .venv/bin/python bench/model.py --gpu      # GPU machine: real pi0, bf16, batch 1 and 8

CPU mode prints, for pi0_tiny (fp32), the compile time (first call) and the steady-state median
time per call of: a jitted train step (flow-matching loss + grad + AdamW) at batch 8, and
``sample_actions`` (10 Euler steps) at batch 1 and 8, with the prefix KV cache and without it
(recomputing the whole sequence every step), e.g.

    pi0_tiny on cpu (1 device)                          (measured on 2 shared cores)
    | what                                   | compile+first s | steady ms |
    |----------------------------------------|-----------------|-----------|
    | train step, batch 8                    |           15.30 |     23.31 |
    | sample_actions, batch 1                |            2.51 |      1.02 |
    | sample_actions, batch 8                |            2.41 |      6.10 |
    | sample_actions, batch 1, no KV cache   |            2.03 |      3.13 |
    | sample_actions, batch 8, no KV cache   |            2.41 |     18.19 |

GPU mode builds real-size pi0 with bf16 parameters directly on the device (no checkpoint needed:
latency does not depend on the values), times ``sample_actions`` with 3 cameras at 224², 48
prompt tokens and 10 steps at batch 1 and 8, prints peak device memory, and compares batch 1 with
the lower bound from reference/pi0.md (H100 ≈ 5.8 ms, A100 ≈ 15.5 ms). It refuses to run on a
CPU (real pi0 there would take minutes per call and ~13 GB of host memory).
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from vlaops.model.config import get_config
from vlaops.model.pi0 import CAMERAS, Pi0

BOUND_MS = {"H100": 5.8, "A100": 15.5}  # batch-1 lower bounds, reference/pi0.md


def observation(cfg, batch: int, seed: int = 0) -> dict:
    """A prepared batch: every camera valid, a full-length prompt."""
    rng = np.random.default_rng(seed)
    s = cfg.siglip.image_size
    return {
        "images": {
            c: jnp.asarray(rng.integers(0, 255, (batch, s, s, 3), np.uint8))
            for c in CAMERAS[: cfg.num_cameras]
        },
        "image_masks": {c: jnp.ones(batch, bool) for c in CAMERAS[: cfg.num_cameras]},
        "state": jnp.asarray(rng.normal(size=(batch, cfg.action_dim)), jnp.float32),
        "tokenized_prompt": jnp.asarray(
            rng.integers(1, min(cfg.vocab_size, 250), (batch, cfg.max_token_len)), jnp.int32
        ),
        "tokenized_prompt_mask": jnp.ones((batch, cfg.max_token_len), bool),
    }


def timed(fn, *args, repeat: int = 5) -> tuple[float, float]:
    """(first call incl. compile, median steady-state call), seconds."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return first, float(np.median(times))


def sampler(graphdef, use_cache: bool = True):
    @jax.jit
    def sample(params, obs):
        model = nnx.merge(graphdef, params)
        return model.sample_actions(jax.random.key(1), obs, num_steps=10, use_cache=use_cache)

    return sample


def cpu() -> None:
    cfg = get_config("pi0_tiny")
    graphdef, params = nnx.split(Pi0(cfg, nnx.Rngs(0)), nnx.Param)
    tx = optax.adamw(1e-4)
    opt = tx.init(params)
    obs8 = observation(cfg, 8)
    actions = jnp.zeros((8, cfg.action_horizon, cfg.action_dim))

    @jax.jit
    def train_step(params, opt):
        def loss_of(p):
            return nnx.merge(graphdef, p).compute_loss(jax.random.key(0), obs8, actions).mean()

        loss, grads = jax.value_and_grad(loss_of)(params)
        updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), opt, loss

    rows = [("train step, batch 8", *timed(train_step, params, opt))]
    for use_cache in (True, False):
        fn = sampler(graphdef, use_cache)
        for b in (1, 8):
            what = f"sample_actions, batch {b}" + ("" if use_cache else ", no KV cache")
            rows.append((what, *timed(fn, params, observation(cfg, b))))
    print(f"pi0_tiny on {jax.devices()[0].platform} ({jax.device_count()} device)")
    print(f"| {'what':<38} | {'compile+first s':>15} | {'steady ms':>9} |")
    print(f"|{'-' * 40}|{'-' * 17}|{'-' * 11}|")
    for name, first, steady in rows:
        print(f"| {name:<38} | {first:>15.2f} | {steady * 1e3:>9.2f} |")


def gpu(config: str = "pi0") -> None:
    if jax.default_backend() == "cpu":
        sys.exit("--gpu needs an accelerator; jax sees only the CPU")
    cfg = get_config(config)  # pi0: bf16 activations, 3 cameras, 48 prompt tokens, horizon 50
    graphdef = nnx.graphdef(nnx.eval_shape(lambda: Pi0(cfg, nnx.Rngs(0))))

    @jax.jit
    def init():  # bf16 params made on the device (serving casts openpi's params to bf16 too)
        state = nnx.state(Pi0(cfg, nnx.Rngs(0)), nnx.Param)
        return jax.tree.map(lambda x: x.astype(jnp.bfloat16), state)

    params = jax.block_until_ready(init())
    n_bytes = sum(x.nbytes for x in jax.tree.leaves(params))
    sample = sampler(graphdef)
    kind = jax.devices()[0].device_kind
    n = sum(x.size for x in jax.tree.leaves(params))
    print(f"{config} ({n / 1e9:.2f}B params, bf16, {n_bytes / 2**30:.2f} GiB) on {kind}: 10 steps")
    print(f"| {'batch':>5} | {'compile+first s':>15} | {'p50 ms':>8} | {'ms / sample':>11} |")
    print(f"|{'-' * 7}|{'-' * 17}|{'-' * 10}|{'-' * 13}|")
    ms = {}
    for b in (1, 8):
        first, steady = timed(sample, params, observation(cfg, b), repeat=20)
        ms[b] = steady * 1e3
        print(f"| {b:>5} | {first:>15.1f} | {ms[b]:>8.2f} | {ms[b] / b:>11.2f} |")
    stats = jax.devices()[0].memory_stats() or {}
    print(f"peak device memory: {stats.get('peak_bytes_in_use', 0) / 2**30:.2f} GiB")
    for name, bound in BOUND_MS.items():
        if name in kind:
            print(
                f"batch 1: {ms[1]:.2f} ms = {ms[1] / bound:.2f}× the {name} lower bound ({bound} ms)"
            )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gpu", action="store_true", help="real-size pi0 on the accelerator")
    (gpu if p.parse_args().gpu else cpu)()
