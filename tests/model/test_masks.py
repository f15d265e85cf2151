"""Attention mask and position rules of pi0's token layout (openpi's ar-mask blocks)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from pi0_inputs import TINY, make_noise, make_obs

from vlaops.errors import VlaopsError
from vlaops.model import gemma, param
from vlaops.model.pi0 import attention_mask, positions


def test_block_rule_on_a_toy_sequence():
    # 2 valid prefix tokens + 1 padding, the state token, 3 action tokens
    valid = jnp.array([[True, True, False, True, True, True, True]])
    ar = jnp.array([False, False, False, True, True, False, False])
    m = np.asarray(attention_mask(valid, ar))[0]
    assert m[:2, :2].all()  # the prefix is bidirectional
    assert not m[:3, 3:].any()  # the prefix never sees the suffix
    assert m[3, :2].all() and m[3, 3] and not m[3, 4:].any()  # state: prefix + itself, no actions
    assert m[4:, :2].all() and m[4:, 3:].all()  # actions: everything valid, each other too
    assert not m[:, 2].any() and not m[2].any()  # padding neither sees nor is seen
    np.testing.assert_array_equal(positions(valid)[0], [0, 1, 1, 2, 3, 4, 5])


def test_rules_on_the_model_layout(model):
    """Masks and positions built from the model's own embeddings: 3 cameras (one masked in row 0),
    a padded prompt, the state token, the action tokens."""
    obs = make_obs(masked_camera=True)
    pre, pre_valid, pre_ar = model.embed_prefix(obs)
    suf, suf_valid, suf_ar = model.embed_suffix(obs, make_noise(), jnp.full((2,), 0.5))
    n_img = TINY.num_cameras * TINY.siglip.tokens
    p, h = pre.shape[1], TINY.action_horizon
    assert p == n_img + TINY.max_token_len and suf.shape[1] == 1 + h
    valid = jnp.concatenate([pre_valid, suf_valid], 1)
    m = np.asarray(attention_mask(valid, jnp.concatenate([pre_ar, suf_ar])))
    v = np.asarray(valid)
    for b in range(2):
        mb, vb = m[b], v[b]
        assert not mb[:p, p:].any()  # prefix never sees the suffix
        np.testing.assert_array_equal(mb[:p, :p], np.outer(vb[:p], vb[:p]))  # bidirectional prefix
        np.testing.assert_array_equal(mb[p, :p], vb[:p])  # the state token sees the valid prefix
        assert mb[p, p] and not mb[p, p + 1 :].any()  # ... and itself, never the actions
        assert (mb[p + 1 :, p:] == 1).all()  # actions see the state and all actions
        np.testing.assert_array_equal(mb[p + 1 :, :p], np.broadcast_to(vb[:p], (h, p)))
    # row 0: the right wrist camera is masked; its tokens are invalid and seen by nobody
    cam2 = slice(2 * TINY.siglip.tokens, n_img)
    assert not v[0, cam2].any() and v[1, cam2].all() and not m[0][:, cam2].any()
    pos = np.asarray(positions(valid))
    n_valid_prefix = v[:, :p].sum(1)
    np.testing.assert_array_equal(pos[:, p], n_valid_prefix)  # padding does not advance positions
    np.testing.assert_array_equal(pos[:, -1], n_valid_prefix + h)


def test_prefix_never_depends_on_the_suffix_nor_state_on_actions(model):
    """Behaviour, not just the mask: changing the noisy actions leaves the prefix outputs and the
    state token's output unchanged, and does change the action tokens."""
    obs = make_obs()
    llm = param.pure(model.PaliGemma.llm)
    loras = (None, None)

    @jax.jit
    def outputs(x_t):
        pre, pre_valid, pre_ar = model.embed_prefix(obs)
        suf, suf_valid, suf_ar = model.embed_suffix(obs, x_t, jnp.full((2,), 0.3))
        valid = jnp.concatenate([pre_valid, suf_valid], 1)
        mask = attention_mask(valid, jnp.concatenate([pre_ar, suf_ar]))
        out = gemma.run(llm, [pre, suf], positions(valid), mask, loras, jnp.float32)[0]
        return out, pre_valid

    ((pre_a, suf_a), valid), ((pre_b, suf_b), _) = outputs(make_noise(1)), outputs(make_noise(2))
    valid = np.asarray(valid)  # (padding rows see nothing: their softmax is uniform, unused)
    np.testing.assert_array_equal(np.asarray(pre_a)[valid], np.asarray(pre_b)[valid])
    np.testing.assert_allclose(suf_a[:, 0], suf_b[:, 0], atol=1e-6)  # the state token
    assert not np.allclose(suf_a[:, 1:], suf_b[:, 1:], atol=1e-3)


def test_masked_camera_content_is_ignored(model, sample):
    obs = make_obs(masked_camera=True)
    white = jnp.full_like(obs["images"]["right_wrist_0_rgb"], 255)
    other = dict(obs, images=dict(obs["images"], right_wrist_0_rgb=white))
    a, b = sample(model, obs, make_noise()), sample(model, other, make_noise())
    np.testing.assert_allclose(a[0], b[0], atol=1e-5)  # row 0: camera masked → ignored
    assert not np.allclose(a[1], b[1], atol=1e-3)  # row 1: camera valid → it matters


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda o: o["images"].pop("left_wrist_0_rgb"), "images lacks camera 'left_wrist_0_rgb'"),
        (lambda o: o.update(state=o["state"][:, :7]), r"state has shape \(2, 7\)"),
        (
            lambda o: o["images"].update(base_0_rgb=jnp.zeros((2, 32, 32, 3), jnp.uint8)),
            "image 'base_0_rgb' has shape",
        ),
        (lambda o: o.pop("tokenized_prompt_mask"), "lacks 'tokenized_prompt_mask'"),
    ],
)
def test_bad_observations_are_named(model, change, message):
    obs = make_obs()
    obs["images"] = dict(obs["images"])
    change(obs)
    with pytest.raises(VlaopsError, match=message):
        nnx.eval_shape(lambda m: m.embed_prefix(obs), model)
