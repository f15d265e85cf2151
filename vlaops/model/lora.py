"""LoRA as openpi applies it: adapters on every Gemma einsum and both MLP matrices.

    y = lora.einsum("BTD,NDH->BTNH", x, params["q_einsum"], scale=cfg.scale)   # base + scale·(x·A)·B
    merged = lora.merge(params, paligemma_scale=1.0, expert_scale=1.0)         # adapters folded in
    trainable = lora.trainable_filter(config)                                  # openpi's freeze rule

Faithful to openpi's checkpoints, including two quirks a reimplementation would not guess:

- The rank replaces the weight's last axis in ``lora_a`` and its second-to-last in ``lora_b``, and
  the two einsums are *derived* from the base equation by relabelling. For ``attn_vec_einsum``
  (``BTNH,NHD->BTD``) that sums the heads *before* ``lora_b``, so ``lora_b``'s head axis acts
  summed: ΔW[n,h,d] = Σ_r A[n,h,r]·Σ_n' B[n',r,d] — not a per-head product.
- The MLP adapters (``gating_einsum_lora_*``, ``linear_lora_*``) are added *unscaled*; alpha/rank
  scales only the attention adapters. openpi's configs use alpha = rank, where this is moot.

Adapters start with A ~ N(0, 0.01) (as openpi) and B = 0 (openpi draws B like A), so a fresh
adapter leaves the model exactly equal to its base.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from vlaops.model import param
from vlaops.model.config import LoRAConfig

RANK = "L"  # the rank's einsum label (absent from every base equation)
A_STD = 0.01  # openpi's LoRA init std
EQUATIONS = {  # base einsum of every adapted weight, per layer (openpi's, with C for the K/V axis)
    "q_einsum": "BTD,NDH->BTNH",
    "kv_einsum": "BSD,CKDH->CBSKH",
    "attn_vec_einsum": "BTNH,NHD->BTD",
}


def equations(eqn: str) -> tuple[str, str]:
    """(x·A, (x·A)·B) equations derived from a base einsum, the rank in place of the weight's
    last axis for A and its second-to-last for B."""
    lhs, rhs, out = re.fullmatch(r"(.*),(.*)->(.*)", eqn).groups()
    a_label, b_label = rhs[-2], rhs[-1]
    a_out = out.replace(b_label, RANK)
    return (
        f"{lhs},{rhs.replace(b_label, RANK)}->{a_out}",
        f"{a_out},{rhs.replace(a_label, RANK)}->{out}",
    )


def einsum(eqn: str, x: jax.Array, p: dict, scale: float | None) -> jax.Array:
    """``p["w"]`` (and ``p["lora_a"]``/``p["lora_b"]`` when ``scale`` is set) applied in x's dtype."""
    y = jnp.einsum(eqn, x, p["w"].astype(x.dtype))
    if scale is not None:
        eqn_a, eqn_b = equations(eqn)
        xa = jnp.einsum(eqn_a, x, p["lora_a"].astype(x.dtype))
        y = y + jnp.einsum(eqn_b, xa, p["lora_b"].astype(x.dtype)) * scale
    return y


def dot(x: jax.Array, w: jax.Array, a: jax.Array | None, b: jax.Array | None) -> jax.Array:
    """An MLP matrix with its (unscaled, as openpi) adapter: x·W + (x·A)·B."""
    y = jnp.dot(x, w.astype(x.dtype))
    if a is not None:
        y = y + jnp.dot(jnp.dot(x, a.astype(x.dtype)), b.astype(x.dtype))
    return y


def adapter(rngs: nnx.Rngs, shape: tuple[int, ...], rank: int, lead: int = 1) -> dict:
    """``lora_a``/``lora_b`` for a weight of ``shape`` whose first ``lead`` axes are stacking axes."""
    a_shape, b_shape = list(shape), list(shape)
    a_shape[-1], b_shape[-2] = rank, rank
    return {
        "lora_a": param.normal(rngs, tuple(a_shape), std=A_STD),
        "lora_b": param.zeros(tuple(b_shape)),
    }


def init_value(key: tuple[str, ...], shape: tuple[int, ...]) -> np.ndarray:
    """A fresh adapter leaf (for a base checkpoint loaded into a LoRA model): A small, B zero."""
    if str(key[-1]).endswith("lora_b"):
        return np.zeros(shape, np.float32)
    seed = abs(hash("/".join(map(str, key)))) % 2**32
    return (A_STD * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def is_adapter(key: tuple) -> bool:
    return "lora" in str(key[-1])


# ── merging ────────────────────────────────────────────────────────────────────────────────────


def _delta(eqn: str, a: jax.Array, b: jax.Array) -> jax.Array:
    """ΔW such that einsum(eqn, x, ΔW) equals the adapter path, for weights stacked on axis 0."""
    rhs, out = re.fullmatch(r"(.*),(.*)->(.*)", eqn).groups()[1:]
    eqn_a, eqn_b = equations(eqn)
    a_rhs, a_out = eqn_a.split(",")[1].split("->")
    b_rhs = eqn_b.split(",")[1].split("->")[0]
    # B's axes that the x·A result does not carry and the output does not keep are summed first
    summed = [i for i, c in enumerate(b_rhs) if c not in a_out and c not in out]
    b = b.sum(axis=tuple(i + 1 for i in summed)) if summed else b
    b_rhs = "".join(c for c in b_rhs if c in a_out or c in out)
    return jnp.einsum(f"Z{a_rhs},Z{b_rhs}->Z{rhs}", a, b)


def merge(params: dict, paligemma_scale: float | None, expert_scale: float | None) -> dict:
    """Fold every adapter of an openpi-layout tree into its base weight and drop the adapters, so a
    LoRA-free model serves it. Scales are alpha/rank of each expert's ``LoRAConfig`` (attention
    only; MLP adapters are unscaled, as in openpi). ``*_1`` names belong to the action expert."""
    from vlaops.errors import VlaopsError
    from vlaops.model import weights

    flat = weights.flatten(params)
    out = {k: v for k, v in flat.items() if not is_adapter(k)}
    for k, a in flat.items():
        name = str(k[-1])
        if not name.endswith("lora_a"):
            continue
        b = jnp.asarray(flat[(*k[:-1], name.replace("lora_a", "lora_b"))], jnp.float32)
        a = jnp.asarray(a, jnp.float32)
        owner = str(k[-2])  # q_einsum_1, mlp, ...
        scale = expert_scale if owner.endswith("_1") else paligemma_scale
        if name == "lora_a":  # an attention einsum: {"w", "lora_a", "lora_b"}
            if scale is None:
                raise VlaopsError(
                    f"adapter {'/'.join(map(str, k))} but no LoRA config for that expert"
                )
            base = (*k[:-1], "w")
            delta = scale * _delta(EQUATIONS[owner.removesuffix("_1")], a, b)
        else:  # an MLP matrix: gating_einsum_lora_a [.., 2, D, r] or linear_lora_a [.., F, r]
            base = (*k[:-1], name.removesuffix("_lora_a"))
            delta = jnp.matmul(a, b)
        w = out[base]
        out[base] = (jnp.asarray(w, jnp.float32) + delta).astype(w.dtype)
    return weights.unflatten(out)


# ── which parameters train ─────────────────────────────────────────────────────────────────────


def freeze_filter(paligemma: LoRAConfig | None, expert: LoRAConfig | None) -> nnx.filterlib.Filter:
    """openpi's rule, on ``/``-joined key paths: with LoRA on the 2B, every ``llm`` weight is
    frozen except the action expert's (``…_1…``) unless that has LoRA too; with LoRA on the expert
    only, the expert's weights are frozen; adapters always train; SigLIP and the projections
    always train. Returns a filter selecting the *frozen* parameters (nothing without LoRA)."""
    llm = re.compile(r".*llm.*")
    expert_re = re.compile(r".*llm.*_1.*")
    adapter_re = re.compile(r".*lora.*")

    def frozen(path, value) -> bool:
        if not isinstance(value, nnx.Param):
            return False
        p = "/".join(str(k) for k in path)
        if adapter_re.fullmatch(p):
            return False
        if paligemma is not None:
            return bool(llm.fullmatch(p)) and (expert is not None or not expert_re.fullmatch(p))
        if expert is not None:
            return bool(expert_re.fullmatch(p))
        return False

    return frozen


def trainable_filter(paligemma: LoRAConfig | None, expert: LoRAConfig | None):
    """The parameters the optimizer updates: every ``nnx.Param`` not frozen by ``freeze_filter``."""
    return nnx.All(nnx.Param, nnx.Not(freeze_filter(paligemma, expert)))
