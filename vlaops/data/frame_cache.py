"""A one-off cache of every camera frame of a LeRobot dataset, decoded and letterboxed to 224×224.

Training samples frames at random; decoding an mp4 at a random position costs a seek to the previous
keyframe and a decode per sample (lerobot's random access runs ~250 frames/s on a core). Instead
each video file is decoded once, front to back (the fast way to read video), every frame resized
with ``transforms.resize_with_pad`` and written at its global frame index into one uint8 array
per camera on local disk (a memory map: 147 KB a frame, 3 cameras × 20k frames ≈ 9 GB — the local
SSD of the training pool). Afterwards a sample is a memory copy.

Files are decoded in parallel worker processes. The cache is keyed by a fingerprint of the dataset's
metadata and published by writing ``cache.json`` last, so an interrupted build is never used.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import logging
import multiprocessing as mp
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from tqdm import tqdm

from vlaops.data import transforms
from vlaops.errors import VlaopsError

log = logging.getLogger(__name__)
MARKER = "cache.json"


@dataclass(frozen=True)
class FrameCache:
    """Read side: ``frames(camera)`` is an (N, S, S, 3) uint8 memory map, N = dataset frames."""

    root: Path
    cameras: tuple[str, ...]
    num_frames: int
    size: int

    def frames(self, camera: str) -> np.ndarray:
        return np.load(self.root / f"{camera}.npy", mmap_mode="r")

    @classmethod
    def open(cls, root: Path) -> FrameCache:
        meta = json.loads((root / MARKER).read_text())
        return cls(root, tuple(meta["cameras"]), meta["num_frames"], meta["size"])


def fingerprint(dataset: Path, size: int) -> str:
    """Changes whenever the dataset's frames could: info.json, episode metadata, image size."""
    h = hashlib.sha256((dataset / "meta/info.json").read_bytes())
    for p in sorted(dataset.glob("meta/episodes/*/*.parquet")):
        h.update(p.read_bytes())
    h.update(str(size).encode())
    return h.hexdigest()[:16]


def build(
    dataset: Path,
    cache_dir: Path,
    cameras: list[str] | None = None,
    size: int = 224,
    workers: int | None = None,
) -> FrameCache:
    """Build (or reuse) the cache of a local LeRobot dataset; returns it opened."""
    info = json.loads((dataset / "meta/info.json").read_text())
    video_keys = [k for k, f in info["features"].items() if f["dtype"] == "video"]
    available = [k.removeprefix("observation.images.") for k in video_keys]
    cameras = list(cameras or available)
    for cam in cameras:
        if cam not in available:
            raise VlaopsError(
                f"{dataset}: no video feature 'observation.images.{cam}' (has {available})"
            )
    root = cache_dir / fingerprint(dataset, size)
    if (root / MARKER).exists():
        cache = FrameCache.open(root)
        if set(cameras) <= set(cache.cameras):
            return cache
    n = int(info["total_frames"])
    staging = root.with_name(root.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for cam in cameras:
        np.lib.format.open_memmap(staging / f"{cam}.npy", "w+", np.uint8, (n, size, size, 3))
    jobs = _jobs(dataset, info, cameras, staging, size)
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    filled = np.zeros((len(cameras), n), np.int32)
    with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(_decode_file, *job) for job in jobs]
        with tqdm(total=n * len(cameras), desc="frame cache", unit="frame") as bar:
            for f in cf.as_completed(futures):
                cam, idx = f.result()
                np.add.at(filled[cameras.index(cam)], idx, 1)
                bar.update(len(idx))
    for ci, cam in enumerate(cameras):
        bad = np.flatnonzero(filled[ci] != 1)
        if len(bad):
            raise VlaopsError(
                f"{dataset}: camera {cam!r}: {len(bad)} frames missing or duplicated in the videos "
                f"(first at dataset index {bad[0]}); the dataset's videos and metadata disagree"
            )
    (staging / MARKER).write_text(json.dumps({"cameras": cameras, "num_frames": n, "size": size}))
    shutil.rmtree(root, ignore_errors=True)
    os.rename(staging, root)
    return FrameCache.open(root)


def _jobs(dataset: Path, info: dict, cameras: list[str], out: Path, size: int) -> list[tuple]:
    """One job per (camera, video file): the episodes it holds and where their frames go."""
    episodes = pq.read_table(sorted(dataset.glob("meta/episodes/*/*.parquet"))).to_pylist()
    fps = float(info["fps"])
    jobs = {}
    for cam in cameras:
        key = f"observation.images.{cam}"
        for ep in episodes:
            chunk, file = ep[f"videos/{key}/chunk_index"], ep[f"videos/{key}/file_index"]
            path = dataset / info["video_path"].format(
                video_key=key, chunk_index=chunk, file_index=file
            )
            spans = jobs.setdefault((cam, str(path)), [])
            spans.append(
                (ep[f"videos/{key}/from_timestamp"], ep["dataset_from_index"], ep["length"])
            )
    return [
        (cam, path, spans, str(out / f"{cam}.npy"), fps, size)
        for (cam, path), spans in jobs.items()
    ]


def _decode_file(camera: str, path: str, spans: list[tuple], out: str, fps: float, size: int):
    """Decode one mp4 front to back; write each frame of the listed episodes at its index."""
    import av

    frames = np.load(out, mmap_mode="r+")
    spans = sorted(spans)
    starts = np.array([s[0] for s in spans])
    written = []
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        batch, targets = [], []
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base)
            e = int(np.searchsorted(starts, t + 0.5 / fps, side="right")) - 1
            if e < 0:
                continue
            start_ts, first, length = spans[e]
            i = round((t - start_ts) * fps)
            if not 0 <= i < length:
                continue
            batch.append(frame.to_ndarray(format="rgb24"))
            targets.append(first + i)
            if len(batch) == 64:
                frames[targets] = transforms.resize_with_pad(np.stack(batch), size)
                written += targets
                batch, targets = [], []
        if batch:
            frames[targets] = transforms.resize_with_pad(np.stack(batch), size)
            written += targets
    frames.flush()
    return camera, np.asarray(written, np.int64)
