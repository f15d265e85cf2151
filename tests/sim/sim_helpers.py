"""Helpers for the sim tests, in a uniquely named module (several test folders have a conftest)."""

from __future__ import annotations

import numpy as np

from vlaops.sim import env


class ConstantPolicy:
    """Holds one pose (arms at the start pose, grippers half open); records what it was sent."""

    def __init__(self, cameras=("top",), action_dim: int = env.ACTION_DIM, horizon: int = 50):
        self.metadata = {
            "action_dim": action_dim,
            "action_horizon": horizon,
            "cameras": list(cameras),
        }
        start = np.array(env.START_ARM_POSE)
        self.action = np.concatenate([start[0:6], [0.5], start[8:14], [0.5]])[:action_dim]
        self.seen: list[dict] = []

    def reset(self, task: str, seed: int) -> None:
        pass

    def infer(self, observation: dict) -> dict:
        self.seen.append(observation)
        return {"actions": np.tile(self.action, (self.metadata["action_horizon"], 1))}


def free_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"
