"""Raw demonstration formats: ALOHA/ACT episode HDF5 and robomimic/MimicGen HDF5.

A reader turns a source into ``Episode`` objects: small arrays (state, action) loaded and validated
up front, camera frames streamed from the file in chunks, so an episode of any length never sits in
memory whole. Every problem is a ``VlaopsError`` naming the file, the key and what is wrong.
Key layouts: ``shared/reference/formats.md``.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from vlaops.errors import VlaopsError

FORMATS = ("aloha-hdf5", "robomimic-hdf5")

# Joint names of the ALOHA bimanual arm (6 joints + gripper per side), the order ACT and gym-aloha use.
ALOHA_JOINTS = [
    f"{side}_{j}"
    for side in ("left", "right")
    for j in (
        "waist",
        "shoulder",
        "elbow",
        "forearm_roll",
        "wrist_angle",
        "wrist_rotate",
        "gripper",
    )
]

_FRAME_CHUNK = 32  # frames read from HDF5 per slice: large enough for throughput, small in memory


@dataclass(frozen=True)
class Episode:
    """One demonstration. ``cameras`` maps a camera name to its HDF5 key; frames are read lazily."""

    path: Path  # local HDF5 file
    label: str  # how errors and logs name it, e.g. "episode_3.hdf5" or "demos.hdf5:data/demo_3"
    group: str  # HDF5 group holding the episode ("/" for ALOHA)
    state: np.ndarray  # (T, S) float32
    action: np.ndarray  # (T, A) float32
    cameras: dict[str, str]  # camera name → image dataset key inside `group`
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # more per-frame float features
    compressed: bool = False  # images stored as encoded JPEG/PNG bytes

    @property
    def length(self) -> int:
        return len(self.action)

    def frames(self) -> Iterator[dict[str, np.ndarray]]:
        """Yield ``{camera: (H, W, 3) uint8}`` for every frame, in order."""
        with _open(self.path, self.label) as f:
            datasets = {cam: f[self.group][key] for cam, key in self.cameras.items()}
            for start in range(0, self.length, _FRAME_CHUNK):
                stop = min(start + _FRAME_CHUNK, self.length)
                chunk = {}
                for cam, ds in datasets.items():
                    try:
                        chunk[cam] = ds[start:stop]
                    except (OSError, ValueError) as e:
                        raise VlaopsError(
                            f"{self.label}: {ds.name}: cannot read frames {start}..{stop - 1} ({e})"
                        ) from None
                for i in range(stop - start):
                    yield {
                        cam: self._image(cam, ds_chunk[i], start + i)
                        for cam, ds_chunk in chunk.items()
                    }

    def _image(self, cam: str, raw: np.ndarray, index: int) -> np.ndarray:
        if not self.compressed:
            return raw
        import cv2

        img = cv2.imdecode(np.frombuffer(raw.tobytes(), np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            key = f"{self.group.rstrip('/')}/{self.cameras[cam]}"
            raise VlaopsError(f"{self.label}: {key}: frame {index} is not a decodable image")
        return img  # imencode/imdecode round-trip keeps the channel order the writer used


@contextlib.contextmanager
def _open(path: Path, label: str):
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise VlaopsError(f"{label}: no such file") from None
    except OSError as e:
        raise VlaopsError(
            f"{label}: not a readable HDF5 file, truncated or corrupt ({e})"
        ) from None
    with f:
        yield f


def _array(f: h5py.File, key: str, label: str, ndim: int = 2) -> np.ndarray:
    if key not in f:
        raise VlaopsError(f"{label}: missing key {key!r}")
    try:
        arr = np.asarray(f[key][()], dtype=np.float32)
    except (OSError, ValueError, TypeError) as e:
        raise VlaopsError(f"{label}: {key}: unreadable ({e})") from None
    if arr.ndim == 1 and ndim == 2:
        arr = arr[:, None]
    if arr.ndim != ndim:
        raise VlaopsError(f"{label}: {key}: expected {ndim} dimensions, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise VlaopsError(f"{label}: {key}: {int(bad.sum())} NaN/Inf values (first at row {row})")
    return arr


def _check_lengths(label: str, arrays: dict[str, int]) -> None:
    lengths = set(arrays.values())
    if len(lengths) > 1:
        detail = ", ".join(f"{k} has {n}" for k, n in arrays.items())
        raise VlaopsError(f"{label}: mismatched lengths between datasets of one episode: {detail}")
    if lengths == {0}:
        raise VlaopsError(f"{label}: episode has no frames")


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


# ── ALOHA / ACT ────────────────────────────────────────────────────────────────────────────────


def read_aloha(path: Path, label: str | None = None) -> Episode:
    """One ALOHA episode file: /observations/{qpos,qvel,effort,images/<cam>} and /action."""
    label = label or path.name
    with _open(path, label) as f:
        state = _array(f, "observations/qpos", label)
        action = _array(f, "action", label)
        extra = {}
        for key, name in (("observations/qvel", "velocity"), ("observations/effort", "effort")):
            if key in f:
                extra[name] = _array(f, key, label)
        if "observations/images" not in f or not len(f["observations/images"]):
            raise VlaopsError(f"{label}: missing key 'observations/images' (no camera found)")
        cameras, lengths, compressed = {}, {}, False
        for cam in sorted(f["observations/images"]):
            ds = f[f"observations/images/{cam}"]
            compressed = _check_image_dataset(ds, label) or compressed
            cameras[cam] = f"observations/images/{cam}"
            lengths[f"/observations/images/{cam}"] = ds.shape[0]
        _check_lengths(
            label,
            {"/observations/qpos": len(state), "/action": len(action), **lengths}
            | {
                f"/observations/{'qvel' if k == 'velocity' else k}": len(v)
                for k, v in extra.items()
            },
        )
    return Episode(path, label, "/", state, action, cameras, extra, compressed)


def _check_image_dataset(ds: h5py.Dataset, label: str) -> bool:
    """Validate an image dataset; True when it holds encoded (JPEG/PNG) bytes."""
    if ds.ndim == 4 and ds.shape[-1] == 3 and ds.dtype == np.uint8:
        return False
    if (ds.ndim == 2 and ds.dtype == np.uint8) or (
        ds.ndim == 1 and h5py.check_vlen_dtype(ds.dtype)
    ):
        return True
    raise VlaopsError(
        f"{label}: {ds.name}: expected (T, H, W, 3) uint8 frames or encoded image bytes, "
        f"got shape {ds.shape} dtype {ds.dtype}"
    )


def list_aloha(files: list[Path]) -> list[Episode]:
    return [read_aloha(p) for p in sorted(files, key=lambda p: _natural_key(p.name))]


# ── robomimic / MimicGen / DexMimicGen ─────────────────────────────────────────────────────────

# Default state for robomimic-style data: what its low-dim policies use, per robot present.
_ROBOT_STATE_KEYS = ("eef_pos", "eef_quat", "gripper_qpos")


def robomimic_state_keys(obs: h5py.Group) -> list[str]:
    """Default ``observation.state`` keys: robot{i}_{eef_pos,eef_quat,gripper_qpos} for every
    robot present; failing that, every non-image observation key, sorted."""
    robots = sorted(
        {m.group(1) for k in obs if (m := re.match(r"(robot\d+)_", k))}, key=_natural_key
    )
    keys = [f"{r}_{k}" for r in robots for k in _ROBOT_STATE_KEYS]
    if robots and all(k in obs for k in keys):
        return keys
    return sorted((k for k in obs if not _is_image(obs[k])), key=_natural_key)


def _is_image(ds: h5py.Dataset) -> bool:
    return ds.ndim == 4 and ds.shape[-1] == 3 and ds.dtype == np.uint8


def read_robomimic(
    path: Path, label: str | None = None, state_keys: list[str] | None = None
) -> tuple[list[Episode], dict]:
    """Every demo of a robomimic-style file, in demo order, plus metadata (env args, splits)."""
    label = label or path.name
    with _open(path, label) as f:
        if "data" not in f:
            raise VlaopsError(f"{label}: missing key 'data' (not a robomimic/MimicGen file?)")
        demos = sorted(f["data"], key=_natural_key)
        if not demos:
            raise VlaopsError(f"{label}: 'data' holds no demos")
        meta = {"env_args": _env_args(f["data"], label), "splits": {}}
        if "mask" in f:
            for split in f["mask"]:
                names = [
                    n.decode() if isinstance(n, bytes) else str(n) for n in f[f"mask/{split}"][()]
                ]
                meta["splits"][split] = [demos.index(n) for n in names if n in demos]
        episodes = [_robomimic_demo(f, path, label, d, state_keys) for d in demos]
    return episodes, meta


def _env_args(data: h5py.Group, label: str) -> dict:
    raw = data.attrs.get("env_args")
    if raw is None:
        return {}
    try:
        return json.loads(raw)
    except (TypeError, json.JSONDecodeError):
        raise VlaopsError(f"{label}: data attribute 'env_args' is not valid JSON") from None


def _robomimic_demo(
    f: h5py.File, path: Path, label: str, demo: str, state_keys: list[str] | None
) -> Episode:
    group = f"data/{demo}"
    where = f"{label}:{group}"
    action = _array(f, f"{group}/actions", label)
    if f"{group}/obs" not in f:
        raise VlaopsError(f"{label}: missing key '{group}/obs'")
    obs = f[f"{group}/obs"]
    keys = state_keys or robomimic_state_keys(obs)
    missing = [k for k in keys if k not in obs]
    if missing:
        raise VlaopsError(f"{label}: missing key '{group}/obs/{missing[0]}' (state keys: {keys})")
    parts = [_array(f, f"{group}/obs/{k}", label) for k in keys]
    lengths = {f"/{group}/actions": len(action)} | {
        f"/{group}/obs/{k}": len(p) for k, p in zip(keys, parts, strict=True)
    }
    cameras = {}
    for k in sorted(obs):
        if _is_image(obs[k]):
            cameras[k.removesuffix("_image")] = f"obs/{k}"
            lengths[f"/{group}/obs/{k}"] = obs[k].shape[0]
    if not cameras:
        raise VlaopsError(f"{label}: '{group}/obs' has no image observations ((T, H, W, 3) uint8)")
    _check_lengths(where, lengths)
    return Episode(path, where, group, np.concatenate(parts, axis=1), action, cameras)
