"""The Triton Python-backend model: builds the version's policy and answers batched requests.

Imported only inside Triton's Python-backend stub (``model.py`` in each version re-exports
``TritonPythonModel``). The stub bundled with Triton 2.51 was built against numpy 1.x, and with
numpy 2 its numpy paths are wrong: ``as_numpy()`` returns every element equal to the first,
``Tensor(name, ndarray)`` sends 0 bytes, BYTES inputs kill the stub (reference/platform.md). So
every input is read through DLPack, the output is handed over through DLPack, and the prompt
travels as zero-padded UTF-8 in a UINT8 tensor.

Requests that Triton batched together are validated one by one — a bad request gets an error
response naming the problem and the others are still answered — then run as one policy call.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from pathlib import Path

import numpy as np

MAX_IMAGE_SIDE = 4096  # larger frames are refused: no camera sends them, and they cost memory


def load_policy(version_dir: Path):
    """Build the policy a version folder describes (``policy.json``: factory + metadata). The
    folder itself is importable, so a version may carry its own policy module."""
    spec = json.loads((version_dir / "policy.json").read_text())
    if str(version_dir) not in sys.path:
        sys.path.insert(0, str(version_dir))
    module, _, name = spec["factory"].partition(":")
    return getattr(importlib.import_module(module), name)(version_dir), spec["metadata"]


def share_gpu_memory(model_config: dict) -> None:
    """Each model instance is a stub process with its own JAX, and JAX takes 75% of a GPU by
    default: two instances on one GPU would not both start. Split 90% between the instances a
    GPU runs, unless the environment already says how JAX should allocate."""
    if {"XLA_PYTHON_CLIENT_MEM_FRACTION", "XLA_PYTHON_CLIENT_PREALLOCATE"} & set(os.environ):
        return
    count = max(int(g.get("count", 1)) for g in model_config.get("instance_group") or [{}])
    os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{0.9 / max(count, 1):.3f}"


def decode_request(inputs: dict[str, np.ndarray | None], metadata: dict) -> list[dict]:
    """Wire tensors of one request → observations (one per batch row). Raises ValueError."""
    state = inputs.get("state")
    if state is None:
        raise ValueError("missing input 'state'")
    if state.ndim != 2 or state.shape[1] != metadata["state_dim"]:
        raise ValueError(
            f"input 'state' must be [batch, {metadata['state_dim']}], got {list(state.shape)}"
        )
    n = len(state)
    prompts = [""] * n
    if inputs.get("prompt") is not None:
        raw = inputs["prompt"]
        if raw.ndim != 2 or len(raw) != n:
            raise ValueError(f"input 'prompt' must be [batch, bytes], got {list(raw.shape)}")
        try:
            prompts = [bytes(row).rstrip(b"\0").decode("utf-8") for row in raw]
        except UnicodeDecodeError as e:
            raise ValueError(f"input 'prompt' is not UTF-8 ({e})") from None
    images: dict[str, np.ndarray] = {}
    for cam in metadata["cameras"]:
        img = inputs.get(f"image_{cam}")
        if img is None:
            continue
        if img.ndim != 4 or img.shape[-1] != 3 or len(img) != n:
            raise ValueError(
                f"input 'image_{cam}' must be [batch, H, W, 3] uint8, got {list(img.shape)}"
            )
        if max(img.shape[1:3]) > MAX_IMAGE_SIDE:
            raise ValueError(
                f"input 'image_{cam}' is {img.shape[1]}x{img.shape[2]}; the limit is {MAX_IMAGE_SIDE} a side"
            )
        images[cam] = img
    unknown = sorted(
        k for k in inputs if k.startswith("image_") and k[6:] not in metadata["cameras"]
    )
    if unknown:
        raise ValueError(
            f"unknown camera input {unknown[0]!r}; this model takes {metadata['cameras']}"
        )
    return [
        {"images": {c: v[i] for c, v in images.items()}, "state": state[i], "prompt": prompts[i]}
        for i in range(n)
    ]


class TritonPythonModel:
    def initialize(self, args):
        import triton_python_backend_utils as pb_utils

        self.pb = pb_utils
        version_dir = Path(args["model_repository"]) / args["model_version"]
        model_config = json.loads(args["model_config"])
        share_gpu_memory(model_config)  # before the policy starts JAX
        self.policy, self.metadata = load_policy(version_dir)
        self.names = [f"image_{c}" for c in self.metadata["cameras"]] + ["state", "prompt"]
        # Compile every batch size the dynamic batcher can form now, not on a robot's request.
        max_batch = int(model_config.get("max_batch_size", 1))
        blank = {
            "images": {},
            "state": np.zeros(self.metadata["state_dim"], np.float32),
            "prompt": "",
        }
        for b in range(1, max_batch + 1):
            self.policy.infer_batch([blank] * b)

    def _inputs(self, request) -> dict[str, np.ndarray | None]:
        out = {}
        for name in self.names:
            tensor = self.pb.get_input_tensor_by_name(request, name)
            out[name] = None if tensor is None else np.from_dlpack(tensor)
        return out

    def execute(self, requests):
        responses: list = [None] * len(requests)
        batch, owners = [], []
        for i, request in enumerate(requests):
            try:
                obs = decode_request(self._inputs(request), self.metadata)
            except ValueError as e:
                responses[i] = self.pb.InferenceResponse(error=self.pb.TritonError(str(e)))
                continue
            batch += obs
            owners += [i] * len(obs)
        if batch:
            try:
                actions = np.ascontiguousarray(self.policy.infer_batch(batch), dtype=np.float32)
            except Exception as e:
                traceback.print_exc()
                for i in set(owners):
                    responses[i] = self.pb.InferenceResponse(
                        error=self.pb.TritonError(f"policy failed: {e}")
                    )
                return responses
            owners = np.asarray(owners)
            for i in set(owners.tolist()):
                rows = np.ascontiguousarray(actions[owners == i])
                responses[i] = self.pb.InferenceResponse(
                    [self.pb.Tensor.from_dlpack("actions", rows)]
                )
        return responses
