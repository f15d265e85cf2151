"""pi0 in Flax NNX: PaliGemma (SigLIP + Gemma 2B) and a Gemma-300M action expert sharing attention.

    model = Pi0(get_config("pi0_tiny"), nnx.Rngs(0))
    loss = model.compute_loss(rng, observation, actions)      # [B, H] flow-matching loss
    actions = model.sample_actions(rng, observation)          # [B, H, 32]: prefix KV cache, 10 Euler steps

``observation``: {"images": {cam: [B, S, S, 3] float in [-1, 1] (or uint8)}, "image_masks": {cam: [B]
bool}, "state": [B, 32], "tokenized_prompt": [B, L] int32, "tokenized_prompt_mask": [B, L] bool},
already prepared (resized, normalized, padded) — what ``vlaops.data.loader`` and
``vlaops.serve.policy`` produce. Parameter attribute paths are openpi's key paths
(``PaliGemma/llm/layers/attn/q_einsum/w`` …), so checkpoints map one to one (``weights.py``).

Token layout and attention (openpi's ``ar_mask`` blocks: token i sees valid token j when j's block
number ≤ i's): [images | prompt] form block 0 and see each other (the prefix); the state token
opens block 1 (sees the prefix and itself); the first action token opens block 2 (actions see
everything valid and each other). The prefix never sees the suffix. Positions are
cumsum(valid) − 1, so padding does not advance them.

Flow matching (openpi's convention): t=1 is noise, t=0 data; t ~ Beta(1.5, 1)·0.999 + 0.001;
x_t = t·ε + (1−t)·a; the model predicts u = ε − a. Sampling Euler-integrates from t=1 with dt=−1/N.

Precision: activations in ``config.dtype`` (bf16 for pi0), with fp32 where openpi keeps it —
patch/position embedding, norms, RoPE, attention logits and softmax, and the small state/action/time
projections (fp32 params promote, as ``nnx.Linear`` does).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from vlaops.errors import VlaopsError
from vlaops.model import gemma, lora, param, siglip
from vlaops.model.config import Pi0Config
from vlaops.model.param import Node

CAMERAS = ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb")


class Pi0(nnx.Module):
    def __init__(self, config: Pi0Config, rngs: nnx.Rngs):
        self.config = config
        c0, c1 = config.paligemma, config.expert
        self.PaliGemma = Node(
            img=siglip.init(config.siglip, c0.width, rngs),
            llm=gemma.init((c0, c1), self._loras, config.vocab_size, rngs),
        )
        a, w = config.action_dim, c1.width
        self.state_proj = param.dense(rngs, a, w)
        self.action_in_proj = param.dense(rngs, a, w)
        self.action_time_mlp_in = param.dense(rngs, 2 * w, w)
        self.action_time_mlp_out = param.dense(rngs, w, w)
        self.action_out_proj = param.dense(rngs, w, a)

    @property
    def _loras(self):
        return (self.config.paligemma_lora, self.config.expert_lora)

    @property
    def dtype(self):
        return jnp.dtype(self.config.dtype)

    # ── embedding ──────────────────────────────────────────────────────────────────────────────

    def embed_prefix(self, obs: dict):
        """Image and prompt tokens: (tokens [B, P, W0], valid [B, P], ar [P])."""
        check_observation(obs, self.config)
        p = param.pure(self.PaliGemma)
        tokens, valid = [], []
        for cam in CAMERAS[: self.config.num_cameras]:
            img = obs["images"][cam]
            if img.dtype == jnp.uint8:
                img = img.astype(jnp.float32) / 255.0 * 2.0 - 1.0
            t = siglip.encode(p["img"], img, self.config.siglip, self.dtype, self.config.remat)
            tokens.append(t)
            valid.append(jnp.broadcast_to(obs["image_masks"][cam][:, None], t.shape[:2]))
        tokens.append(gemma.embed(p["llm"], obs["tokenized_prompt"], self.dtype))
        valid.append(obs["tokenized_prompt_mask"].astype(bool))
        tokens, valid = jnp.concatenate(tokens, 1), jnp.concatenate(valid, 1)
        return tokens, valid, jnp.zeros(tokens.shape[1], bool)

    def embed_suffix(self, obs: dict, noisy_actions, time):
        """The state token, then action tokens mixed with the time: (tokens [B, 1+H, W1], valid, ar)."""
        b, h = noisy_actions.shape[:2]
        state = param.apply_dense(param.pure(self.state_proj), obs["state"])[:, None]
        act = param.apply_dense(param.pure(self.action_in_proj), noisy_actions)
        t_emb = posemb_sincos(time, act.shape[-1])
        x = jnp.concatenate([act, jnp.broadcast_to(t_emb[:, None], (b, h, t_emb.shape[-1]))], -1)
        x = param.apply_dense(param.pure(self.action_time_mlp_in), x)
        x = param.apply_dense(param.pure(self.action_time_mlp_out), jax.nn.swish(x))
        tokens = jnp.concatenate([state.astype(x.dtype), x], 1)
        ar = jnp.array([True, True] + [False] * (h - 1))
        return tokens, jnp.ones((b, 1 + h), bool), ar

    # ── training ───────────────────────────────────────────────────────────────────────────────

    def compute_loss(self, rng, obs: dict, actions) -> jax.Array:
        """Flow-matching loss per example and action step: [B, H] (mean over action dims)."""
        _, noise_rng, time_rng = jax.random.split(rng, 3)  # openpi's split (first: augmentation)
        noise = jax.random.normal(noise_rng, actions.shape)
        time = jax.random.beta(time_rng, 1.5, 1.0, actions.shape[:-2]) * 0.999 + 0.001
        t = time[..., None, None]
        x_t = t * noise + (1 - t) * actions
        v = self.velocity(obs, x_t, time)
        return jnp.mean(jnp.square(v - (noise - actions)), axis=-1)

    def velocity(self, obs: dict, x_t, time, prefix=None) -> jax.Array:
        """The predicted flow at (x_t, time), fp32 [B, H, A]. ``prefix`` = ``prefix_cache(obs)`` to
        run only the action expert against the cached prefix, or None for the whole sequence."""
        llm = param.pure(self.PaliGemma.llm)
        suf, suf_valid, suf_ar = self.embed_suffix(obs, x_t, time)
        if prefix is None:
            pre, pre_valid, pre_ar = self.embed_prefix(obs)
            valid = jnp.concatenate([pre_valid, suf_valid], 1)
            mask = attention_mask(valid, jnp.concatenate([pre_ar, suf_ar]))
            (_, out), _ = gemma.run(
                llm, [pre, suf], positions(valid), mask, self._loras, self.dtype, self.config.remat
            )
        else:
            cache, pre_valid = prefix
            s = suf.shape[1]
            mask = jnp.concatenate(
                [
                    jnp.broadcast_to(
                        pre_valid[:, None], (pre_valid.shape[0], s, pre_valid.shape[1])
                    ),
                    attention_mask(suf_valid, suf_ar),
                ],
                axis=-1,
            )
            pos = jnp.sum(pre_valid, -1)[:, None] + jnp.cumsum(suf_valid, -1) - 1
            (_, out), _ = gemma.run(
                llm, [None, suf], pos, mask, self._loras, self.dtype, cache=cache
            )
        head = param.pure(self.action_out_proj)
        return param.apply_dense(head, out[:, -x_t.shape[1] :]).astype(jnp.float32)

    # ── sampling ───────────────────────────────────────────────────────────────────────────────

    def prefix_cache(self, obs: dict):
        """Run the prefix once: (per-layer KV cache, prefix valid [B, P])."""
        pre, valid, ar = self.embed_prefix(obs)
        _, kv = gemma.run(
            param.pure(self.PaliGemma.llm),
            [pre, None],
            positions(valid),
            attention_mask(valid, ar),
            self._loras,
            self.dtype,
        )
        return kv, valid

    def sample_actions(
        self, rng, obs: dict, num_steps: int = 10, noise=None, use_cache: bool = True
    ):
        """Euler-integrate the flow from noise (t=1) to actions (t=0): [B, H, action_dim].

        ``use_cache=False`` recomputes the whole sequence every step (the reference for the cache).
        """
        b = obs["state"].shape[0]
        if noise is None:
            noise = jax.random.normal(rng, (b, self.config.action_horizon, self.config.action_dim))
        prefix = self.prefix_cache(obs) if use_cache else None
        dt = -1.0 / num_steps

        def step(_, carry):
            x, time = carry
            v = self.velocity(obs, x, jnp.broadcast_to(time, (b,)), prefix)
            return x + dt * v, time + dt

        x, _ = jax.lax.fori_loop(0, num_steps, step, (noise.astype(jnp.float32), jnp.float32(1.0)))
        return x

    # ── serving ────────────────────────────────────────────────────────────────────────────────

    def merged(self) -> Pi0:
        """A LoRA-free copy with every adapter folded into its base weight (for serving)."""
        from vlaops.model import weights

        c = self.config
        cfg = dataclasses.replace(c, paligemma_lora=None, expert_lora=None)
        out = nnx.eval_shape(lambda: Pi0(cfg, nnx.Rngs(0)))
        scales = [None if lo is None else lo.scale for lo in self._loras]
        weights.assign(out, lora.merge(param.pure(self), *scales))
        return out


def posemb_sincos(t, dim: int, min_period: float = 4e-3, max_period: float = 4.0) -> jax.Array:
    """Sine-cosine embedding of scalars t [B] → [B, dim], periods min_period…max_period (fp32)."""
    fraction = jnp.linspace(0.0, 1.0, dim // 2)
    period = min_period * (max_period / min_period) ** fraction
    angle = t.astype(jnp.float32)[:, None] * (1.0 / period * 2 * jnp.pi)[None]
    return jnp.concatenate([jnp.sin(angle), jnp.cos(angle)], -1)


def attention_mask(valid, ar) -> jax.Array:
    """openpi's block rule: token i sees j when cumsum(ar)[j] ≤ cumsum(ar)[i] and both are valid.

    valid [B, T] bool; ar [T] (or [B, T]) bool, True where a new block starts → [B, T, T].
    """
    block = jnp.cumsum(jnp.broadcast_to(ar, valid.shape).astype(jnp.int32), axis=1)
    return (block[:, None, :] <= block[:, :, None]) & valid[:, None, :] & valid[:, :, None]


def positions(valid) -> jax.Array:
    """RoPE positions: cumsum(valid) − 1 (padding does not advance them)."""
    return jnp.cumsum(valid.astype(jnp.int32), axis=1) - 1


def check_observation(obs: dict, cfg: Pi0Config) -> None:
    """Shape checks at trace time, with errors that say which entry is wrong and what it should be."""
    for key in ("images", "image_masks", "state", "tokenized_prompt", "tokenized_prompt_mask"):
        if key not in obs:
            raise VlaopsError(f"observation lacks {key!r} (it has {sorted(obs)})")
    b, s = obs["state"].shape[0], cfg.siglip.image_size
    if obs["state"].shape != (b, cfg.action_dim):
        raise VlaopsError(
            f"observation state has shape {obs['state'].shape}; the model wants [B, {cfg.action_dim}] "
            "(zero-pad the robot state)"
        )
    for cam in CAMERAS[: cfg.num_cameras]:
        for key in ("images", "image_masks"):
            if cam not in obs[key]:
                raise VlaopsError(
                    f"observation {key} lacks camera {cam!r} (it has {sorted(obs[key])}); "
                    "a missing camera is a zero image with mask False"
                )
        if obs["images"][cam].shape != (b, s, s, 3):
            raise VlaopsError(
                f"image {cam!r} has shape {obs['images'][cam].shape}; the model wants {(b, s, s, 3)} "
                "(resize with pad first)"
            )
    if obs["tokenized_prompt"].shape != obs["tokenized_prompt_mask"].shape:
        raise VlaopsError(
            f"tokenized_prompt {obs['tokenized_prompt'].shape} and its mask "
            f"{obs['tokenized_prompt_mask'].shape} differ in shape"
        )
