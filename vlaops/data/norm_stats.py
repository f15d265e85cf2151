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
import concurrent.futures as cf
import functools
import json
import logging
import time
from collections.abc import Iterator
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
    if action_horizon is not None and action_horizon < 1:
        raise VlaopsError(f"--action-horizon must be ≥ 1, got {action_horizon}")
    files = _parquet_files(dataset)
    lengths = _episode_lengths(dataset) if action_horizon else None
    sources = {
        name: _Source(
            files,
            column,
            action_horizon if name == "actions" else None,
            lengths,
            memory_budget // len(COLUMNS),
        )
        for name, column in COLUMNS.items()
    }
    # One thread per column: Arrow and numpy release the GIL, so the columns run side by side.
    with cf.ThreadPoolExecutor(len(sources)) as pool:
        futures = {name: pool.submit(_stats, source) for name, source in sources.items()}
        return {"norm_stats": {name: f.result() for name, f in futures.items()}}


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


def _column(batch: pa.Table, name: str) -> np.ndarray:
    col = batch.column(name).combine_chunks()
    if not (
        pa.types.is_list(col.type)
        or pa.types.is_fixed_size_list(col.type)
        or pa.types.is_large_list(col.type)
    ):
        return col.to_numpy(zero_copy_only=False)
    flat = col.flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(len(col), -1) if len(col) else flat.reshape(0, 0)


def _parquet(uri: str) -> pq.ParquetFile:
    """Local files through Arrow's own I/O; remote ones fetched whole — lerobot
    keeps data files to ~100 MB, and one ranged GET beats many small reads."""
    try:
        if storage.is_remote(uri):
            return pq.ParquetFile(pa.BufferReader(storage.read_bytes(uri)))
        return pq.ParquetFile(str(storage.local_path(uri)))
    except pa.ArrowInvalid as e:
        raise VlaopsError(f"{uri}: not a readable parquet file ({e})") from None


def _row_group_batches(
    pf: pq.ParquetFile, columns: list[str], rows: int = 1 << 16
) -> Iterator[pa.Table]:
    """Whole row groups, read several at a time (multi-threaded) up to ~``rows`` rows."""
    meta, start = pf.metadata, 0
    while start < meta.num_row_groups:
        stop, n = start, 0
        while stop < meta.num_row_groups and (n == 0 or n + meta.row_group(stop).num_rows <= rows):
            n += meta.row_group(stop).num_rows
            stop += 1
        yield pf.read_row_groups(range(start, stop), columns=columns, use_threads=True)
        start = stop


@dataclass
class _Batch:
    """One record batch of a vector column: values, their weights, radix keys made once."""

    values: np.ndarray  # (N, D) float32
    weights: np.ndarray | None  # (N,) or None for all ones
    _keys: np.ndarray | None = None

    @property
    def keys(self) -> np.ndarray:
        """(D, N) radix keys: one contiguous row per dim, for the per-dim scans."""
        if self._keys is None:
            self._keys = np.ascontiguousarray(_keys(self.values).T)
        return self._keys


class _Source:
    """The batches of one column, read once and kept when they fit the memory budget (keys
    included), otherwise read again on every pass."""

    def __init__(
        self, files: list[str], column: str, horizon: int | None, lengths: dict | None, budget: int
    ):
        self.files, self.column, self.horizon, self.lengths = files, column, horizon, lengths
        self.budget = budget
        self._cache: list[_Batch] | None = None

    def batches(self) -> Iterator[_Batch]:
        if self._cache is not None:
            yield from self._cache
            return
        columns = [self.column] + (["episode_index", "frame_index"] if self.horizon else [])
        kept, size = [], 0
        for uri in self.files:
            pf = _parquet(uri)
            missing = [c for c in columns if c not in pf.schema_arrow.names]
            if missing:
                raise VlaopsError(f"{uri}: missing column {missing[0]!r}")
            for rb in _row_group_batches(pf, columns):
                batch = self._batch(uri, rb)
                if kept is not None:
                    size += 2 * batch.values.nbytes  # values and keys
                    kept = [*kept, batch] if size <= self.budget else None
                yield batch
        self._cache = kept

    def _batch(self, uri: str, rb: pa.Table) -> _Batch:
        x = _column(rb, self.column)
        if x.ndim != 2:
            raise VlaopsError(f"{uri}: column {self.column!r} is not a vector per frame")
        if not np.isfinite(x).all():
            raise VlaopsError(f"{uri}: column {self.column!r} has NaN/Inf values")
        w = None
        if self.horizon:
            ep = rb.column("episode_index").to_numpy()
            uniq, inv = np.unique(ep, return_inverse=True)
            try:
                length = np.array([self.lengths[int(e)] for e in uniq])[inv]
            except KeyError as e:
                raise VlaopsError(
                    f"{uri}: episode {e} is in data/ but not in meta/episodes/"
                ) from None
            w = chunk_weights(rb.column("frame_index").to_numpy(), length, self.horizon)
        return _Batch(np.ascontiguousarray(x, dtype=np.float32), w)


# ── statistics ─────────────────────────────────────────────────────────────────────────────────


def _stats(source: _Source) -> dict:
    n = s1 = s2 = shift = None
    for b in source.batches():
        if shift is None:
            shift, n, s1, s2 = b.values[0].astype(np.float64), 0.0, 0.0, 0.0
        if b.values.shape[1] != len(shift):
            raise VlaopsError(
                f"column {source.column!r} has rows of {b.values.shape[1]} and of {len(shift)} dims"
            )
        for i in range(0, len(b.values), 1 << 15):  # blocks that stay in cache
            d = b.values[i : i + (1 << 15)].astype(np.float64)
            d -= shift  # shifted sums keep the variance accurate
            if b.weights is None:
                n, s1, s2 = n + len(d), s1 + d.sum(0), s2 + np.einsum("ij,ij->j", d, d)
            else:
                w = b.weights[i : i + (1 << 15)]
                n, s1, s2 = n + w.sum(), s1 + w @ d, s2 + np.einsum("i,ij,ij->j", w, d, d)
    if not n:
        raise VlaopsError(f"dataset has no rows in column {source.column!r}")
    mean = shift + s1 / n
    std = np.sqrt(np.maximum(s2 / n - (s1 / n) ** 2, 0.0))
    out = {"mean": mean.tolist(), "std": std.tolist()}
    out.update(
        {f"q{round(q * 100):02d}": v.tolist() for q, v in _quantiles(source, n, len(mean)).items()}
    )
    return out


def _quantiles(source: _Source, total: float, dims: int) -> dict:
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
    values = _select(source, targets, dims).reshape(len(QUANTILES), 2, dims)
    return {
        q: lo + frac * (hi - lo)
        for (q, (_, frac)), (lo, hi) in zip(ranks.items(), values, strict=True)
    }


@dataclass
class _Target:
    dim: int
    rank: float  # order statistic (0-based, in weight units) still to find under the prefix
    prefix: int = 0


def _select(source: _Source, targets: list[_Target], dims: int) -> np.ndarray:
    """The exact float32 order statistic of every target, by radix select on 32-bit keys.

    Pass one histograms the top 11 bits of every dim in a single bincount. Then, while the values
    left under the targets' prefixes are too many to hold, histogram the next digit of just those;
    once they fit (usually right after pass one), gather them and pick by sorting.
    """
    shift, bits = _DIGITS[0]
    hist = np.zeros((dims, 1 << bits))
    for b in source.batches():
        idx = (b.keys >> np.uint32(shift)) + (np.arange(dims, dtype=np.uint32) << np.uint32(bits))[
            :, None
        ]
        w = None if b.weights is None else np.tile(b.weights, dims)
        hist += np.bincount(idx.ravel(), weights=w, minlength=hist.size).reshape(hist.shape)
    left = _descend(targets, {(d, 0): hist[d] for d in range(dims)}, bits)
    known = shift  # keys >> known are the prefixes found so far
    for shift, bits in _DIGITS[1:]:
        if left <= _GATHER_LIMIT:
            break
        hists = {}
        for d, prefix, keys, w in _under_prefixes(source, targets, known):
            digit = (keys >> np.uint32(shift)) & np.uint32((1 << bits) - 1)
            h = np.bincount(digit, weights=w, minlength=1 << bits)
            hists[(d, prefix)] = hists.get((d, prefix), 0) + h
        left = _descend(targets, hists, bits)
        known = shift
    if known:  # gather what is left under each prefix and pick by sorting
        found: dict[tuple, list] = {}
        for d, prefix, keys, w in _under_prefixes(source, targets, known):
            found.setdefault((d, prefix), []).append((keys, np.ones(len(keys)) if w is None else w))
        for t in targets:
            keys = np.concatenate([k for k, _ in found[(t.dim, t.prefix)]])
            w = np.concatenate([w for _, w in found[(t.dim, t.prefix)]])
            order = np.argsort(keys, kind="stable")
            i = min(int(np.searchsorted(np.cumsum(w[order]), t.rank, side="right")), len(keys) - 1)
            t.prefix = int(keys[order[i]])
    return _floats(np.array([t.prefix for t in targets], dtype=np.uint32)).astype(np.float64)


_GATHER_LIMIT = 1 << 24  # values gathered for the final sort (weights bound the count from above)


def _descend(targets: list[_Target], hists: dict[tuple[int, int], np.ndarray], bits: int) -> float:
    """Move every target one digit down; returns the weight left under the new prefixes."""
    left = {}
    for t in targets:
        cum = np.cumsum(hists[(t.dim, t.prefix)])
        digit = min(int(np.searchsorted(cum, t.rank, side="right")), len(cum) - 1)
        t.rank -= cum[digit - 1] if digit else 0.0
        t.prefix = (t.prefix << bits) | digit
        left[(t.dim, t.prefix)] = cum[digit] - (cum[digit - 1] if digit else 0.0)
    return sum(left.values())


def _under_prefixes(source: _Source, targets: list[_Target], shift: int):
    """Yield ``(dim, prefix, keys, weights)`` of the values whose key >> shift is a target's prefix."""
    by_dim: dict[int, set[int]] = {}
    for t in targets:
        by_dim.setdefault(t.dim, set()).add(t.prefix)
    for b in source.batches():
        for d, prefixes in by_dim.items():
            top = b.keys[d] >> np.uint32(shift)
            hit = np.flatnonzero(functools.reduce(np.logical_or, (top == p for p in prefixes)))
            keys, tops = b.keys[d, hit], top[hit]
            w = None if b.weights is None else b.weights[hit]
            for prefix in prefixes:
                sel = tops == prefix
                yield d, prefix, keys[sel], None if w is None else w[sel]


def _keys(x: np.ndarray) -> np.ndarray:
    """float32 → uint32 keys in the same order: flip the sign bit of positives, all bits of negatives."""
    u = x.view(np.uint32)
    return u ^ ((x.view(np.int32) >> 31).view(np.uint32) | np.uint32(1 << 31))


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
