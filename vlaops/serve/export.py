"""Export a training checkpoint as a new version of a Triton model repository.

  vlaops export --checkpoint gs://ckpt/tc-lora --model-repository gs://models/repo --model-name pi0
  vlaops export --checkpoint runs/debug/20 --model-repository local-run/models --model-name pi0 --version 3

--checkpoint is a checkpoint directory (the newest step is used) or one step of it. The version
folder gets bf16 params with LoRA adapters merged in, the norm stats, the tokenizer and the resolved
config; ``config.pbtxt`` describes the inputs (one uint8 image per robot camera, the raw state, the
prompt as UTF-8 bytes) and the output (raw actions). Existing versions are never touched.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from vlaops import storage
from vlaops.errors import VlaopsError
from vlaops.serve import repository

HELP = (
    "checkpoint → new version of a Triton model repository (bf16, LoRA merged, transforms included)"
)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint", required=True, help="checkpoint dir (newest step) or a <step> folder"
    )
    p.add_argument("--model-repository", required=True, help="model repository URI (path or gs://)")
    p.add_argument("--model-name", default="pi0")
    p.add_argument("--version", type=int, help="version number (default: next free)")
    p.add_argument("--max-batch-size", type=int, default=8)
    p.add_argument(
        "--max-queue-delay-us", type=int, default=repository.ServingConfig.max_queue_delay_us
    )
    p.add_argument("--instances", type=int, default=1)


def run(args: argparse.Namespace) -> None:
    cfg = repository.ServingConfig(args.max_batch_size, args.max_queue_delay_us, args.instances)
    version = export(args.checkpoint, args.model_repository, args.model_name, args.version, cfg)
    print(f"published {storage.join(args.model_repository, args.model_name, str(version))}")


def step_dir(checkpoint: str) -> str:
    """The step folder a --checkpoint URI names."""
    if storage.exists(storage.join(checkpoint, "params")):
        return checkpoint.rstrip("/")
    steps = sorted(int(n) for n in storage.listdir(checkpoint) if n.isdigit())
    if not steps:
        raise VlaopsError(f"--checkpoint {checkpoint}: no checkpoint steps here")
    return storage.join(checkpoint, str(steps[-1]))


def export(
    checkpoint: str, repo: str, name: str = "pi0", version: int | None = None, cfg=None
) -> int:
    import jax.numpy as jnp

    from vlaops.model import weights
    from vlaops.model.config import get_config
    from vlaops.serve.policy import serving_model_config
    from vlaops.train import checkpoint as ckpt

    step = step_dir(checkpoint)
    assets = ckpt.read_assets(step)
    if "config.json" not in assets:
        raise VlaopsError(f"{step}: no assets/config.json (not a vlaops training checkpoint)")
    config = json.loads(assets["config.json"])
    stats_files = [k for k in assets if k.endswith("/norm_stats.json")]
    if not stats_files:
        raise VlaopsError(f"{step}: no assets/<asset_id>/norm_stats.json")
    model_cfg = get_config(config["model"])
    params = weights.load(storage.join(step, "params"))
    if model_cfg.lora:
        params = weights.merge_lora(
            params,
            model_cfg.paligemma_lora and model_cfg.paligemma_lora.scale,
            model_cfg.expert_lora and model_cfg.expert_lora.scale,
        )
    stats = json.loads(assets[stats_files[0]])
    ns = stats["norm_stats"]
    metadata = {
        "cameras": [c for c in config["data"]["cameras"].values() if c],
        "state_dim": len(ns["state"]["mean"]),
        "action_dim": len(ns["actions"]["mean"]),
        "action_horizon": serving_model_config(config["model"]).action_horizon,
        "image_size": config["data"]["image_size"],  # clients letterbox to it before sending
    }
    with tempfile.TemporaryDirectory(prefix="vlaops-export-") as tmp:
        tmp = Path(tmp)
        weights.save(params, str(tmp / "params"), dtype=jnp.bfloat16)
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        (tmp / "norm_stats.json").write_text(json.dumps(stats, indent=2))
        if config.get("tokenizer", "bytes") != "bytes":
            (tmp / "tokenizer.model").write_bytes(storage.read_bytes(config["tokenizer"]))
        return repository.publish(
            repo,
            name,
            tmp,
            "vlaops.serve.policy:load",
            metadata,
            version,
            cfg or repository.ServingConfig(),
        )
