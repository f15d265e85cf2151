"""The whole path on a CPU, through the commands a person runs: scripted sim demos → LeRobot
dataset → norm stats → debug training (pi0_tiny) → in-process sim evaluation of the checkpoint →
Triton model repository → the real Triton server → an inference."""

from __future__ import annotations

import json

import pytest

from vlaops.cli import main
from vlaops.serve.client import TritonPolicy
from vlaops.serve.triton import Server


@pytest.mark.slow
def test_demos_to_served_policy(tmp_path, free_ports, capsys):
    def run(*args):
        assert main(list(args)) == 0, args

    run(
        "generate-demos",
        "--task",
        "transfer_cube",
        "--episodes",
        "2",
        "--output",
        str(tmp_path / "raw"),
        "--workers",
        "1",
    )
    run(
        "convert",
        "--input",
        str(tmp_path / "raw"),
        "--format",
        "aloha-hdf5",
        "--output",
        str(tmp_path / "ds"),
        "--repo-id",
        "sim/tc",
        "--fps",
        "50",
        "--task",
        "transfer the cube",
        "--workers",
        "1",
    )
    run("norm-stats", "--dataset", str(tmp_path / "ds"), "--output", str(tmp_path / "ns.json"))
    run(
        "train",
        "--config",
        "debug",
        "--dataset",
        str(tmp_path / "ds"),
        "--norm-stats",
        str(tmp_path / "ns.json"),
        "--checkpoint-dir",
        str(tmp_path / "run"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--steps",
        "4",
    )
    run(
        "evaluate",
        "--checkpoint",
        str(tmp_path / "run"),
        "--task",
        "transfer_cube",
        "--episodes",
        "1",
        "--output",
        str(tmp_path / "eval"),
        "--videos",
        "1",
    )
    metrics = json.loads((tmp_path / "eval/metrics.json").read_text())
    assert metrics["episodes"] == len(metrics["episodes_detail"]) == 1 and "success_rate" in metrics
    run(
        "export",
        "--checkpoint",
        str(tmp_path / "run"),
        "--model-repository",
        str(tmp_path / "models"),
    )
    with Server(
        str(tmp_path / "models"), free_ports(), free_ports(), free_ports(), exit_timeout=5
    ) as srv:
        capsys.readouterr()
        run("infer", "--server", srv.grpc_url, "--repeat", "2")
        assert "actions (10, 14)" in capsys.readouterr().out
        assert TritonPolicy(srv.grpc_url).metadata["cameras"] == ["top"]
        # a recorded frame of the training data, next to the action recorded there
        ds = str(tmp_path / "ds")
        run("infer", "--server", srv.grpc_url, "--dataset", ds, "--episode", "1", "--frame", "5")
        out = capsys.readouterr().out
        assert "actions (10, 14)" in out and "recorded action at episode 1, frame 5" in out
        assert main(["infer", "--server", srv.grpc_url, "--dataset", ds, "--episode", "7"]) == 2
        assert "no episode 7 (episodes 0..1)" in capsys.readouterr().err
