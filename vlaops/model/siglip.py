"""SigLIP So400m/14 vision tower (big_vision's ViT as openpi uses it: no pooling, linear head).

    img = siglip.init(cfg.siglip, out_width=2048, rngs=rngs)           # openpi's PaliGemma/img tree
    tokens = siglip.encode(param.pure(img), images, cfg.siglip, jnp.bfloat16)   # [B, 256, 2048]

Numerics follow openpi: patch embedding and position embedding in fp32, then the encoder in the
compute dtype; LayerNorm statistics in fp32 (Flax's fast variance E[x²]−E[x]²); attention as
Flax's ``MultiHeadDotProductAttention`` (queries pre-scaled, logits and softmax in the compute
dtype); tanh-approximate gelu. Blocks are stacked on a leading axis and scanned.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from vlaops.model import param
from vlaops.model.config import SigLIPConfig
from vlaops.model.param import Node


def init(cfg: SigLIPConfig, out_width: int, rngs: nnx.Rngs) -> Node:
    w, m, h, n = cfg.width, cfg.mlp_dim, cfg.num_heads, cfg.depth
    d = w // h

    def layer_norm(*lead):
        return Node(scale=param.ones((*lead, w)), bias=param.zeros((*lead, w)))

    def qkv():
        return Node(kernel=param.normal(rngs, (n, w, h, d), w), bias=param.zeros((n, h, d)))

    return Node(
        embedding=Node(
            kernel=param.normal(rngs, (cfg.patch, cfg.patch, 3, w), cfg.patch**2 * 3),
            bias=param.zeros((w,)),
        ),
        pos_embedding=param.normal(rngs, (1, cfg.tokens, w), w),
        Transformer=Node(
            encoderblock=Node(
                LayerNorm_0=layer_norm(n),
                LayerNorm_1=layer_norm(n),
                MultiHeadDotProductAttention_0=Node(
                    query=qkv(),
                    key=qkv(),
                    value=qkv(),
                    out=Node(kernel=param.normal(rngs, (n, h, d, w), w), bias=param.zeros((n, w))),
                ),
                MlpBlock_0=Node(
                    Dense_0=param.dense(rngs, w, m, n), Dense_1=param.dense(rngs, m, w, n)
                ),
            ),
            encoder_norm=layer_norm(),
        ),
        head=param.dense(rngs, w, out_width),
    )


def layer_norm(x: jax.Array, p: dict, eps: float = 1e-6) -> jax.Array:
    x32 = x.astype(jnp.float32)
    mean = x32.mean(-1, keepdims=True)
    var = jnp.maximum((x32 * x32).mean(-1, keepdims=True) - mean * mean, 0.0)
    y = (x32 - mean) * (jax.lax.rsqrt(var + eps) * p["scale"].astype(jnp.float32))
    return (y + p["bias"].astype(jnp.float32)).astype(x.dtype)


def _block(x: jax.Array, p: dict) -> jax.Array:
    dtype = x.dtype
    a = p["MultiHeadDotProductAttention_0"]
    y = layer_norm(x, p["LayerNorm_0"])
    q, k, v = (
        jnp.einsum("btw,whd->bthd", y, a[n]["kernel"].astype(dtype)) + a[n]["bias"].astype(dtype)
        for n in ("query", "key", "value")
    )
    q = q / jnp.sqrt(q.shape[-1]).astype(dtype)
    probs = jax.nn.softmax(jnp.einsum("bthd,bshd->bhts", q, k), axis=-1)
    att = jnp.einsum("bhts,bshd->bthd", probs, v)
    out = jnp.einsum("bthd,hdw->btw", att, a["out"]["kernel"].astype(dtype))
    x = x + out + a["out"]["bias"].astype(dtype)
    m = p["MlpBlock_0"]
    y = layer_norm(x, p["LayerNorm_1"])
    y = jax.nn.gelu(param.apply_dense(m["Dense_0"], y, dtype), approximate=True)
    return x + param.apply_dense(m["Dense_1"], y, dtype)


def encode(p: dict, images: jax.Array, cfg: SigLIPConfig, dtype, remat: bool = False) -> jax.Array:
    """[B, S, S, 3] floats in [-1, 1] → [B, tokens, out_width] in ``dtype``."""
    if images.shape[1:] != (cfg.image_size, cfg.image_size, 3):
        raise ValueError(
            f"images of shape {images.shape[1:]} per example; this config wants "
            f"{(cfg.image_size, cfg.image_size, 3)} (resize with pad first)"
        )
    x = jax.lax.conv_general_dilated(
        images.astype(jnp.float32),
        p["embedding"]["kernel"].astype(jnp.float32),
        (cfg.patch, cfg.patch),
        "VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )
    x = x + p["embedding"]["bias"].astype(jnp.float32)
    b, h, w, c = x.shape
    x = x.reshape(b, h * w, c) + p["pos_embedding"].astype(jnp.float32)
    x = x.astype(dtype)

    def body(x, layer):
        return _block(x, layer), None

    if remat:
        body = jax.checkpoint(
            body, prevent_cse=False, policy=jax.checkpoint_policies.nothing_saveable
        )
    x, _ = jax.lax.scan(body, x, p["Transformer"]["encoderblock"])
    x = layer_norm(x, p["Transformer"]["encoder_norm"])
    return param.apply_dense(p["head"], x, dtype)
