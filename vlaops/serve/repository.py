"""Triton model repositories: ``<repo>/<model>/config.pbtxt`` and ``<repo>/<model>/<version>/``.

A version folder holds ``model.py`` (a one-line shim into ``vlaops.serve.backend``), ``policy.json``
(how to build the policy and its metadata) and whatever the policy loads (params, norm stats,
tokenizer, config). Versions are integers and immutable: publishing picks the next number (or the
one asked for, if free), stages the folder and publishes it whole, so Triton's repository poller
never sees half a version. ``config.pbtxt`` is rewritten from the newest version's metadata.

Wire contract (what clients send; every input batched on axis 0):
    image_<camera>  UINT8 [-1, -1, 3]   any size; the policy letterboxes (optional: missing = masked)
    state           FP32  [S]           raw robot state
    prompt          UINT8 [-1]          UTF-8 bytes, zero-padded (BYTES tensors crash the numpy-2 stub)
    → actions       FP32  [H, A]        raw robot actions

``config.pbtxt`` also carries the model's input image side as the parameter ``image_size`` (when
the metadata has it): ``TritonPolicy`` letterboxes frames to it before sending — the same function
the policy applies, which leaves a frame of that size unchanged — so a 3-camera 480×640 request is
~150 KB at 224 instead of 2.7 MB (formats.md: openpi's clients do the same).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from vlaops import storage
from vlaops.errors import VlaopsError

MODEL_PY = (
    "from vlaops.serve.backend import TritonPythonModel  # noqa: F401 - Triton looks it up here\n"
)


@dataclass(frozen=True)
class ServingConfig:
    max_batch_size: int = 8  # requests Triton may merge into one policy call
    # How long the first request of a batch waits for others. 0: a lone robot is never held back,
    # and requests that arrive while a batch runs still form the next batch (bench/serve.py).
    max_queue_delay_us: int = 0
    instances: int = 1  # model instances (each holds the params)
    kind: str = "KIND_AUTO"  # KIND_GPU in the cluster, KIND_CPU here; AUTO picks


def config_pbtxt(name: str, metadata: dict, cfg: ServingConfig) -> str:
    """``config.pbtxt`` for a policy with ``metadata`` {cameras, state_dim, action_horizon, action_dim,
    optionally image_size}."""
    inputs = [
        f'  {{ name: "image_{cam}" data_type: TYPE_UINT8 dims: [ -1, -1, 3 ] optional: true }}'
        for cam in metadata["cameras"]
    ]
    inputs.append(f'  {{ name: "state" data_type: TYPE_FP32 dims: [ {metadata["state_dim"]} ] }}')
    inputs.append('  { name: "prompt" data_type: TYPE_UINT8 dims: [ -1 ] optional: true }')
    parameters = (
        [f'parameters {{ key: "image_size" value {{ string_value: "{metadata["image_size"]}" }} }}']
        if metadata.get("image_size")
        else []
    )
    return "\n".join(
        [
            f'name: "{name}"',
            'backend: "python"',
            f"max_batch_size: {cfg.max_batch_size}",
            "input [\n" + ",\n".join(inputs) + "\n]",
            "output [\n"
            f'  {{ name: "actions" data_type: TYPE_FP32 dims: [ {metadata["action_horizon"]}, {metadata["action_dim"]} ] }}\n]',
            f"instance_group [ {{ kind: {cfg.kind} count: {cfg.instances} }} ]",
            f"dynamic_batching {{ max_queue_delay_microseconds: {cfg.max_queue_delay_us} }}",
            *parameters,
            "",
        ]
    )


def versions(repo: str, name: str) -> list[int]:
    return sorted(int(v) for v in storage.listdir(storage.join(repo, name)) if v.isdigit())


def publish(
    repo: str,
    name: str,
    policy_dir: Path,
    factory: str,
    metadata: dict,
    version: int | None = None,
    cfg: ServingConfig = ServingConfig(),
) -> int:
    """Publish ``policy_dir`` as a new version of model ``name``; returns the version number."""
    for key in ("cameras", "state_dim", "action_horizon", "action_dim"):
        if key not in metadata:
            raise VlaopsError(f"policy metadata lacks {key!r}")
    existing = versions(repo, name)
    version = version or (existing[-1] + 1 if existing else 1)
    if version in existing:
        raise VlaopsError(
            f"{storage.join(repo, name, str(version))} exists: versions are never edited, pick another"
        )
    target = storage.join(repo, name, str(version))
    with storage.publish_dir(target, commit_files=["model.py"]) as staging:
        shutil.copytree(policy_dir, staging, dirs_exist_ok=True)
        (staging / "policy.json").write_text(
            json.dumps({"factory": factory, "metadata": metadata}, indent=2)
        )
        (staging / "model.py").write_text(MODEL_PY)
    storage.write_text(storage.join(repo, name, "config.pbtxt"), config_pbtxt(name, metadata, cfg))
    return version
