"""openpi parameter trees in and out: orbax ``params/`` checkpoints, LoRA merging, key listings.

    model = weights.restore(get_config("pi0"), "gs://openpi-assets/checkpoints/pi0_base/params",
                            dtype=jnp.bfloat16)        # no random init of 3B params first
    weights.assign(model, weights.load(uri))           # into an existing model; errors name the key
    weights.save(model, "out/params")                  # {"params": tree}: openpi's loader restores it

The model's attribute paths are openpi's key paths, so a checkpoint tree is the model's state as a
plain dict. openpi's training writes every leaf under an extra trailing ``value`` key; released
checkpoints do not; both load. Missing LoRA adapters are allowed (a base checkpoint into a LoRA
model: adapters start fresh, B = 0, so the model equals its base); anything else missing, extra or
mis-shaped is an error naming the key.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from vlaops import storage
from vlaops.errors import VlaopsError
from vlaops.model import lora


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


def _name(key: tuple) -> str:
    return "/".join(map(str, key))


def key_shapes(model: nnx.Module) -> list[tuple[str, tuple[int, ...]]]:
    """Every parameter as ("A/B/C", shape), in the model's order (works on abstract models)."""
    flat = flatten(nnx.state(model, nnx.Param).to_pure_dict())
    return [(_name(k), tuple(v.shape)) for k, v in flat.items()]


def _strip_value(flat: dict) -> dict:
    if flat and all(k[-1] == "value" for k in flat):
        return {k[:-1]: v for k, v in flat.items()}
    return flat


def _path(uri: str) -> str:
    return uri if storage.is_remote(uri) else str(storage.local_path(uri).absolute())


def load(uri: str, dtype=None) -> dict:
    """Restore an orbax params checkpoint (the ``params/`` folder) into a plain tree of host numpy
    arrays, cast to ``dtype`` while reading (bf16 halves the memory of a 3B checkpoint)."""
    import orbax.checkpoint as ocp

    if not storage.exists(uri):
        raise VlaopsError(f"{uri}: no checkpoint here (want the params/ folder of a step)")
    try:
        from etils import epath

        # the tree's own metadata (a step's params/ item has no step-level metadata file)
        tree = ocp.PyTreeCheckpointHandler().metadata(epath.Path(_path(uri))).tree
        # to host numpy, ignoring the devices it was saved from (a GPU checkpoint loads on a CPU)
        args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray, dtype=dtype), tree)
        with ocp.PyTreeCheckpointer() as ckptr:
            restored = ckptr.restore(
                _path(uri), args=ocp.args.PyTreeRestore(item=tree, restore_args=args)
            )
    except Exception as e:
        raise VlaopsError(
            f"{uri}: not a readable orbax params checkpoint ({str(e).splitlines()[0][:200]})"
        ) from None
    params = restored.get("params", restored)
    return unflatten({k: np.asarray(v) for k, v in _strip_value(flatten(params)).items()})


def _checked(want: dict, got: dict, allow_missing_lora: bool) -> None:
    missing = [k for k in want if k not in got and not (allow_missing_lora and lora.is_adapter(k))]
    if missing:
        raise VlaopsError(
            f"checkpoint lacks parameter {_name(missing[0])} ({len(missing)} missing in all; "
            "is it a checkpoint of this model config?)"
        )
    extra = [k for k in got if k not in want]
    if extra:
        hint = (
            " (a LoRA checkpoint into a model without LoRA? merge it first: lora.merge)"
            if lora.is_adapter(extra[0])
            else ""
        )
        raise VlaopsError(f"checkpoint has parameter {_name(extra[0])} that the model lacks{hint}")
    for k, v in got.items():
        if tuple(np.shape(v)) != tuple(want[k].shape):
            raise VlaopsError(
                f"parameter {_name(k)}: checkpoint shape {tuple(np.shape(v))}, model shape "
                f"{tuple(want[k].shape)} (a checkpoint of another model config?)"
            )


def assign(model: nnx.Module, params: dict, allow_missing_lora: bool = True, dtype=None) -> None:
    """Copy a plain tree into the model, checking every key and shape. Values are cast to
    ``dtype``, else to the model's parameter dtype. Works on an abstract model
    (``nnx.eval_shape``) too: missing adapters then get a fresh init."""
    state = nnx.state(model, nnx.Param)
    want = flatten(state.to_pure_dict())
    got = _strip_value(flatten(params))
    _checked(want, got, allow_missing_lora)

    def value(k):
        dt = dtype or want[k].dtype
        if k in got:
            return jnp.asarray(got[k], dtype=dt)
        if isinstance(want[k], jax.ShapeDtypeStruct):
            return jnp.asarray(lora.init_value(k, want[k].shape), dtype=dt)
        return jnp.asarray(want[k], dtype=dt)

    nnx.replace_by_pure_dict(state, unflatten({k: value(k) for k in want}))
    nnx.update(model, state)


def restore(config, uri: str, dtype=None) -> nnx.Module:
    """A ``Pi0`` of ``config`` holding the checkpoint at ``uri`` (cast to ``dtype``), built without
    a random init: the model is traced abstractly, then filled."""
    from vlaops.model.pi0 import Pi0

    model = nnx.eval_shape(lambda: Pi0(config, nnx.Rngs(0)))
    assign(model, load(uri, dtype), dtype=dtype)
    return model


def save(model_or_params, uri: str, dtype=None) -> None:
    """Write ``{"params": tree}`` as an orbax checkpoint (openpi's layout: its loader restores it)."""
    import orbax.checkpoint as ocp

    params = model_or_params
    if isinstance(params, nnx.Module):
        params = nnx.state(params, nnx.Param).to_pure_dict()
    if dtype is not None:
        params = jax.tree.map(lambda x: jnp.asarray(x, dtype), params)
    with ocp.PyTreeCheckpointer() as ckptr:
        ckptr.save(_path(uri), {"params": params})


def merge_lora(params: dict, paligemma_scale: float | None, expert_scale: float | None) -> dict:
    """Fold the adapters into the base weights and drop them (see ``lora.merge``)."""
    return lora.merge(params, paligemma_scale, expert_scale)
