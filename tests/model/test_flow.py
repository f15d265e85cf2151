"""Flow matching: the loss trains, KV-cached sampling equals recomputing, sampling is deterministic."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from pi0_inputs import TINY, B, make_noise, make_obs

from vlaops.model.pi0 import Pi0, posemb_sincos


@pytest.mark.slow
def test_loss_is_finite_and_decreases_on_a_fixed_batch():
    model = Pi0(TINY, nnx.Rngs(3))
    obs = make_obs()
    actions = jnp.asarray(
        np.random.default_rng(0).normal(size=(B, TINY.action_horizon, TINY.action_dim)), jnp.float32
    )
    graphdef, params = nnx.split(model, nnx.Param)
    tx = optax.adam(3e-3)

    @jax.jit
    def step(params, opt):
        def loss_of(p):
            return nnx.merge(graphdef, p).compute_loss(jax.random.key(0), obs, actions).mean()

        loss, grads = jax.value_and_grad(loss_of)(params)
        updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), opt, loss

    opt, losses = tx.init(params), []
    for _ in range(6):
        params, opt, loss = step(params, opt)
        losses.append(float(loss))
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.7 * losses[0], losses


@pytest.mark.slow
def test_remat_gives_the_same_loss_and_gradients(model):
    obs, actions = make_obs(), make_noise(5)

    def loss_and_grads(m):
        graphdef, params = nnx.split(m, nnx.Param)

        def loss_of(p):
            return nnx.merge(graphdef, p).compute_loss(jax.random.key(1), obs, actions).mean()

        return jax.jit(jax.value_and_grad(loss_of))(params)

    loss, grads = loss_and_grads(model)
    remat = Pi0(dataclasses.replace(TINY, remat=True), nnx.Rngs(0))  # same seed: same weights
    loss_r, grads_r = loss_and_grads(remat)
    assert np.isfinite(float(loss))
    np.testing.assert_allclose(loss_r, loss, rtol=1e-5)
    for g, g_r in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_r), strict=True):
        np.testing.assert_allclose(g_r, g, rtol=1e-4, atol=1e-6)


def test_sampling_with_kv_cache_equals_full_recompute_and_is_deterministic(model, sample):
    obs = make_obs(masked_camera=True)
    cached = sample(model, obs, make_noise())
    full = sample(model, obs, make_noise(), use_cache=False)
    np.testing.assert_allclose(cached, full, atol=2e-5)
    np.testing.assert_array_equal(
        cached, sample(model, obs, make_noise())
    )  # same noise, same answer
    assert not np.allclose(cached, sample(model, obs, make_noise(7)), atol=1e-3)  # noise matters
    assert not np.allclose(cached, sample(model, make_obs(seed=5), make_noise()), atol=1e-3)


def test_one_euler_step_goes_from_t1_by_dt_minus_one(model, sample):
    """openpi's convention: start at t = 1 (noise), step by dt = −1/N along the predicted flow."""
    obs, noise = make_obs(), make_noise()
    v = nnx.jit(lambda m: m.velocity(obs, noise, jnp.ones(B)))(model)
    np.testing.assert_allclose(sample(model, obs, noise, num_steps=1), noise - v, atol=1e-5)


def test_batched_rows_are_independent(model, sample):
    obs, noise = make_obs(), make_noise()
    both = sample(model, obs, noise)
    swapped = jax.tree.map(lambda x: x[::-1], obs)
    np.testing.assert_allclose(sample(model, swapped, noise[::-1])[::-1], both, atol=1e-5)


def test_time_embedding_spans_the_reference_periods():
    emb = posemb_sincos(jnp.array([0.0, 0.25]), 8)
    assert emb.shape == (2, 8)
    np.testing.assert_array_equal(emb[0], [0, 0, 0, 0, 1, 1, 1, 1])  # sin 0, cos 0
    # the slowest frequency has period 4.0: at t = 1/4 its angle is π/8... (2π·0.25/4)
    np.testing.assert_allclose(emb[1, 3], np.sin(2 * np.pi * 0.25 / 4.0), rtol=1e-6)
    np.testing.assert_allclose(emb[1, 0], np.sin(2 * np.pi * 0.25 / 4e-3), atol=1e-3)
