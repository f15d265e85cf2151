"""Device mesh and FSDP placement.

A (data, fsdp) mesh spans every device of every process. Parameters and optimizer state are
sharded over ``fsdp`` (each large array split along its largest dimension that divides evenly),
replicated over ``data``; a batch is split over both axes. ``fsdp=1`` is plain data parallelism,
``fsdp=len(devices)`` fully sharded (pi0 full fine-tuning: ~8 GB a GPU over 8 instead of 65 GB).
"""

from __future__ import annotations

import contextlib

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from vlaops.errors import VlaopsError

BATCH_AXES = ("data", "fsdp")
MIN_SHARD_SIZE = 4 * 1024  # smaller arrays stay replicated: splitting them costs more than it saves


def make_mesh(fsdp: int | None = None) -> Mesh:
    """Mesh over all devices; ``fsdp`` devices per shard group (default: all of them)."""
    n = jax.device_count()
    fsdp = n if fsdp in (None, 0) else fsdp
    if n % fsdp:
        raise VlaopsError(f"fsdp={fsdp} does not divide the {n} devices")
    return jax.make_mesh((n // fsdp, fsdp), BATCH_AXES, axis_types=(AxisType.Auto, AxisType.Auto))


def on_host() -> contextlib.AbstractContextManager:
    """Arrays created inside live in host memory (JAX's CPU device), not on the accelerator."""
    try:
        return jax.default_device(jax.local_devices(backend="cpu")[0])
    except RuntimeError:  # JAX_PLATFORMS left the CPU backend out: the default device it is
        return contextlib.nullcontext()


def param_spec(shape: tuple[int, ...], fsdp: int) -> PartitionSpec:
    """Shard the largest dim divisible by the fsdp size; replicate small or indivisible arrays."""
    if fsdp == 1 or int(np.prod(shape, dtype=np.int64)) < MIN_SHARD_SIZE:
        return PartitionSpec()
    for axis in sorted(range(len(shape)), key=lambda a: -shape[a]):
        if shape[axis] % fsdp == 0:
            spec = [None] * len(shape)
            spec[axis] = "fsdp"
            return PartitionSpec(*spec)
    return PartitionSpec()


def shardings_for(tree, mesh: Mesh):
    """NamedShardings for a pytree of arrays (or ShapeDtypeStructs)."""
    fsdp = mesh.shape["fsdp"]
    return jax.tree.map(lambda x: NamedSharding(mesh, param_spec(tuple(x.shape), fsdp)), tree)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(BATCH_AXES))


def shard_batch(batch, mesh: Mesh):
    """This process's numpy batch → global arrays split over (data, fsdp) on axis 0."""
    sharding = batch_sharding(mesh)

    def put(x):
        x = np.asarray(x)
        global_shape = (x.shape[0] * jax.process_count(), *x.shape[1:])
        return jax.make_array_from_process_local_data(sharding, x, global_shape)

    return jax.tree.map(put, batch)
