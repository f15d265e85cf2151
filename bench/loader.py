"""Training loader throughput: vlaops Loader vs lerobot's LeRobotDataset random access, same run.

    .venv/bin/python bench/loader.py                  # 6 episodes × 100 frames × 3 cameras 480×640, ~2 min
    .venv/bin/python bench/loader.py --episodes 20 --length 200

Makes synthetic ALOHA episodes (three 480×640 cameras), converts them with ``vlaops convert``, then
measures on one core (single-threaded, no workers):

- reference: ``LeRobotDataset`` with ``delta_timestamps`` for a 50-step action chunk, random
  indices — decodes three video frames per sample (what openpi's loader does per worker);
- vlaops: building the 224×224 frame cache (one-off; decodes every frame once, front to back) and
  the ``Loader`` assembling shuffled batches of 32 (3 cameras at 224×224, H=50, normalized, padded).

Prints samples/s per core and the ratio (goal ≥ 10×), plus the cache build rate.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from vlaops.data import frame_cache, lerobot_io, norm_stats, synthetic, transforms
from vlaops.data.convert import convert
from vlaops.data.loader import DatasetArrays, Loader, LoaderConfig

CAMERAS = ("cam_high", "cam_left_wrist", "cam_right_wrist")


def measure(episodes: int = 6, length: int = 100, reference_samples: int = 150, batches: int = 40):
    """Samples/s per core of the reference and of ours, and the frame-cache build time."""
    with tempfile.TemporaryDirectory(prefix="vlaops-bench-") as tmp:
        tmp = Path(tmp)
        (tmp / "raw").mkdir()
        for i in range(episodes):
            synthetic.aloha_episode(
                tmp / "raw" / f"episode_{i}.hdf5", length, CAMERAS, (480, 640), seed=i
            )
        convert(str(tmp / "raw"), "aloha-hdf5", str(tmp / "ds"), "bench/loader", 50, workers=1)
        ds_dir = tmp / "ds"
        frames = episodes * length
        rng = np.random.default_rng(0)

        ref = lerobot_io.open_dataset(
            ds_dir, "bench/loader", delta_timestamps={"action": [k / 50 for k in range(50)]}
        )
        idx = rng.integers(0, frames, reference_samples)
        t0 = time.perf_counter()
        for i in idx:
            item = ref[int(i)]
            assert item["action"].shape == (50, 14)
        ref_rate = len(idx) / (time.perf_counter() - t0)

        t0 = time.perf_counter()
        cache = frame_cache.build(ds_dir, tmp / "cache", workers=1)
        build_secs = time.perf_counter() - t0
        norm = transforms.Normalizer.from_norm_stats(norm_stats.compute(str(ds_dir)))
        loader = Loader(
            DatasetArrays.load(ds_dir),
            cache,
            LoaderConfig(action_horizon=50),
            batch_size=32,
            normalizer=norm,
        )
        loader.batch_at(0)  # page the cache in, like every step after the first
        t0 = time.perf_counter()
        for k in range(batches):
            b = loader.batch_at(k)
        ours_rate = batches * 32 / (time.perf_counter() - t0)
        assert b["images"]["base_0_rgb"].shape == (32, 224, 224, 3) and b["actions"].shape == (
            32,
            50,
            32,
        )
    return {"frames": frames, "reference": ref_rate, "ours": ours_rate, "build_secs": build_secs}


def report(m: dict) -> None:
    frames, ref_rate, ours_rate, build_secs = (
        m["frames"],
        m["reference"],
        m["ours"],
        m["build_secs"],
    )
    print(f"\n{frames} frames × 3 cameras 480×640, H=50, one core")
    print(f"| {'method':<60} | {'samples/s':>10} |")
    print(f"|{'-' * 62}|{'-' * 12}|")
    print(
        f"| {'reference: LeRobotDataset + delta_timestamps, random access':<60} | {ref_rate:>10.1f} |"
    )
    print(f"| {'vlaops Loader (frame cache), batches of 32':<60} | {ours_rate:>10.1f} |")
    print(f"\nvlaops / reference: {ours_rate / ref_rate:,.0f}×  (goal ≥ 10×)")
    print(
        f"frame cache build (one-off): {build_secs:.1f}s, {frames * 3 / build_secs:,.0f} camera frames/s on one worker;"
    )
    print(
        f"  it pays for itself after {build_secs * ref_rate:,.0f} reference samples "
        f"({build_secs * ref_rate / frames:.1f} epochs)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--episodes", type=int, default=6)
    p.add_argument("--length", type=int, default=100)
    p.add_argument("--reference-samples", type=int, default=150)
    p.add_argument("--batches", type=int, default=40)
    args = p.parse_args()
    logging.disable(logging.INFO)
    report(measure(args.episodes, args.length, args.reference_samples, args.batches))


if __name__ == "__main__":
    main()
