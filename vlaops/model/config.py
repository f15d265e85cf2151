"""Model configurations: frozen dataclasses in a named registry.

cfg = get_config("pi0")            # real size: 3,238,048,528 parameters
cfg = get_config("pi0_tiny")       # same structure and key names, CPU-sized, for tests and demos
cfg = dataclasses.replace(get_config("pi0"), paligemma_lora=LoRAConfig(16, 16), expert_lora=LoRAConfig(32, 32))
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from vlaops.errors import VlaopsError


@dataclass(frozen=True)
class GemmaConfig:
    """One Gemma expert. Both experts of pi0 must share depth, heads, kv heads and head dim."""

    width: int  # embedding width
    depth: int  # layers (stacked on a leading axis)
    mlp_dim: int  # GeGLU hidden width
    num_heads: int
    num_kv_heads: int  # 1 = multi-query attention
    head_dim: int


@dataclass(frozen=True)
class SigLIPConfig:
    """The ViT vision tower (So400m/14 for pi0): no pooling, a linear head to the LLM width."""

    width: int  # token width (head dim = width / num_heads)
    depth: int  # encoder blocks (stacked on a leading axis)
    mlp_dim: int  # MLP hidden width
    num_heads: int
    patch: int = 14  # square patch side, pixels
    image_size: int = 224  # square input side, pixels (inputs are resized with pad to this)

    @property
    def tokens(self) -> int:
        return (self.image_size // self.patch) ** 2


@dataclass(frozen=True)
class LoRAConfig:
    """Adapters on every attention einsum and both MLP matrices of one expert (see lora.py)."""

    rank: int  # adapter rank r
    alpha: float  # attention adapters are scaled by alpha / rank (MLP ones unscaled, as openpi)

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


@dataclass(frozen=True)
class Pi0Config:
    """pi0: SigLIP + Gemma 2B (expert 0) + the action expert (expert 1)."""

    paligemma: GemmaConfig  # expert 0: the VLM backbone (Gemma 2B)
    expert: GemmaConfig  # expert 1: the action expert (Gemma 300M)
    siglip: SigLIPConfig
    vocab_size: int = 257_152  # PaliGemma's SentencePiece vocabulary
    action_dim: int = 32  # state and actions are padded to this
    action_horizon: int = 50
    max_token_len: int = 48  # prompt tokens
    num_cameras: int = 3  # the first N of pi0.CAMERAS (base, left wrist, right wrist)
    paligemma_lora: LoRAConfig | None = None  # None: no adapters on the 2B
    expert_lora: LoRAConfig | None = None  # None: no adapters on the action expert
    dtype: str = "bfloat16"  # activations; params stay float32 in training
    remat: bool = True  # recompute each layer's activations in the backward pass

    @property
    def lora(self) -> bool:
        return self.paligemma_lora is not None or self.expert_lora is not None


GEMMA_2B = GemmaConfig(
    width=2048, depth=18, mlp_dim=16_384, num_heads=8, num_kv_heads=1, head_dim=256
)
GEMMA_300M = GemmaConfig(
    width=1024, depth=18, mlp_dim=4096, num_heads=8, num_kv_heads=1, head_dim=256
)
SO400M = SigLIPConfig(width=1152, depth=27, mlp_dim=4304, num_heads=16)
OPENPI_LORA = {"paligemma_lora": LoRAConfig(16, 16), "expert_lora": LoRAConfig(32, 32)}

CONFIGS: dict[str, Pi0Config] = {
    "pi0": Pi0Config(GEMMA_2B, GEMMA_300M, SO400M),
    "pi0_lora": Pi0Config(GEMMA_2B, GEMMA_300M, SO400M, **OPENPI_LORA),
    # Tiny: every part and key of pi0, a few layers, widths ≤ 128; trains on a CPU in seconds.
    "pi0_tiny": Pi0Config(
        GemmaConfig(width=64, depth=2, mlp_dim=128, num_heads=2, num_kv_heads=1, head_dim=16),
        GemmaConfig(width=32, depth=2, mlp_dim=64, num_heads=2, num_kv_heads=1, head_dim=16),
        SigLIPConfig(width=32, depth=2, mlp_dim=64, num_heads=2, patch=14, image_size=56),
        vocab_size=258,  # ByteTokenizer: BOS + 256 bytes
        action_horizon=10,
        max_token_len=64,  # bytes are short tokens: room for a sentence
        dtype="float32",
        remat=False,
    ),
}
CONFIGS["pi0_tiny_lora"] = Pi0Config(
    **{
        **CONFIGS["pi0_tiny"].__dict__,
        "paligemma_lora": LoRAConfig(4, 4),
        "expert_lora": LoRAConfig(8, 8),
    }
)


def get_config(name: str) -> Pi0Config:
    if name not in CONFIGS:
        close = difflib.get_close_matches(name, CONFIGS, n=1)
        hint = f" — did you mean {close[0]!r}?" if close else ""
        raise VlaopsError(f"unknown model config {name!r}{hint} (known: {', '.join(CONFIGS)})")
    return CONFIGS[name]
