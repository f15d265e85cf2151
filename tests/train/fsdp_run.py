"""Run 4 training steps of the stand-in model on however many (fake) CPU devices XLA_FLAGS gives,
with FSDP over all of them; print the losses as JSON. Used by test_trainer's FSDP test."""

import json
import sys
from pathlib import Path

import jax
from flax import nnx

sys.path.insert(0, str(Path(__file__).parent))
from test_trainer import Regressor, loss_fn

from vlaops.data.loader import DatasetArrays, Loader, LoaderConfig
from vlaops.train.trainer import OptimizerConfig, Trainer, TrainerConfig

dataset, ckpt = sys.argv[1], sys.argv[2]
loader = Loader(
    DatasetArrays.load(Path(dataset)),
    None,
    LoaderConfig(action_horizon=4),
    batch_size=8,
    seed=3,
    prefetch=1,
)
cfg = TrainerConfig(
    steps=4,
    batch_size=8,
    seed=1,
    log_every=1,
    save_every=100,
    optimizer=OptimizerConfig(peak_lr=1e-2, warmup_steps=1),
)
t = Trainer(Regressor(nnx.Rngs(0)), loss_fn, cfg, loader, ckpt, metrics_file=ckpt + ".jsonl")
t.run()
specs = {str(x.sharding.spec) for x in jax.tree.leaves(t.state["params"])}
losses = [json.loads(line)["loss"] for line in Path(ckpt + ".jsonl").read_text().splitlines()]
print(json.dumps({"devices": jax.device_count(), "losses": losses, "specs": sorted(specs)}))
