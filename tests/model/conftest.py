"""Fixtures for the model tests: a tiny model and shared jitted functions (session-scoped, so each
shape compiles once for the whole suite)."""

from __future__ import annotations

import pytest
from flax import nnx
from pi0_inputs import TINY

from vlaops.model.pi0 import Pi0


@pytest.fixture(scope="session")
def model() -> Pi0:
    return Pi0(TINY, nnx.Rngs(0))


@pytest.fixture(scope="session")
def sample():
    """sample(model, obs, noise, use_cache=True, num_steps=10) → actions, jitted once per shape."""

    @nnx.jit(static_argnames=("use_cache", "num_steps"))
    def fn(model, obs, noise, use_cache=True, num_steps=10):
        return model.sample_actions(
            None, obs, noise=noise, use_cache=use_cache, num_steps=num_steps
        )

    return fn
