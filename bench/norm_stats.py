"""Norm stats: vlaops vs openpi's way (LeRobotDataset frame by frame) vs the pyarrow read limit.

    .venv/bin/python bench/norm_stats.py                 # 200k frames; ~2 min on 2 cores
    .venv/bin/python bench/norm_stats.py --frames 1000000 --reference-frames 5000

Builds (once, cached under .cache/bench/) a LeRobot v3.0 dataset of 14-d state/action with lerobot's
own writer — a 10k-frame dataset aggregated with itself — then times, in this one process:

- pyarrow reading the two parquet columns (the practical limit),
- ``vlaops norm-stats`` (in memory, streaming with a zero memory budget, and --action-horizon 50),
- the reference: iterate ``LeRobotDataset`` with a 50-step action chunk per frame, as openpi's
  compute_norm_stats does, feeding running mean/std. It runs ~300 frames/s here, so it is timed on
  the first ``--reference-frames`` frames and extrapolated linearly (pass ``--reference-frames 0``
  to run all of them).

Prints a table and the two ratios the data issue sets goals for: reference / vlaops ≥ 50×, and
vlaops / pyarrow read ≤ 3×.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from vlaops.data import lerobot_io, norm_stats

CACHE = Path(__file__).resolve().parents[1] / ".cache" / "bench"
BLOCK_FRAMES, EPISODE_LEN = 10_000, 400


def dataset(frames: int) -> Path:
    """A cached LeRobot dataset of ``frames`` frames (a multiple of 10k), made by lerobot."""
    root = CACHE / f"norm_stats_{frames}"
    if (root / "meta/info.json").exists():
        return root
    from lerobot.datasets.aggregate import aggregate_datasets

    CACHE.mkdir(parents=True, exist_ok=True)
    block = CACHE / "norm_stats_block"
    if not (block / "meta/info.json").exists():
        shutil.rmtree(block, ignore_errors=True)
        rng = np.random.default_rng(0)
        eps = [
            {
                "state": rng.normal(size=(EPISODE_LEN, 14)).astype(np.float32),
                "action": rng.standard_t(4, size=(EPISODE_LEN, 14)).astype(np.float32),
            }
            for _ in range(BLOCK_FRAMES // EPISODE_LEN)
        ]
        lerobot_io.write_vectors(block, "bench/block", 50, eps)
    copies = frames // BLOCK_FRAMES
    shutil.rmtree(root, ignore_errors=True)
    aggregate_datasets(
        [f"bench/block{i}" for i in range(copies)],
        f"bench/ns{frames}",
        roots=[block] * copies,
        aggr_root=root,
    )
    return root


def best_of(n: int, fn) -> tuple[float, object]:
    times, out = [], None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def pyarrow_read(root: Path) -> int:
    rows = 0
    for f in sorted(root.glob("data/*/*.parquet")):
        rows += pq.read_table(f, columns=["observation.state", "action"]).num_rows
    return rows


def reference(root: Path, limit: int, horizon: int = 50) -> tuple[float, int]:
    """openpi-style: LeRobotDataset with an action chunk per frame, frame by frame."""
    ds = lerobot_io.open_dataset(
        root, "bench/ref", delta_timestamps={"action": [t / 50 for t in range(horizon)]}
    )
    n = len(ds) if limit <= 0 else min(limit, len(ds))
    count, s1, s2 = 0, np.zeros(14), np.zeros(14)
    t0 = time.perf_counter()
    for i in range(n):
        item = ds[i]
        state = lerobot_io.as_numpy(item["observation.state"]).astype(np.float64)
        actions = lerobot_io.as_numpy(item["action"]).astype(np.float64)
        count, s1, s2 = count + 1, s1 + state, s2 + state**2
        _ = actions.mean(0)
    return time.perf_counter() - t0, n


def peak_rss_mb(root: Path, budget_mb: int) -> float:
    """Peak resident memory of ``vlaops norm-stats`` in a fresh process, in MB (VmHWM: unlike
    ru_maxrss, it is not inherited from this big parent across fork/exec)."""
    import subprocess
    import sys

    code = (
        "from vlaops.data import norm_stats; "
        f"norm_stats.compute({str(root)!r}, memory_budget={budget_mb << 20}); "
        "print(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return int(out.split()[-1]) / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=200_000, help="dataset size (multiple of 10000)")
    p.add_argument(
        "--memory", action="store_true", help="also measure peak memory, in memory vs streaming"
    )
    p.add_argument(
        "--reference-frames", type=int, default=3000, help="frames the reference runs (0 = all)"
    )
    args = p.parse_args()
    logging.disable(logging.INFO)

    t0 = time.perf_counter()
    root = dataset(args.frames)
    print(f"dataset: {root} ({args.frames} frames, prepared in {time.perf_counter() - t0:.1f}s)")

    t_read, rows = best_of(3, lambda: pyarrow_read(root))
    assert rows == args.frames, rows
    t_mem, stats = best_of(3, lambda: norm_stats.compute(str(root)))
    t_stream, stats_stream = best_of(1, lambda: norm_stats.compute(str(root), memory_budget=0))
    assert stats_stream == stats
    t_h50, _ = best_of(1, lambda: norm_stats.compute(str(root), action_horizon=50))
    t_ref, n_ref = reference(root, args.reference_frames)
    t_ref_full = t_ref * args.frames / n_ref

    rows = [
        ("pyarrow read, 2 columns (limit)", t_read, ""),
        ("vlaops norm-stats", t_mem, ""),
        ("vlaops norm-stats, streaming (budget 0)", t_stream, ""),
        ("vlaops norm-stats --action-horizon 50", t_h50, ""),
        (
            "reference: LeRobotDataset frame by frame, H=50",
            t_ref_full,
            "" if n_ref == args.frames else f"timed on {n_ref} frames, extrapolated",
        ),
    ]
    print(f"\n| {'method':<48} | {'seconds':>9} | {'frames/s':>11} | note")
    print(f"|{'-' * 50}|{'-' * 11}|{'-' * 13}|------")
    for name, secs, note in rows:
        print(f"| {name:<48} | {secs:>9.3f} | {args.frames / secs:>11,.0f} | {note}")
    print(
        f"\nreference / vlaops norm-stats --action-horizon 50: {t_ref_full / t_h50:,.0f}×  (goal ≥ 50×)"
    )
    print(f"reference / vlaops norm-stats:                     {t_ref_full / t_mem:,.0f}×")
    print(f"vlaops norm-stats / pyarrow read:                  {t_mem / t_read:.2f}×  (goal ≤ 3×)")
    if args.memory:
        cols_mb = args.frames * 2 * 14 * 4 / 2**20
        print(f"\npeak RSS, fresh process ({cols_mb:.0f} MB of float32 state+action):")
        for budget in (1024, 0):
            print(f"  --memory-budget-mb {budget:<5} {peak_rss_mb(root, budget):8.0f} MB")


if __name__ == "__main__":
    main()
