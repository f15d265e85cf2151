"""What a training run reports about itself, apart from the loop: the devices' bf16 peak behind
MFU, the device memory a compiled step needs (XLA's buffer plan), and the loss-curve PNG."""

from __future__ import annotations

import io
import json

import jax

from vlaops import storage

# Dense bf16 peak FLOP/s per device, by a substring of ``device.device_kind`` (vendor datasheets).
PEAK_BF16_FLOPS = {
    "A100": 312e12,
    "H100": 989e12,
    "H200": 989e12,
    "B200": 2250e12,
    "L4": 121e12,
    "TPU v4": 275e12,
    "TPU v5 lite": 197e12,
    "TPU v5p": 459e12,
    "TPU v6": 918e12,
}


MEMORY_HEADROOM = 0.95  # share of a GPU's memory pool a step's buffer plan may fill


def peak_flops(device: jax.Device) -> float | None:
    """The device's dense bf16 peak, or None where unknown (CPUs): then no MFU is logged."""
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in device.device_kind), None)


def step_memory(compiled) -> int | None:
    """Bytes one device needs to run a compiled step, by XLA's buffer plan: its arguments, its
    temporaries, and outputs that do not reuse a donated argument. None where XLA can't say."""
    m = compiled.memory_analysis()
    if m is None:
        return None
    return (
        m.argument_size_in_bytes
        + m.temp_size_in_bytes
        + m.output_size_in_bytes
        - m.alias_size_in_bytes
    )


def loss_curve_png(metrics_file: str, out_uri: str) -> None:
    """Plot ``loss`` over ``step`` from a metrics JSON-lines file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(metrics_file) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    val = [r for r in rows if "val_loss" in r]
    rows = [r for r in rows if "loss" in r]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], label="train")
    if val:
        ax.plot([r["step"] for r in val], [r["val_loss"] for r in val], "o-", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("flow-matching loss")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    storage.write_bytes(out_uri, buf.getvalue())
