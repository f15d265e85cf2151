"""Fine-tune pi0 on a LeRobot dataset.

  vlaops train --config debug --dataset data/transfer_cube --norm-stats data/ns.json --checkpoint-dir runs/debug
  vlaops train --config pi0_aloha_sim_lora --dataset gs://data/transfer_cube \\
      --norm-stats gs://data/transfer_cube/norm_stats.json --checkpoint-dir gs://ckpt/tc-lora \\
      --base-checkpoint gs://openpi-assets/checkpoints/pi0_base/params --resume

Every camera frame is decoded once into a local 224² cache (--cache-dir), then batches are memory
copies; a run resumes exactly from its newest checkpoint (--resume), and SIGTERM saves and exits.
Prints one JSON line of metrics per log step (also to --metrics-file) and writes loss.png next
to the checkpoints at the end. Several hosts: started by a JobSet / TrainJob, each process reads
JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID and loads its own data shard.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import tempfile
from pathlib import Path

from vlaops import storage
from vlaops.errors import VlaopsError

HELP = "fine-tune pi0 (LoRA or full) on a LeRobot dataset; orbax checkpoints, exact resume"
log = logging.getLogger(__name__)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        required=True,
        help="training config: debug, pi0_aloha_sim_lora, pi0_aloha_sim_full",
    )
    p.add_argument("--dataset", required=True, help="LeRobot v3.0 dataset URI")
    p.add_argument("--norm-stats", required=True, help="norm_stats.json URI (vlaops norm-stats)")
    p.add_argument(
        "--checkpoint-dir", required=True, help="where <step>/ checkpoints go (path or gs://)"
    )
    p.add_argument("--steps", type=int, help="override the config's number of steps")
    p.add_argument("--batch-size", type=int, help="override the global batch size")
    p.add_argument(
        "--microbatches",
        type=int,
        help="run each batch as N sequential microbatches (gradients averaged): the same "
        "batch in ~1/N of the activation memory (default: the fewest whose step fits the GPU)",
    )
    p.add_argument(
        "--base-checkpoint", help="openpi params/ checkpoint to start from (e.g. pi0_base)"
    )
    p.add_argument(
        "--metrics-file",
        help="JSON lines of metrics (default: <checkpoint-dir>/metrics.jsonl when local)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest checkpoint in --checkpoint-dir",
    )
    p.add_argument(
        "--cache-dir",
        default=os.environ.get("VLAOPS_CACHE", str(Path.home() / ".cache/vlaops")),
        help="local disk for the dataset copy and the decoded frame cache",
    )
    p.add_argument(
        "--compilation-cache",
        default=os.environ.get("JAX_COMPILATION_CACHE_DIR"),
        help="persistent XLA compilation cache (default: <cache-dir>/xla): a restarted or resumed "
        "run skips compiling",
    )


def run(args: argparse.Namespace) -> None:
    # A training pod has its GPUs to itself: give XLA 90% of their memory, not JAX's default 75%
    # (set before JAX starts its GPU client; an explicit value in the environment wins).
    os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.9")
    from vlaops.train import config as train_config

    cfg = train_config.get(args.config).override(
        steps=args.steps, batch_size=args.batch_size, microbatches=args.microbatches
    )
    metrics_file = args.metrics_file
    if metrics_file is None and not storage.is_remote(args.checkpoint_dir):
        metrics_file = str(storage.local_path(args.checkpoint_dir) / "metrics.jsonl")
    train(
        cfg,
        args.dataset,
        args.norm_stats,
        args.checkpoint_dir,
        args.base_checkpoint,
        metrics_file,
        args.resume,
        Path(args.cache_dir),
        args.compilation_cache,
    )


def train(
    cfg,
    dataset: str,
    norm_stats_uri: str,
    checkpoint_dir: str,
    base_checkpoint: str | None = None,
    metrics_file: str | None = None,
    resume: bool = False,
    cache_dir: Path | None = None,
    compilation_cache: str | None = None,
) -> dict:
    """Everything ``vlaops train`` does; returns the last metrics."""
    import jax
    from flax import nnx

    from vlaops.data import frame_cache, lerobot_io, norm_stats, transforms
    from vlaops.data.loader import DatasetArrays, Loader
    from vlaops.model import weights
    from vlaops.model.pi0 import Pi0
    from vlaops.model.tokenizer import ByteTokenizer, Tokenizer
    from vlaops.train import distributed, sharding
    from vlaops.train.metrics import loss_curve_png
    from vlaops.train.trainer import Trainer

    spec = distributed.initialize()
    cache_dir = cache_dir or Path(tempfile.gettempdir()) / "vlaops-cache"
    # before the first compile: JAX reads it once, when it first needs the cache
    jax.config.update("jax_compilation_cache_dir", compilation_cache or str(cache_dir / "xla"))
    has_checkpoints = any(n.isdigit() for n in storage.listdir(checkpoint_dir))
    if has_checkpoints and not resume:
        raise VlaopsError(
            f"{checkpoint_dir} already holds checkpoints: pass --resume to continue, or use another dir"
        )
    stats = norm_stats.load(norm_stats_uri)
    local = lerobot_io.local_copy(dataset, cache_dir / "datasets")
    arrays = DatasetArrays.load(local)
    model_cfg = cfg.model_config
    for name, dim in (
        ("observation.state", arrays.state.shape[1]),
        ("action", arrays.action.shape[1]),
    ):
        if dim > model_cfg.action_dim:
            raise VlaopsError(
                f"dataset feature {name!r} has {dim} dims; config {cfg.name!r} fits {model_cfg.action_dim}"
            )
    ns = stats["norm_stats"]
    if (
        len(ns["state"]["mean"]) != arrays.state.shape[1]
        or len(ns["actions"]["mean"]) != arrays.action.shape[1]
    ):
        raise VlaopsError(
            f"{norm_stats_uri} is for {len(ns['state']['mean'])}-d state / {len(ns['actions']['mean'])}-d "
            f"actions, the dataset has {arrays.state.shape[1]} / {arrays.action.shape[1]}"
        )
    mapping = transforms.camera_mapping(arrays.cameras, cfg.data.cameras)
    cache = frame_cache.build(
        local, cache_dir / "frames", [c for c in mapping.values() if c], cfg.data.image_size
    )
    tokenizer = (
        ByteTokenizer(model_cfg.max_token_len)
        if cfg.tokenizer == "bytes"
        else Tokenizer.load(cfg.tokenizer, model_cfg.max_token_len)
    )
    episodes = sorted(set(arrays.episode_index.tolist()))
    n_val = int(len(episodes) * cfg.val_fraction) if len(episodes) > 2 else 0
    normalizer = transforms.Normalizer.from_norm_stats(stats)
    per_process = dict(
        normalizer=normalizer,
        tokenizer=tokenizer,
        process_index=spec.process_id,
        process_count=spec.num_processes,
    )
    loader = Loader(
        arrays,
        cache,
        cfg.data,
        cfg.trainer.batch_size,
        seed=cfg.trainer.seed,
        episodes=episodes[: len(episodes) - n_val],
        **per_process,
    )

    # Built in host memory: the trainer sends each weight to its shard (frozen ones cast first),
    # so a GPU never holds pi0's full fp32 copy. A base checkpoint fills an abstract model: no
    # random init of 3B parameters just to overwrite them.
    with sharding.on_host():
        if base_checkpoint:
            model = weights.restore(model_cfg, base_checkpoint)
        else:
            model = Pi0(model_cfg, nnx.Rngs(cfg.trainer.seed))

    def loss_fn(model, rng, batch):
        return model.compute_loss(rng, batch, batch["actions"]).mean()

    resolved = {
        "name": cfg.name,
        "model": cfg.model,
        "model_config": dataclasses.asdict(model_cfg),
        "data": dataclasses.asdict(cfg.data) | {"cameras": mapping},
        "tokenizer": cfg.tokenizer,
        "dataset": dataset,
        "norm_stats": norm_stats_uri,
        "base_checkpoint": base_checkpoint,
    }
    trainer = Trainer(
        model,
        loss_fn,
        cfg.trainer,
        loader,
        checkpoint_dir,
        norm_stats=stats,
        config_json=resolved,
        trainable=cfg.trainable(),
        metrics_file=metrics_file,
    )
    if n_val:
        _add_validation(
            trainer,
            Loader(
                arrays,
                cache,
                cfg.data,
                cfg.trainer.batch_size,
                seed=cfg.trainer.seed + 1,
                episodes=episodes[len(episodes) - n_val :],
                **per_process,
            ),
            loss_fn,
            cfg.val_every,
        )
    last = trainer.run(resume=True)
    if metrics_file and jax.process_index() == 0 and os.path.exists(metrics_file):
        # next to the checkpoints whatever --metrics-file was: the pipeline reads both from there
        beside = storage.join(checkpoint_dir, "metrics.jsonl")
        if storage.is_remote(beside) or storage.local_path(beside) != Path(metrics_file).absolute():
            storage.write_bytes(beside, Path(metrics_file).read_bytes())
        loss_curve_png(metrics_file, storage.join(checkpoint_dir, "loss.png"))
    return last


def _add_validation(trainer, val_loader, loss_fn, every: int) -> None:
    """Validation loss on held-out episodes every ``every`` steps (fixed batches, fixed noise)."""
    import jax
    from flax import nnx

    from vlaops.train import sharding

    @jax.jit
    def val_loss(params, frozen, batch):
        model = nnx.merge(trainer.graphdef, params, frozen, trainer.rest)
        return loss_fn(model, jax.random.key(0), batch)

    def hook(step: int, metrics: dict) -> None:
        losses = [
            float(
                val_loss(
                    trainer.state["params"],
                    trainer.state["frozen"],
                    sharding.shard_batch(val_loader.batch_at(k), trainer.mesh),
                )
            )
            for k in range(min(4, val_loader.batches_per_epoch))
        ]
        metrics["val_loss"] = sum(losses) / len(losses)
        trainer._log({"step": step, "val_loss": metrics["val_loss"]})

    trainer.add_hook(hook, every)
