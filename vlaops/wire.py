"""msgpack with numpy arrays, byte-compatible with openpi's ``msgpack_numpy`` (its robot clients
and servers speak it): an ndarray travels as ``{"__ndarray__": True, "data", "dtype", "shape"}``, a
numpy scalar as ``{"__npgeneric__": True, "data", "dtype"}``; object arrays are refused.
"""

from __future__ import annotations

import msgpack
import numpy as np


def _encode(obj):
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "OV":
            raise TypeError(f"cannot send arrays of dtype {obj.dtype}")
        return {
            b"__ndarray__": True,
            b"data": obj.tobytes(),
            b"dtype": obj.dtype.str,
            b"shape": obj.shape,
        }
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    return obj


def _decode(obj):
    if b"__ndarray__" in obj:
        return np.ndarray(
            buffer=obj[b"data"], dtype=np.dtype(obj[b"dtype"]), shape=obj[b"shape"]
        ).copy()
    if b"__npgeneric__" in obj:
        return np.dtype(obj[b"dtype"]).type(obj[b"data"])
    return obj


def pack(obj) -> bytes:
    return msgpack.packb(obj, default=_encode)


def unpack(data: bytes):
    return msgpack.unpackb(data, object_hook=_decode)
