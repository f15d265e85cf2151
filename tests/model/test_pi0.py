"""pi0 on the tiny config: masks, loss, KV-cached sampling, LoRA, weights, tokenizer, the real tree."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from vlaops.cli import main
from vlaops.errors import VlaopsError
from vlaops.model import weights
from vlaops.model.config import get_config
from vlaops.model.pi0 import CAMERAS, Pi0, attention_mask
from vlaops.model.tokenizer import Tokenizer

TINY = get_config("pi0_tiny")
B = 2


def _obs(seed=0, masked_camera=False):
    rng = np.random.default_rng(seed)
    obs = {
        "images": {c: jnp.asarray(rng.integers(0, 255, (B, 56, 56, 3), np.uint8)) for c in CAMERAS},
        "image_masks": {c: jnp.ones(B, bool) for c in CAMERAS},
        "state": jnp.asarray(rng.normal(size=(B, 32)), jnp.float32),
        "tokenized_prompt": jnp.asarray(rng.integers(1, 255, (B, TINY.max_token_len)), jnp.int32),
        "tokenized_prompt_mask": jnp.asarray(
            np.arange(TINY.max_token_len)[None] < np.array([[9], [30]])
        ),
    }
    if masked_camera:
        obs["image_masks"]["right_wrist_0_rgb"] = jnp.zeros(B, bool)
    return obs


@nnx.jit(static_argnames="use_cache")
def sample(model, obs, noise, use_cache=True):
    return model.sample_actions(None, obs, noise=noise, use_cache=use_cache)


@pytest.fixture(scope="module")
def model():
    return Pi0(TINY, nnx.Rngs(0))


def test_mask_rules():
    # 3 prefix tokens (one padding), state token, 3 action tokens
    valid = jnp.array([[True, True, False, True, True, True, True]])
    ar = jnp.array([False, False, False, True, True, False, False])
    m = np.asarray(attention_mask(valid, ar))[0]
    assert m[:2, :2].all()  # prefix is bidirectional
    assert not m[:3, 3:].any()  # the prefix never sees the suffix
    assert (
        m[3, :2].all() and m[3, 3] and not m[3, 4:].any()
    )  # state sees prefix and itself, not actions
    assert m[4:, :2].all() and m[4:, 3:].all()  # actions see everything valid, each other too
    assert not m[:, 2].any() and not m[2].any()  # padding neither sees nor is seen


def test_sampling_with_kv_cache_equals_full_recompute_and_is_deterministic(model):
    obs = _obs(masked_camera=True)
    noise = jax.random.normal(jax.random.key(1), (B, TINY.action_horizon, 32))
    cached = sample(model, obs, noise)
    full = sample(model, obs, noise, use_cache=False)
    np.testing.assert_allclose(cached, full, atol=2e-5)
    np.testing.assert_array_equal(cached, sample(model, obs, noise))
    assert not np.allclose(cached, sample(model, _obs(seed=5), noise))  # inputs matter


def test_masked_camera_content_is_ignored(model):
    obs = _obs(masked_camera=True)
    other = dict(
        obs, images=dict(obs["images"], right_wrist_0_rgb=jnp.full((B, 56, 56, 3), 255, jnp.uint8))
    )
    noise = jax.random.normal(jax.random.key(2), (B, TINY.action_horizon, 32))
    np.testing.assert_allclose(sample(model, obs, noise), sample(model, other, noise), atol=1e-5)


def test_loss_is_finite_and_decreases_on_a_fixed_batch():
    model = Pi0(TINY, nnx.Rngs(3))
    obs, actions = (
        _obs(),
        jnp.asarray(
            np.random.default_rng(0).normal(size=(B, TINY.action_horizon, 32)), jnp.float32
        ),
    )
    graphdef, params = nnx.split(model, nnx.Param)
    tx = optax.adam(3e-3)
    opt = tx.init(params)

    @jax.jit
    def step(params, opt):
        def f(p):
            return nnx.merge(graphdef, p).compute_loss(jax.random.key(0), obs, actions).mean()

        loss, g = jax.value_and_grad(f)(params)
        up, opt = tx.update(g, opt, params)
        return optax.apply_updates(params, up), opt, loss

    losses = []
    for _ in range(8):
        params, opt, loss = step(params, opt)
        losses.append(float(loss))
    assert np.isfinite(losses).all() and losses[-1] < 0.7 * losses[0], losses


@pytest.fixture(scope="module")
def lora_model():
    return Pi0(get_config("pi0_tiny_lora"), nnx.Rngs(0))


def test_lora_with_zero_b_equals_base_and_merged_equals_unmerged(model, lora_model):
    base = nnx.state(model, nnx.Param).to_pure_dict()
    weights.assign(lora_model, base)  # base weights, adapters keep init (B = 0)
    obs = _obs()
    noise = jax.random.normal(jax.random.key(3), (B, TINY.action_horizon, 32))
    np.testing.assert_allclose(sample(lora_model, obs, noise), sample(model, obs, noise), atol=1e-5)
    # give the adapters real values, then merge into a LoRA-free model
    state = nnx.state(lora_model, nnx.Param)
    flat = weights.flatten(state.to_pure_dict())
    rng = np.random.default_rng(0)
    for k in flat:
        if "lora_b" in str(k[-1]):
            flat[k] = jnp.asarray(rng.normal(0, 0.05, flat[k].shape), jnp.float32)
    weights.assign(lora_model, weights.unflatten(flat))
    cfg = get_config("pi0_tiny_lora")
    merged = weights.merge_lora(
        weights.unflatten(flat), cfg.paligemma_lora.scale, cfg.expert_lora.scale
    )
    plain = Pi0(TINY, nnx.Rngs(9))
    weights.assign(plain, merged)
    with_lora = sample(lora_model, obs, noise)
    assert not np.allclose(with_lora, sample(model, obs, noise), atol=1e-3)  # adapters act
    np.testing.assert_allclose(sample(plain, obs, noise), with_lora, atol=2e-4)


def test_openpi_checkpoint_import_export_import_is_identity(model, tmp_path):
    # a checkpoint in openpi's layout, training-style: every leaf under an extra "value" key
    params = nnx.state(model, nnx.Param).to_pure_dict()
    valued = weights.unflatten(
        {(*k, "value"): np.asarray(v) for k, v in weights.flatten(params).items()}
    )
    import orbax.checkpoint as ocp

    with ocp.PyTreeCheckpointer() as c:
        c.save(str(tmp_path / "openpi" / "params"), {"params": valued})
    fresh = Pi0(TINY, nnx.Rngs(42))
    weights.assign(fresh, weights.load(str(tmp_path / "openpi" / "params")))
    weights.save(fresh, str(tmp_path / "ours" / "params"))
    again = Pi0(TINY, nnx.Rngs(7))
    weights.assign(again, weights.load(str(tmp_path / "ours" / "params")))
    a, b = weights.flatten(params), weights.flatten(nnx.state(again, nnx.Param).to_pure_dict())
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]))


def test_import_through_gcs_and_dtype_cast(model, bucket):
    uri = f"{bucket}/pi0_tiny/params"
    weights.save(model, uri)
    loaded = weights.load(uri, dtype=jnp.bfloat16)
    assert weights.flatten(loaded)[("state_proj", "kernel")].dtype == jnp.bfloat16


def test_import_errors_name_the_key(model, tmp_path):
    params = weights.flatten(nnx.state(model, nnx.Param).to_pure_dict())
    missing = {k: v for k, v in params.items() if k != ("action_out_proj", "bias")}
    with pytest.raises(VlaopsError, match="checkpoint lacks parameter action_out_proj/bias"):
        weights.assign(Pi0(TINY, nnx.Rngs(1)), weights.unflatten(missing))
    bad = dict(params)
    bad[("state_proj", "kernel")] = np.zeros((3, 3), np.float32)
    with pytest.raises(
        VlaopsError, match=r"parameter state_proj/kernel: checkpoint shape \(3, 3\)"
    ):
        weights.assign(Pi0(TINY, nnx.Rngs(1)), weights.unflatten(bad))
    with pytest.raises(VlaopsError, match="no checkpoint here"):
        weights.load(str(tmp_path / "nothing"))


REFERENCE = {  # reference/pi0.md
    "PaliGemma/img/embedding/kernel": (14, 14, 3, 1152),
    "PaliGemma/img/pos_embedding": (1, 256, 1152),
    "PaliGemma/img/Transformer/encoderblock/LayerNorm_0/scale": (27, 1152),
    "PaliGemma/img/Transformer/encoderblock/MultiHeadDotProductAttention_0/query/kernel": (
        27,
        1152,
        16,
        72,
    ),
    "PaliGemma/img/Transformer/encoderblock/MultiHeadDotProductAttention_0/value/bias": (
        27,
        16,
        72,
    ),
    "PaliGemma/img/Transformer/encoderblock/MultiHeadDotProductAttention_0/out/kernel": (
        27,
        16,
        72,
        1152,
    ),
    "PaliGemma/img/Transformer/encoderblock/MlpBlock_0/Dense_0/kernel": (27, 1152, 4304),
    "PaliGemma/img/Transformer/encoderblock/MlpBlock_0/Dense_1/bias": (27, 1152),
    "PaliGemma/img/Transformer/encoder_norm/scale": (1152,),
    "PaliGemma/img/head/kernel": (1152, 2048),
    "PaliGemma/llm/embedder/input_embedding": (257152, 2048),
    "PaliGemma/llm/layers/pre_attention_norm/scale": (18, 2048),
    "PaliGemma/llm/layers/attn/q_einsum/w": (18, 8, 2048, 256),
    "PaliGemma/llm/layers/attn/kv_einsum/w": (18, 2, 1, 2048, 256),
    "PaliGemma/llm/layers/attn/attn_vec_einsum/w": (18, 8, 256, 2048),
    "PaliGemma/llm/layers/pre_ffw_norm/scale": (18, 2048),
    "PaliGemma/llm/layers/mlp/gating_einsum": (18, 2, 2048, 16384),
    "PaliGemma/llm/layers/mlp/linear": (18, 16384, 2048),
    "PaliGemma/llm/final_norm/scale": (2048,),
    "PaliGemma/llm/layers/attn/q_einsum_1/w": (18, 8, 1024, 256),
    "PaliGemma/llm/layers/attn/kv_einsum_1/w": (18, 2, 1, 1024, 256),
    "PaliGemma/llm/layers/attn/attn_vec_einsum_1/w": (18, 8, 256, 1024),
    "PaliGemma/llm/layers/mlp_1/gating_einsum": (18, 2, 1024, 4096),
    "PaliGemma/llm/layers/mlp_1/linear": (18, 4096, 1024),
    "PaliGemma/llm/layers/pre_attention_norm_1/scale": (18, 1024),
    "PaliGemma/llm/layers/pre_ffw_norm_1/scale": (18, 1024),
    "PaliGemma/llm/final_norm_1/scale": (1024,),
    "state_proj/kernel": (32, 1024),
    "action_in_proj/bias": (1024,),
    "action_time_mlp_in/kernel": (2048, 1024),
    "action_time_mlp_out/kernel": (1024, 1024),
    "action_out_proj/kernel": (1024, 32),
    "action_out_proj/bias": (32,),
}


def test_pi0_parameter_tree_matches_the_reference(capsys):
    assert main(["model", "params", "--config", "pi0"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "total 3238048528"
    listed = {}
    for line in lines[:-1]:
        m = re.fullmatch(r"(\S+) (\(.*\))", line)
        assert m, line
        listed[m.group(1)] = eval(m.group(2))
    for key, shape in REFERENCE.items():
        assert listed.get(key) == shape, key
    assert len(listed) == 50  # every leaf of the reference table, nothing else


def test_openpi_lora_adds_the_reference_count(capsys):
    main(["model", "params", "--config", "pi0_lora"])
    out = capsys.readouterr().out.strip().splitlines()
    assert int(out[-1].split()[1]) - 3238048528 == 49_987_584
    assert any(line.startswith("PaliGemma/llm/layers/mlp_1/gating_einsum_lora_a ") for line in out)


def test_unknown_config_suggests_the_closest():
    with pytest.raises(VlaopsError, match="did you mean 'pi0_tiny'"):
        get_config("pi0_tinny")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    import sentencepiece as spm

    d = tmp_path_factory.mktemp("spm")
    (d / "corpus.txt").write_text(
        "\n".join(
            [
                "pick up the cube",
                "transfer the cube to the other arm",
                "insert the peg into the socket",
                "fold the towel",
            ]
            * 20
        )
    )
    spm.SentencePieceTrainer.train(
        input=str(d / "corpus.txt"),
        model_prefix=str(d / "m"),
        vocab_size=40,
        model_type="bpe",
        bos_id=2,
        eos_id=1,
        pad_id=0,
        unk_id=3,
        user_defined_symbols=["\n"],
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
    )
    return Tokenizer((d / "m.model").read_bytes(), max_len=12)


def test_tokenizer_prompt_format(tokenizer):
    tokens, mask = tokenizer(["pick_up the cube", "fold the towel\n"])
    ids = tokenizer.encode("pick up the cube")
    newline = tokenizer.sp.EncodeAsIds("\n")
    assert newline  # PaliGemma's vocabulary has a newline token; so does the test model
    assert ids[0] == tokenizer.sp.bos_id() and ids[
        -len(tokenizer.sp.EncodeAsIds("\n")) :
    ] == tokenizer.sp.EncodeAsIds("\n")
    assert (
        list(tokens[0, : len(ids)]) == ids
        and mask[0].sum() == len(ids)
        and not tokens[0, len(ids) :].any()
    )
    assert tokenizer.encode("fold the towel\n") == tokenizer.encode("fold the towel")


def test_tokenizer_truncates_with_a_warning(tokenizer, caplog):
    tokens, mask = tokenizer(
        ["transfer the cube to the other arm and insert the peg into the socket"]
    )
    assert mask.all() and tokens.shape == (1, 12)
    assert "truncated" in caplog.text


def test_tokenizer_from_a_uri(tokenizer, bucket):
    from vlaops import storage

    storage.write_bytes(f"{bucket}/tok.model", tokenizer.model_proto)
    assert Tokenizer.load(f"{bucket}/tok.model", 12).encode("fold") == tokenizer.encode("fold")
    with pytest.raises(VlaopsError, match="no such file"):
        Tokenizer.load(f"{bucket}/missing.model")
