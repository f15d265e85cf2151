"""Normalization statistics of a LeRobot dataset, in openpi's norm_stats.json shape.

  vlaops norm-stats --dataset gs://datasets/transfer_cube --output gs://datasets/transfer_cube/norm_stats.json
  vlaops norm-stats --dataset data/lift --output stats.json --action-horizon 50   # count like openpi

Reads only the two parquet columns it needs (never a video) in streamed record batches. Mean and
std are accumulated in float64. q01/q99 are exact: each is the linear interpolation (numpy's
default) between two order statistics, found by a radix select over the order-preserving 32-bit
keys of the float32 values — three histogram passes of 11/11/10 bits. When the columns fit in
``--memory-budget-mb`` the batches are kept and the passes run in memory; otherwise each pass
re-reads the columns, so memory stays bounded by the budget for datasets of any size.

``--action-horizon H`` weights every action the way openpi's compute_norm_stats sees it: once per
H-step chunk it falls in, the last action of an episode repeated into the padding.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vlaops import storage
from vlaops.errors import VlaopsError

HELP = "normalization statistics (mean, std, exact q01/q99) of a LeRobot dataset → openpi JSON"
log = logging.getLogger(__name__)

COLUMNS = {"state": "observation.state", "actions": "action"}  # openpi key → LeRobot column
QUANTILES = (0.01, 0.99)
_DIGITS = ((21, 11), (10, 11), (0, 10))  # (shift, bits) of each radix pass over 32-bit keys


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help="LeRobot v3.0 dataset URI (path or gs://)")
    p.add_argument("--output", required=True, help="norm_stats.json URI to write")
    p.add_argument(
        "--action-horizon",
        type=int,
        default=None,
        help="count each action once per chunk of this length, as openpi does (default: once)",
    )
    p.add_argument(
        "--memory-budget-mb",
        type=int,
        default=1024,
        help="keep the columns in memory up to this size; above it, stream several passes",
    )


def run(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    stats = compute(args.dataset, args.action_horizon, args.memory_budget_mb << 20)
    storage.write_json(args.output, stats)
    print(f"wrote {args.output} in {time.perf_counter() - t0:.2f}s")
    print(format_table(stats))


def compute(dataset: str, action_horizon: int | None = None, memory_budget: int = 1 << 30) -> dict:
    """``{"norm_stats": {"state": {mean, std, q01, q99}, "actions": {...}}}`` for a dataset URI."""
    files = _parquet_files(dataset)
    lengths = _episode_lengths(dataset) if action_horizon else None
    if action_horizon is not None and action_horizon < 1:
        raise VlaopsError(f"--action-horizon must be ≥ 1, got {action_horizon}")

    def weights(name: str, batch: pa.RecordBatch) -> np.ndarray | None:
        if name != "actions" or not action_horizon:
            return None
        return chunk_weights(
            _column(batch, "frame_index", files), _lengths_of(batch, lengths), action_horizon
        )

    source = _Source(files, action_horizon is not None, memory_budget)
    return {"norm_stats": {name: _stats(source, name, weights) for name in COLUMNS}}


def chunk_weights(frame_index: np.ndarray, length: np.ndarray, horizon: int) -> np.ndarray:
    """How often each frame's action appears across the H-step chunks of its episode, when chunks
    start at every frame and run past the end by repeating the last action (lerobot's padding)."""
    j, t, h = frame_index.astype(np.int64), length.astype(np.int64), horizon
    w = np.minimum(j, h - 1) + 1
    m = np.minimum(t, h)
    last = m * h - m * (m - 1) // 2  # Σ_{d=0}^{min(T,H)-1} (H − d)
    return np.where(j == t - 1, last, w).astype(np.float64)


# ── reading ────────────────────────────────────────────────────────────────────────────────────


def _parquet_files(dataset: str) -> list[str]:
    if not storage.exists(storage.join(dataset, "meta/info.json")):
        raise VlaopsError(f"--dataset {dataset}: not a LeRobot dataset (no meta/info.json)")
    files = storage.glob(storage.join(dataset, "data/*/*.parquet"))
    if not files:
        raise VlaopsError(f"--dataset {dataset}: no parquet files under data/")
    return files


def _episode_lengths(dataset: str) -> dict[int, int]:
    lengths = {}
    for uri in storage.glob(storage.join(dataset, "meta/episodes/*/*.parquet")):
        with storage.open(uri) as f:
            t = pq.read_table(f, columns=["episode_index", "length"])
        lengths.update(zip(t["episode_index"].to_pylist(), t["length"].to_pylist(), strict=True))
    if not lengths:
        raise VlaopsError(f"--dataset {dataset}: no episode metadata under meta/episodes/")
    return lengths


def _lengths_of(batch: pa.RecordBatch, lengths: dict[int, int]) -> np.ndarray:
    ep = batch.column("episode_index").to_numpy()
    uniq, inv = np.unique(ep, return_inverse=True)
    try:
        return np.array([lengths[int(e)] for e in uniq])[inv]
    except KeyError as e:
        raise VlaopsError(f"episode {e} is in data/ but not in meta/episodes/") from None


def _column(batch: pa.RecordBatch, name: str, where) -> np.ndarray:
    col = batch.column(name)
    if (
        pa.types.is_list(col.type)
        or pa.types.is_fixed_size_list(col.type)
        or pa.types.is_large_list(col.type)
    ):
        flat = col.flatten().to_numpy(zero_copy_only=False)
        out = flat.reshape(len(col), -1) if len(col) else flat.reshape(0, 0)
    else:
        out = col.to_numpy(zero_copy_only=False)
    return out


class _Source:
    """Record batches of the needed columns, kept in memory when they fit the budget."""

    def __init__(self, files: list[str], need_index: bool, budget: int):
        self.files = files
        self.columns = [*COLUMNS.values()] + (
            ["episode_index", "frame_index"] if need_index else []
        )
        self.budget = budget
        self._cache: list[pa.RecordBatch] | None = None

    def batches(self) -> Iterator[tuple[str, pa.RecordBatch]]:
        if self._cache is not None:
            yield from ((self.files[0], b) for b in self._cache)
            return
        kept, size = [], 0
        for uri in self.files:
            with storage.open(uri) as f:
                pf = pq.ParquetFile(f)
                missing = [c for c in self.columns if c not in pf.schema_arrow.names]
                if missing:
                    raise VlaopsError(f"{uri}: missing column {missing[0]!r}")
                for b in pf.iter_batches(batch_size=1 << 16, columns=self.columns):
                    if kept is not None:
                        size += b.nbytes
                        kept = [*kept, b] if size <= self.budget else None
                    yield uri, b
        if kept is not None:
            self._cache = kept


# ── statistics ─────────────────────────────────────────────────────────────────────────────────


@dataclass
class _Target:
    dim: int
    rank: float  # order statistic (0-based, in weight units) still to find below the prefix
    prefix: int = 0


def _stats(source: _Source, name: str, weights: Callable) -> dict:
    column = COLUMNS[name]
    n = s1 = s2 = shift = None
    for uri, b in source.batches():
        x = _column(b, column, uri).astype(np.float64)
        if x.ndim != 2:
            raise VlaopsError(f"{uri}: column {column!r} is not a vector per frame")
        bad = ~np.isfinite(x)
        if bad.any():
            raise VlaopsError(f"{uri}: column {column!r} has NaN/Inf values")
        w = weights(name, b)
        w = np.ones(len(x)) if w is None else w
        if shift is None:
            shift, n, s1, s2 = x[0].copy(), 0.0, np.zeros(x.shape[1]), np.zeros(x.shape[1])
        if x.shape[1] != len(shift):
            raise VlaopsError(
                f"{uri}: column {column!r} has {x.shape[1]} dims, earlier rows {len(shift)}"
            )
        d = x - shift
        n, s1, s2 = n + w.sum(), s1 + w @ d, s2 + w @ (d * d)
    if not n:
        raise VlaopsError(f"dataset has no rows in column {column!r}")
    mean = shift + s1 / n
    std = np.sqrt(np.maximum(s2 / n - (s1 / n) ** 2, 0.0))
    out = {"mean": mean.tolist(), "std": std.tolist()}
    out.update(
        {
            f"q{round(q * 100):02d}": v.tolist()
            for q, v in _quantiles(source, name, weights, n, len(mean)).items()
        }
    )
    return out


def _quantiles(source: _Source, name: str, weights: Callable, total: float, dims: int) -> dict:
    """numpy's linear-interpolation quantiles of each dim, each from two exact order statistics."""
    ranks = {}
    for q in QUANTILES:
        pos = q * (total - 1)
        ranks[q] = (np.floor(pos), pos - np.floor(pos))
    targets = [
        _Target(d, r)
        for lo, _ in ranks.values()
        for r in (lo, min(lo + 1, total - 1))
        for d in range(dims)
    ]
    values = _select(source, name, weights, targets).reshape(len(QUANTILES), 2, dims)
    return {
        q: lo + frac * (hi - lo)
        for (q, (_, frac)), (lo, hi) in zip(ranks.items(), values, strict=True)
    }


def _select(source: _Source, name: str, weights: Callable, targets: list[_Target]) -> np.ndarray:
    """The exact float32 order statistic for every target, by radix select on 32-bit keys."""
    known = 0  # bits of the prefix found so far
    for shift, bits in _DIGITS:
        hists = [np.zeros(1 << bits) for _ in targets]
        for uri, b in source.batches():
            keys = _keys(_column(b, COLUMNS[name], uri))
            w = weights(name, b)
            for t, hist in zip(targets, hists, strict=True):
                col = keys[:, t.dim]
                sel = (col >> np.uint32(shift + bits)) == t.prefix if known else slice(None)
                digit = (col[sel] >> np.uint32(shift)) & np.uint32((1 << bits) - 1)
                hist += np.bincount(
                    digit, weights=None if w is None else w[sel], minlength=1 << bits
                )
        for t, hist in zip(targets, hists, strict=True):
            cum = np.cumsum(hist)
            digit = min(int(np.searchsorted(cum, t.rank, side="right")), len(cum) - 1)
            t.rank -= cum[digit - 1] if digit else 0.0
            t.prefix = (t.prefix << bits) | digit
        known += bits
    return _floats(np.array([t.prefix for t in targets], dtype=np.uint32)).astype(np.float64)


def _keys(x: np.ndarray) -> np.ndarray:
    """float32 → uint32 keys with the same order (sign bit flipped; negatives inverted)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    return np.where(u >> np.uint32(31), ~u, u | np.uint32(1 << 31))


def _floats(k: np.ndarray) -> np.ndarray:
    u = np.where(k >> np.uint32(31), k & np.uint32(0x7FFFFFFF), ~k)
    return u.astype(np.uint32).view(np.float32)


def format_table(stats: dict) -> str:
    """A compact per-dimension table for the terminal."""
    lines = []
    for name, s in stats["norm_stats"].items():
        lines.append(f"{name}: {'dim':>4} {'mean':>10} {'std':>10} {'q01':>10} {'q99':>10}")
        for i, row in enumerate(zip(s["mean"], s["std"], s["q01"], s["q99"], strict=True)):
            lines.append(f"{'':{len(name) + 1}} {i:>4} " + " ".join(f"{v:>10.4f}" for v in row))
    return "\n".join(lines)


def load(uri: str) -> dict:
    """Read a norm_stats.json (ours or openpi's), checking its shape."""
    data = storage.read_json(uri)
    try:
        stats = data["norm_stats"]
        for name in COLUMNS:
            for key in ("mean", "std"):
                np.asarray(stats[name][key], dtype=np.float64)
    except (KeyError, TypeError) as e:
        raise VlaopsError(f"{uri}: not an openpi norm_stats.json (missing {e})") from None
    return data


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(compute(__import__("sys").argv[1]), indent=2))
