"""vlaops generate-demos: ALOHA HDF5 episodes, successful ones only, in seed order."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from vlaops import cli, storage
from vlaops.errors import VlaopsError
from vlaops.sim import demos, env, expert


@pytest.fixture
def expert_fails_on_seed_8(monkeypatch):
    """The real expert, except that it fails on seed 8 (it succeeds on nearly every seed)."""
    plan = expert.plan

    def failing_plan(task, seed, trace=None):
        demo = plan(task, seed, trace)
        if seed == 8:
            return expert.Demo(demo.actions, np.zeros_like(demo.rewards))
        return demo

    monkeypatch.setattr(expert, "plan", failing_plan)


@pytest.mark.slow
@pytest.mark.usefixtures("expert_fails_on_seed_8")
def test_writes_successful_episodes_in_the_aloha_format(tmp_path, capsys):
    out = tmp_path / "demos"
    # The expert fails on seed 8 (the fixture makes it): it must be skipped, not written.
    rc = cli.main(
        [
            "generate-demos",
            "--task",
            "transfer_cube",
            "--episodes",
            "2",
            "--seed",
            "7",
            "--output",
            str(out),
            "--cameras",
            "top,left_wrist",
            "--resolution",
            "48x64",
        ]
    )
    assert rc == 0
    assert "expert success 2/3 seeds" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["_SUCCESS", "episode_0.hdf5", "episode_1.hdf5"]
    seeds = []
    for i in range(2):
        with h5py.File(out / f"episode_{i}.hdf5") as f:
            assert bool(f.attrs["sim"]) is True
            seeds.append(int(f.attrs["seed"]))
            for key in ("observations/qpos", "observations/qvel", "action"):
                assert f[key].shape == (400, 14) and f[key].dtype == np.float32, key
            for cam in ("top", "left_wrist"):
                ds = f[f"observations/images/{cam}"]
                assert ds.shape == (400, 48, 64, 3) and ds.dtype == np.uint8
            assert set(f["observations/images"]) == {"top", "left_wrist"}
            actions, qpos = f["action"][:], f["observations/qpos"][:]
        # Observation t is the state before action t, and the episode really succeeds.
        sim = env.AlohaSim("transfer_cube", cameras=())
        np.testing.assert_allclose(sim.reset(seeds[-1])["state"], qpos[0])
        rewards = [sim.step(a, observe=False)[1] for a in actions]
        assert rewards[-1] == 4
        np.testing.assert_allclose(sim.scene.qpos(), qpos[-1], atol=0.05)
    assert seeds == [7, 9]


@pytest.mark.usefixtures("expert_fails_on_seed_8")
def test_gives_up_without_publishing_anything(tmp_path):
    out = tmp_path / "none"
    with pytest.raises(VlaopsError, match="succeeded on 0 of 1 seeds.*--max-attempts"):
        demos.generate("transfer_cube", 1, str(out), seed=8, max_attempts=1, height=48, width=64)
    assert not out.exists()


def test_bad_input(tmp_path):
    with pytest.raises(VlaopsError, match="unknown sim task"):
        demos.generate("stack_blocks", 1, str(tmp_path / "x"))
    with pytest.raises(VlaopsError, match="unknown camera"):
        demos.generate("insertion", 1, str(tmp_path / "x"), cameras=["top", "bottom"])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(VlaopsError, match="already exists"):
        demos.generate("insertion", 1, str(tmp_path / "full"))


def test_writes_to_a_bucket_with_workers(bucket):
    out = f"{bucket}/raw/cube"
    s = demos.generate("transfer_cube", 2, out, workers=2, height=48, width=64)
    assert s["written"] == 2 and s["seeds"] == [0, 1]
    assert storage.listdir(out) == ["_SUCCESS", "episode_0.hdf5", "episode_1.hdf5"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("task", "goal"),
    [
        ("transfer_cube", 0.9),
        ("insertion", 0.8),
    ],
)
def test_expert_success_rate(task, goal):
    """The expert on a small seed set (the 50-seed numbers are in bench/sim.py --expert)."""
    seeds = range(100, 110)
    rate = np.mean([expert.plan(task, s).success for s in seeds])
    assert rate >= goal, f"{task}: expert success {rate:.0%} < {goal:.0%}"
