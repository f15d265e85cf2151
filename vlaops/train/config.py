"""Training configurations: the model, the data transforms and the optimizer, by name.

    vlaops train --config debug ...                 # pi0_tiny on a CPU: seconds per step
    vlaops train --config debug_lora ...            # the same with LoRA adapters, the base frozen
    vlaops train --config pi0_aloha_sim_lora ...    # openpi's low-memory setup, ALOHA sim cameras
    vlaops train --config pi0_aloha_sim_full ...    # full fine-tune with EMA, FSDP over the node's GPUs

CLI flags (--steps, --batch-size) override fields; the resolved config is saved in every checkpoint.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field

from flax import nnx

from vlaops.data.loader import LoaderConfig
from vlaops.errors import VlaopsError
from vlaops.model import lora
from vlaops.model.config import Pi0Config, get_config
from vlaops.train.trainer import OptimizerConfig, TrainerConfig


@dataclass(frozen=True)
class TrainConfig:
    name: str
    model: str  # a vlaops.model config name
    trainer: TrainerConfig
    data: LoaderConfig = field(default_factory=LoaderConfig)
    tokenizer: str = "gs://big_vision/paligemma_tokenizer.model"  # URI, or "bytes" for tiny models
    val_fraction: float = 0.1  # last episodes held out for validation loss
    val_every: int = 500

    @property
    def model_config(self) -> Pi0Config:
        return get_config(self.model)

    def trainable(self) -> nnx.filterlib.Filter:
        """openpi's freeze rule (``vlaops.model.lora``): with LoRA, the LLM weights of the experts
        that have adapters are frozen except the adapters; SigLIP and the projections still train."""
        m = self.model_config
        return lora.trainable_filter(m.paligemma_lora, m.expert_lora)

    def override(self, **kw) -> TrainConfig:
        trainer = {
            k: v
            for k, v in kw.items()
            if k in {f.name for f in dataclasses.fields(TrainerConfig)} and v is not None
        }
        return dataclasses.replace(self, trainer=dataclasses.replace(self.trainer, **trainer))


def _aloha_data(model: str) -> LoaderConfig:
    m = get_config(model)
    return LoaderConfig(
        action_horizon=m.action_horizon, model_dim=m.action_dim, image_size=m.siglip.image_size
    )


CONFIGS = {
    "debug": TrainConfig(
        "debug",
        "pi0_tiny",
        TrainerConfig(
            steps=20,
            batch_size=4,
            log_every=1,
            save_every=10,
            ema_decay=0.99,
            asset_id="aloha_sim",
            optimizer=OptimizerConfig(peak_lr=1e-3, warmup_steps=5, end_lr=1e-4),
        ),
        _aloha_data("pi0_tiny"),
        tokenizer="bytes",
        val_every=10,
    ),
    "pi0_aloha_sim_full": TrainConfig(
        "pi0_aloha_sim_full",
        "pi0",
        TrainerConfig(steps=20_000, batch_size=32, ema_decay=0.99, asset_id="aloha_sim"),
        _aloha_data("pi0"),
    ),
    "pi0_aloha_sim_lora": TrainConfig(
        "pi0_aloha_sim_lora",
        "pi0_lora",
        TrainerConfig(
            steps=20_000,
            batch_size=32,
            ema_decay=None,
            asset_id="aloha_sim",
            frozen_dtype="bfloat16",  # as openpi: the frozen 2.6B in bf16, adapters in fp32
        ),
        _aloha_data("pi0_lora"),
    ),
}


# LoRA's path (adapters, a bf16 frozen base, no EMA) on pi0_tiny, on a CPU in seconds
CONFIGS["debug_lora"] = dataclasses.replace(
    CONFIGS["debug"],
    name="debug_lora",
    model="pi0_tiny_lora",
    trainer=dataclasses.replace(CONFIGS["debug"].trainer, ema_decay=None, frozen_dtype="bfloat16"),
)


def get(name: str) -> TrainConfig:
    if name not in CONFIGS:
        close = difflib.get_close_matches(name, CONFIGS, n=1)
        hint = f" — did you mean {close[0]!r}?" if close else ""
        raise VlaopsError(f"unknown training config {name!r}{hint} (known: {', '.join(CONFIGS)})")
    return CONFIGS[name]


def resolve(name: str, mode: str = "") -> TrainConfig:
    """A config from a family name and a fine-tune mode, as the pipeline's form asks for them:
    ``pi0_aloha_sim`` + ``lora`` → ``pi0_aloha_sim_lora``. A full name (``debug``,
    ``pi0_aloha_sim_full``) is taken as is; a mode that contradicts it is an error."""
    if mode not in ("", "lora", "full"):
        raise VlaopsError(f"fine-tune mode {mode!r}: choose lora or full")
    if mode and f"{name}_{mode}" in CONFIGS:
        return CONFIGS[f"{name}_{mode}"]
    cfg = get(name)
    other = {"lora": "_full", "full": "_lora"}.get(mode)
    if other and name.endswith(other):
        raise VlaopsError(f"training config {name!r} is not a {mode} fine-tune")
    return cfg
