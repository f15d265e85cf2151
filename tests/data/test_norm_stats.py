"""vlaops norm-stats against numpy on the raw arrays, openpi-style chunk counting, streaming."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vlaops import storage
from vlaops.cli import main
from vlaops.data import lerobot_io, norm_stats
from vlaops.errors import VlaopsError


def _episodes(seed=0, lengths=(40, 7, 55, 23)):
    rng = np.random.default_rng(seed)
    out = []
    for n in lengths:
        state = rng.normal(2.0, 3.0, size=(n, 5)).astype(np.float32)
        state[:, 3] = 0.25  # a constant dim: every order statistic ties
        state[:, 4] = rng.integers(-2, 3, size=n)  # many ties, negative values
        action = rng.standard_t(3, size=(n, 3)).astype(np.float32) - 1.0  # heavy tails
        out.append({"state": state, "action": action})
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ns") / "ds"
    eps = _episodes()
    lerobot_io.write_vectors(root, "t/ns", 10, eps)
    return root, eps


def _numpy_stats(x: np.ndarray) -> dict:
    x = x.astype(np.float64)
    return {
        "mean": x.mean(0),
        "std": x.std(0),
        "q01": np.quantile(x, 0.01, axis=0),
        "q99": np.quantile(x, 0.99, axis=0),
    }


def _assert_matches(got: dict, want: dict):
    for k in ("mean", "std", "q01", "q99"):
        np.testing.assert_allclose(got[k], want[k], rtol=1e-9, atol=1e-9, err_msg=k)


def test_stats_equal_numpy_on_the_raw_arrays(dataset):
    root, eps = dataset
    stats = norm_stats.compute(str(root))["norm_stats"]
    _assert_matches(stats["state"], _numpy_stats(np.concatenate([e["state"] for e in eps])))
    _assert_matches(stats["actions"], _numpy_stats(np.concatenate([e["action"] for e in eps])))
    assert len(stats["state"]["mean"]) == 5 and len(stats["actions"]["q99"]) == 3  # unpadded dims


def test_streaming_passes_equal_in_memory(dataset, monkeypatch):
    root, _ = dataset
    want, want16 = norm_stats.compute(str(root)), norm_stats.compute(str(root), 16)
    assert norm_stats.compute(str(root), memory_budget=0) == want
    # no gathering until every radix digit is known: the pure multi-pass path
    monkeypatch.setattr(norm_stats, "_GATHER_LIMIT", 0)
    assert norm_stats.compute(str(root), memory_budget=0) == want
    assert norm_stats.compute(str(root), 16, memory_budget=0) == want16
    # gathering after the second digit
    monkeypatch.setattr(norm_stats, "_GATHER_LIMIT", 30)
    assert norm_stats.compute(str(root)) == want


@pytest.mark.parametrize("horizon", [1, 5, 50])
def test_action_horizon_counts_like_openpi_chunks(dataset, horizon):
    """Brute force: every chunk of every frame, padded by repeating the episode's last action."""
    root, eps = dataset
    chunks = []
    for e in eps:
        a, n = e["action"], len(e["action"])
        for t in range(n):
            chunks.append(a[np.minimum(np.arange(t, t + horizon), n - 1)])
    want = _numpy_stats(np.concatenate(chunks))
    got = norm_stats.compute(str(root), action_horizon=horizon)["norm_stats"]
    _assert_matches(got["actions"], want)
    _assert_matches(got["state"], _numpy_stats(np.concatenate([e["state"] for e in eps])))


def test_chunk_weights_total_is_length_times_horizon():
    for length in (1, 2, 9, 50, 51, 200):
        for h in (1, 3, 50):
            w = norm_stats.chunk_weights(np.arange(length), np.full(length, length), h)
            assert w.sum() == length * h


def test_cli_writes_openpi_json(dataset, tmp_path, capsys):
    root, _ = dataset
    out = tmp_path / "norm_stats.json"
    assert main(["norm-stats", "--dataset", str(root), "--output", str(out)]) == 0
    data = json.loads(out.read_text())
    assert set(data["norm_stats"]) == {"state", "actions"}
    assert set(data["norm_stats"]["state"]) == {"mean", "std", "q01", "q99"}
    assert "q99" in capsys.readouterr().out  # the table


def test_gcs_dataset_and_output(dataset, bucket):
    root, _ = dataset
    storage.copy(str(root), storage.join(bucket, "ds"))
    out = storage.join(bucket, "stats/norm_stats.json")
    assert main(["norm-stats", "--dataset", storage.join(bucket, "ds"), "--output", out]) == 0
    assert storage.read_json(out) == norm_stats.compute(str(root))


def test_reads_no_video_and_no_other_columns(dataset, monkeypatch):
    root, _ = dataset
    seen = []
    real = pq.ParquetFile.read_row_groups

    def spy(self, *a, columns=None, **k):
        seen.append(tuple(columns))
        return real(self, *a, columns=columns, **k)

    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", spy)
    norm_stats.compute(str(root))
    assert set(seen) == {("observation.state",), ("action",)}


def test_not_a_dataset(tmp_path):
    with pytest.raises(VlaopsError, match="not a LeRobot dataset"):
        norm_stats.compute(str(tmp_path))


def test_nan_in_parquet_is_named(dataset, tmp_path):
    root, _ = dataset
    bad = tmp_path / "bad"
    storage.copy(str(root), str(bad))
    path = next(bad.glob("data/*/*.parquet"))
    t = pq.read_table(path)
    rows = t["action"].to_pylist()
    rows[3][1] = float("nan")
    t = t.set_column(
        t.schema.get_field_index("action"), "action", pa.array(rows, t.schema.field("action").type)
    )
    pq.write_table(t, path)
    with pytest.raises(VlaopsError, match=r"file-000.parquet: column 'action' has NaN/Inf"):
        norm_stats.compute(str(bad))


def test_missing_column_is_named(dataset, tmp_path):
    root, _ = dataset
    bad = tmp_path / "bad"
    storage.copy(str(root), str(bad))
    path = next(bad.glob("data/*/*.parquet"))
    pq.write_table(pq.read_table(path).drop(["observation.state"]), path)
    with pytest.raises(VlaopsError, match=r"missing column 'observation.state'"):
        norm_stats.compute(str(bad))
