"""train — DRAFT, not wired into pipelines/finetune.py (see README.md).

Fine-tune pi0 (``vlaops train``): checkpoints at ``checkpoint_uri``, metrics and the loss curve.
This body calls today's ``vlaops.train.cli.train``; it has not run through kfp.local and lacks
what README.md lists (LoRA/full switch, nodes > 1, the scratch cache) until the train stage's
owners settle its API.
"""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Model, Output

from vlaops import images


@dsl.component(base_image=images.TRAIN, install_kfp_package=False)
def train(
    dataset: Input[Dataset],
    stats: Input[Artifact],
    config: str,
    steps: int,
    batch_size: int,
    base_checkpoint: str,
    checkpoint_uri: str,
    checkpoint: Output[Model],
    metrics: Output[Metrics],
    loss_curve: Output[HTML],
):
    import base64
    import os
    import tempfile

    from vlaops import storage
    from vlaops.train import cli
    from vlaops.train import config as train_config

    cfg = train_config.get(config).override(steps=steps or None, batch_size=batch_size or None)
    metrics_file = os.path.join(tempfile.mkdtemp(), "metrics.jsonl")
    last = cli.train(
        cfg,
        dataset.metadata["uri"],
        stats.path,
        checkpoint_uri,
        base_checkpoint or None,
        metrics_file,
        resume=True,
    )
    for key, value in last.items():
        if isinstance(value, (int, float)):
            metrics.log_metric(key, value)
    checkpoint.metadata.update({"uri": checkpoint_uri, "config": config})
    png = base64.b64encode(storage.read_bytes(storage.join(checkpoint_uri, "loss.png"))).decode()
    with open(loss_curve.path, "w") as f:
        f.write(
            f'<html><body><h3>{config}: training loss</h3><img src="data:image/png;base64,{png}"></body></html>'
        )
