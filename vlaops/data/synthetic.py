"""Synthetic raw demonstrations in the real file formats, for tests, benchmarks and demos.

Images are smooth gradients with a moving square, so lossy video codecs reproduce them closely and
round-trip checks can use a tight tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np


def aloha_episode(
    path: Path,
    length: int = 20,
    cameras=("top",),
    hw=(48, 64),
    seed: int = 0,
    compressed: bool = False,
    effort: bool = False,
) -> dict[str, np.ndarray]:
    """Write one ALOHA episode file; returns the arrays written (images as raw uint8)."""
    rng = np.random.default_rng(seed)
    data = {
        "qpos": rng.normal(size=(length, 14)).astype(np.float32),
        "qvel": rng.normal(size=(length, 14)).astype(np.float32),
        "action": rng.normal(size=(length, 14)).astype(np.float32),
    }
    if effort:
        data["effort"] = rng.normal(size=(length, 14)).astype(np.float32)
    h, w = hw
    # Smooth images (gradients + a moving square) so lossy codecs reproduce them closely.
    yy, xx = np.mgrid[0:h, 0:w]
    with h5py.File(path, "w") as f:
        f.attrs["sim"] = True
        for k in ("qpos", "qvel", "effort"):
            if k in data:
                f[f"observations/{k}"] = data[k]
        f["action"] = data["action"]
        for ci, cam in enumerate(cameras):
            frames = np.empty((length, h, w, 3), np.uint8)
            for t in range(length):
                frames[t, ..., 0] = (xx * 255 // w + 10 * t) % 256
                frames[t, ..., 1] = (yy * 255 // h + 40 * ci) % 256
                frames[t, ..., 2] = 128
                frames[t, 10:20, (2 * t) % (w - 10) : (2 * t) % (w - 10) + 10] = 255
            data[f"images/{cam}"] = frames
            if compressed:
                import cv2

                enc = [cv2.imencode(".jpg", fr, [cv2.IMWRITE_JPEG_QUALITY, 95])[1] for fr in frames]
                size = max(len(e) for e in enc)
                padded = np.zeros((length, size), np.uint8)
                for t, e in enumerate(enc):
                    padded[t, : len(e)] = e
                f[f"observations/images/{cam}"] = padded
                f.attrs["compress"] = True
            else:
                f[f"observations/images/{cam}"] = frames
    return data


def robomimic_file(
    path: Path,
    demos: int = 3,
    length: int = 15,
    hw=(32, 32),
    seed: int = 0,
    robots: int = 1,
    masks: bool = True,
) -> list[dict[str, np.ndarray]]:
    """Write a robomimic/MimicGen-style file with ``demos`` demos; returns each demo's arrays."""
    rng = np.random.default_rng(seed)
    out = []
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["total"] = demos * length
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "type": 1, "env_kwargs": {}})
        for d in range(demos):
            n = length + d  # episodes of different lengths
            g = data.create_group(f"demo_{d}")
            g.attrs["num_samples"] = n
            arrays = {"actions": rng.normal(size=(n, 7)).astype(np.float32)}
            for r in range(robots):
                arrays[f"robot{r}_eef_pos"] = rng.normal(size=(n, 3)).astype(np.float32)
                arrays[f"robot{r}_eef_quat"] = rng.normal(size=(n, 4)).astype(np.float32)
                arrays[f"robot{r}_gripper_qpos"] = rng.normal(size=(n, 2)).astype(np.float32)
                arrays[f"robot{r}_joint_pos"] = rng.normal(size=(n, 7)).astype(np.float32)
            arrays["agentview_image"] = np.broadcast_to(
                (np.arange(hw[1], dtype=np.uint8) * 4)[None, None, :, None], (n, *hw, 3)
            ).copy()
            arrays["robot0_eye_in_hand_image"] = np.full((n, *hw, 3), 90 + d, np.uint8)
            g["actions"] = arrays["actions"]
            g["states"] = rng.normal(size=(n, 20)).astype(np.float32)
            g["rewards"] = np.zeros(n)
            g["dones"] = np.zeros(n)
            for k, v in arrays.items():
                if k != "actions":
                    g[f"obs/{k}"] = v
            out.append(arrays)
        if masks:
            f["mask/train"] = np.array([f"demo_{d}".encode() for d in range(demos - 1)])
            f["mask/valid"] = np.array([f"demo_{demos - 1}".encode()])
    return out


def aloha_dataset(
    root: Path,
    lengths,
    cameras=("cam_high", "cam_left_wrist"),
    hw=(48, 64),
    task: str = "pick",
    repo_id: str = "synthetic/aloha",
) -> Path:
    """Synthetic ALOHA episodes converted to a LeRobot dataset at ``root/ds`` (raw files in
    ``root/raw``); returns the dataset folder."""
    from vlaops.data.convert import convert

    (root / "raw").mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(lengths):
        aloha_episode(root / "raw" / f"episode_{i}.hdf5", n, tuple(cameras), hw, seed=i)
    convert(
        str(root / "raw"),
        "aloha-hdf5",
        str(root / "ds"),
        repo_id=repo_id,
        fps=50,
        task=task,
        workers=1,
    )
    return root / "ds"
