"""vlaops convert: round trips through lerobot's own LeRobotDataset, gs:// in and out, bad input."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from vlaops import storage
from vlaops.cli import main
from vlaops.data import lerobot_io
from vlaops.data.convert import convert
from vlaops.data.synthetic import aloha_episode, robomimic_file
from vlaops.errors import VlaopsError

VIDEO_TOLERANCE = 12  # mean absolute error per pixel (0–255) allowed for the lossy h264 round trip


def _frames_by_episode(ds) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for i in range(len(ds)):
        item = ds[i]
        out.setdefault(int(item["episode_index"]), []).append(item)
    return out


def _image(item, key) -> np.ndarray:
    """LeRobotDataset returns float CHW in [0, 1]; back to HWC uint8 scale."""
    return lerobot_io.as_numpy(item[key]).transpose(1, 2, 0) * 255.0


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_aloha_round_trip_through_lerobot(tmp_path, workers):
    src = tmp_path / "raw"
    src.mkdir()
    written = [
        aloha_episode(
            src / f"episode_{i}.hdf5",
            length=n,
            cameras=("cam_high", "cam_low"),
            seed=i,
            effort=True,
        )
        for i, n in enumerate((12, 16, 10))
    ]
    out = tmp_path / "ds"
    summary = convert(
        str(src), "aloha-hdf5", str(out), repo_id="test/aloha", fps=50, task="fold", workers=workers
    )
    assert (summary.episodes, summary.frames) == (3, 38)
    assert storage.is_complete(str(out))

    ds = lerobot_io.open_dataset(out, "test/aloha")
    assert ds.num_episodes == 3 and len(ds) == 38 and ds.fps == 50
    info = json.loads((out / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    assert info["features"]["observation.state"]["names"][0] == "left_waist"
    by_ep = _frames_by_episode(ds)
    for e, raw in enumerate(written):
        items = by_ep[e]
        assert len(items) == len(raw["qpos"])
        np.testing.assert_array_equal(
            np.stack([lerobot_io.as_numpy(i["observation.state"]) for i in items]), raw["qpos"]
        )
        np.testing.assert_array_equal(
            np.stack([lerobot_io.as_numpy(i["action"]) for i in items]), raw["action"]
        )
        np.testing.assert_array_equal(
            np.stack([lerobot_io.as_numpy(i["observation.effort"]) for i in items]), raw["effort"]
        )
        assert {i["task"] for i in items} == {"fold"}
        for t in (0, len(items) - 1):
            for cam in ("cam_high", "cam_low"):
                err = np.abs(
                    _image(items[t], f"observation.images.{cam}") - raw[f"images/{cam}"][t]
                ).mean()
                assert err < VIDEO_TOLERANCE, (e, t, cam, err)


def test_one_recorded_frame_as_a_robot_observation(tmp_path):
    """What ``vlaops infer --dataset`` sends: one frame's cameras (uint8 H×W×3), state and task
    as a robot would, with the action recorded at that frame."""
    (tmp_path / "raw").mkdir()
    written = [
        aloha_episode(tmp_path / "raw" / f"episode_{i}.hdf5", n, ("cam_high",), seed=i)
        for i, n in enumerate((12, 16))
    ]
    out = tmp_path / "ds"
    convert(str(tmp_path / "raw"), "aloha-hdf5", str(out), repo_id="t/a", fps=50, task="fold")
    obs, action = lerobot_io.observation(out, 1, 7)
    np.testing.assert_array_equal(obs["state"], written[1]["qpos"][7])
    np.testing.assert_array_equal(action, written[1]["action"][7])
    image = obs["images"]["cam_high"]
    assert image.dtype == np.uint8 and image.shape == (48, 64, 3) and obs["prompt"] == "fold"
    err = np.abs(image.astype(float) - written[1]["images/cam_high"][7]).mean()
    assert err < VIDEO_TOLERANCE, err
    with pytest.raises(VlaopsError, match=r"no episode 5 \(episodes 0\.\.1\)"):
        lerobot_io.observation(out, 5, 0)
    with pytest.raises(VlaopsError, match="episode 1 has 16 frames, no frame 16"):
        lerobot_io.observation(out, 1, 16)


@pytest.mark.slow
def test_jpeg_compressed_aloha(tmp_path):
    src = tmp_path / "raw"
    src.mkdir()
    raw = aloha_episode(src / "episode_0.hdf5", length=8, cameras=("top",), compressed=True)
    out = tmp_path / "ds"
    convert(str(src), "aloha-hdf5", str(out), repo_id="t/jpeg", fps=50, workers=1)
    ds = lerobot_io.open_dataset(out, "t/jpeg")
    assert len(ds) == 8
    assert (
        np.abs(_image(ds[3], "observation.images.top") - raw["images/top"][3]).mean()
        < VIDEO_TOLERANCE
    )


@pytest.mark.slow
def test_robomimic_round_trip_keeps_splits(tmp_path):
    path = tmp_path / "demos.hdf5"
    demos = robomimic_file(path, demos=3, length=10)
    out = tmp_path / "ds"
    convert(str(path), "robomimic-hdf5", str(out), repo_id="t/lift", fps=20, workers=1)
    ds = lerobot_io.open_dataset(out, "t/lift")
    assert ds.num_episodes == 3 and len(ds) == 10 + 11 + 12
    by_ep = _frames_by_episode(ds)
    for e, d in enumerate(demos):
        want = np.concatenate(
            [d["robot0_eef_pos"], d["robot0_eef_quat"], d["robot0_gripper_qpos"]], axis=1
        )
        got = np.stack([lerobot_io.as_numpy(i["observation.state"]) for i in by_ep[e]])
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(
            np.stack([lerobot_io.as_numpy(i["action"]) for i in by_ep[e]]), d["actions"]
        )
    assert by_ep[0][0]["task"] == "Lift"  # from env_args
    assert set(ds.meta.video_keys) == {
        "observation.images.agentview",
        "observation.images.robot0_eye_in_hand",
    }
    assert json.loads((out / "meta/splits.json").read_text()) == {"train": [0, 1], "valid": [2]}


@pytest.mark.slow
def test_gcs_in_and_out(tmp_path, bucket):
    src = tmp_path / "raw"
    src.mkdir()
    for i in range(2):
        aloha_episode(src / f"episode_{i}.hdf5", length=6, seed=i)
    storage.copy(str(src), storage.join(bucket, "raw"))
    out = storage.join(bucket, "datasets/aloha")
    assert (
        main(
            [
                "convert",
                "--input",
                storage.join(bucket, "raw"),
                "--format",
                "aloha-hdf5",
                "--output",
                out,
                "--repo-id",
                "t/gcs",
                "--fps",
                "50",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    assert storage.is_complete(out)
    with storage.as_local_dir(out) as local:
        assert lerobot_io.open_dataset(local, "t/gcs").num_episodes == 2
    # what `vlaops train` and `vlaops infer --dataset` read: one local copy, made once
    cache = tmp_path / "cache"
    copy = lerobot_io.local_copy(out, cache)
    assert copy.parent == cache and lerobot_io.open_dataset(copy).num_episodes == 2
    stamp = (copy / "meta/info.json").stat().st_mtime_ns
    assert lerobot_io.local_copy(out, cache) == copy
    assert (copy / "meta/info.json").stat().st_mtime_ns == stamp
    with pytest.raises(VlaopsError, match="datasets/none: not a LeRobot dataset"):
        lerobot_io.local_copy(storage.join(bucket, "datasets/none"), cache)


# ── bad input: one line naming file, key and problem; nothing published ────────────────────────


def _corrupt(src, name, edit):
    path = src / name
    with h5py.File(path, "a") as f:
        edit(f)


BAD_ALOHA = {
    "missing key": (lambda f: f.__delitem__("action"), r"episode_1.hdf5: missing key 'action'"),
    "mismatched lengths": (
        lambda f: (
            f.__delitem__("action"),
            f.create_dataset("action", data=np.zeros((5, 14), np.float32)),
        ),
        r"episode_1.hdf5: mismatched lengths .*/observations/qpos has 6, /action has 5",
    ),
    "nan": (
        lambda f: f["observations/qpos"].__setitem__((3, 2), np.nan),
        r"episode_1.hdf5: observations/qpos: 1 NaN/Inf values \(first at row 3\)",
    ),
    "no cameras": (
        lambda f: f.__delitem__("observations/images"),
        r"episode_1.hdf5: missing key 'observations/images'",
    ),
    "bad image shape": (
        lambda f: (
            f.__delitem__("observations/images/top"),
            f.create_dataset("observations/images/top", data=np.zeros((6, 4, 4), np.float32)),
        ),
        r"episode_1.hdf5: /observations/images/top: expected \(T, H, W, 3\) uint8",
    ),
}


@pytest.fixture
def two_episodes(tmp_path):
    src = tmp_path / "raw"
    src.mkdir()
    for i in range(2):
        aloha_episode(src / f"episode_{i}.hdf5", length=6, seed=i)
    return src


@pytest.mark.parametrize("case", sorted(BAD_ALOHA))
def test_bad_aloha_input_is_a_one_line_error_and_publishes_nothing(
    two_episodes, tmp_path, capsys, case
):
    edit, message = BAD_ALOHA[case]
    _corrupt(two_episodes, "episode_1.hdf5", edit)
    out = tmp_path / "out"
    rc = main(
        [
            "convert",
            "--input",
            str(two_episodes),
            "--format",
            "aloha-hdf5",
            "--output",
            str(out),
            "--repo-id",
            "t/bad",
            "--fps",
            "50",
            "--workers",
            "1",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("error: ") and "\n" not in err
    assert __import__("re").search(message, err), err
    assert not out.exists()


def test_truncated_file(two_episodes, tmp_path):
    path = two_episodes / "episode_1.hdf5"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(VlaopsError, match="episode_1.hdf5: not a readable HDF5 file"):
        convert(str(two_episodes), "aloha-hdf5", str(tmp_path / "out"), repo_id="t/x", fps=50)
    assert not (tmp_path / "out").exists()


def test_not_hdf5_at_all(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw/episode_0.hdf5").write_text("hello")
    with pytest.raises(VlaopsError, match="episode_0.hdf5: not a readable HDF5 file"):
        convert(str(tmp_path / "raw"), "aloha-hdf5", str(tmp_path / "out"), repo_id="t/x", fps=50)


@pytest.mark.slow
def test_corrupt_jpeg_frame_fails_mid_conversion_without_publishing(tmp_path):
    src = tmp_path / "raw"
    src.mkdir()
    aloha_episode(src / "episode_0.hdf5", length=6, compressed=True)
    with h5py.File(src / "episode_0.hdf5", "a") as f:
        f["observations/images/top"][4] = 7  # frame 4 is garbage bytes
    with pytest.raises(
        VlaopsError, match=r"observations/images/top: frame 4 is not a decodable image"
    ):
        convert(str(src), "aloha-hdf5", str(tmp_path / "out"), repo_id="t/x", fps=50, workers=1)
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.staging-*"))


def test_wrong_format_for_input(two_episodes, tmp_path):
    with pytest.raises(VlaopsError, match="robomimic-hdf5 expects one .hdf5 file"):
        convert(str(two_episodes), "robomimic-hdf5", str(tmp_path / "out"), repo_id="t/x", fps=50)
    with pytest.raises(VlaopsError, match="missing key 'data'"):
        convert(
            str(two_episodes / "episode_0.hdf5"),
            "robomimic-hdf5",
            str(tmp_path / "out"),
            repo_id="t/x",
            fps=50,
        )
    with pytest.raises(VlaopsError, match="unknown --format 'zarr'"):
        convert(str(two_episodes), "zarr", str(tmp_path / "out"), repo_id="t/x", fps=50)


def test_cli_rejects_unknown_format(capsys):
    with pytest.raises(SystemExit):
        main(
            [
                "convert",
                "--input",
                "x",
                "--format",
                "zarr",
                "--output",
                "y",
                "--repo-id",
                "r",
                "--fps",
                "1",
            ]
        )
    assert "invalid choice: 'zarr'" in capsys.readouterr().err


def test_non_empty_output_refused(two_episodes, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(VlaopsError, match="already exists and is not empty"):
        convert(str(two_episodes), "aloha-hdf5", str(out), repo_id="t/x", fps=50)
    assert (out / "precious.txt").read_text() == "keep me"


def test_missing_input(tmp_path):
    with pytest.raises(VlaopsError, match="no such file or folder"):
        convert(str(tmp_path / "nope"), "aloha-hdf5", str(tmp_path / "out"), repo_id="t/x", fps=50)


def test_robomimic_missing_state_key(tmp_path):
    path = tmp_path / "demos.hdf5"
    robomimic_file(path, demos=2, length=5)
    with pytest.raises(VlaopsError, match=r"missing key 'data/demo_0/obs/joint_vel'"):
        convert(
            str(path),
            "robomimic-hdf5",
            str(tmp_path / "out"),
            repo_id="t/x",
            fps=20,
            state_keys=["joint_vel"],
        )


def test_inconsistent_cameras_across_episodes(tmp_path):
    src = tmp_path / "raw"
    src.mkdir()
    aloha_episode(src / "episode_0.hdf5", length=5, cameras=("top",))
    aloha_episode(src / "episode_1.hdf5", length=5, cameras=("top", "wrist"))
    with pytest.raises(VlaopsError, match=r"episode_1.hdf5: cameras \['top', 'wrist'\] differ"):
        convert(str(src), "aloha-hdf5", str(tmp_path / "out"), repo_id="t/x", fps=50)


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    assert "vlaops convert --input" in capsys.readouterr().out
