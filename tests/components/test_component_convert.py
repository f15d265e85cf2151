"""components/convert called as a plain function on two tiny episodes."""

import json
from pathlib import Path

import pytest
from component_helpers import output, raw_episodes
from kfp.dsl import Dataset, Metrics

from components.convert.component import convert
from vlaops.errors import VlaopsError


def _run(tmp_path, raw_meta, dataset_uri):
    raw = Dataset(name="raw", uri=str(tmp_path / "raw.json"), metadata=raw_meta)
    dataset, metrics = output(Dataset, tmp_path, "dataset"), output(Metrics, tmp_path, "metrics")
    convert.python_func(
        raw=raw,
        dataset_uri=dataset_uri,
        repo_id="t/convert",
        fps=50,
        task_prompt="pick",
        workers=1,
        dataset=dataset,
        metrics=metrics,
    )
    return dataset, metrics


def test_convert_writes_the_dataset_at_the_uri_and_a_pointer(tmp_path):
    raw = raw_episodes(tmp_path / "raw", n=2, length=8)
    ds_uri = str(tmp_path / "ds")
    dataset, metrics = _run(tmp_path, {"uri": str(raw), "format": "aloha-hdf5"}, ds_uri)
    assert (tmp_path / "ds" / "meta" / "info.json").exists()
    assert (tmp_path / "ds" / "_SUCCESS").exists()
    pointer = json.loads(Path(dataset.path).read_text())
    assert pointer == dataset.metadata
    assert pointer["uri"] == ds_uri and pointer["episodes"] == 2 and pointer["frames"] == 16
    assert metrics.metadata["episodes"] == 2 and metrics.metadata["frames"] == 16
    assert metrics.metadata["seconds"] > 0
    # the step never re-publishes over a dataset: a second run says so
    with pytest.raises(VlaopsError, match="already exists"):
        _run(tmp_path, {"uri": str(raw), "format": "aloha-hdf5"}, ds_uri)


def test_unknown_format_fails_with_a_clear_message(tmp_path):
    raw = raw_episodes(tmp_path / "raw", n=1)
    with pytest.raises(VlaopsError, match="unknown --format 'zarr'"):
        _run(tmp_path, {"uri": str(raw), "format": "zarr"}, str(tmp_path / "ds"))
