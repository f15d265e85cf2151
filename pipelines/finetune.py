"""The ``finetune`` pipeline: [generate-demos] → convert → norm-stats → train → evaluate → (if good
enough) export. One DAG for the cluster and for ``make run-local`` (kfp.local runs the very same
component definitions).

    python -m pipelines.finetune --output finetune.yaml        # compile (make compile-pipeline)
"""

import argparse

from kfp import compiler, dsl, kubernetes

from components.convert.component import convert
from components.evaluate.component import evaluate
from components.export.component import export
from components.generate_demos.component import generate_demos
from components.norm_stats.component import norm_stats
from components.train.component import train


def on_train_pool(task, accelerator_type, accelerator_count) -> None:
    """GPUs of the A100 pool (infra/: label vlaops.dev/pool=train, tainted for GPU work only) and
    a memory-backed /dev/shm for the loader."""
    task.set_accelerator_type(accelerator_type).set_accelerator_limit(accelerator_count)
    task.set_cpu_request("8").set_memory_request("64G")
    kubernetes.add_node_selector(task, "vlaops.dev/pool", "train")
    kubernetes.add_toleration(task, key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
    kubernetes.add_toleration(
        task, key="vlaops.dev/pool", operator="Equal", value="train", effect="NoSchedule"
    )
    kubernetes.empty_dir_mount(task, volume_name="dshm", mount_path="/dev/shm", medium="Memory")


def on_cpu_pool(task) -> None:
    kubernetes.add_node_selector(task, "vlaops.dev/pool", "cpu")


@dsl.pipeline(
    name="finetune",
    description="Demonstrations → LeRobot dataset → pi0 fine-tune → sim eval → Triton",
)
def finetune(
    sim_task: str = "transfer_cube",
    demo_episodes: int = 50,
    raw_uri: str = "gs://BUCKET-raw/transfer_cube",
    dataset_uri: str = "gs://BUCKET-datasets/transfer_cube",
    repo_id: str = "vlaops/transfer_cube",
    fps: int = 50,
    task_prompt: str = "transfer the cube",
    train_config: str = "pi0_aloha_sim_lora",
    steps: int = 0,
    batch_size: int = 0,
    base_checkpoint: str = "gs://openpi-assets/checkpoints/pi0_base/params",
    checkpoint_uri: str = "gs://BUCKET-checkpoints/transfer_cube",
    eval_episodes: int = 50,
    eval_uri: str = "gs://BUCKET-checkpoints/transfer_cube-eval",
    success_threshold: float = 0.5,
    model_repository: str = "gs://BUCKET-models/repo",
    model_name: str = "pi0",
    accelerator_type: str = "nvidia-tesla-a100",
    accelerator_count: int = 8,
):
    demos = generate_demos(task=sim_task, episodes=demo_episodes, output_uri=raw_uri, seed=0)
    ds = convert(
        raw=demos.outputs["demos"],
        dataset_uri=dataset_uri,
        repo_id=repo_id,
        fps=fps,
        task=task_prompt,
        workers=0,
    )
    stats = norm_stats(dataset=ds.outputs["dataset"], action_horizon=0)
    trained = train(
        dataset=ds.outputs["dataset"],
        stats=stats.outputs["stats"],
        config=train_config,
        steps=steps,
        batch_size=batch_size,
        base_checkpoint=base_checkpoint,
        checkpoint_uri=checkpoint_uri,
    )
    on_train_pool(trained, accelerator_type, accelerator_count)
    for task in (demos, ds, stats):
        on_cpu_pool(task)
    evaluation = evaluate(
        checkpoint=trained.outputs["checkpoint"],
        task=sim_task,
        episodes=eval_episodes,
        output_uri=eval_uri,
        videos=2,
    )
    with dsl.If(evaluation.outputs["Output"] >= success_threshold, name="good-enough"):
        export(
            checkpoint=trained.outputs["checkpoint"],
            model_repository=model_repository,
            model_name=model_name,
        )


def compile_pipeline(path: str) -> str:
    compiler.Compiler().compile(finetune, path)
    return path


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--output", default="finetune.yaml")
    print(compile_pipeline(p.parse_args().output))
