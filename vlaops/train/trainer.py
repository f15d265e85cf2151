"""The training loop: FSDP over a (data, fsdp) mesh, AdamW + warmup-cosine + clipping, EMA, a
freeze filter (LoRA), orbax checkpoints, exact resume, SIGTERM-safe.

    trainer = Trainer(model, loss_fn, TrainerConfig(steps=2000, batch_size=32), loader, "gs://ckpt/run1",
                      norm_stats=stats, config_json=resolved_config)
    trainer.run()      # resumes from the newest checkpoint if there is one

``model`` is a Flax NNX module; ``loss_fn(model, rng, batch) -> scalar``. Everything that changes
during training — params, optimizer state, EMA, step, RNG key, loader position — is one pytree
saved in every checkpoint, and each step's randomness is ``fold_in(key, step)``, so a run killed at
step k and resumed produces the same losses as an uninterrupted one. SIGTERM (a spot VM reclaimed)
finishes the current step, saves, and returns.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm import tqdm

from vlaops.data import prefetch
from vlaops.errors import VlaopsError
from vlaops.train import checkpoint, sharding
from vlaops.train.metrics import MEMORY_HEADROOM, peak_flops, step_memory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OptimizerConfig:
    peak_lr: float = 2.5e-5  # openpi's pi0 fine-tuning defaults
    warmup_steps: int = 1000
    end_lr: float = 2.5e-6  # cosine decays to this by the last step
    b1: float = 0.9
    b2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 1e-10
    clip_norm: float = 1.0  # global-norm gradient clipping


@dataclass(frozen=True)
class TrainerConfig:
    steps: int = 30_000
    batch_size: int = 32  # global, over all processes
    # Each batch runs as this many sequential microbatches whose gradients are averaged: the
    # same update (up to float rounding and per-microbatch noise draws) in ~1/N of the
    # activation memory. None: the fewest (1, 2, 4…) whose step fits the device, by XLA's plan.
    microbatches: int | None = None
    seed: int = 42
    optimizer: OptimizerConfig = OptimizerConfig()
    ema_decay: float | None = 0.99  # None: no EMA (openpi turns it off for LoRA)
    fsdp: int | None = None  # devices per shard group; None: all
    log_every: int = 100
    save_every: int = 1000
    keep_checkpoints: int = 3
    asset_id: str = "robot"  # norm stats go to assets/<asset_id>/
    # Frozen (non-trainable) float params are stored in this dtype; None keeps them as they are.
    # openpi keeps LoRA's frozen base in bf16: half the memory of the largest part of the state.
    frozen_dtype: str | None = None


def schedule(cfg: OptimizerConfig, steps: int) -> optax.Schedule:
    return optax.warmup_cosine_decay_schedule(
        0.0,
        cfg.peak_lr,
        min(cfg.warmup_steps, max(steps - 1, 1)),
        max(steps, cfg.warmup_steps + 1),
        cfg.end_lr,
    )


@dataclass
class Trainer:
    model: nnx.Module
    loss_fn: Callable[[nnx.Module, jax.Array, dict], jax.Array]
    config: TrainerConfig
    loader: Any  # iterable of numpy batch dicts with state_dict()/load_state_dict() (vlaops.data.loader.Loader)
    checkpoint_dir: str
    norm_stats: dict = field(default_factory=dict)
    config_json: dict = field(default_factory=dict)
    trainable: nnx.filterlib.Filter = (
        nnx.Param
    )  # which params train (LoRA: adapters and unfrozen parts)
    metrics_file: str | None = None
    hooks: list[tuple[int, Callable[[int, dict], None]]] = field(default_factory=list)
    peak_flops_per_device: float | None = None  # None: from the device kind (PEAK_BF16_FLOPS)
    device_memory: int | None = None  # bytes a device offers; None: its allocator's limit (GPUs)
    _stop: bool = field(default=False, init=False)
    flops_per_step: float | None = field(default=None, init=False)  # model FLOPs per device

    def add_hook(self, fn: Callable[[int, dict], None], every: int = 1) -> None:
        self.hooks.append((every, fn))

    # ── state ──────────────────────────────────────────────────────────────────────────────────

    def _setup(self, materialize: bool = True) -> None:
        """The train state on the mesh and the jitted step. ``materialize=False`` (a model from
        ``nnx.eval_shape``) leaves ``state`` abstract: enough to compile the step and ask XLA how
        much memory it needs without allocating any of it."""
        cfg = self.config
        self.mesh = sharding.make_mesh(cfg.fsdp)
        self.microbatches = cfg.microbatches or 1
        self._check_split(self.microbatches)
        # trainable params get gradients, optimizer state and EMA; frozen ones ride along unchanged
        self.graphdef, trainable, frozen, self.rest = nnx.split(
            self.model, self.trainable, nnx.Param, ...
        )
        self.tx = optax.chain(
            optax.clip_by_global_norm(cfg.optimizer.clip_norm),
            optax.adamw(
                schedule(cfg.optimizer, cfg.steps),
                b1=cfg.optimizer.b1,
                b2=cfg.optimizer.b2,
                eps=cfg.optimizer.eps,
                weight_decay=cfg.optimizer.weight_decay,
            ),
        )
        self.lr = schedule(cfg.optimizer, cfg.steps)

        def init(trainable):  # everything besides the params, made on the mesh
            return {
                "opt_state": self.tx.init(trainable),
                "ema": trainable if cfg.ema_decay else {},
                "step": jnp.zeros((), jnp.int32),
                "rng": jax.random.key_data(jax.random.key(cfg.seed)),
                "loader_position": jnp.zeros((), jnp.int32),
            }

        def cast(frozen):
            return _cast_floats(frozen, cfg.frozen_dtype)

        abstract = {
            "params": jax.eval_shape(lambda t: t, trainable),
            "frozen": jax.eval_shape(cast, frozen),
            **jax.eval_shape(init, trainable),
        }
        self.state_shardings = sharding.shardings_for(abstract, self.mesh)
        self.abstract_state = jax.tree.map(
            lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
            abstract,
            self.state_shardings,
        )
        if materialize:
            # Weights go from wherever the model was built (the host, for pi0) straight to their
            # shards; frozen ones are cast first, so no device ever holds a full fp32 copy. A copy
            # always: the step donates the state, and the model must keep its own arrays.
            shard = self.state_shardings
            params, frozen = jax.device_put(
                (trainable, cast(frozen)), (shard["params"], shard["frozen"]), may_alias=False
            )
            rest = {k: v for k, v in shard.items() if k not in ("params", "frozen")}
            self.state = {
                "params": params,
                "frozen": frozen,
                **jax.jit(init, out_shardings=rest)(params),
            }
        else:
            self.state = self.abstract_state
        self.n_trainable = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(trainable))
        self._step_fn = self._jit_step()

    def _jit_step(self):
        """The step as a fresh jitted function: it is traced with ``self.microbatches``."""
        return jax.jit(
            self._train_step,
            donate_argnums=0,
            in_shardings=(self.state_shardings, sharding.batch_sharding(self.mesh)),
            out_shardings=(self.state_shardings, None),
        )

    def _splits_into(self, n: int) -> bool:
        return self.config.batch_size % (jax.device_count() * n) == 0

    def _check_split(self, n: int) -> None:
        if not self._splits_into(n):
            raise VlaopsError(
                f"batch size {self.config.batch_size} does not split into {n} "
                f"microbatch(es) on each of {jax.device_count()} device(s)"
            )

    def _loss(self, trainable, state: dict, batch: dict, micro=None):
        rng = jax.random.fold_in(jax.random.wrap_key_data(state["rng"]), state["step"])
        if micro is not None:
            rng = jax.random.fold_in(rng, micro)
        model = nnx.merge(self.graphdef, trainable, state["frozen"], self.rest)
        return self.loss_fn(model, rng, batch)

    def _loss_and_grads(self, state: dict, batch: dict):
        """Loss and gradients of the batch, in ``microbatches`` sequential pieces when asked.
        Microbatch i takes rows i, i+n, i+2n… so every device keeps working on its own rows."""
        n = self.microbatches
        if n == 1:
            return jax.value_and_grad(self._loss)(state["params"], state, batch)
        split = jax.tree.map(lambda x: jnp.swapaxes(x.reshape(-1, n, *x.shape[1:]), 0, 1), batch)

        def one(total, micro):
            i, piece = micro
            loss, grads = jax.value_and_grad(self._loss)(state["params"], state, piece, i)
            return jax.tree.map(jnp.add, total, (loss, grads)), None

        zero = jax.tree.map(jnp.zeros_like, (jnp.zeros((), jnp.float32), state["params"]))
        total, _ = jax.lax.scan(one, zero, (jnp.arange(n), split))
        return jax.tree.map(lambda x: x / n, total)

    def _train_step(self, state: dict, batch: dict):
        cfg = self.config
        loss, grads = self._loss_and_grads(state, batch)
        updates, opt_state = self.tx.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        new = dict(
            state,
            params=params,
            opt_state=opt_state,
            step=state["step"] + 1,
            loader_position=state["loader_position"] + 1,
        )
        if cfg.ema_decay:
            new["ema"] = jax.tree.map(
                lambda e, p: cfg.ema_decay * e + (1 - cfg.ema_decay) * p, state["ema"], params
            )
        return new, {
            "loss": loss,
            "grad_norm": optax.global_norm(grads),
            "lr": self.lr(state["step"]),
        }

    # ── checkpoints ────────────────────────────────────────────────────────────────────────────

    @property
    def _served_key(self) -> str:
        """What ``params/`` holds: the EMA weights when EMA is on (what gets deployed)."""
        return "ema" if self.config.ema_decay else "params"

    def full_params(self, which: str | None = None) -> nnx.State:
        """Trainable + frozen params as one tree (openpi's layout when the model mirrors it)."""
        return nnx.merge_state(self.state[which or self._served_key], self.state["frozen"])

    def save(self) -> None:
        step = int(self.state["step"])
        key = self._served_key
        train_state = {k: v for k, v in self.state.items() if k not in (key, "frozen")}
        checkpoint.save(
            self.manager,
            step,
            self.full_params().to_pure_dict(),
            train_state,
            self.norm_stats,
            self.config.asset_id,
            self.config_json | {"trainer": _jsonable(dataclasses.asdict(self.config))},
        )
        log.info("saved checkpoint %s/%d", self.checkpoint_dir, step)

    def _restore(self) -> bool:
        key, abstract = self._served_key, self.abstract_state
        full_target = nnx.merge_state(abstract[key], abstract["frozen"]).to_pure_dict()
        ts_target = {k: v for k, v in abstract.items() if k not in (key, "frozen")}
        found = checkpoint.restore_latest(self.manager, full_target, ts_target)
        if found is None:
            return False
        step, full, train_state = found
        template = self.full_params()
        nnx.replace_by_pure_dict(template, full)
        served, frozen = nnx.split_state(template, self.trainable, ...)
        state = dict(train_state, frozen=frozen)
        state[key] = served
        self.state = jax.device_put(state, self.state_shardings)
        self.loader.load_state_dict(
            {"position": int(state["loader_position"]), "seed": self.loader.seed}
        )
        log.info("resumed from %s/%d", self.checkpoint_dir, step)
        return True

    # ── loop ───────────────────────────────────────────────────────────────────────────────────

    def run(self, resume: bool = True) -> dict:
        """Train to ``config.steps``; returns the last logged metrics."""
        self._setup()
        self.manager = checkpoint.manager(self.checkpoint_dir, keep=self.config.keep_checkpoints)
        if resume:
            self._restore()
        previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        metrics: dict = {}
        try:
            metrics = self._loop()
        finally:
            signal.signal(signal.SIGTERM, previous)
        return metrics

    def _on_sigterm(self, *_):
        log.warning("SIGTERM: finishing this step, saving a checkpoint, then stopping")
        self._stop = True

    def _loop(self) -> dict:
        cfg, step = self.config, int(self.state["step"])
        # On accelerators (and across processes) host batches are put on the mesh two steps
        # ahead, in a thread: the copy is not a wait. A single process on CPUs hands the step
        # host arrays instead: a copy to a CPU device queues behind the step running on it, and
        # left the loop waiting 10-15% of the time on the debug run (0.4% this way).
        if jax.default_backend() != "cpu" or jax.process_count() > 1:
            batches = prefetch.background(
                (sharding.shard_batch(b, self.mesh) for b in self.loader), size=2
            )
        else:
            batches = iter(self.loader)
        wait = 0.0
        window_start, window_steps, last = time.perf_counter(), 0, {}
        bar = tqdm(
            total=cfg.steps,
            initial=step,
            desc="train",
            unit="step",
            file=sys.stderr,
            mininterval=1.0,
            disable=jax.process_index() != 0,
        )
        try:
            step_fn = None
            while step < cfg.steps and not self._stop:
                t0 = time.perf_counter()
                batch = next(batches)
                t1 = time.perf_counter()
                if step_fn is None:
                    step_fn = self._compile(batch)
                self.state, out = step_fn(self.state, batch)
                step += 1
                window_steps += 1
                wait += t1 - t0
                bar.update()
                if step % cfg.log_every == 0 or step == cfg.steps or self._stop:
                    out = jax.device_get(out)
                    elapsed = time.perf_counter() - window_start
                    last = {
                        "step": step,
                        "loss": float(out["loss"]),
                        "grad_norm": float(out["grad_norm"]),
                        "lr": float(out["lr"]),
                        "samples_per_sec": window_steps * cfg.batch_size / elapsed,
                        "data_wait_frac": wait / elapsed if elapsed else 0.0,
                    }
                    if self.flops_per_step and self.peak_flops_per_device:
                        steps_per_sec = window_steps / elapsed
                        last["mfu"] = (
                            self.flops_per_step * steps_per_sec / self.peak_flops_per_device
                        )
                    self._log(last)
                    bar.set_postfix(loss=f"{last['loss']:.4f}", refresh=False)
                    window_start, window_steps, wait = time.perf_counter(), 0, 0.0
                # Validation and checkpoints pause training; keep them out of the throughput window.
                paused = time.perf_counter()
                for every, fn in self.hooks:
                    if step % every == 0:
                        fn(step, last)
                if step % cfg.save_every == 0 and step < cfg.steps:
                    self.save()
                window_start += time.perf_counter() - paused
        finally:
            bar.close()
            batches.close()  # stops the prefetch threads
        if self.manager.latest_step() != step:  # a finished run re-started has nothing new to save
            self.save()
        return last

    def _compile(self, batch):
        """The train step compiled once for this batch's shapes — with the fewest microbatches
        that fit the device when ``microbatches`` is None — and the model FLOPs per step and
        device behind the MFU estimate: 3× the forward pass as XLA counts it (forward +
        backward, the usual convention), so recomputation under remat does not count as work."""
        compiled = self._fit_step(batch)
        forward = jax.jit(self._loss).lower(self.state["params"], self.state, batch)
        cost = forward.cost_analysis()
        cost = cost[0] if isinstance(cost, list | tuple) else cost
        flops = 3 * float((cost or {}).get("flops", 0.0)) / jax.device_count()
        self.flops_per_step = flops or None
        if self.peak_flops_per_device is None:
            self.peak_flops_per_device = peak_flops(jax.local_devices()[0])
        log.info(
            "train step: %s GFLOP per device; peak %s TFLOP/s per device",
            f"{self.flops_per_step / 1e9:,.1f}" if self.flops_per_step else "unknown",
            f"{self.peak_flops_per_device / 1e12:,.0f}"
            if self.peak_flops_per_device
            else "unknown",
        )
        return compiled

    def _fit_step(self, batch):
        """Compile the step; while XLA's plan (the state it is handed + its temporaries) needs
        more than the device offers, split the batch into twice the microbatches — or, when
        the count was given, stop with the numbers before a step runs out of memory halfway."""
        cfg = self.config
        limit = self.device_memory
        if limit is None:  # less a margin for what XLA's plan leaves out (library workspaces)
            limit = (jax.local_devices()[0].memory_stats() or {}).get("bytes_limit")
            limit = limit and int(limit * MEMORY_HEADROOM)
        while True:
            compiled = self._step_fn.lower(self.state, batch).compile()
            need = step_memory(compiled)
            if need is None or not limit or need <= limit:
                if need and limit:
                    log.info(
                        "train step: %d microbatch(es), %.2f GiB per device of %.2f GiB",
                        self.microbatches,
                        need / 2**30,
                        limit / 2**30,
                    )
                return compiled
            n = 2 * self.microbatches
            too_big = (
                f"the train step needs {need / 2**30:.2f} GiB per device at "
                f"{self.microbatches} microbatch(es) and the device has {limit / 2**30:.2f} GiB"
            )
            if cfg.microbatches is not None:
                raise VlaopsError(
                    f"{too_big}: split the batch with --microbatches {n}, or lower --batch-size "
                    f"(now {cfg.batch_size})"
                )
            if not self._splits_into(n):
                raise VlaopsError(f"{too_big}, and batch size {cfg.batch_size} splits no further")
            log.warning("%s: trying %d microbatches", too_big, n)
            self.microbatches = n
            self._step_fn = self._jit_step()

    def _log(self, m: dict) -> None:
        if jax.process_index() != 0:
            return
        line = json.dumps(m)
        tqdm.write(line)  # above the progress bar, on stdout
        sys.stdout.flush()
        if self.metrics_file:
            with open(self.metrics_file, "a") as f:
                f.write(line + "\n")


def _cast_floats(tree, dtype: str | None):
    if dtype is None:
        return tree
    return jax.tree.map(
        lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree
    )


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))
