"""The data transforms pi0 sees, shared by the training loader and the serving policy.

Plain numpy functions over batches, so training and serving cannot drift apart. Order (openpi's):
repack cameras → robot transforms (delta actions) → normalize → resize with pad, tokenize, pad dims.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vlaops.errors import VlaopsError

# The three cameras pi0 was pretrained with, in prefix order.
MODEL_CAMERAS = ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb")
ALOHA_CAMERAS = {
    "base_0_rgb": "cam_high",
    "left_wrist_0_rgb": "cam_left_wrist",
    "right_wrist_0_rgb": "cam_right_wrist",
}
EPS = 1e-6  # openpi's: z-score (x − mean) / (std + 1e-6)


def resize_with_pad(images: np.ndarray, size: int = 224) -> np.ndarray:
    """Letterbox uint8 images [..., H, W, 3] to [..., size, size, 3]: keep the aspect ratio, scale
    the long side to ``size``, centre, pad with black (−1 once the model maps uint8 to [−1, 1])."""
    import cv2

    h, w = images.shape[-3:-1]
    if (h, w) == (size, size):
        return images
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR  # area averaging when shrinking
    flat = images.reshape(-1, h, w, images.shape[-1])
    out = np.zeros((len(flat), size, size, images.shape[-1]), np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    for i, img in enumerate(flat):
        out[i, top : top + nh, left : left + nw] = cv2.resize(img, (nw, nh), interpolation=interp)
    return out.reshape(*images.shape[:-3], size, size, images.shape[-1])


def pad_to_dim(x: np.ndarray, dim: int) -> np.ndarray:
    """Zero-pad the last axis to ``dim`` (pi0 works on 32-d state and actions)."""
    if x.shape[-1] > dim:
        raise VlaopsError(f"vector of {x.shape[-1]} dims does not fit the model's {dim}")
    if x.shape[-1] == dim:
        return x
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, dim - x.shape[-1])])


@dataclass(frozen=True)
class Stats:
    """Normalization statistics of one vector (unpadded robot dims)."""

    mean: np.ndarray
    std: np.ndarray
    q01: np.ndarray
    q99: np.ndarray

    @classmethod
    def from_json(cls, d: dict) -> Stats:
        return cls(*(np.asarray(d[k], np.float32) for k in ("mean", "std", "q01", "q99")))


@dataclass(frozen=True)
class Normalizer:
    """openpi's normalization: z-score for pi0, quantiles to [−1, 1] for pi0.5 / FAST."""

    state: Stats
    actions: Stats
    use_quantiles: bool = False

    @classmethod
    def from_norm_stats(cls, data: dict, use_quantiles: bool = False) -> Normalizer:
        ns = data["norm_stats"]
        return cls(Stats.from_json(ns["state"]), Stats.from_json(ns["actions"]), use_quantiles)

    def _norm(self, x: np.ndarray, s: Stats) -> np.ndarray:
        d = len(s.mean)
        if x.shape[-1] != d:
            raise VlaopsError(f"vector has {x.shape[-1]} dims, norm stats have {d}")
        if self.use_quantiles:
            return ((x - s.q01) / (s.q99 - s.q01 + EPS) * 2.0 - 1.0).astype(np.float32)
        return ((x - s.mean) / (s.std + EPS)).astype(np.float32)

    def _unnorm(self, x: np.ndarray, s: Stats) -> np.ndarray:
        x = x[..., : len(s.mean)]
        if self.use_quantiles:
            return ((x + 1.0) / 2.0 * (s.q99 - s.q01 + EPS) + s.q01).astype(np.float32)
        return (x * (s.std + EPS) + s.mean).astype(np.float32)

    def state_in(self, x: np.ndarray) -> np.ndarray:
        return self._norm(x, self.state)

    def actions_in(self, x: np.ndarray) -> np.ndarray:
        return self._norm(x, self.actions)

    def actions_out(self, x: np.ndarray) -> np.ndarray:
        """Model-space actions (padded) → robot actions (unpadded, raw units)."""
        return self._unnorm(x, self.actions)


@dataclass(frozen=True)
class DeltaActions:
    """Actions relative to the current state on the dims of ``mask`` (e.g. joints, not grippers)."""

    mask: tuple[bool, ...]

    def to_delta(self, actions: np.ndarray, state: np.ndarray) -> np.ndarray:
        """actions [..., H, A], state [..., S] → actions with state subtracted on masked dims."""
        m = np.asarray(self.mask)
        out = actions.copy()
        out[..., : len(m)] -= np.where(m, state[..., None, : len(m)], 0.0).astype(actions.dtype)
        return out

    def to_absolute(self, actions: np.ndarray, state: np.ndarray) -> np.ndarray:
        m = np.asarray(self.mask)
        out = actions.copy()
        out[..., : len(m)] += np.where(m, state[..., None, : len(m)], 0.0).astype(actions.dtype)
        return out


def aloha_delta_mask() -> tuple[bool, ...]:
    """openpi's ALOHA mask: six joints relative, gripper absolute, per arm."""
    return (True,) * 6 + (False,) + (True,) * 6 + (False,)


def camera_mapping(
    available: Sequence[str], mapping: dict[str, str] | None = None
) -> dict[str, str | None]:
    """Model camera → dataset camera (None = absent: a black image with mask False).

    Without an explicit mapping: ALOHA names when present, else the dataset's cameras in order.
    """
    if mapping is None:
        if set(ALOHA_CAMERAS.values()) & set(available):
            mapping = {m: c for m, c in ALOHA_CAMERAS.items() if c in available}
        else:
            mapping = dict(zip(MODEL_CAMERAS, available, strict=False))
    unknown = [c for c in mapping.values() if c not in available]
    if unknown:
        raise VlaopsError(f"camera {unknown[0]!r} is not in the dataset (it has {list(available)})")
    return {m: mapping.get(m) for m in MODEL_CAMERAS}
