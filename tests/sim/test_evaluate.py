"""vlaops evaluate: scores, report with playable videos, remote policies, bad input."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
from sim_helpers import ConstantPolicy, free_port_url

from vlaops import cli, storage
from vlaops.sim import evaluate, remote, video
from vlaops.sim.policy import PolicySpec


def test_scripted_policy_succeeds_and_report_has_playable_videos(tmp_path, tiny_render):
    out = tmp_path / "eval"
    m = evaluate.evaluate(
        "transfer_cube", PolicySpec("scripted"), str(out), episodes=2, videos=1, render=tiny_render
    )
    assert m["success_rate"] == 1.0 and m["max_reward_success_rate"] == 1.0
    assert m["mean_max_reward"] == 4.0
    assert json.loads((out / "metrics.json").read_text()) == m
    rows = m["episodes_detail"]
    assert [r["seed"] for r in rows] == [0, 1] and all(r["steps"] == 400 for r in rows)
    assert all(len(r["rewards"]) == 400 and r["rewards"][-1] == 4 for r in rows)
    html = (out / "report.html").read_text()
    srcs = re.findall(r'<video[^>]*src="data:video/mp4;base64,([^"]+)"', html)
    assert len(srcs) == 1
    mp4 = base64.b64decode(srcs[0])
    assert video.decode_frames(mp4) == 401  # every step plus the final state
    assert (out / "videos" / "episode_0.mp4").read_bytes() == mp4
    assert storage.is_complete(str(out))


def test_random_policy_scores_zero(tmp_path):
    rc = cli.main(
        [
            "evaluate",
            "--policy",
            "random",
            "--task",
            "transfer_cube",
            "--episodes",
            "2",
            "--steps",
            "100",
            "--output",
            str(tmp_path / "r"),
        ]
    )
    assert rc == 0
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["success_rate"] == 0.0 and m["episodes"] == 2
    assert all(r["steps"] == 100 for r in m["episodes_detail"])


def test_remote_policy_runs_through_the_same_code_path(tmp_path, tiny_render):
    """A policy behind HTTP scores exactly like the same policy in-process, and receives the
    observation a robot client sends."""
    served = ConstantPolicy(cameras=("top",), horizon=20)
    with remote.PolicyServer(served) as server:
        spec = PolicySpec("server", server.url, replan_steps=5)
        m_remote = evaluate.evaluate(
            "insertion", spec, str(tmp_path / "remote"), episodes=2, steps=30, render=tiny_render
        )
    local = ConstantPolicy(cameras=("top",), horizon=20)
    m_local = evaluate.evaluate(
        "insertion",
        PolicySpec("scripted", replan_steps=5),
        str(tmp_path / "local"),
        episodes=2,
        steps=30,
        render=tiny_render,
        policy=local,
    )
    assert [r["rewards"] for r in m_remote["episodes_detail"]] == [
        r["rewards"] for r in m_local["episodes_detail"]
    ]
    assert len(served.seen) == 2 * 30 // 5
    obs = served.seen[0]
    assert set(obs) == {"images", "state", "prompt"}
    assert obs["images"]["top"].dtype == np.uint8 and obs["images"]["top"].shape == (48, 64, 3)
    assert obs["state"].dtype == np.float32 and obs["state"].shape == (14,)
    assert obs["prompt"] == "Insert the peg into the socket."
    # The images it received are the ones the in-process policy saw (same physics, same render).
    np.testing.assert_array_equal(obs["images"]["top"], local.seen[0]["images"]["top"])


def test_parallel_workers_give_the_same_episodes(tmp_path):
    kw = dict(episodes=3, steps=40)
    one = evaluate.evaluate("insertion", PolicySpec("random"), str(tmp_path / "a"), **kw)
    two = evaluate.evaluate("insertion", PolicySpec("random"), str(tmp_path / "b"), workers=2, **kw)
    assert [r["seed"] for r in two["episodes_detail"]] == [0, 1, 2]
    assert [r["rewards"] for r in one["episodes_detail"]] == [
        r["rewards"] for r in two["episodes_detail"]
    ]


def test_evaluate_writes_to_a_bucket(bucket):
    out = f"{bucket}/evals/random"
    evaluate.evaluate("transfer_cube", PolicySpec("random"), out, episodes=1, steps=20)
    assert storage.read_json(f"{out}/metrics.json")["episodes"] == 1
    assert storage.is_complete(out)


def _error(capsys, argv) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    return err


def test_bad_input_fails_before_any_episode(tmp_path, capsys):
    out = str(tmp_path / "o")
    base = ["evaluate", "--episodes", "1", "--output", out]
    err = _error(capsys, [*base, "--policy", "scripted", "--task", "cube_transfer"])
    assert "unknown sim task 'cube_transfer'" in err
    err = _error(capsys, [*base, "--checkpoint", str(tmp_path / "no-run"), "--task", "insertion"])
    assert "no checkpoint steps here" in err

    err = _error(capsys, [*base, "--server", free_port_url(), "--task", "insertion"])
    assert "unreachable" in err
    with remote.PolicyServer(ConstantPolicy(action_dim=7)) as server:
        err = _error(capsys, [*base, "--server", server.url, "--task", "insertion"])
    assert "action dimension is 7" in err
    assert not (tmp_path / "o").exists()  # nothing was written
