"""The one place vlaops imports ``lerobot``: writing and opening LeRobot v3.0 datasets.

Writing goes through lerobot's own writer (``LeRobotDataset.create`` / ``add_frame`` /
``save_episode`` / ``finalize``) with streaming video encoding — frames go straight to an encoder
thread per camera instead of through temporary PNG files — and shards written in parallel are
joined with lerobot's ``aggregate_datasets`` (videos are concatenated by stream copy, not
re-encoded).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from vlaops.data.raw import Episode

os.environ.setdefault("HF_HUB_OFFLINE", "1")
log = logging.getLogger(__name__)

STATE, ACTION = "observation.state", "action"
# lerobot's codec names; h264 decodes everywhere (browsers, torchcodec, PyAV) and encodes ~2× faster
# than AV1 on a CPU.
VIDEO_CODECS = ("h264", "libsvtav1", "hevc")


def image_key(camera: str) -> str:
    return f"observation.images.{camera}"


def features(
    state_dim: int,
    action_dim: int,
    image_shapes: dict[str, tuple[int, int, int]],
    extra_dims: dict[str, int],
    names: Sequence[str] | None = None,
) -> dict:
    """LeRobot feature spec: one video per camera, state, action and optional extra vectors."""

    def vector(dim: int) -> dict:
        return {
            "dtype": "float32",
            "shape": (dim,),
            "names": list(names) if names and len(names) == dim else None,
        }

    spec = {
        image_key(cam): {"dtype": "video", "shape": shape, "names": ["height", "width", "channels"]}
        for cam, shape in image_shapes.items()
    }
    spec[STATE] = vector(state_dim)
    spec[ACTION] = vector(action_dim)
    for name, dim in extra_dims.items():
        spec[f"observation.{name}"] = vector(dim)
    return spec


def write(
    root: Path,
    repo_id: str,
    fps: int,
    spec: dict,
    episodes: Sequence[Episode],
    task: str,
    vcodec: str = "h264",
    on_episode: Callable[[Episode], None] | None = None,
) -> None:
    """Write ``episodes`` as a new LeRobot dataset at ``root`` (which must not exist yet)."""
    from lerobot.configs.video import RGBEncoderConfig
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    quiet()
    longest = max(ep.length for ep in episodes)
    ds = LeRobotDataset.create(
        repo_id=repo_id,
        fps=fps,
        features=spec,
        root=root,
        use_videos=True,
        streaming_encoding=True,
        # The streaming encoder drops frames when its queue is full (it was made for live
        # recording). Room for a whole episode makes a drop impossible: reading is faster than
        # encoding, so this costs up to one episode of frames in memory per writer.
        encoder_queue_maxsize=longest + 1,
        rgb_encoder=RGBEncoderConfig(vcodec=vcodec),
    )
    try:
        for ep in episodes:
            for i, images in enumerate(ep.frames()):
                frame = {image_key(cam): img for cam, img in images.items()}
                frame[STATE] = ep.state[i]
                frame[ACTION] = ep.action[i]
                for name, values in ep.extra.items():
                    frame[f"observation.{name}"] = values[i]
                frame["task"] = task
                ds.add_frame(frame)
            ds.save_episode()
            if on_episode:
                on_episode(ep)
    finally:
        ds.finalize()


def quiet() -> None:
    """Keep FFmpeg's and lerobot's per-file chatter out of progress bars."""
    import av

    av.logging.set_level(av.logging.ERROR)
    av.logging.set_libav_level(
        av.logging.ERROR
    )  # FFmpeg's own stderr callback, which lerobot restores
    for name in ("lerobot", "libav"):
        logging.getLogger(name).setLevel(logging.WARNING)


def merge(shards: Sequence[Path], root: Path, repo_id: str) -> None:
    """Join datasets written in parallel into one at ``root``, episodes in shard order."""
    from lerobot.datasets.aggregate import aggregate_datasets

    quiet()
    aggregate_datasets(
        repo_ids=[f"{repo_id}-shard{i}" for i in range(len(shards))],
        aggr_repo_id=repo_id,
        roots=list(shards),
        aggr_root=root,
    )


def open_dataset(root: Path | str, repo_id: str | None = None, **kwargs):
    """A ``LeRobotDataset`` for a local dataset folder (no hub access)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    return LeRobotDataset(repo_id or Path(root).name, root=root, **kwargs)


def local_copy(uri: str, cache_dir: Path) -> Path:
    """A local dataset folder for ``uri``: the path itself when local, else a copy in
    ``cache_dir`` (made once). Either must be a LeRobot dataset (``meta/info.json``)."""
    from vlaops import storage
    from vlaops.errors import VlaopsError

    if not storage.is_remote(uri):
        path = storage.local_path(uri)
        if not (path / "meta/info.json").exists():
            raise VlaopsError(f"--dataset {uri}: not a LeRobot dataset (no meta/info.json)")
        return path
    target = Path(cache_dir) / uri.split("://", 1)[1].replace("/", "_")
    if not (target / "meta/info.json").exists():
        if not storage.exists(storage.join(uri, "meta/info.json")):
            raise VlaopsError(f"--dataset {uri}: not a LeRobot dataset (no meta/info.json)")
        storage.copy(uri, str(target))
    return target


def observation(root: Path, episode: int, frame: int) -> tuple[dict, np.ndarray]:
    """One frame of an episode as a robot sends it — ``{"images": {camera: uint8 H×W×3},
    "state", "prompt"}`` — and the action recorded there."""
    from vlaops.errors import VlaopsError

    ds = open_dataset(root)
    episodes = as_numpy(ds.hf_dataset["episode_index"])
    rows = np.flatnonzero(episodes == episode)
    if not len(rows):
        raise VlaopsError(
            f"{root}: no episode {episode} (episodes {int(episodes.min())}..{int(episodes.max())})"
        )
    if not 0 <= frame < len(rows):
        raise VlaopsError(f"{root}: episode {episode} has {len(rows)} frames, no frame {frame}")
    item = ds[int(rows[frame])]
    prefix = image_key("")
    images = {
        k[len(prefix) :]: (as_numpy(v).transpose(1, 2, 0) * 255).round().astype(np.uint8)
        for k, v in item.items()
        if k.startswith(prefix)
    }
    obs = {"images": images, "state": as_numpy(item[STATE]), "prompt": item.get("task", "")}
    return obs, as_numpy(item[ACTION])


def frame_count(video: Path) -> int:
    """Frames in a video file, from its container metadata (no decoding)."""
    import av

    with av.open(str(video)) as c:
        return int(c.streams.video[0].frames)


def as_numpy(x) -> np.ndarray:
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


def write_vectors(
    root: Path,
    repo_id: str,
    fps: int,
    episodes: Sequence[dict[str, np.ndarray]],
    task: str = "task",
) -> None:
    """A dataset of state/action vectors only (no cameras): for tests and benchmarks of the
    parquet side. ``episodes`` are ``{"state": (T, S), "action": (T, A)}``."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    quiet()
    first = episodes[0]
    spec = features(first["state"].shape[1], first["action"].shape[1], {}, {})
    ds = LeRobotDataset.create(repo_id=repo_id, fps=fps, features=spec, root=root, use_videos=False)
    try:
        for ep in episodes:
            for s, a in zip(ep["state"], ep["action"], strict=True):
                ds.add_frame({STATE: s, ACTION: a, "task": task})
            ds.save_episode()
    finally:
        ds.finalize()
