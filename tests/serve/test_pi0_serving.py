"""pi0 (tiny) exported from a checkpoint and served by the real Triton: answers equal the in-process
policy, batched equals unbatched, from a folder and from gs://."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from flax import nnx

from vlaops.data.loader import LoaderConfig
from vlaops.model.config import get_config
from vlaops.model.pi0 import Pi0
from vlaops.serve import export, policy
from vlaops.serve.client import TritonPolicy
from vlaops.serve.triton import Server
from vlaops.train import checkpoint

STATS = {
    "norm_stats": {
        k: {"mean": [0.1] * 14, "std": [2.0] * 14, "q01": [-3] * 14, "q99": [3] * 14}
        for k in ("state", "actions")
    }
}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A checkpoint as `vlaops train` writes it (pi0_tiny_lora, adapters non-zero, so export must merge)."""
    d = tmp_path_factory.mktemp("ckpt")
    model = Pi0(get_config("pi0_tiny_lora"), nnx.Rngs(0))
    params = nnx.state(model, nnx.Param).to_pure_dict()
    from vlaops.model import weights

    flat = weights.flatten(params)
    rng = np.random.default_rng(0)
    for k in flat:
        if "lora_b" in str(k[-1]):
            flat[k] = rng.normal(0, 0.05, flat[k].shape).astype(np.float32)
    data = dataclasses.asdict(LoaderConfig(action_horizon=10, image_size=56)) | {
        "cameras": {
            "base_0_rgb": "cam_high",
            "left_wrist_0_rgb": "cam_left_wrist",
            "right_wrist_0_rgb": None,
        }
    }
    config = {"name": "debug", "model": "pi0_tiny_lora", "data": data, "tokenizer": "bytes"}
    mgr = checkpoint.manager(str(d))
    checkpoint.save(
        mgr, 7, weights.unflatten(flat), {"step": np.int32(7)}, STATS, "aloha_sim", config
    )
    return d


def _obs(seed, h=480, w=640):
    rng = np.random.default_rng(seed)
    return {
        "images": {
            "cam_high": rng.integers(0, 255, (h, w, 3), np.uint8),
            "cam_left_wrist": rng.integers(0, 255, (h, w, 3), np.uint8),
        },
        "state": rng.normal(size=14).astype(np.float32),
        "prompt": f"pick up cube {seed}",
    }


@pytest.mark.slow
def test_served_actions_equal_in_process_policy(ckpt, tmp_path, free_ports, bucket):
    repo = str(tmp_path / "repo")
    assert export.export(str(ckpt), repo, "pi0") == 1
    assert (
        export.export(str(ckpt / "7"), repo, "pi0") == 2
    )  # a step folder works too; a new version
    gs_repo = f"{bucket}/models"
    assert export.export(str(ckpt), gs_repo, "pi0") == 1
    local = policy.load(tmp_path / "repo" / "pi0" / "2")
    assert local.metadata == {
        "cameras": ["cam_high", "cam_left_wrist"],
        "state_dim": 14,
        "action_dim": 14,
        "action_horizon": 10,
    }
    for source in (repo, gs_repo):
        with Server(
            source,
            free_ports(),
            free_ports(),
            free_ports(),
            log_file=str(tmp_path / "triton.log"),  # both runs append here
            exit_timeout=5,
        ) as srv:
            # gRPC letterboxes on the client (the model advertises its image size), HTTP sends
            # full frames for the server's policy to letterbox: the answers are the same
            for url, letterbox in ((srv.grpc_url, True), (srv.http_url, False)):
                client = TritonPolicy(url, "pi0", letterbox=letterbox)
                assert client.image_size == (56 if letterbox else None)
                assert TritonPolicy(url, "pi0").image_size == 56  # read over either protocol
                for seed in range(2):
                    np.testing.assert_allclose(
                        client.infer(_obs(seed))["actions"],
                        local.infer(_obs(seed))["actions"],
                        rtol=1e-4,
                        atol=1e-4,
                    )
            batch = [_obs(s) for s in range(3)]
            together = TritonPolicy(srv.grpc_url, "pi0").infer_batch(batch)
            alone = np.stack([TritonPolicy(srv.grpc_url, "pi0").infer(o)["actions"] for o in batch])
            np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-4)
            assert not np.allclose(together[0], together[1])


def test_export_refuses_what_is_not_a_training_checkpoint(tmp_path):
    from vlaops.errors import VlaopsError

    with pytest.raises(VlaopsError, match="no checkpoint steps here"):
        export.export(str(tmp_path), str(tmp_path / "repo"))


def test_version_folder_contents(ckpt, tmp_path):
    export.export(str(ckpt), str(tmp_path / "repo"), "pi0")
    v = tmp_path / "repo" / "pi0" / "1"
    assert {p.name for p in v.iterdir()} >= {
        "params",
        "config.json",
        "norm_stats.json",
        "policy.json",
        "model.py",
        "_SUCCESS",
    }
    assert json.loads((v / "policy.json").read_text())["factory"] == "vlaops.serve.policy:load"
    from vlaops.model import weights

    params = weights.flatten(weights.load(str(v / "params")))
    assert all(v.dtype.name == "bfloat16" for v in params.values())
    assert not any("lora" in str(k[-1]) for k in params)  # merged
