"""train: fine-tune pi0 on the dataset (``vlaops train``), on one GPU node or several.

One node: training runs in this step's pod (placed on the train pool by ``train_placement``).
Several (``num_nodes`` > 1): this step creates a JobSet of ``num_nodes`` pods of the same image,
each one ``jax.distributed`` process running ``vlaops train``, and waits for it, streaming its
status (``vlaops.train.jobset``); the step itself then waits on the CPU pool without GPUs.
Either way the checkpoints go to ``checkpoint_uri`` (resumed when a retried step finds them), and
the UI gets the last metrics, the loss curve, and a ``Model`` pointer to the newest checkpoint.
"""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Model, Output

from vlaops import images


@dsl.component(base_image=images.TRAIN, install_kfp_package=False)
def train(
    dataset: Input[Dataset],
    stats: Input[Artifact],
    config: str,
    finetune_mode: str,
    steps: int,
    batch_size: int,
    base_checkpoint: str,
    checkpoint_uri: str,
    num_nodes: int,
    accelerator_type: str,
    gpus_per_node: int,
    run_id: str,
    checkpoint: Output[Model],
    metrics: Output[Metrics],
    loss_curve: Output[HTML],
):
    """``config`` + ``finetune_mode``: e.g. pi0_aloha_sim + lora; ``steps``/``batch_size`` 0 keep
    the config's values; ``base_checkpoint`` "" trains from scratch (the ``debug`` config).
    (Not ``accelerator_count``: the compiler adds an input of that name for the GPU limit.)"""
    import base64
    import json
    import os
    import tempfile
    from pathlib import Path

    from vlaops import storage
    from vlaops.train import config as train_config

    cfg = train_config.resolve(config, finetune_mode).override(
        steps=steps or None, batch_size=batch_size or None
    )
    if num_nodes > 1:
        from vlaops import images as image_refs
        from vlaops import kube
        from vlaops.train import jobset

        command = ["vlaops", "train", "--config", cfg.name, "--dataset", dataset.metadata["uri"]]
        command += ["--norm-stats", stats.uri, "--checkpoint-dir", checkpoint_uri, "--resume"]
        command += ["--metrics-file", "/tmp/metrics.jsonl", "--cache-dir", "/var/cache/vlaops"]
        command += ["--steps", str(cfg.trainer.steps), "--batch-size", str(cfg.trainer.batch_size)]
        if base_checkpoint:
            command += ["--base-checkpoint", base_checkpoint]
        obj = jobset.manifest(
            jobset.job_name(run_id),
            kube.own_namespace(),
            image_refs.TRAIN,
            command,
            num_nodes,
            gpus_per_node,
            node_selector=jobset.train_pool_selector(accelerator_type),
        )
        jobset.run(kube.api_client(), obj)
    else:
        from vlaops.train import cli

        scratch = Path(os.environ.get("VLAOPS_CACHE_DIR") or tempfile.mkdtemp())
        cli.train(
            cfg,
            dataset.metadata["uri"],
            stats.path,
            checkpoint_uri,
            base_checkpoint or None,
            str(Path(tempfile.mkdtemp()) / "metrics.jsonl"),
            resume=True,
            cache_dir=scratch,
        )

    # What the run left next to its checkpoints (vlaops train writes both on process 0).
    rows = [
        json.loads(x) for x in storage.read_text(f"{checkpoint_uri}/metrics.jsonl").split("\n") if x
    ]
    last = [r for r in rows if "loss" in r][-1]
    for key in ("loss", "grad_norm", "samples_per_sec", "data_wait_frac", "mfu"):
        if isinstance(last.get(key), (int, float)):
            metrics.log_metric(key, last[key])
    val = [r["val_loss"] for r in rows if "val_loss" in r]
    if val:
        metrics.log_metric("val_loss", val[-1])
    step = max(int(n) for n in storage.listdir(checkpoint_uri) if n.isdigit())
    metrics.log_metric("step", step)
    os.makedirs(os.path.dirname(metrics.path) or ".", exist_ok=True)
    with open(metrics.path, "w") as f:
        json.dump(metrics.metadata, f, indent=2)

    pointer = {"uri": storage.join(checkpoint_uri, str(step)), "config": cfg.name, "step": step}
    checkpoint.metadata.update(pointer)
    os.makedirs(os.path.dirname(checkpoint.path) or ".", exist_ok=True)
    with open(checkpoint.path, "w") as f:
        json.dump(pointer, f, indent=2)

    png = base64.b64encode(storage.read_bytes(f"{checkpoint_uri}/loss.png")).decode()
    os.makedirs(os.path.dirname(loss_curve.path) or ".", exist_ok=True)
    with open(loss_curve.path, "w") as f:
        f.write(
            f"<html><body><h3>{cfg.name}: loss, {step} steps</h3>"
            f'<img src="data:image/png;base64,{png}"></body></html>'
        )
