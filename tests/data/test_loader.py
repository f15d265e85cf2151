"""Training loader and frame cache against lerobot's own reading of the same dataset."""

from __future__ import annotations

import numpy as np
import pytest

from vlaops.data import frame_cache, lerobot_io, norm_stats, transforms
from vlaops.data.loader import DatasetArrays, Loader, LoaderConfig
from vlaops.data.synthetic import aloha_dataset
from vlaops.errors import VlaopsError

H = 8


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("loader")
    return aloha_dataset(tmp, (12, 20, 9), hw=(60, 80), repo_id="t/loader")


@pytest.fixture(scope="module")
def cache(dataset, tmp_path_factory):
    return frame_cache.build(dataset, tmp_path_factory.mktemp("cache"), workers=2)


@pytest.fixture(scope="module")
def arrays(dataset):
    return DatasetArrays.load(dataset)


def _loader(arrays, cache, **kw):
    kw.setdefault("batch_size", 4)
    return Loader(arrays, cache, LoaderConfig(action_horizon=H), seed=kw.pop("seed", 7), **kw)


@pytest.mark.slow
def test_frame_cache_equals_lerobot_decode_then_letterbox(dataset, cache):
    ds = lerobot_io.open_dataset(dataset, "t/loader")
    assert cache.num_frames == len(ds) == 41
    for i in (0, 11, 12, 31, 32, 40):  # first/last frame of every episode
        item = ds[i]
        for cam in ("cam_high", "cam_left_wrist"):
            img = (
                lerobot_io.as_numpy(item[f"observation.images.{cam}"]).transpose(1, 2, 0) * 255
            ).round()
            want = transforms.resize_with_pad(img.astype(np.uint8)[None])[0]
            got = cache.frames(cam)[i]
            assert np.abs(want.astype(int) - got.astype(int)).max() <= 1, (i, cam)


def test_cache_is_reused_and_an_interrupted_build_is_not(dataset, cache, tmp_path):
    again = frame_cache.build(dataset, cache.root.parent, workers=1)
    assert again.root == cache.root
    # a build that died before publishing leaves only a staging folder: the next build ignores it
    staging = tmp_path / (frame_cache.fingerprint(dataset, 224) + ".building")
    staging.mkdir()
    (staging / "cam_high.npy").write_bytes(b"garbage")
    rebuilt = frame_cache.build(dataset, tmp_path, workers=1)
    np.testing.assert_array_equal(rebuilt.frames("cam_high")[5], cache.frames("cam_high")[5])


def test_action_chunks_match_lerobot_delta_timestamps(dataset, arrays, cache):
    ds = lerobot_io.open_dataset(
        dataset, "t/loader", delta_timestamps={"action": [k / 50 for k in range(H)]}
    )
    loader = _loader(arrays, cache)
    idx = np.array([0, 5, 11, 12, 30, 31, 32, 40])
    batch = loader.batch(idx)
    for row, i in enumerate(idx):
        item = ds[int(i)]
        np.testing.assert_array_equal(
            batch["actions"][row, :, :14], lerobot_io.as_numpy(item["action"])
        )
        np.testing.assert_array_equal(
            batch["action_is_pad"][row], lerobot_io.as_numpy(item["action_is_pad"])
        )
        np.testing.assert_array_equal(
            batch["state"][row, :14], lerobot_io.as_numpy(item["observation.state"])
        )
    assert (
        not batch["actions"][:, :, 14:].any() and not batch["state"][:, 14:].any()
    )  # zero padding to 32


def test_cameras_and_masks(arrays, cache):
    batch = _loader(arrays, cache).batch(np.array([3, 17]))
    assert batch["images"]["base_0_rgb"].shape == (2, 224, 224, 3)
    np.testing.assert_array_equal(batch["images"]["base_0_rgb"][1], cache.frames("cam_high")[17])
    np.testing.assert_array_equal(
        batch["images"]["left_wrist_0_rgb"][0], cache.frames("cam_left_wrist")[3]
    )
    assert (
        batch["image_masks"]["base_0_rgb"].all()
        and not batch["image_masks"]["right_wrist_0_rgb"].any()
    )
    assert not batch["images"]["right_wrist_0_rgb"].any()  # absent camera: black


def test_iteration_is_a_pure_function_of_position_and_resumes(arrays, cache):
    loader = _loader(arrays, cache)
    it = iter(loader)
    first = [next(it) for _ in range(14)]  # crosses an epoch boundary (10 batches per epoch)
    assert loader.position == 14
    for k, b in enumerate(first):
        np.testing.assert_array_equal(b["state"], loader.batch_at(k)["state"])
    resumed = _loader(arrays, cache)
    resumed.load_state_dict({"position": 9, "seed": 7})
    it2 = iter(resumed)
    for k in range(9, 14):
        np.testing.assert_array_equal(next(it2)["actions"], first[k]["actions"])
    epoch0 = np.concatenate([loader.indices_at(k) for k in range(10)])
    assert len(set(epoch0)) == 40  # each frame at most once per epoch
    assert not np.array_equal(loader.indices_at(0), loader.indices_at(10))  # reshuffled per epoch
    with pytest.raises(VlaopsError, match="saved with seed 3"):
        resumed.load_state_dict({"position": 0, "seed": 3})


def test_processes_split_each_global_batch(arrays, cache):
    whole = _loader(arrays, cache, batch_size=8)
    parts = [
        _loader(arrays, cache, batch_size=8, process_index=p, process_count=2) for p in range(2)
    ]
    for pos in range(6):
        np.testing.assert_array_equal(
            np.concatenate([p.indices_at(pos) for p in parts]), whole.indices_at(pos)
        )


def test_held_out_episodes(arrays, cache):
    loader = _loader(arrays, cache, episodes=[0, 2])
    seen = np.concatenate([loader.indices_at(k) for k in range(loader.batches_per_epoch)])
    assert set(arrays.episode_index[seen]) == {0, 2}


def test_normalization_and_delta_actions(dataset, arrays, cache):
    stats = norm_stats.compute(str(dataset))
    norm = transforms.Normalizer.from_norm_stats(stats)
    mask = transforms.aloha_delta_mask()
    loader = Loader(
        arrays,
        cache,
        LoaderConfig(action_horizon=H, delta_action_mask=mask),
        batch_size=4,
        normalizer=norm,
    )
    idx = np.array([2, 20])
    b = loader.batch(idx)
    s = stats["norm_stats"]["state"]
    np.testing.assert_allclose(
        b["state"][:, :14], (arrays.state[idx] - s["mean"]) / (np.array(s["std"]) + 1e-6), rtol=1e-5
    )
    raw = arrays.action[np.minimum(idx[:, None] + np.arange(H), arrays.episode_end[idx, None] - 1)]
    delta = np.where(np.array(mask), raw - arrays.state[idx][:, None, :], raw)
    back = norm.actions_out(b["actions"])
    np.testing.assert_allclose(back, delta, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        transforms.DeltaActions(mask).to_absolute(back, arrays.state[idx]), raw, atol=1e-4
    )


def test_tokenizer_runs_once_per_task(arrays, cache):
    calls = []

    def tokenize(prompts):
        calls.append(list(prompts))
        return np.ones((len(prompts), 6), np.int32), np.ones((len(prompts), 6), bool)

    b = _loader(arrays, cache, tokenizer=tokenize).batch(np.array([1, 2, 30]))
    assert b["tokenized_prompt"].shape == (3, 6) and calls == [["pick"]]


def test_config_that_does_not_fit_the_dataset_fails_naming_the_feature(
    dataset, arrays, cache, tmp_path
):
    with pytest.raises(VlaopsError, match="camera 'cam_low' is not in the dataset"):
        Loader(arrays, cache, LoaderConfig(cameras={"base_0_rgb": "cam_low"}), batch_size=4)
    with pytest.raises(
        VlaopsError, match="feature 'observation.state' has 14 dims, more than the model's 8"
    ):
        Loader(arrays, cache, LoaderConfig(model_dim=8), batch_size=4)
    with pytest.raises(VlaopsError, match="fewer than one batch"):
        Loader(arrays, cache, LoaderConfig(), batch_size=64)
    with pytest.raises(VlaopsError, match="no video feature 'observation.images.cam_low'"):
        frame_cache.build(dataset, tmp_path, ["cam_low"])
