"""The ``finetune`` pipeline: demonstrations → LeRobot dataset → norm stats → pi0 fine-tune → sim
evaluation → (if good enough) export → deploy. One DAG for the cluster and for ``kfp.local``.

    python -m pipelines.finetune --output finetune.yaml      # compile (make compile-pipeline), ~3 s

    generate-demos ──► convert ──► norm-stats ──► train ──► evaluate ──► [success ≥ threshold]
    (sim_task set; else                              ▲                     export ──► deploy
     raw_uri is read)                 train-placement┘

``train-placement`` turns the run's accelerator type, GPU count and node count into where the
train step runs (a GPU node of the train pool; or, with several nodes, the CPU pool, from where the
step launches and watches a JobSet). Caching is on for every step but deploy: a re-run with the
same inputs skips what is done.
"""

import argparse

from kfp import compiler, dsl

from components.convert.component import convert
from components.deploy.component import deploy
from components.evaluate.component import evaluate
from components.export.component import export
from components.generate_demos.component import generate_demos
from components.norm_stats.component import norm_stats
from components.train.component import train
from pipelines import task_settings
from vlaops.train import jobset

NAME = "finetune"


@dsl.pipeline(
    name=NAME,
    description="Robot demonstrations → LeRobot dataset → pi0 fine-tune → sim eval → Triton",
)
def finetune(
    # data: generate demos in the sim (sim_task set) or convert the raw demos at raw_uri
    sim_task: str = "transfer_cube",
    demo_episodes: int = 50,
    raw_uri: str = "gs://PROJECT-vlaops-raw/transfer_cube",
    raw_format: str = "aloha-hdf5",
    dataset_uri: str = "gs://PROJECT-vlaops-datasets/transfer_cube",
    repo_id: str = "vlaops/transfer_cube",
    fps: int = 50,
    task_prompt: str = "transfer the cube",
    action_horizon: int = 50,
    # training: config family + mode (pi0_aloha_sim + lora → pi0_aloha_sim_lora), or a full name
    train_config: str = "pi0_aloha_sim",
    finetune_mode: str = "lora",
    steps: int = 0,
    batch_size: int = 0,
    base_checkpoint: str = "gs://openpi-assets/checkpoints/pi0_base/params",
    checkpoint_uri: str = "gs://PROJECT-vlaops-checkpoints/transfer_cube",
    accelerator_type: str = "nvidia-tesla-a100",
    accelerator_count: int = 8,
    num_nodes: int = 1,
    # evaluation and the deployment gate
    eval_task: str = "transfer_cube",
    eval_episodes: int = 50,
    eval_uri: str = "gs://PROJECT-vlaops-checkpoints/transfer_cube-eval",
    success_threshold: float = 0.5,
    # serving: the model repository Triton reads, and the Helm release to roll (empty: no
    # Kubernetes; serving_url then names a Triton that polls the repository, as make run-local's)
    model_repository: str = "gs://PROJECT-vlaops-models",
    model_name: str = "pi0",
    serving_release: str = "vlaops-triton",
    serving_namespace: str = "vlaops-serving",
    serving_url: str = "",
):
    demos = generate_demos(
        sim_task=sim_task, episodes=demo_episodes, raw_uri=raw_uri, raw_format=raw_format, seed=0
    )
    dataset = convert(
        raw=demos.outputs["demos"],
        dataset_uri=dataset_uri,
        repo_id=repo_id,
        fps=fps,
        task_prompt=task_prompt,
        workers=0,
    )
    stats = norm_stats(dataset=dataset.outputs["dataset"], action_horizon=action_horizon)

    placement = task_settings.train_placement(
        accelerator_type=accelerator_type,
        accelerator_count=accelerator_count,
        num_nodes=num_nodes,
    )
    trained = train(
        dataset=dataset.outputs["dataset"],
        stats=stats.outputs["stats"],
        config=train_config,
        finetune_mode=finetune_mode,
        steps=steps,
        batch_size=batch_size,
        base_checkpoint=base_checkpoint,
        checkpoint_uri=checkpoint_uri,
        num_nodes=num_nodes,
        accelerator_type=accelerator_type,
        gpus_per_node=accelerator_count,
        run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
    )
    task_settings.on_train_pool(
        trained,
        placement.outputs["gpus"],
        placement.outputs["node_selector"],
        cpu=placement.outputs["cpu"],
        memory=placement.outputs["memory"],
    )
    evaluation = evaluate(
        task=eval_task,
        episodes=eval_episodes,
        output_uri=eval_uri,
        policy="checkpoint",
        checkpoint=trained.outputs["checkpoint"],
        replan_steps=10,
        videos=2,
        workers=2,
    )
    # pi0 rolls out in-process: one GPU of the train pool, any model, shared by the episode
    # workers (each its own JAX process: no up-front grab of 75% of the GPU memory each)
    task_settings.on_train_pool(
        evaluation, 1, jobset.train_pool_selector(), cpu="4", memory="32G", scratch_size="50Gi"
    ).set_env_variable("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    with dsl.If(evaluation.outputs["Output"] >= success_threshold, name="good-enough"):
        exported = export(
            checkpoint=trained.outputs["checkpoint"],
            model_repository=model_repository,
            model_name=model_name,
        )
        rolled = deploy(
            served=exported.outputs["served"],
            release=serving_release,
            namespace=serving_namespace,
            server=serving_url,
        )
    task_settings.on_cpu_pool(exported, memory="24G")  # a full pi0 in f32 while LoRA merges
    task_settings.on_cpu_pool(rolled, cpu="1", memory="2G")
    for task in (demos, dataset, stats, placement):
        task_settings.on_cpu_pool(task)
    for task in (demos, dataset, stats, placement, trained, evaluation, exported):
        task.set_caching_options(True)
    rolled.set_caching_options(False)  # a deploy always happens


def compile_pipeline(path: str) -> str:
    """Write the pipeline YAML to ``path``; returns it."""
    compiler.Compiler().compile(finetune, path)
    return path


def parameters() -> dict[str, object]:
    """The pipeline's parameters with their defaults (what a run-parameter file may set)."""
    inputs = finetune.component_spec.inputs or {}
    return {name: spec.default for name, spec in inputs.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--output", default="finetune.yaml", help="YAML file to write")
    args = p.parse_args(argv)
    print(f"wrote {compile_pipeline(args.output)}")


if __name__ == "__main__":
    main()
