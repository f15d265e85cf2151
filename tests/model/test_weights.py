"""openpi checkpoints in and out: synthetic checkpoints in openpi's exact tree layout."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import nnx
from pi0_inputs import TINY, TINY_LORA, make_noise, make_obs

from vlaops.errors import VlaopsError
from vlaops.model import lora, param, weights
from vlaops.model.pi0 import Pi0


def _write_openpi(path, tree: dict, value_keys: bool) -> None:
    """What openpi writes: {"params": tree}, leaves under a trailing "value" key when training."""
    flat = weights.flatten(tree)
    if value_keys:
        flat = {(*k, "value"): v for k, v in flat.items()}
    with ocp.PyTreeCheckpointer() as c:
        c.save(
            str(path), {"params": weights.unflatten({k: np.asarray(v) for k, v in flat.items()})}
        )


def _assert_same(a: dict, b: dict) -> None:
    fa, fb = weights.flatten(a), weights.flatten(b)
    assert fa.keys() == fb.keys()
    for k in fa:
        np.testing.assert_array_equal(np.asarray(fa[k]), np.asarray(fb[k]), err_msg=str(k))


@pytest.mark.parametrize("value_keys", [True, False], ids=["training-style", "released-style"])
def test_import_export_import_is_identity(model, tmp_path, value_keys):
    params = param.pure(model)
    _write_openpi(tmp_path / "openpi" / "params", params, value_keys)
    fresh = Pi0(TINY, nnx.Rngs(42))
    weights.assign(fresh, weights.load(str(tmp_path / "openpi" / "params")))
    _assert_same(param.pure(fresh), params)
    weights.save(fresh, str(tmp_path / "ours" / "params"))
    with ocp.PyTreeCheckpointer() as c:  # openpi's layout: key "params" at the root, no "value"
        raw = c.metadata(str(tmp_path / "ours" / "params")).item_metadata.tree
    assert set(raw) == {"params"}
    assert set(weights.flatten(raw["params"])) == set(weights.flatten(params))
    again = Pi0(TINY, nnx.Rngs(7))
    weights.assign(again, weights.load(str(tmp_path / "ours" / "params")))
    _assert_same(param.pure(again), params)


def test_restore_builds_without_random_init_and_casts(model, tmp_path, sample):
    _write_openpi(tmp_path / "params", param.pure(model), value_keys=True)
    restored = weights.restore(TINY, str(tmp_path / "params"))
    _assert_same(param.pure(restored), param.pure(model))
    obs, noise = make_obs(), make_noise()
    np.testing.assert_array_equal(sample(restored, obs, noise), sample(model, obs, noise))
    bf16 = weights.restore(TINY, str(tmp_path / "params"), dtype=jnp.bfloat16)
    assert {v.dtype for v in weights.flatten(param.pure(bf16)).values()} == {
        jnp.dtype(jnp.bfloat16)
    }


def test_base_checkpoint_into_a_lora_model(model, tmp_path, sample):
    """Missing adapters are allowed: they start fresh (B = 0), so the model equals its base."""
    _write_openpi(tmp_path / "params", param.pure(model), value_keys=False)
    m = weights.restore(TINY_LORA, str(tmp_path / "params"))
    adapters = {k: v for k, v in weights.flatten(param.pure(m)).items() if lora.is_adapter(k)}
    assert adapters and all(
        not np.asarray(v).any() for k, v in adapters.items() if k[-1].endswith("lora_b")
    )
    obs, noise = make_obs(), make_noise()
    np.testing.assert_allclose(sample(m, obs, noise), sample(model, obs, noise), atol=1e-5)


def test_through_gcs_with_dtype_cast(model, bucket):
    uri = f"{bucket}/pi0_tiny/params"
    _write_openpi(uri, param.pure(model), value_keys=True)  # tensorstore writes to the local server
    loaded = weights.load(uri, dtype=jnp.bfloat16)
    assert weights.flatten(loaded)[("state_proj", "kernel")].dtype == jnp.bfloat16
    weights.save(model, f"{bucket}/ours/params")
    _assert_same(weights.load(f"{bucket}/ours/params"), param.pure(model))


def test_errors_name_the_key(model, tmp_path):
    params = weights.flatten(param.pure(model))
    target = Pi0(TINY, nnx.Rngs(1))
    missing = {k: v for k, v in params.items() if k != ("action_out_proj", "bias")}
    with pytest.raises(VlaopsError, match="checkpoint lacks parameter action_out_proj/bias"):
        weights.assign(target, weights.unflatten(missing))
    bad = dict(params)
    bad[("state_proj", "kernel")] = np.zeros((3, 3), np.float32)
    with pytest.raises(
        VlaopsError, match=r"parameter state_proj/kernel: checkpoint shape \(3, 3\)"
    ):
        weights.assign(target, weights.unflatten(bad))
    extra = dict(params)
    extra[("PaliGemma", "llm", "layers", "attn", "q_einsum", "lora_a")] = np.zeros(3)
    with pytest.raises(VlaopsError, match="q_einsum/lora_a that the model lacks.*merge it first"):
        weights.assign(target, weights.unflatten(extra))
    with pytest.raises(VlaopsError, match="no checkpoint here"):
        weights.load(str(tmp_path / "nothing"))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x").write_text("not orbax")
    with pytest.raises(VlaopsError, match="not a readable orbax params checkpoint"):
        weights.load(str(tmp_path / "junk"))
