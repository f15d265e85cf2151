"""Parameter-tree building blocks: named nodes whose attribute paths are openpi's key paths.

    node = Node(kernel=param.normal(rngs, (32, 1024), fan_in=32), bias=param.zeros((1024,)))

Every model part builds its parameters as ``Node``s (one per level of openpi's key path, e.g.
``PaliGemma/llm/layers/attn/q_einsum/w``), so ``nnx.state(model).to_pure_dict()`` *is* an openpi
parameter tree and checkpoint import/export is a rename-free copy. The math reads those trees as
plain dicts (``pure(node)``), which is what lets one layer's function be scanned over the stacked
leading axis and rematerialized.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


class Node(nnx.Module):
    """One level of openpi's key path: its children are parameters or other nodes."""

    def __init__(self, **children):
        for name, child in children.items():
            setattr(self, name, child)


def pure(node: nnx.Module) -> dict:
    """The node's parameters as a nested dict of arrays (works inside jit/grad)."""
    return nnx.state(node, nnx.Param).to_pure_dict()


def normal(rngs: nnx.Rngs, shape, fan_in: int | None = None, std: float | None = None) -> nnx.Param:
    """Normal init with std ``std``, else 1/sqrt(fan_in) (lecun), else 1 (embeddings)."""
    if std is None:
        std = 1.0 if fan_in is None else fan_in**-0.5
    key = rngs.params()
    if isinstance(key, jax.core.Tracer):  # abstract evaluation (listing pi0's 3B params) or jit
        return nnx.Param(std * jax.random.normal(key, shape, jnp.float32))
    # Concrete init on the host: an XLA compile per distinct shape would cost seconds on a CPU.
    seed = np.asarray(jax.random.key_data(key)).astype(np.uint64)
    values = np.random.default_rng(seed).standard_normal(shape, np.float32)
    return nnx.Param(jnp.asarray(std * values))


def zeros(shape) -> nnx.Param:
    return nnx.Param(jnp.zeros(shape, jnp.float32))


def ones(shape) -> nnx.Param:
    return nnx.Param(jnp.ones(shape, jnp.float32))


def dense(rngs: nnx.Rngs, fan_in: int, fan_out: int, *lead: int) -> Node:
    """``kernel [*lead, in, out]`` and ``bias [*lead, out]`` (a Flax ``Dense``)."""
    return Node(kernel=normal(rngs, (*lead, fan_in, fan_out), fan_in), bias=zeros((*lead, fan_out)))


def apply_dense(p: dict, x: jax.Array, dtype=None) -> jax.Array:
    """``x @ kernel + bias`` in ``dtype``; by default in the promoted dtype of input and params,
    as ``nnx.Linear`` does (openpi's projections run in fp32 on fp32 params)."""
    dtype = dtype or jnp.result_type(x.dtype, p["kernel"].dtype)
    return x.astype(dtype) @ p["kernel"].astype(dtype) + p["bias"].astype(dtype)
