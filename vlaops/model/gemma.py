"""Gemma as a mixture of two transformers (PaliGemma's 2B and the action expert) sharing attention.

    llm = gemma.init((cfg.paligemma, cfg.expert), (cfg.paligemma_lora, cfg.expert_lora), vocab, rngs)
    (prefix_out, suffix_out), kv = gemma.run(param.pure(llm), [prefix, suffix], positions, mask, ...)

Each expert has its own weights (expert 1's names end in ``_1``); in every layer the experts'
queries/keys/values are concatenated along the sequence, one attention runs over all tokens, and
its output is split back per expert. An expert given ``None`` is skipped: that is how the prefix
fills the KV cache (expert 0 only) and how sampling steps run the action expert alone against it.

Numerics follow openpi: RMSNorm in fp32 as ``x·(1+scale)``; RoPE (wavelength 10⁴) in fp32, cast
back; queries scaled by head_dim^-½ after RoPE; logits accumulated in fp32, masked with a finite
big negative, softmax in fp32; GeGLU with tanh-gelu; the residual stream in the compute dtype.
Layers are stacked on a leading axis and scanned, each optionally rematerialized.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
from flax import nnx

from vlaops.model import lora, param
from vlaops.model.config import GemmaConfig, LoRAConfig
from vlaops.model.param import Node

NEG_INF = -2.3819763e38  # openpi's (gemma's) mask value: finite, so fully masked rows stay NaN-free
SUFFIX = ("", "_1")  # parameter-name suffix of expert 0 (PaliGemma) and expert 1 (action expert)


def init(
    cfgs: tuple[GemmaConfig, GemmaConfig],
    loras: tuple[LoRAConfig | None, LoRAConfig | None],
    vocab_size: int,
    rngs: nnx.Rngs,
) -> Node:
    """openpi's ``PaliGemma/llm`` tree: embedder (expert 0 only), stacked layers, final norms."""
    if len({(c.depth, c.num_heads, c.num_kv_heads, c.head_dim) for c in cfgs}) != 1:
        raise ValueError("experts must share depth, num_heads, num_kv_heads and head_dim")
    attn, layers = {}, {}
    for s, c, lo in zip(SUFFIX, cfgs, loras, strict=True):
        n, w, d, h, k, f = c.depth, c.width, c.head_dim, c.num_heads, c.num_kv_heads, c.mlp_dim
        for name, shape, fan_in in (
            ("q_einsum", (n, h, w, d), w),
            ("kv_einsum", (n, 2, k, w, d), w),
            ("attn_vec_einsum", (n, h, d, w), h * d),
        ):
            node = Node(w=param.normal(rngs, shape, fan_in))
            if lo is not None:
                for key, value in lora.adapter(rngs, shape, lo.rank).items():
                    setattr(node, key, value)
            attn[name + s] = node
        mlp = Node(
            gating_einsum=param.normal(rngs, (n, 2, w, f), w),
            linear=param.normal(rngs, (n, f, w), f),
        )
        if lo is not None:
            for key, shape in (("gating_einsum", (n, 2, w, f)), ("linear", (n, f, w))):
                for part, value in lora.adapter(rngs, shape, lo.rank).items():
                    setattr(mlp, f"{key}_{part}", value)
        layers[f"mlp{s}"] = mlp
        layers[f"pre_attention_norm{s}"] = Node(scale=param.zeros((n, w)))
        layers[f"pre_ffw_norm{s}"] = Node(scale=param.zeros((n, w)))
    return Node(
        embedder=Node(input_embedding=param.normal(rngs, (vocab_size, cfgs[0].width))),
        layers=Node(attn=Node(**attn), **layers),
        final_norm=Node(scale=param.zeros((cfgs[0].width,))),
        final_norm_1=Node(scale=param.zeros((cfgs[1].width,))),
    )


def embed(p: dict, tokens: jax.Array, dtype) -> jax.Array:
    """Token embeddings scaled by sqrt(width) in the table's dtype, then cast (openpi's order)."""
    table = p["embedder"]["input_embedding"]
    x = table[tokens]
    return (x * jnp.asarray(math.sqrt(table.shape[1]), x.dtype)).astype(dtype)


def rms_norm(x: jax.Array, scale: jax.Array) -> jax.Array:
    x32 = x.astype(jnp.float32)
    y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, -1, keepdims=True) + 1e-6)
    return (y * (1.0 + scale.astype(jnp.float32))).astype(x.dtype)


def rope(x: jax.Array, positions: jax.Array, max_wavelength: float = 10_000) -> jax.Array:
    """x [B, T, H, D], positions [B, T]: rotate halves, computed in fp32, returned in x's dtype."""
    half = x.shape[-1] // 2
    timescale = max_wavelength ** ((2.0 / x.shape[-1]) * jnp.arange(half, dtype=jnp.float32))
    angle = positions[..., None, None].astype(jnp.float32) / timescale
    sin, cos = jnp.sin(angle), jnp.cos(angle)
    x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1).astype(x.dtype)


def _scale(lo: LoRAConfig | None) -> float | None:
    return None if lo is None else lo.scale


def layer(p: dict, xs: list, positions, mask, loras, cache=None):
    """One layer over each present expert's tokens (``None`` = expert absent).

    positions [B, T] cover this call's tokens; mask [B, T, S] is over cached + these tokens;
    ``cache`` = (k, v) of earlier tokens. Returns (new xs, (k, v) of this call's tokens).
    """
    att = p["attn"]
    q, k, v, lengths = [], [], [], []
    for e, x in enumerate(xs):
        if x is None:
            continue
        s, sc = SUFFIX[e], _scale(loras[e])
        y = rms_norm(x, p[f"pre_attention_norm{s}"]["scale"])
        q.append(lora.einsum(lora.EQUATIONS["q_einsum"], y, att[f"q_einsum{s}"], sc))
        kv = lora.einsum(lora.EQUATIONS["kv_einsum"], y, att[f"kv_einsum{s}"], sc)
        k.append(kv[0])
        v.append(kv[1])
        lengths.append(x.shape[1])
    q, k, v = (jnp.concatenate(t, axis=1) for t in (q, k, v))
    dtype = q.dtype
    q = rope(q, positions) * jnp.asarray(q.shape[-1] ** -0.5, dtype)
    k = rope(k, positions)
    new_cache = (k, v)
    if cache is not None:
        k, v = jnp.concatenate([cache[0], k], 1), jnp.concatenate([cache[1], v], 1)
    b, t, n, d = q.shape
    g = n // k.shape[2]
    logits = jnp.einsum(
        "btkgd,bskd->bkgts",
        q.reshape(b, t, k.shape[2], g, d),
        k,
        preferred_element_type=jnp.float32,
    )
    logits = jnp.where(mask[:, None, None], logits, NEG_INF)
    probs = jax.nn.softmax(logits, axis=-1).astype(dtype)
    encoded = jnp.einsum("bkgts,bskd->btkgd", probs, v).reshape(b, t, n, d)
    outs = jnp.split(encoded, list(itertools.accumulate(lengths))[:-1], axis=1)
    new_xs, i = [], 0
    for e, x in enumerate(xs):
        if x is None:
            new_xs.append(None)
            continue
        s, sc, mlp = SUFFIX[e], _scale(loras[e]), p[f"mlp{SUFFIX[e]}"]
        x = x + lora.einsum(
            lora.EQUATIONS["attn_vec_einsum"], outs[i], att[f"attn_vec_einsum{s}"], sc
        )
        y = rms_norm(x, p[f"pre_ffw_norm{s}"]["scale"])
        w, a, bb = (
            mlp["gating_einsum"],
            mlp.get("gating_einsum_lora_a"),
            mlp.get("gating_einsum_lora_b"),
        )
        gate = lora.dot(y, w[0], None if a is None else a[0], None if bb is None else bb[0])
        up = lora.dot(y, w[1], None if a is None else a[1], None if bb is None else bb[1])
        h = jax.nn.gelu(gate, approximate=True) * up
        x = x + lora.dot(h, mlp["linear"], mlp.get("linear_lora_a"), mlp.get("linear_lora_b"))
        new_xs.append(x)
        i += 1
    return new_xs, new_cache


def run(p: dict, xs: list, positions, mask, loras, dtype, remat: bool = False, cache=None):
    """All layers (scanned over the stacked axis), then each present expert's final norm.

    Returns (outputs per expert, KV cache [layers, B, T, kv_heads, head_dim] ×2 of these tokens).
    """
    xs = [None if x is None else x.astype(dtype) for x in xs]

    def body(carry, scanned):
        layer_params, layer_cache = scanned
        return layer(layer_params, carry, positions, mask, loras, layer_cache)

    if remat:
        body = jax.checkpoint(
            body, prevent_cse=False, policy=jax.checkpoint_policies.nothing_saveable
        )
    xs, kv = jax.lax.scan(body, xs, (p["layers"], cache))
    out = [
        None if x is None else rms_norm(x, p[f"final_norm{SUFFIX[e]}"]["scale"])
        for e, x in enumerate(xs)
    ]
    return out, kv
