"""A transparent policy for testing the serving transport (not a model).

Its actions are a deterministic function of everything it receives — each camera's size and mean
pixel, the state, the prompt's text — so a test can prove that images of any size, the state and
the prompt cross Triton intact, in any batch composition. The pi0 policy is tested separately.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

METADATA = {
    "cameras": ["cam_high", "cam_low"],
    "state_dim": 3,
    "action_horizon": 4,
    "action_dim": 5,
}


class EchoPolicy:
    def __init__(self, version_dir: Path | None = None):
        self.metadata = METADATA
        self.offset = float((version_dir / "offset.txt").read_text()) if version_dir else 0.0

    def infer_batch(self, observations: list[dict]) -> np.ndarray:
        return np.stack([self.actions(o) for o in observations])

    def actions(self, o: dict) -> np.ndarray:
        out = np.zeros((4, 5), np.float32)
        for row, cam in enumerate(METADATA["cameras"]):
            img = o["images"].get(cam)
            if img is not None:
                out[row, :3] = [img.shape[0], img.shape[1], img.mean()]
        out[2, :3] = o["state"]
        text = o["prompt"].encode()
        out[3, 0], out[3, 1] = len(text), sum(text) % 1000
        out[:, 4] = self.offset
        return out


def load(version_dir: Path) -> EchoPolicy:
    return EchoPolicy(version_dir)
