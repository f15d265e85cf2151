"""Inputs for the model tests (importable from any test in this folder): the tiny configs, a
prepared observation batch and noise."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from vlaops.model.config import get_config
from vlaops.model.pi0 import CAMERAS

TINY = get_config("pi0_tiny")
TINY_LORA = get_config("pi0_tiny_lora")
B = 2


def make_obs(seed: int = 0, masked_camera: bool = False, prompt_lengths=(5, 12)) -> dict:
    """A prepared batch of B observations: uint8 images, padded prompts of the given lengths."""
    rng = np.random.default_rng(seed)
    s, length = TINY.siglip.image_size, TINY.max_token_len
    obs = {
        "images": {c: jnp.asarray(rng.integers(0, 255, (B, s, s, 3), np.uint8)) for c in CAMERAS},
        "image_masks": {c: jnp.ones(B, bool) for c in CAMERAS},
        "state": jnp.asarray(rng.normal(size=(B, TINY.action_dim)), jnp.float32),
        "tokenized_prompt": jnp.asarray(rng.integers(1, 255, (B, length)), jnp.int32),
        "tokenized_prompt_mask": jnp.asarray(
            np.arange(length)[None] < np.array(prompt_lengths)[:, None]
        ),
    }
    if masked_camera:
        obs["image_masks"]["right_wrist_0_rgb"] = jnp.array([False, True])
    return obs


def make_noise(seed: int = 1) -> jax.Array:
    return jax.random.normal(jax.random.key(seed), (B, TINY.action_horizon, TINY.action_dim))
