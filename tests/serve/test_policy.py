"""The served policy's transforms, with a stand-in sample function (the model is tested elsewhere).

The stand-in returns, as every action step, the normalized padded state it was given: so the
output must equal the raw state (unnormalize ∘ normalize), proving the two sides invert each other.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from vlaops.data import transforms
from vlaops.errors import VlaopsError
from vlaops.serve.policy import Policy, PolicyConfig

STATS = {
    "norm_stats": {
        k: {"mean": [1.0, -2.0, 0.5], "std": [2.0, 0.5, 1.0], "q01": [-3, -3, -3], "q99": [3, 3, 3]}
        for k in ("state", "actions")
    }
}
CONFIG = PolicyConfig(
    cameras={"base_0_rgb": "top", "left_wrist_0_rgb": "wrist"},
    state_dim=3,
    action_dim=3,
    action_horizon=4,
)


def echo_state(inputs):
    seen.append(inputs)
    return np.repeat(inputs["state"][:, None, :], 4, axis=1)


seen: list = []


def _policy(**kw):
    cfg = PolicyConfig(**{**CONFIG.__dict__, **kw})
    return Policy(echo_state, cfg, transforms.Normalizer.from_norm_stats(STATS))


def test_normalize_then_unnormalize_is_identity():
    state = np.array([3.0, 1.0, -4.0], np.float32)
    out = _policy().infer({"images": {"top": np.zeros((480, 640, 3), np.uint8)}, "state": state})[
        "actions"
    ]
    assert out.shape == (4, 3)
    np.testing.assert_allclose(out, np.tile(state, (4, 1)), rtol=1e-5)
    inputs = seen[-1]
    np.testing.assert_allclose(
        inputs["state"][0, :3], (state - [1, -2, 0.5]) / (np.array([2, 0.5, 1]) + 1e-6), rtol=1e-5
    )
    assert inputs["state"].shape == (1, 32) and not inputs["state"][0, 3:].any()


def test_cameras_letterboxed_and_masked():
    frame = np.full((480, 640, 3), 200, np.uint8)
    _policy().infer_batch(
        [
            {"images": {"top": frame}, "state": np.zeros(3)},
            {"images": {"top": frame, "wrist": frame[:100]}, "state": np.zeros(3)},
        ]
    )
    inputs = seen[-1]
    top = inputs["images"]["base_0_rgb"]
    assert top.shape == (2, 224, 224, 3)
    assert (top[0, 112] == 200).all() and not top[
        0, :27
    ].any()  # 480×640 → 168×224, black bars above/below
    np.testing.assert_array_equal(inputs["image_masks"]["left_wrist_0_rgb"], [False, True])
    assert not inputs["image_masks"]["right_wrist_0_rgb"].any()


def test_delta_actions_are_made_absolute_against_the_raw_state():
    state = np.array([3.0, 1.0, -4.0], np.float32)
    out = _policy(delta_action_mask=(True, False, True)).infer({"images": {}, "state": state})[
        "actions"
    ]
    np.testing.assert_allclose(out[0], [6.0, 1.0, -8.0], rtol=1e-5)


def test_bad_observations():
    with pytest.raises(VlaopsError, match="state has 5 dims, the policy expects 3"):
        _policy().infer({"images": {}, "state": np.zeros(5)})
    with pytest.raises(VlaopsError, match="camera 'top': expected an H×W×3 image"):
        _policy().infer({"images": {"top": np.zeros((4, 4))}, "state": np.zeros(3)})


def test_metadata_lists_the_robot_cameras():
    assert _policy().metadata == {
        "cameras": ["top", "wrist"],
        "state_dim": 3,
        "action_dim": 3,
        "action_horizon": 4,
    }


@pytest.mark.parametrize(
    ("env", "groups", "fraction"),
    [
        ({}, [{"kind": "KIND_GPU", "count": 2}], "0.450"),  # two stubs on a GPU: 45% each
        ({}, [{"kind": "KIND_GPU", "count": 1}], "0.900"),
        ({}, None, "0.900"),
        ({"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.3"}, [{"count": 4}], "0.3"),  # the chart's env wins
        ({"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}, [{"count": 4}], None),
    ],
)
def test_model_instances_share_the_gpu_memory(monkeypatch, env, groups, fraction):
    from vlaops.serve.backend import share_gpu_memory

    for k in ("XLA_PYTHON_CLIENT_MEM_FRACTION", "XLA_PYTHON_CLIENT_PREALLOCATE"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    share_gpu_memory({"instance_group": groups} if groups is not None else {})
    assert os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION") == fraction
