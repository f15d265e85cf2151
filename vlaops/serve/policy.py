"""The served policy: raw robot observations in, raw robot actions out; it owns every transform.

    policy = Policy(sample_fn, PolicyConfig(...), normalizer, tokenizer)
    policy.infer({"images": {"cam_high": uint8 480×640×3, ...}, "state": qpos, "prompt": "fold"})
    → {"actions": float32 [H, action_dim]}

Input side (the same functions the training loader uses, ``vlaops.data.transforms``): map robot
cameras to the model's three, letterbox to 224, mask absent cameras, normalize and pad the state,
tokenize the prompt. Output side: unnormalize, slice to the robot's action dims, and undo delta
actions against the raw state. ``sample_fn(inputs) -> [B, H, model_dim]`` is the model (pi0's
``sample_actions`` jitted with its params); batches of any size go through in one call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from vlaops.data import transforms
from vlaops.errors import VlaopsError

SampleFn = Callable[[dict], np.ndarray]
Tokenizer = Callable[[Sequence[str]], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class PolicyConfig:
    cameras: dict[str, str]  # model camera → robot camera name the client sends
    state_dim: int  # raw robot state dims
    action_dim: int  # raw robot action dims
    action_horizon: int = 50
    model_dim: int = 32
    image_size: int = 224
    delta_action_mask: tuple[bool, ...] | None = None
    default_prompt: str = ""

    @property
    def metadata(self) -> dict:
        return {
            "cameras": [c for c in self.cameras.values() if c],
            "state_dim": self.state_dim,
            "action_dim": self.action_dim,
            "action_horizon": self.action_horizon,
        }


class Policy:
    def __init__(
        self,
        sample_fn: SampleFn,
        config: PolicyConfig,
        normalizer: transforms.Normalizer,
        tokenizer: Tokenizer | None = None,
    ):
        self.sample_fn, self.config, self.normalizer, self.tokenizer = (
            sample_fn,
            config,
            normalizer,
            tokenizer,
        )
        self.metadata = config.metadata

    def reset(self, task: str, seed: int) -> None:
        """No per-episode state."""

    def infer(self, observation: dict) -> dict:
        return {"actions": self.infer_batch([observation])[0]}

    def infer_batch(self, observations: Sequence[dict]) -> np.ndarray:
        inputs, state = self.inputs(observations)
        actions = np.asarray(self.sample_fn(inputs), np.float32)
        return self.outputs(actions, state)

    def inputs(self, observations: Sequence[dict]) -> tuple[dict, np.ndarray]:
        """Observations → model inputs (images uint8 letterboxed, normalized padded state, prompt
        tokens); also returns the raw state for the output side."""
        cfg, n = self.config, len(observations)
        state = np.stack([np.asarray(o["state"], np.float32).reshape(-1) for o in observations])
        if state.shape[1] != cfg.state_dim:
            raise VlaopsError(
                f"state has {state.shape[1]} dims, the policy expects {cfg.state_dim}"
            )
        out = {
            "state": transforms.pad_to_dim(self.normalizer.state_in(state), cfg.model_dim),
            "images": {},
            "image_masks": {},
        }
        for model_cam in transforms.MODEL_CAMERAS:
            cam = cfg.cameras.get(model_cam)
            frames = [o.get("images", {}).get(cam) if cam else None for o in observations]
            present = np.array([f is not None for f in frames])
            batch = np.zeros((n, cfg.image_size, cfg.image_size, 3), np.uint8)
            for i, f in enumerate(frames):
                if f is not None:
                    f = np.asarray(f)
                    if f.ndim != 3 or f.shape[-1] != 3:
                        raise VlaopsError(
                            f"camera {cam!r}: expected an H×W×3 image, got shape {f.shape}"
                        )
                    batch[i] = transforms.resize_with_pad(
                        f.astype(np.uint8, copy=False), cfg.image_size
                    )
            out["images"][model_cam], out["image_masks"][model_cam] = batch, present
        if self.tokenizer is not None:
            prompts = [str(o.get("prompt") or cfg.default_prompt) for o in observations]
            out["tokenized_prompt"], out["tokenized_prompt_mask"] = self.tokenizer(prompts)
        return out, state

    def outputs(self, actions: np.ndarray, state: np.ndarray) -> np.ndarray:
        """Model actions [B, H, model_dim] → robot actions [B, H, action_dim]."""
        cfg = self.config
        out = self.normalizer.actions_out(actions[..., : cfg.action_dim])
        if cfg.delta_action_mask is not None:
            out = transforms.DeltaActions(cfg.delta_action_mask).to_absolute(out, state)
        return out[:, : cfg.action_horizon]


# ── pi0 from an exported model-repository version ─────────────────────────────────────────────


def load(version_dir) -> Policy:
    """Build the pi0 policy of an exported version folder (Triton's backend calls this).

    The folder holds ``params/`` (bf16, LoRA merged), ``config.json`` (the training config it came
    from), ``norm_stats.json`` and, for the real model, ``tokenizer.model``. Sampling is
    deterministic: the same observation always gets the same actions (fixed noise seed).
    """
    import json
    from pathlib import Path

    import jax
    from flax import nnx

    from vlaops.model import weights
    from vlaops.model.pi0 import Pi0
    from vlaops.model.tokenizer import ByteTokenizer, Tokenizer

    version_dir = Path(version_dir)
    cfg = json.loads((version_dir / "config.json").read_text())
    model_cfg = serving_model_config(cfg["model"])
    model = Pi0(model_cfg, nnx.Rngs(0))
    weights.assign(model, weights.load(str(version_dir / "params")))
    graphdef, params = nnx.split(model, nnx.Param)
    stats = json.loads((version_dir / "norm_stats.json").read_text())
    tok_file = version_dir / "tokenizer.model"
    tokenizer = (
        Tokenizer(tok_file.read_bytes(), model_cfg.max_token_len)
        if tok_file.exists()
        else ByteTokenizer(model_cfg.max_token_len)
    )

    noise = jax.random.normal(
        jax.random.key(0), (1, model_cfg.action_horizon, model_cfg.action_dim)
    )

    @jax.jit
    def sample(params, inputs):
        # the same noise for every row: an observation's actions do not depend on its batch-mates
        b = inputs["state"].shape[0]
        return nnx.merge(graphdef, params).sample_actions(
            None, inputs, noise=jax.numpy.broadcast_to(noise, (b, *noise.shape[1:]))
        )

    data = cfg["data"]
    ns = stats["norm_stats"]
    pcfg = PolicyConfig(
        cameras={k: v for k, v in data["cameras"].items() if v},
        state_dim=len(ns["state"]["mean"]),
        action_dim=len(ns["actions"]["mean"]),
        action_horizon=model_cfg.action_horizon,
        model_dim=model_cfg.action_dim,
        image_size=data["image_size"],
        delta_action_mask=tuple(data["delta_action_mask"])
        if data.get("delta_action_mask")
        else None,
    )
    policy = Policy(
        lambda inputs: sample(params, inputs),
        pcfg,
        transforms.Normalizer.from_norm_stats(stats),
        tokenizer,
    )
    policy.infer(
        {"images": {}, "state": np.zeros(pcfg.state_dim, np.float32), "prompt": ""}
    )  # compile batch 1 now
    return policy


def serving_model_config(name: str):
    """The model config to serve a checkpoint of config ``name``: adapters merged, so no LoRA."""
    import dataclasses

    from vlaops.model.config import get_config

    return dataclasses.replace(get_config(name), paligemma_lora=None, expert_lora=None, remat=False)
