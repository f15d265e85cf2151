"""Policies the sim can evaluate: anything with ``reset`` and ``infer`` (observation → action chunk).

    policy = PolicySpec(kind="scripted").build()
    policy.reset("transfer_cube", seed=0)
    chunk = policy.infer({"images": {"top": img}, "state": state, "prompt": "..."})["actions"]

The observation is what a robot client sends: raw uint8 camera images, float32 state and a prompt.
In-process checkpoints, a remote inference server (``vlaops.sim.remote``) and the scripted expert
all satisfy ``Policy``; a ``PolicySpec`` is the picklable recipe each worker process builds its
own policy from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from vlaops.errors import VlaopsError
from vlaops.sim import env

KINDS = ("scripted", "random", "checkpoint", "server")


class Policy(Protocol):
    # {"action_dim": int, "action_horizon": int, "cameras": [names the policy looks at]}
    metadata: dict

    def reset(self, task: str, seed: int) -> None:
        """A new episode starts (stateless policies ignore it)."""

    def infer(self, observation: dict) -> dict:
        """``{"images": {cam: uint8 HxWx3}, "state": float32[14], "prompt": str}`` →
        ``{"actions": float[H, action_dim]}``."""


class ScriptedPolicy:
    """The scripted expert as a policy: it plans the episode from the seed (privileged: it knows
    the object poses) and hands out its joint actions chunk by chunk, advancing by the number of
    steps the caller executes between calls (``replan_steps``)."""

    def __init__(self, replan_steps: int, horizon: int = 50):
        self.replan_steps, self.horizon = replan_steps, horizon
        self.metadata = {"action_dim": env.ACTION_DIM, "action_horizon": horizon, "cameras": []}
        self._actions: np.ndarray | None = None
        self._cursor = 0

    def reset(self, task: str, seed: int) -> None:
        from vlaops.sim import expert

        self._actions = expert.plan(task, seed).actions
        self._cursor = 0

    def infer(self, observation: dict) -> dict:
        if self._actions is None:
            raise RuntimeError("ScriptedPolicy.infer called before reset(task, seed)")
        chunk = self._actions[self._cursor : self._cursor + self.horizon]
        if len(chunk) < self.horizon:  # past the plan: hold the last action
            pad = np.repeat(self._actions[-1:], self.horizon - len(chunk), axis=0)
            chunk = np.concatenate([chunk, pad])
        self._cursor += self.replan_steps
        return {"actions": chunk}


class RandomPolicy:
    """Joint targets drawn around the start pose, grippers anywhere: the floor of any score."""

    def __init__(self, horizon: int = 50, spread: float = 0.3):
        self.horizon, self.spread = horizon, spread
        self.metadata = {"action_dim": env.ACTION_DIM, "action_horizon": horizon, "cameras": []}
        self._rng = np.random.default_rng(0)
        start = np.array(env.START_ARM_POSE)
        self._center = np.concatenate([start[0:6], [0.5], start[8:14], [0.5]])

    def reset(self, task: str, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def infer(self, observation: dict) -> dict:
        noise = self._rng.uniform(-self.spread, self.spread, (self.horizon, env.ACTION_DIM))
        actions = self._center + noise
        actions[:, [6, 13]] = self._rng.uniform(0, 1, (self.horizon, 2))
        return {"actions": actions.astype(np.float32)}


def load_checkpoint(uri: str) -> Policy:
    """An in-process pi0 policy from a training checkpoint (a run folder or one step of it): the
    checkpoint is exported exactly as for Triton (bf16, LoRA merged) into a temporary folder and
    loaded with the serving policy, so evaluation sees what deployment will serve."""
    import tempfile
    from pathlib import Path

    from vlaops.serve import export
    from vlaops.serve import policy as serving

    tmp = tempfile.mkdtemp(prefix="vlaops-eval-")
    version = export.export(uri, tmp, "pi0")
    return serving.load(Path(tmp) / "pi0" / str(version))


@dataclass(frozen=True)
class PolicySpec:
    kind: str  # one of KINDS
    uri: str = ""  # checkpoint URI or server URL
    replan_steps: int = 10  # actions executed from each chunk before asking again
    horizon: int = 50  # chunk length of the local policies

    def build(self) -> Policy:
        if self.kind == "scripted":
            return ScriptedPolicy(self.replan_steps, self.horizon)
        if self.kind == "random":
            return RandomPolicy(self.horizon)
        if self.kind == "checkpoint":
            return load_checkpoint(self.uri)
        if self.kind == "server":
            if "://" not in self.uri or self.uri.startswith(
                "grpc://"
            ):  # HOST:PORT is Triton's gRPC
                from vlaops.serve.client import TritonPolicy

                return TritonPolicy(self.uri, "pi0")
            from vlaops.sim import remote

            return remote.RemotePolicy(self.uri)
        raise VlaopsError(f"unknown policy kind {self.kind!r}: choose one of {', '.join(KINDS)}")


def check(policy: Policy, source: str) -> list[str]:
    """Fail before any episode when a policy cannot drive the ALOHA sim; returns its cameras."""
    meta = getattr(policy, "metadata", None) or {}
    dim = meta.get("action_dim")
    if dim != env.ACTION_DIM:
        raise VlaopsError(
            f"{source}: the policy's action dimension is {dim}, the ALOHA sim takes "
            f"{env.ACTION_DIM} (6 joints + gripper per arm); evaluate a policy trained on ALOHA"
        )
    cameras = list(meta.get("cameras") or [])
    env.check_cameras(cameras) if cameras else None
    return cameras


def chunk_of(result: dict, source: str) -> np.ndarray:
    """The action chunk from an ``infer`` result, checked."""
    actions = np.asarray(result.get("actions") if isinstance(result, dict) else None)
    if actions.ndim == 1:
        actions = actions[None]
    if actions.ndim != 2 or actions.shape[1] != env.ACTION_DIM or len(actions) == 0:
        raise VlaopsError(
            f"{source}: infer returned actions of shape {actions.shape}; expected "
            f"[horizon, {env.ACTION_DIM}]"
        )
    return actions
