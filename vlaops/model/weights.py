"""openpi parameter trees in and out: orbax ``params/`` checkpoints, LoRA merging, key listings.

    params = weights.load("gs://openpi-assets/checkpoints/pi0_base/params", dtype=jnp.bfloat16)
    weights.assign(model, params)                      # errors name the key that is missing or mis-shaped
    weights.save(model, "out/params")                  # {"params": tree}, which openpi restores

openpi's training writes every leaf with an extra trailing ``value`` key; released checkpoints do
not. Both load. Missing LoRA adapters are allowed (a base checkpoint into a LoRA model: adapters
keep their init, B = 0, so the model equals the base); anything else missing is an error.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from vlaops import storage
from vlaops.errors import VlaopsError

LORA_MARKERS = ("lora_a", "lora_b")


def flatten(tree: dict, prefix: tuple = ()) -> dict[tuple, object]:
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(flatten(v, (*prefix, k)))
        else:
            out[(*prefix, k)] = v
    return out


def unflatten(flat: dict[tuple, object]) -> dict:
    tree: dict = {}
    for path, v in flat.items():
        node = tree
        for k in path[:-1]:
            node = node.setdefault(k, {})
        node[path[-1]] = v
    return tree


def key_shapes(model: nnx.Module) -> list[tuple[str, tuple[int, ...]]]:
    """Every parameter as ("A/B/C", shape), in the model's order."""
    flat = flatten(nnx.state(model, nnx.Param).to_pure_dict())
    return [("/".join(map(str, k)), tuple(v.shape)) for k, v in flat.items()]


def _strip_value(flat: dict) -> dict:
    return {(k[:-1] if k and k[-1] == "value" else k): v for k, v in flat.items()}


def load(uri: str, dtype=None) -> dict:
    """Restore an orbax params checkpoint (the ``params/`` folder) into a plain tree, on the host."""
    import orbax.checkpoint as ocp

    path = uri if storage.is_remote(uri) else str(storage.local_path(uri).absolute())
    if not storage.exists(uri):
        raise VlaopsError(f"{uri}: no checkpoint here")
    try:
        with ocp.PyTreeCheckpointer() as ckptr:
            restored = ckptr.restore(path)
    except Exception as e:
        raise VlaopsError(
            f"{uri}: not a readable orbax params checkpoint ({str(e).splitlines()[0][:200]})"
        ) from None
    params = restored.get("params", restored)
    flat = {k: np.asarray(v) for k, v in _strip_value(flatten(params)).items()}
    if dtype is not None:
        flat = {k: np.asarray(v).astype(dtype) for k, v in flat.items()}
    return unflatten(flat)


def assign(model: nnx.Module, params: dict, allow_missing_lora: bool = True) -> None:
    """Copy a plain tree into the model, checking every key and shape; casts to the model's dtype."""
    state = nnx.state(model, nnx.Param)
    want = flatten(state.to_pure_dict())
    got = _strip_value(flatten(params))
    missing = [
        k
        for k in want
        if k not in got and not (allow_missing_lora and any(m in str(k[-1]) for m in LORA_MARKERS))
    ]
    if missing:
        raise VlaopsError(
            f"checkpoint lacks parameter {'/'.join(map(str, missing[0]))} ({len(missing)} missing in all)"
        )
    extra = [k for k in got if k not in want]
    if extra:
        raise VlaopsError(
            f"checkpoint has parameter {'/'.join(map(str, extra[0]))} that the model does not "
            f"(a LoRA checkpoint into a model without LoRA? merge it first)"
        )
    for k, v in got.items():
        if tuple(np.shape(v)) != tuple(want[k].shape):
            raise VlaopsError(
                f"parameter {'/'.join(map(str, k))}: checkpoint shape {tuple(np.shape(v))}, "
                f"model shape {tuple(want[k].shape)}"
            )
    merged = {k: jnp.asarray(got[k], dtype=want[k].dtype) if k in got else want[k] for k in want}
    nnx.replace_by_pure_dict(state, unflatten(merged))
    nnx.update(model, state)


def save(model_or_params, uri: str, dtype=None) -> None:
    """Write ``{"params": tree}`` as an orbax checkpoint openpi's loader restores."""
    import orbax.checkpoint as ocp

    params = model_or_params
    if isinstance(params, nnx.Module):
        params = nnx.state(params, nnx.Param).to_pure_dict()
    if dtype is not None:
        params = jax.tree.map(lambda x: jnp.asarray(x, dtype), params)
    path = uri if storage.is_remote(uri) else str(storage.local_path(uri).absolute())
    with ocp.PyTreeCheckpointer() as ckptr:
        ckptr.save(path, {"params": params})


def merge_lora(params: dict, paligemma_scale: float | None, expert_scale: float | None) -> dict:
    """Fold every adapter into its base weight (``w + scale·a@b``) and drop the adapters, for
    serving with a LoRA-free model. ``*_1`` keys belong to the expert."""
    flat = flatten(params)
    out = {k: v for k, v in flat.items() if not any(m in str(k[-1]) for m in LORA_MARKERS)}
    for k, a in flat.items():
        name = str(k[-1])
        if not name.endswith("lora_a"):
            continue
        b = flat[(*k[:-1], name.replace("lora_a", "lora_b"))]
        base = (*k[:-1], "w") if name == "lora_a" else (*k[:-1], name.removesuffix("_lora_a"))
        expert = any(str(p).endswith("_1") for p in k)
        scale = expert_scale if expert else paligemma_scale
        if scale is None:
            raise VlaopsError(f"adapter {'/'.join(map(str, k))} but no LoRA config for that expert")
        out[base] = out[base] + scale * jnp.matmul(
            jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
        ).astype(out[base].dtype)
    return unflatten(out)
