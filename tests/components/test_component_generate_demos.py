"""components/generate_demos called as a plain function."""

import json
from pathlib import Path

import pytest
from component_helpers import output, raw_episodes
from kfp.dsl import Dataset, Metrics

from components.generate_demos.component import generate_demos
from vlaops.errors import VlaopsError


def _run(tmp_path, **kw):
    demos, metrics = output(Dataset, tmp_path, "demos"), output(Metrics, tmp_path, "metrics")
    args = {"sim_task": "", "episodes": 1, "raw_format": "aloha-hdf5", "seed": 0, **kw}
    generate_demos.python_func(demos=demos, metrics=metrics, **args)
    return demos, metrics


def test_given_raw_data_is_checked_and_passed_on(tmp_path):
    raw = raw_episodes(tmp_path / "raw", n=3)
    demos, metrics = _run(tmp_path, raw_uri=str(raw))
    assert demos.metadata["uri"] == str(raw) and demos.metadata["format"] == "aloha-hdf5"
    assert json.loads(Path(demos.path).read_text())["uri"] == str(raw)
    assert metrics.metadata["files"] == 3


@pytest.mark.parametrize(
    ("raw_uri", "raw_format", "message"),
    [("missing", "aloha-hdf5", "nothing there"), ("raw", "lerobot", "raw_format 'lerobot'")],
)
def test_bad_raw_input_fails_with_a_clear_message(tmp_path, raw_uri, raw_format, message):
    raw_episodes(tmp_path / "raw", n=1)
    with pytest.raises(VlaopsError, match=message):
        _run(tmp_path, raw_uri=str(tmp_path / raw_uri), raw_format=raw_format)


def test_sim_task_generates_demonstrations(tmp_path):
    demos, metrics = _run(tmp_path, sim_task="transfer_cube", raw_uri=str(tmp_path / "demos"))
    assert (tmp_path / "demos" / "episode_0.hdf5").exists()
    assert demos.metadata["format"] == "aloha-hdf5" and demos.metadata["generated"]
    assert metrics.metadata["episodes"] == 1 and metrics.metadata["expert_success_rate"] > 0
