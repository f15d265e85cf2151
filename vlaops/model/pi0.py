"""pi0 in Flax NNX: PaliGemma (SigLIP + Gemma 2B) and a Gemma-300M action expert sharing attention.

    model = Pi0(get_config("pi0_tiny"), nnx.Rngs(0))
    loss = model.compute_loss(rng, observation, actions)          # [B, H] flow-matching loss
    actions = model.sample_actions(rng, observation)               # [B, H, 32], prefix KV cache, 10 Euler steps

``observation``: {"images": {cam: [B, S, S, 3] uint8 or float in [-1, 1]}, "image_masks": {cam: [B] bool},
"state": [B, 32], "tokenized_prompt": [B, L] int32, "tokenized_prompt_mask": [B, L] bool} — what
``vlaops.data.loader`` and ``vlaops.serve.policy`` produce. Attribute paths of the parameters are
openpi's key paths (``PaliGemma/llm/layers/attn/q_einsum/w`` …), so checkpoints map one to one.

Token layout and attention (openpi's): [images | prompt] attend to each other (the prefix); the
state token attends to the prefix and itself; action tokens attend to everything before them and
to each other. Positions are cumsum(valid) − 1. Flow matching: t=1 noise, t=0 data.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from vlaops.model import layers
from vlaops.model.config import GemmaConfig, LoRAConfig, Pi0Config, SigLIPConfig

CAMERAS = ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb")


class Node(nnx.Module):
    """A named group of parameters (one level of openpi's key path)."""

    def __init__(self, **children):
        for name, child in children.items():
            setattr(self, name, child)


def _p(rngs: nnx.Rngs, shape, fan_in: int | None = None, init: str = "normal") -> nnx.Param:
    if init == "zeros":
        return nnx.Param(jnp.zeros(shape, jnp.float32))
    std = 1.0 if fan_in is None else fan_in**-0.5
    key = rngs.params()
    if isinstance(key, jax.core.Tracer):  # abstract evaluation (e.g. listing pi0's 3B params)
        return nnx.Param(std * jax.random.normal(key, shape, jnp.float32))
    # Concrete init on the host: one XLA compile per distinct shape would cost seconds on a CPU.
    seed = np.asarray(jax.random.key_data(key)).astype(np.uint64)
    return nnx.Param(
        jnp.asarray(std * np.random.default_rng(seed).standard_normal(shape, np.float32))
    )


def _siglip(cfg: SigLIPConfig, out_width: int, rngs) -> Node:
    w, m, h, d, n = cfg.width, cfg.mlp_dim, cfg.num_heads, cfg.width // cfg.num_heads, cfg.depth

    def ln(*lead):
        return Node(scale=nnx.Param(jnp.ones((*lead, w))), bias=_p(rngs, (*lead, w), init="zeros"))

    def proj():
        return Node(kernel=_p(rngs, (n, w, h, d), w), bias=_p(rngs, (n, h, d), init="zeros"))

    return Node(
        embedding=Node(
            kernel=_p(rngs, (cfg.patch, cfg.patch, 3, w), cfg.patch**2 * 3),
            bias=_p(rngs, (w,), init="zeros"),
        ),
        pos_embedding=_p(rngs, (1, cfg.tokens, w), w),
        Transformer=Node(
            encoderblock=Node(
                LayerNorm_0=ln(n),
                LayerNorm_1=ln(n),
                MultiHeadDotProductAttention_0=Node(
                    query=proj(),
                    key=proj(),
                    value=proj(),
                    out=Node(kernel=_p(rngs, (n, h, d, w), w), bias=_p(rngs, (n, w), init="zeros")),
                ),
                MlpBlock_0=Node(
                    Dense_0=Node(
                        kernel=_p(rngs, (n, w, m), w), bias=_p(rngs, (n, m), init="zeros")
                    ),
                    Dense_1=Node(
                        kernel=_p(rngs, (n, m, w), m), bias=_p(rngs, (n, w), init="zeros")
                    ),
                ),
            ),
            encoder_norm=ln(),
        ),
        head=Node(kernel=_p(rngs, (w, out_width), w), bias=_p(rngs, (out_width,), init="zeros")),
    )


def _einsum(rngs, shape, fan_in, lora: LoRAConfig | None, a_shape=None, b_shape=None) -> Node:
    node = Node(w=_p(rngs, shape, fan_in))
    if lora is not None:
        node.lora_a = _p(rngs, a_shape, fan_in)
        node.lora_b = _p(rngs, b_shape, init="zeros")  # zero B: a fresh adapter changes nothing
    return node


def _expert(cfgs: tuple[GemmaConfig, GemmaConfig], loras, rngs) -> dict:
    """The per-layer parameters of both experts (layer axis first), keyed as in openpi."""
    attn, out = {}, {}
    for e, (c, lora) in enumerate(zip(cfgs, loras, strict=True)):
        s, n, w, d, k, f, r = (
            layers.SUFFIX[e],
            c.depth,
            c.width,
            c.head_dim,
            c.num_kv_heads,
            c.mlp_dim,
            lora.rank if lora else 0,
        )
        attn[f"q_einsum{s}"] = _einsum(
            rngs, (n, c.num_heads, w, d), w, lora, (n, c.num_heads, w, r), (n, c.num_heads, r, d)
        )
        attn[f"kv_einsum{s}"] = _einsum(
            rngs, (n, 2, k, w, d), w, lora, (n, 2, k, w, r), (n, 2, k, r, d)
        )
        attn[f"attn_vec_einsum{s}"] = _einsum(
            rngs,
            (n, c.num_heads, d, w),
            c.num_heads * d,
            lora,
            (n, c.num_heads, d, r),
            (n, c.num_heads, r, w),
        )
        mlp = Node(gating_einsum=_p(rngs, (n, 2, w, f), w), linear=_p(rngs, (n, f, w), f))
        if lora is not None:
            mlp.gating_einsum_lora_a = _p(rngs, (n, 2, w, r), w)
            mlp.gating_einsum_lora_b = _p(rngs, (n, 2, r, f), init="zeros")
            mlp.linear_lora_a = _p(rngs, (n, f, r), f)
            mlp.linear_lora_b = _p(rngs, (n, r, w), init="zeros")
        out[f"mlp{s}"] = mlp
        out[f"pre_attention_norm{s}"] = Node(scale=_p(rngs, (n, w), init="zeros"))
        out[f"pre_ffw_norm{s}"] = Node(scale=_p(rngs, (n, w), init="zeros"))
    return {"attn": Node(**attn), **out}


class Pi0(nnx.Module):
    def __init__(self, config: Pi0Config, rngs: nnx.Rngs):
        self.config = config
        c0, c1 = config.paligemma, config.expert
        loras = (config.paligemma_lora, config.expert_lora)
        self.PaliGemma = Node(
            img=_siglip(config.siglip, c0.width, rngs),
            llm=Node(
                embedder=Node(input_embedding=_p(rngs, (config.vocab_size, c0.width))),
                layers=Node(**_expert((c0, c1), loras, rngs)),
                final_norm=Node(scale=_p(rngs, (c0.width,), init="zeros")),
                final_norm_1=Node(scale=_p(rngs, (c1.width,), init="zeros")),
            ),
        )
        a, w1 = config.action_dim, c1.width

        def dense(i, o):
            return Node(kernel=_p(rngs, (i, o), i), bias=_p(rngs, (o,), init="zeros"))

        self.state_proj = dense(a, w1)
        self.action_in_proj = dense(a, w1)
        self.action_time_mlp_in = dense(2 * w1, w1)
        self.action_time_mlp_out = dense(w1, w1)
        self.action_out_proj = dense(w1, a)

    # ── helpers ────────────────────────────────────────────────────────────────────────────────

    @property
    def dtype(self):
        return jnp.dtype(self.config.dtype)

    def _params(self, node) -> dict:
        return nnx.state(node, nnx.Param).to_pure_dict()

    def _cfgs(self):
        return (self.config.paligemma, self.config.expert), (
            self.config.paligemma_lora,
            self.config.expert_lora,
        )

    @staticmethod
    def _dense(p: dict, x):
        return x @ p["kernel"].astype(x.dtype) + p["bias"].astype(x.dtype)

    # ── embedding ──────────────────────────────────────────────────────────────────────────────

    def embed_prefix(self, obs: dict):
        """Image and prompt tokens: (tokens [B, P, W0], valid [B, P], ar [P])."""
        p = self._params(self.PaliGemma)
        tokens, valid = [], []
        for cam in CAMERAS[: self.config.num_cameras]:
            img = obs["images"][cam]
            if img.dtype == jnp.uint8:
                img = img.astype(jnp.float32) / 127.5 - 1.0
            t = layers.siglip(p["img"], img, self.config.siglip, self.dtype)
            tokens.append(t)
            valid.append(jnp.broadcast_to(obs["image_masks"][cam][:, None], t.shape[:2]))
        emb = p["llm"]["embedder"]["input_embedding"]
        text = emb[obs["tokenized_prompt"]].astype(self.dtype) * math.sqrt(emb.shape[1])
        tokens.append(text)
        valid.append(obs["tokenized_prompt_mask"].astype(bool))
        tokens, valid = jnp.concatenate(tokens, 1), jnp.concatenate(valid, 1)
        return tokens, valid, jnp.zeros(tokens.shape[1], bool)

    def embed_suffix(self, obs: dict, noisy_actions, time):
        """State token, then action tokens mixed with the time: (tokens [B, 1+H, W1], valid, ar)."""
        b, h = noisy_actions.shape[:2]
        state = self._dense(self._params(self.state_proj), obs["state"].astype(self.dtype))[:, None]
        act = self._dense(self._params(self.action_in_proj), noisy_actions.astype(self.dtype))
        t_emb = posemb_sincos(time, act.shape[-1]).astype(self.dtype)
        x = jnp.concatenate([act, jnp.broadcast_to(t_emb[:, None], act.shape)], -1)
        x = self._dense(
            self._params(self.action_time_mlp_out),
            jax.nn.swish(self._dense(self._params(self.action_time_mlp_in), x)),
        )
        tokens = jnp.concatenate([state, x], 1)
        ar = jnp.concatenate([jnp.array([True, True]), jnp.zeros(h - 1, bool)])
        return tokens, jnp.ones((b, 1 + h), bool), ar

    # ── training and sampling ──────────────────────────────────────────────────────────────────

    def _velocity(self, obs, x_t, time, prefix=None):
        """Action-expert output for noisy actions; ``prefix`` = (kv cache, prefix valid) or None to
        run the whole sequence."""
        cfgs, loras = self._cfgs()
        llm = self._params(self.PaliGemma.llm)
        suf, suf_valid, suf_ar = self.embed_suffix(obs, x_t, time)
        if prefix is None:
            pre, pre_valid, pre_ar = self.embed_prefix(obs)
            valid = jnp.concatenate([pre_valid, suf_valid], 1)
            mask = attention_mask(valid, jnp.concatenate([pre_ar, suf_ar]))
            positions = jnp.cumsum(valid, 1) - 1
            (_, out), _ = layers.gemma(
                llm, [pre, suf], positions, mask, cfgs, loras, self.dtype, self.config.remat
            )
        else:
            cache, pre_valid = prefix
            valid = jnp.concatenate([pre_valid, suf_valid], 1)
            mask = attention_mask(
                valid, jnp.concatenate([jnp.zeros(pre_valid.shape[1], bool), suf_ar])
            )[:, pre_valid.shape[1] :]
            positions = jnp.cumsum(valid, 1) - 1
            (_, out), _ = layers.gemma(
                llm, [None, suf], positions, mask, cfgs, loras, self.dtype, False, cache
            )
        return self._dense(self._params(self.action_out_proj), out[:, -x_t.shape[1] :]).astype(
            jnp.float32
        )

    def compute_loss(self, rng, obs: dict, actions) -> jax.Array:
        """Flow-matching loss per example and step: [B, H]."""
        noise_rng, time_rng = jax.random.split(rng)
        noise = jax.random.normal(noise_rng, actions.shape)
        time = jax.random.beta(time_rng, 1.5, 1.0, actions.shape[:1]) * 0.999 + 0.001
        x_t = time[:, None, None] * noise + (1 - time[:, None, None]) * actions
        u = noise - actions
        v = self._velocity(obs, x_t, time)
        return jnp.mean((v - u) ** 2, axis=-1)

    def prefix_cache(self, obs: dict):
        cfgs, loras = self._cfgs()
        pre, valid, ar = self.embed_prefix(obs)
        mask = attention_mask(valid, ar)
        positions = jnp.cumsum(valid, 1) - 1
        _, kv = layers.gemma(
            self._params(self.PaliGemma.llm),
            [pre, None],
            positions,
            mask,
            cfgs,
            loras,
            self.dtype,
            False,
        )
        return kv, valid

    def sample_actions(
        self, rng, obs: dict, num_steps: int = 10, noise=None, use_cache: bool = True
    ):
        """Euler-integrate the flow from noise (t=1) to actions (t=0): [B, H, action_dim]."""
        b = obs["state"].shape[0]
        if noise is None:
            noise = jax.random.normal(rng, (b, self.config.action_horizon, self.config.action_dim))
        prefix = self.prefix_cache(obs) if use_cache else None
        dt = -1.0 / num_steps

        def step(i, x):
            time = jnp.full((b,), 1.0 + i * dt)
            return x + dt * self._velocity(obs, x, time, prefix)

        return jax.lax.fori_loop(0, num_steps, step, noise)


def posemb_sincos(t, dim: int, min_period: float = 4e-3, max_period: float = 4.0):
    fraction = jnp.linspace(0.0, 1.0, dim // 2)
    period = min_period * (max_period / min_period) ** fraction
    angle = t[:, None].astype(jnp.float32) / period[None] * 2 * jnp.pi
    return jnp.concatenate([jnp.sin(angle), jnp.cos(angle)], -1)


def attention_mask(valid, ar):
    """openpi's block-causal rule: token i sees j when j's block ≤ i's and both are valid.

    valid [B, T] bool; ar [T] bool, True where a new block starts.
    """
    block = jnp.cumsum(ar.astype(jnp.int32))
    allowed = block[None, :] <= block[:, None]
    return allowed[None] & valid[:, None, :] & valid[:, :, None]
