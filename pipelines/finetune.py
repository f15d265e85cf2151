"""The ``finetune`` pipeline: demonstrations → LeRobot dataset → norm stats → (train → evaluate →
gate → export → deploy, as those stages land). One DAG for the cluster and for ``kfp.local``.

    python -m pipelines.finetune --output finetune.yaml      # compile (make compile-pipeline), ~3 s

Today's DAG (the stages whose code exists):

    generate-demos ──► convert ──► norm-stats
    evaluate (scripted expert: the baseline a trained policy must approach; a smoke test of the
              sim image)

Every parameter of the issue is declared already, so the UI form and run-parameter files stay the
same when train, export and deploy plug in; the ones no step reads yet are listed in
``NOT_YET_USED``. Where each lands is spelled out in ``components/{train,export,deploy}/README.md``.
Caching is on for every step: a re-run with the same inputs skips it.
"""

import argparse

from kfp import compiler, dsl

from components.convert.component import convert
from components.evaluate.component import evaluate
from components.generate_demos.component import generate_demos
from components.norm_stats.component import norm_stats
from pipelines import task_settings

NAME = "finetune"

# Parameters declared for the stages still to come (train, gate, export, deploy).
NOT_YET_USED = (
    "train_config",
    "finetune_mode",
    "steps",
    "batch_size",
    "base_checkpoint",
    "checkpoint_uri",
    "accelerator_type",
    "accelerator_count",
    "num_nodes",
    "success_threshold",
    "model_repository",
    "model_name",
    "serving_release",
    "serving_namespace",
)


@dsl.pipeline(
    name=NAME,
    description="Robot demonstrations → LeRobot dataset → pi0 fine-tune → sim eval → Triton",
)
def finetune(
    # data: generate demos in the sim (sim_task set) or convert the raw demos at raw_uri
    sim_task: str = "transfer_cube",
    demo_episodes: int = 50,
    raw_uri: str = "gs://PROJECT-vlaops-data/raw/transfer_cube",
    raw_format: str = "aloha-hdf5",
    dataset_uri: str = "gs://PROJECT-vlaops-data/datasets/transfer_cube",
    repo_id: str = "vlaops/transfer_cube",
    fps: int = 50,
    task_prompt: str = "transfer the cube",
    action_horizon: int = 50,
    # training (train step: not wired yet)
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
    # serving (export and deploy steps: not wired yet)
    model_repository: str = "gs://PROJECT-vlaops-models/repository",
    model_name: str = "pi0",
    serving_release: str = "vlaops-triton",
    serving_namespace: str = "vlaops-serving",
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

    # Until train lands: the scripted expert's score on the eval task (the baseline). With train,
    # this becomes policy="checkpoint", checkpoint=train.outputs["checkpoint"], followed by
    # dsl.If(evaluation.output >= success_threshold) → export → deploy.
    baseline = evaluate(
        task=eval_task,
        episodes=eval_episodes,
        output_uri=eval_uri,
        policy="scripted",
        replan_steps=10,
        videos=2,
        workers=2,
    ).set_display_name("evaluate-scripted-baseline")

    for task in (demos, dataset, stats, baseline):
        task_settings.on_cpu_pool(task)
        task.set_caching_options(True)


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
