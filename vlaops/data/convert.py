"""Convert raw demonstrations to a LeRobot v3.0 dataset.

  vlaops convert --input gs://raw/transfer_cube/ --format aloha-hdf5 \\
      --output gs://datasets/transfer_cube --repo-id me/transfer_cube --fps 50 --task "transfer the cube"
  vlaops convert --input demos/lift.hdf5 --format robomimic-hdf5 --output data/lift \\
      --repo-id me/lift --fps 20 --workers 2

ALOHA input is a folder of episode_<i>.hdf5 files (or one file); robomimic/MimicGen input is one
HDF5 file with data/demo_<n> groups (image observations become cameras, mask/ splits are kept in
meta/splits.json). Every episode is validated before anything is written; episodes are converted
in parallel (--workers, default one per 3 cores), each worker writing a shard that lerobot then joins.
The dataset appears at --output only when conversion succeeded.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import json
import logging
import multiprocessing as mp
import os
import queue
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from vlaops import storage
from vlaops.data import lerobot_io, raw
from vlaops.errors import VlaopsError

HELP = "raw demonstrations (ALOHA or robomimic HDF5) → LeRobot v3.0 dataset"
log = logging.getLogger(__name__)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--input", required=True, help="folder of episode_*.hdf5 or one HDF5 file (path or gs://)"
    )
    p.add_argument(
        "--format", required=True, choices=raw.FORMATS, dest="fmt", help="raw data layout"
    )
    p.add_argument("--output", required=True, help="dataset URI to create (must be empty)")
    p.add_argument("--repo-id", required=True, help="dataset name, e.g. me/transfer_cube")
    p.add_argument("--fps", required=True, type=int, help="control rate the demos were recorded at")
    p.add_argument(
        "--task",
        help="task instruction for every episode (default: robomimic env name, or the repo id)",
    )
    p.add_argument(
        "--workers", type=int, default=None, help="parallel writers (default: one per 3 cores)"
    )
    p.add_argument(
        "--state-keys",
        help="robomimic: comma-separated obs keys concatenated into observation.state",
    )
    p.add_argument(
        "--vcodec",
        default="h264",
        choices=lerobot_io.VIDEO_CODECS,
        help="video codec (default h264)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --output")


def run(args: argparse.Namespace) -> None:
    summary = convert(
        args.input,
        args.fmt,
        args.output,
        repo_id=args.repo_id,
        fps=args.fps,
        task=args.task,
        workers=args.workers,
        overwrite=args.overwrite,
        vcodec=args.vcodec,
        state_keys=args.state_keys.split(",") if args.state_keys else None,
    )
    print(json.dumps(summary.__dict__, indent=2))


@dataclass(frozen=True)
class Summary:
    output: str
    episodes: int
    frames: int
    cameras: list[str]
    seconds: float
    frames_per_second: float


def convert(
    input_uri: str,
    fmt: str,
    output: str,
    repo_id: str,
    fps: int,
    task: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    vcodec: str = "h264",
    state_keys: Sequence[str] | None = None,
) -> Summary:
    """Convert and publish; returns what was written. Raises ``VlaopsError`` on bad input."""
    if fmt not in raw.FORMATS:
        raise VlaopsError(f"unknown --format {fmt!r}: choose one of {', '.join(raw.FORMATS)}")
    if fps <= 0:
        raise VlaopsError(f"--fps must be positive, got {fps}")
    storage.require_writable_output(output, overwrite)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vlaops-convert-") as tmp:
        tmp = Path(tmp)
        files = _fetch_inputs(input_uri, fmt, tmp / "input")
        meta = {}
        if fmt == "aloha-hdf5":
            episodes = raw.list_aloha(files)
            names = raw.ALOHA_JOINTS
        else:
            episodes, meta = raw.read_robomimic(
                files[0], state_keys=list(state_keys) if state_keys else None
            )
            names = None
        task = (
            task
            or meta.get("env_args", {}).get("env_name")
            or repo_id.rsplit("/", 1)[-1].replace("_", " ")
        )
        spec = lerobot_io.features(
            episodes[0].state.shape[1],
            episodes[0].action.shape[1],
            _image_shapes(episodes),
            {k: v.shape[1] for k, v in episodes[0].extra.items()},
            names,
        )
        frames = sum(ep.length for ep in episodes)
        log.info(
            "converting %d episodes (%d frames, cameras %s) with task %r",
            len(episodes),
            frames,
            list(episodes[0].cameras),
            task,
        )
        with storage.publish_dir(output, overwrite, commit_files=["meta/info.json"]) as staging:
            dataset = _write(tmp, repo_id, fps, spec, episodes, task, vcodec, workers)
            for item in dataset.iterdir():
                shutil.move(str(item), staging / item.name)
            if meta.get("splits"):
                (staging / "meta/splits.json").write_text(json.dumps(meta["splits"], indent=2))
            (staging / "meta/vlaops.json").write_text(
                json.dumps(
                    {
                        "source": input_uri,
                        "format": fmt,
                        "task": task,
                        "env_args": meta.get("env_args", {}),
                    },
                    indent=2,
                )
            )
    seconds = time.perf_counter() - start
    return Summary(
        output,
        len(episodes),
        frames,
        list(episodes[0].cameras),
        round(seconds, 2),
        round(frames / seconds, 1),
    )


def _fetch_inputs(input_uri: str, fmt: str, local: Path) -> list[Path]:
    """Local HDF5 files for the input (downloaded when remote)."""
    if not storage.exists(input_uri):
        raise VlaopsError(f"--input {input_uri}: no such file or folder")
    if storage.isdir(input_uri):
        if fmt == "robomimic-hdf5":
            raise VlaopsError(
                f"--input {input_uri} is a folder; robomimic-hdf5 expects one .hdf5 file"
            )
        uris = storage.glob(storage.join(input_uri, "*.hdf5"))
        if not uris:
            raise VlaopsError(f"--input {input_uri}: no *.hdf5 episode files in this folder")
    else:
        uris = [str(input_uri)]
    if not storage.is_remote(input_uri):
        return [storage.local_path(u) for u in uris]
    paths = []
    for uri in tqdm(uris, desc="download", unit="file", disable=len(uris) < 2):
        path = local / uri.rsplit("/", 1)[-1]
        storage.copy(uri, str(path))
        paths.append(path)
    return paths


def _image_shapes(episodes: Sequence[raw.Episode]) -> dict[str, tuple[int, int, int]]:
    """Camera → (H, W, 3), checked identical across episodes (a LeRobot feature has one shape)."""
    first = episodes[0]
    shapes = {cam: img.shape for cam, img in next(first.frames()).items()}
    for ep in episodes[1:]:
        if sorted(ep.cameras) != sorted(first.cameras):
            raise VlaopsError(
                f"{ep.label}: cameras {sorted(ep.cameras)} differ from {first.label}'s {sorted(first.cameras)}"
            )
        if ep.state.shape[1] != first.state.shape[1] or ep.action.shape[1] != first.action.shape[1]:
            raise VlaopsError(
                f"{ep.label}: state/action dims {ep.state.shape[1]}/{ep.action.shape[1]} differ from "
                f"{first.label}'s {first.state.shape[1]}/{first.action.shape[1]}"
            )
        if not ep.compressed:
            import h5py

            with h5py.File(ep.path, "r") as f:
                for cam, key in ep.cameras.items():
                    got = f[ep.group][key].shape[1:]
                    if got != shapes[cam]:
                        raise VlaopsError(
                            f"{ep.label}: camera {cam!r} frames are {got}, {first.label}'s are {shapes[cam]}"
                        )
    return shapes


def _write(
    tmp: Path,
    repo_id: str,
    fps: int,
    spec: dict,
    episodes: Sequence[raw.Episode],
    task: str,
    vcodec: str,
    workers: int | None,
) -> Path:
    """Write the dataset under ``tmp``; returns its folder."""
    workers = max(1, min(workers or default_workers(), len(episodes)))
    shards = [list(s) for s in _split(episodes, workers)]
    roots = [tmp / f"shard-{i}" for i in range(len(shards))]
    if workers == 1:
        with tqdm(total=len(episodes), desc="convert", unit="episode") as bar:
            lerobot_io.write(
                roots[0],
                repo_id,
                fps,
                spec,
                episodes,
                task,
                vcodec,
                on_episode=lambda _: bar.update(),
            )
        return roots[0]
    ctx = mp.get_context(
        "spawn"
    )  # fork is unsafe once torch is imported; each worker imports anew (~5 s)
    with ctx.Manager() as manager, cf.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        progress = manager.Queue()
        futures = [
            pool.submit(
                _write_shard, r, f"{repo_id}-shard{i}", fps, spec, s, task, vcodec, progress
            )
            for i, (r, s) in enumerate(zip(roots, shards, strict=True))
        ]
        with tqdm(total=len(episodes), desc="convert", unit="episode") as bar:
            while not all(f.done() for f in futures):
                with contextlib.suppress(queue.Empty):
                    progress.get(timeout=0.5)
                    bar.update()
                for f in futures:
                    if f.done() and f.exception():
                        for other in futures:
                            other.cancel()
                        raise f.exception()
            bar.update(len(episodes) - bar.n)
    merged = tmp / "merged"
    lerobot_io.merge(roots, merged, repo_id)
    return merged


def default_workers() -> int:
    """One writer per three cores: a writer already keeps ~3 cores busy (an encoder thread per
    camera, each a multi-threaded x264), so more writers than that only contend."""
    return max(1, (os.cpu_count() or 1) // 3)


def _write_shard(root, repo_id, fps, spec, episodes, task, vcodec, progress) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    lerobot_io.write(
        root, repo_id, fps, spec, episodes, task, vcodec, on_episode=lambda _: progress.put(1)
    )


def _split(items: Sequence, n: int) -> list[Sequence]:
    """``n`` contiguous slices of nearly equal size (order preserved)."""
    k, r = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        stop = start + k + (1 if i < r else 0)
        out.append(items[start:stop])
        start = stop
    return out
