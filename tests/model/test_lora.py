"""LoRA: openpi's equations, zero-B adapters equal the base, merged equals unmerged, freeze rule."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from pi0_inputs import TINY, TINY_LORA, make_noise, make_obs

from vlaops.model import lora, param, weights
from vlaops.model.config import LoRAConfig
from vlaops.model.pi0 import Pi0


def test_adapter_equations_are_openpis():
    """Derived by relabelling the base einsum (rank replaces the weight's last axis in A, its
    second-to-last in B); for attn_vec the heads are summed before B, as in openpi."""
    assert lora.equations("BTD,NDH->BTNH") == ("BTD,NDL->BTNL", "BTNL,NLH->BTNH")
    assert lora.equations("BSD,CKDH->CBSKH") == ("BSD,CKDL->CBSKL", "CBSKL,CKLH->CBSKH")
    assert lora.equations("BTNH,NHD->BTD") == ("BTNH,NHL->BTL", "BTL,NLD->BTD")


def _with_random_adapters(model: Pi0, seed: int = 0) -> dict:
    """Give every adapter B (and A) non-trivial values; returns the model's new tree."""
    flat = weights.flatten(param.pure(model))
    rng = np.random.default_rng(seed)
    for k in flat:
        if lora.is_adapter(k):
            flat[k] = jnp.asarray(rng.normal(0, 0.05, flat[k].shape), jnp.float32)
    tree = weights.unflatten(flat)
    weights.assign(model, tree)
    return tree


@pytest.fixture(scope="module")
def lora_model(model):
    """pi0_tiny_lora holding the tiny model's base weights (adapters fresh: B = 0)."""
    m = Pi0(TINY_LORA, nnx.Rngs(1))
    weights.assign(m, param.pure(model))  # a base checkpoint: missing adapters are allowed
    return m


def test_zero_b_adapters_equal_the_base_model(model, lora_model, sample):
    obs, noise = make_obs(), make_noise()
    np.testing.assert_allclose(sample(lora_model, obs, noise), sample(model, obs, noise), atol=1e-5)


@pytest.mark.parametrize("scales", [(16, 16), (8, 16)], ids=["openpi-scale-1", "scale-0.5-on-2B"])
def test_merged_equals_unmerged(model, lora_model, sample, scales):
    cfg = dataclasses.replace(
        TINY_LORA,
        paligemma_lora=LoRAConfig(TINY_LORA.paligemma_lora.rank, scales[0] / 4),
        expert_lora=LoRAConfig(TINY_LORA.expert_lora.rank, scales[1] / 2),
    )
    m = Pi0(cfg, nnx.Rngs(2))
    weights.assign(m, param.pure(lora_model))
    tree = _with_random_adapters(m, seed=scales[0])
    obs, noise = make_obs(), make_noise()
    with_lora = sample(m, obs, noise)
    assert not np.allclose(with_lora, sample(model, obs, noise), atol=1e-3)  # adapters act
    np.testing.assert_allclose(sample(m.merged(), obs, noise), with_lora, atol=2e-4)
    # the tree-level merge (what export uses) gives the same weights
    plain = Pi0(TINY, nnx.Rngs(9))
    weights.assign(plain, weights.merge_lora(tree, cfg.paligemma_lora.scale, cfg.expert_lora.scale))
    np.testing.assert_allclose(sample(plain, obs, noise), with_lora, atol=2e-4)


def _frozen_and_trainable(cfg):
    m = nnx.eval_shape(lambda: Pi0(cfg, nnx.Rngs(0)))
    frozen = nnx.state(m, lora.freeze_filter(cfg.paligemma_lora, cfg.expert_lora))
    train = nnx.state(m, lora.trainable_filter(cfg.paligemma_lora, cfg.expert_lora))
    names = lambda s: {"/".join(map(str, k)) for k in weights.flatten(s.to_pure_dict())}  # noqa: E731
    return names(frozen), names(train), {k for k, _ in weights.key_shapes(m)}


def test_freeze_rule_is_openpis():
    frozen, train, every = _frozen_and_trainable(TINY_LORA)
    assert frozen | train == every and not frozen & train
    assert frozen == {k for k in every if "/llm/" in k and "lora" not in k}
    assert "PaliGemma/llm/layers/attn/q_einsum_1/lora_a" in train
    assert "PaliGemma/img/head/kernel" in train and "action_out_proj/kernel" in train
    # LoRA on the 2B only: the action expert trains in full, the 2B is frozen
    frozen, train, _ = _frozen_and_trainable(dataclasses.replace(TINY_LORA, expert_lora=None))
    assert "PaliGemma/llm/layers/mlp_1/linear" in train
    assert (
        "PaliGemma/llm/layers/mlp/linear" in frozen and "PaliGemma/llm/final_norm/scale" in frozen
    )
    # LoRA on the expert only: only the expert's weights freeze
    frozen, train, _ = _frozen_and_trainable(dataclasses.replace(TINY_LORA, paligemma_lora=None))
    assert (
        frozen == {k for k in frozen if "_1" in k} and "PaliGemma/llm/layers/mlp_1/linear" in frozen
    )
    assert "PaliGemma/llm/layers/mlp/linear" in train
    # no LoRA: everything trains
    frozen, train, every = _frozen_and_trainable(TINY)
    assert not frozen and train == every
