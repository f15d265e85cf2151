"""SigLIP and the two-expert Gemma as pure functions of (stacked) parameter dicts.

Parameters live in NNX modules whose attribute paths are openpi's key paths (see ``pi0.py``);
the math here reads plain nested dicts of arrays, so one layer's function can be scanned over the
leading layer axis and rematerialized. Numerics follow openpi: RMSNorm in fp32 as ``x·(1+scale)``,
GeGLU with tanh-gelu, RoPE (max wavelength 10⁴), queries scaled by head_dim^-½, fp32 logits.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from vlaops.model.config import GemmaConfig, LoRAConfig, SigLIPConfig

NEG_INF = -2.3819763e38  # openpi's mask value (finite: a fully masked row stays NaN-free)
SUFFIX = ("", "_1")  # expert 0 (PaliGemma), expert 1 (action expert) parameter suffixes


# ── SigLIP ─────────────────────────────────────────────────────────────────────────────────────


def layer_norm(x, p, eps=1e-6):
    x32 = x.astype(jnp.float32)
    mean = x32.mean(-1, keepdims=True)
    var = ((x32 - mean) ** 2).mean(-1, keepdims=True)
    return ((x32 - mean) * jax.lax.rsqrt(var + eps) * p["scale"] + p["bias"]).astype(x.dtype)


def siglip(img: dict, images: jax.Array, cfg: SigLIPConfig, dtype) -> jax.Array:
    """[B, S, S, 3] floats in [-1, 1] → [B, tokens, 2048] (after the linear head)."""
    x = jax.lax.conv_general_dilated(
        images.astype(dtype),
        img["embedding"]["kernel"].astype(dtype),
        (cfg.patch, cfg.patch),
        "VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )
    x = x + img["embedding"]["bias"].astype(dtype)
    b, h, w, c = x.shape
    x = x.reshape(b, h * w, c) + img["pos_embedding"].astype(dtype)

    def block(x, p):
        y = layer_norm(x, p["LayerNorm_0"])
        a = p["MultiHeadDotProductAttention_0"]
        q, k, v = (
            jnp.einsum("btw,whd->bthd", y, a[n]["kernel"].astype(dtype))
            + a[n]["bias"].astype(dtype)
            for n in ("query", "key", "value")
        )
        logits = jnp.einsum("bthd,bshd->bhts", q, k).astype(jnp.float32) * q.shape[-1] ** -0.5
        att = jnp.einsum("bhts,bshd->bthd", jax.nn.softmax(logits, -1).astype(dtype), v)
        x = (
            x
            + jnp.einsum("bthd,hdw->btw", att, a["out"]["kernel"].astype(dtype))
            + a["out"]["bias"].astype(dtype)
        )
        y = layer_norm(x, p["LayerNorm_1"])
        m = p["MlpBlock_0"]
        y = jax.nn.gelu(
            y @ m["Dense_0"]["kernel"].astype(dtype) + m["Dense_0"]["bias"].astype(dtype)
        )
        return x + y @ m["Dense_1"]["kernel"].astype(dtype) + m["Dense_1"]["bias"].astype(
            dtype
        ), None

    x, _ = jax.lax.scan(block, x, img["Transformer"]["encoderblock"])
    x = layer_norm(x, img["Transformer"]["encoder_norm"])
    return x @ img["head"]["kernel"].astype(dtype) + img["head"]["bias"].astype(dtype)


# ── Gemma, mixture of two experts ──────────────────────────────────────────────────────────────


def rms_norm(x, scale):
    x32 = x.astype(jnp.float32)
    y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, -1, keepdims=True) + 1e-6)
    return (y * (1.0 + scale.astype(jnp.float32))).astype(x.dtype)


def rope(x, positions, max_wavelength=10_000):
    """x [B, T, H, D], positions [B, T]."""
    half = x.shape[-1] // 2
    freq = max_wavelength ** (2 * jnp.arange(half, dtype=jnp.float32) / x.shape[-1])
    angle = positions[..., None, None].astype(jnp.float32) / freq
    sin, cos = jnp.sin(angle), jnp.cos(angle)
    x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1).astype(x.dtype)


def _lora(eq: str, eq_a: str, eq_b: str, x, w, a, b, lora: LoRAConfig | None, dtype):
    y = jnp.einsum(eq, x, w.astype(dtype))
    if lora is not None and a is not None:
        y = y + lora.scale * jnp.einsum(eq_b, jnp.einsum(eq_a, x, a.astype(dtype)), b.astype(dtype))
    return y


def gemma_layer(
    p: dict,
    xs: list,
    positions,
    mask,
    cfgs: tuple[GemmaConfig, GemmaConfig],
    loras: tuple,
    dtype,
    cache=None,
):
    """One layer over the tokens of each expert present in ``xs`` (None = absent).

    ``cache``: (k, v) of earlier tokens to attend to as well (the prefix in KV-cached sampling).
    Returns (new xs, (k, v) of this call's tokens).
    """
    qs, ks, vs = [], [], []
    for e, x in enumerate(xs):
        if x is None:
            continue
        s, att, lora = SUFFIX[e], p["attn"], loras[e]
        y = rms_norm(x, p[f"pre_attention_norm{s}"]["scale"])
        q = _lora(
            "btw,nwd->btnd",
            "btw,nwr->btnr",
            "btnr,nrd->btnd",
            y,
            att[f"q_einsum{s}"]["w"],
            att[f"q_einsum{s}"].get("lora_a"),
            att[f"q_einsum{s}"].get("lora_b"),
            lora,
            dtype,
        )
        kv = _lora(
            "btw,ckwd->cbtkd",
            "btw,ckwr->cbtkr",
            "cbtkr,ckrd->cbtkd",
            y,
            att[f"kv_einsum{s}"]["w"],
            att[f"kv_einsum{s}"].get("lora_a"),
            att[f"kv_einsum{s}"].get("lora_b"),
            lora,
            dtype,
        )
        qs.append(q)
        ks.append(kv[0])
        vs.append(kv[1])
    lengths = [q.shape[1] for q in qs]
    q, k, v = (jnp.concatenate(t, axis=1) for t in (qs, ks, vs))
    offset = positions.shape[1] - q.shape[1]  # positions cover cached tokens + these
    q = rope(q, positions[:, offset:])
    k = rope(k, positions[:, offset:])
    new_cache = (k, v)
    if cache is not None:
        k, v = jnp.concatenate([cache[0], k], 1), jnp.concatenate([cache[1], v], 1)
    b, t, n, d = q.shape
    kh = k.shape[2]
    qg = q.reshape(b, t, kh, n // kh, d) * d**-0.5
    logits = jnp.einsum("btkgd,bskd->bkgts", qg, k).astype(jnp.float32)
    logits = jnp.where(mask[:, None, None], logits, NEG_INF)
    probs = jax.nn.softmax(logits, -1).astype(dtype)
    out = jnp.einsum("bkgts,bskd->btkgd", probs, v).reshape(b, t, n, d)
    outs = jnp.split(out, [sum(lengths[: j + 1]) for j in range(len(lengths) - 1)], axis=1)
    new_xs, i = [], 0
    for e, x in enumerate(xs):
        if x is None:
            new_xs.append(None)
            continue
        s = SUFFIX[e]
        att, lora, mlp = p["attn"], loras[e], p[f"mlp{s}"]
        o = _lora(
            "btnd,ndw->btw",
            "btnd,ndr->btnr",
            "btnr,nrw->btw",
            outs[i],
            att[f"attn_vec_einsum{s}"]["w"],
            att[f"attn_vec_einsum{s}"].get("lora_a"),
            att[f"attn_vec_einsum{s}"].get("lora_b"),
            lora,
            dtype,
        )
        x = x + o
        y = rms_norm(x, p[f"pre_ffw_norm{s}"]["scale"])
        gu = _lora(
            "btw,cwf->cbtf",
            "btw,cwr->cbtr",
            "cbtr,crf->cbtf",
            y,
            mlp["gating_einsum"],
            mlp.get("gating_einsum_lora_a"),
            mlp.get("gating_einsum_lora_b"),
            lora,
            dtype,
        )
        h = jax.nn.gelu(gu[0], approximate=True) * gu[1]
        x = x + _lora(
            "btf,fw->btw",
            "btf,fr->btr",
            "btr,rw->btw",
            h,
            mlp["linear"],
            mlp.get("linear_lora_a"),
            mlp.get("linear_lora_b"),
            lora,
            dtype,
        )
        new_xs.append(x)
        i += 1
    return new_xs, new_cache


def gemma(llm: dict, xs: list, positions, mask, cfgs, loras, dtype, remat: bool, cache=None):
    """All layers (scanned) then each present expert's final norm. Returns (xs, per-layer kv)."""

    def body(carry, layer):
        p, c = layer
        new, kv = gemma_layer(p, carry, positions, mask, cfgs, loras, dtype, c)
        return new, kv

    if remat:
        body = jax.checkpoint(body, policy=jax.checkpoint_policies.nothing_saveable)
    xs, kv = jax.lax.scan(body, xs, (llm["layers"], cache))
    out = [
        None if x is None else rms_norm(x, llm[f"final_norm{SUFFIX[e]}"]["scale"])
        for e, x in enumerate(xs)
    ]
    return out, kv
