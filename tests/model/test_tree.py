"""The real pi0 parameter tree (abstract: nothing allocated) against reference/pi0.md, the LoRA
count, the `vlaops model params` output and the config registry."""

from __future__ import annotations

import ast
import math
import re
import subprocess
import sys

import pytest

from vlaops.cli import main
from vlaops.errors import VlaopsError
from vlaops.model.config import CONFIGS, get_config

ENC = "PaliGemma/img/Transformer/encoderblock"
ATT = f"{ENC}/MultiHeadDotProductAttention_0"
LLM = "PaliGemma/llm"
REFERENCE = {  # every row of the table in reference/pi0.md
    "PaliGemma/img/embedding/kernel": (14, 14, 3, 1152),
    "PaliGemma/img/embedding/bias": (1152,),
    "PaliGemma/img/pos_embedding": (1, 256, 1152),
    **{f"{ENC}/LayerNorm_{i}/{p}": (27, 1152) for i in (0, 1) for p in ("scale", "bias")},
    **{f"{ATT}/{n}/kernel": (27, 1152, 16, 72) for n in ("query", "key", "value")},
    **{f"{ATT}/{n}/bias": (27, 16, 72) for n in ("query", "key", "value")},
    f"{ATT}/out/kernel": (27, 16, 72, 1152),
    f"{ATT}/out/bias": (27, 1152),
    f"{ENC}/MlpBlock_0/Dense_0/kernel": (27, 1152, 4304),
    f"{ENC}/MlpBlock_0/Dense_0/bias": (27, 4304),
    f"{ENC}/MlpBlock_0/Dense_1/kernel": (27, 4304, 1152),
    f"{ENC}/MlpBlock_0/Dense_1/bias": (27, 1152),
    "PaliGemma/img/Transformer/encoder_norm/scale": (1152,),
    "PaliGemma/img/Transformer/encoder_norm/bias": (1152,),
    "PaliGemma/img/head/kernel": (1152, 2048),
    "PaliGemma/img/head/bias": (2048,),
    f"{LLM}/embedder/input_embedding": (257152, 2048),
    f"{LLM}/layers/pre_attention_norm/scale": (18, 2048),
    f"{LLM}/layers/attn/q_einsum/w": (18, 8, 2048, 256),
    f"{LLM}/layers/attn/kv_einsum/w": (18, 2, 1, 2048, 256),
    f"{LLM}/layers/attn/attn_vec_einsum/w": (18, 8, 256, 2048),
    f"{LLM}/layers/pre_ffw_norm/scale": (18, 2048),
    f"{LLM}/layers/mlp/gating_einsum": (18, 2, 2048, 16384),
    f"{LLM}/layers/mlp/linear": (18, 16384, 2048),
    f"{LLM}/final_norm/scale": (2048,),
    f"{LLM}/layers/attn/q_einsum_1/w": (18, 8, 1024, 256),
    f"{LLM}/layers/attn/kv_einsum_1/w": (18, 2, 1, 1024, 256),
    f"{LLM}/layers/attn/attn_vec_einsum_1/w": (18, 8, 256, 1024),
    f"{LLM}/layers/mlp_1/gating_einsum": (18, 2, 1024, 4096),
    f"{LLM}/layers/mlp_1/linear": (18, 4096, 1024),
    f"{LLM}/layers/pre_attention_norm_1/scale": (18, 1024),
    f"{LLM}/layers/pre_ffw_norm_1/scale": (18, 1024),
    f"{LLM}/final_norm_1/scale": (1024,),
    "state_proj/kernel": (32, 1024),
    "state_proj/bias": (1024,),
    "action_in_proj/kernel": (32, 1024),
    "action_in_proj/bias": (1024,),
    "action_time_mlp_in/kernel": (2048, 1024),
    "action_time_mlp_in/bias": (1024,),
    "action_time_mlp_out/kernel": (1024, 1024),
    "action_time_mlp_out/bias": (1024,),
    "action_out_proj/kernel": (1024, 32),
    "action_out_proj/bias": (32,),
}
PI0_TOTAL = 3_238_048_528
LORA_PARAMS = 49_987_584


def _listing(capsys, config: str) -> tuple[dict[str, tuple], list[str]]:
    assert main(["model", "params", "--config", config]) in (0, None)
    lines = capsys.readouterr().out.strip().splitlines()
    listed = {}
    for line in lines[:-1]:
        m = re.fullmatch(r"(\S+) (\(.*\))", line)
        assert m, f"not 'key (shape)': {line!r}"
        listed[m.group(1)] = ast.literal_eval(m.group(2))
    return listed, lines


def test_pi0_tree_matches_the_reference_exactly(capsys):
    listed, lines = _listing(capsys, "pi0")
    assert len(REFERENCE) == 50
    assert listed == REFERENCE  # every key and shape, nothing more
    assert lines[-1] == f"total {PI0_TOTAL}"
    sizes = {k: math.prod(s) for k, s in listed.items()}
    img = sum(v for k, v in sizes.items() if k.startswith("PaliGemma/img/"))
    expert = sum(v for k, v in sizes.items() if k.startswith(LLM) and "_1/" in k)
    assert img == 414_803_696 and expert == 311_464_960  # the per-part counts of the reference
    assert sum(v for k, v in sizes.items() if not k.startswith("PaliGemma")) == 3_248_160


def test_openpi_lora_adds_the_reference_count(capsys):
    listed, lines = _listing(capsys, "pi0_lora")
    assert int(lines[-1].split()[1]) - PI0_TOTAL == LORA_PARAMS
    assert {k: v for k, v in listed.items() if "lora" not in k} == REFERENCE
    assert listed[f"{LLM}/layers/attn/q_einsum/lora_a"] == (18, 8, 2048, 16)
    assert listed[f"{LLM}/layers/attn/attn_vec_einsum_1/lora_b"] == (18, 8, 32, 1024)
    assert listed[f"{LLM}/layers/mlp_1/gating_einsum_lora_a"] == (18, 2, 1024, 32)
    assert listed[f"{LLM}/layers/mlp/linear_lora_b"] == (18, 16, 2048)


def test_tiny_configs_keep_every_key_small(capsys):
    listed, _ = _listing(capsys, "pi0_tiny")
    assert set(listed) == set(REFERENCE)
    cfg = get_config("pi0_tiny")
    assert max(cfg.paligemma.width, cfg.expert.width, cfg.siglip.width) <= 128
    lora_listed, _ = _listing(capsys, "pi0_tiny_lora")
    assert {k for k in lora_listed if "lora" not in k} == set(REFERENCE)


def test_params_command_output_format():
    """Through the real entry point: one `key (shape)` line per parameter, `total N` last."""
    out = subprocess.run(
        [sys.executable, "-m", "vlaops.cli", "model", "params", "--config", "pi0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert "PaliGemma/llm/layers/attn/q_einsum/w (18, 8, 2048, 256)" in out
    assert "PaliGemma/img/embedding/bias (1152,)" in out
    assert out[-1] == f"total {PI0_TOTAL}" and len(out) == 51


def test_defaults_and_registry():
    cfg = get_config("pi0")
    assert (cfg.action_dim, cfg.action_horizon, cfg.num_cameras, cfg.max_token_len) == (
        32,
        50,
        3,
        48,
    )
    assert cfg.dtype == "bfloat16" and cfg.paligemma_lora is None
    lora_cfg = get_config("pi0_lora")
    assert (lora_cfg.paligemma_lora.rank, lora_cfg.paligemma_lora.alpha) == (16, 16)
    assert (lora_cfg.expert_lora.rank, lora_cfg.expert_lora.alpha) == (32, 32)
    assert {"pi0", "pi0_lora", "pi0_tiny", "pi0_tiny_lora"} <= set(CONFIGS)
    with pytest.raises(VlaopsError, match="did you mean 'pi0_tiny'"):
        get_config("pi0_tinny")
