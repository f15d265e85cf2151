"""Inspect model configurations.

  vlaops model params --config pi0          # every parameter key (openpi's names) and shape, then the total
  vlaops model params --config pi0_lora     # with openpi's LoRA adapters
  vlaops model configs                      # the registered configurations

Shapes come from abstract evaluation: nothing is allocated, the real-size model lists instantly.
"""

from __future__ import annotations

import argparse

HELP = "model configurations: list parameters and shapes (openpi key paths)"


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    params = sub.add_parser(
        "params", help="print every parameter key path and shape, then the total"
    )
    params.add_argument("--config", required=True, help="config name, e.g. pi0, pi0_lora, pi0_tiny")
    sub.add_parser("configs", help="list the registered configurations")


def run(args: argparse.Namespace) -> None:
    from vlaops.model import config

    if args.action == "configs":
        for name in config.CONFIGS:
            print(name)
        return
    listing = abstract_params(config.get_config(args.config))
    for key, shape in listing:
        print(f"{key} {shape}")
    print(f"total {sum(_size(s) for _, s in listing)}")


def abstract_params(cfg) -> list[tuple[str, tuple[int, ...]]]:
    from flax import nnx

    from vlaops.model import weights
    from vlaops.model.pi0 import Pi0

    return weights.key_shapes(nnx.eval_shape(lambda: Pi0(cfg, nnx.Rngs(0))))


def _size(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
