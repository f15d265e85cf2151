"""``make run-local``: the finetune pipeline on this CPU through kfp.local, with tiny settings.

    make run-local          # ~1 min on 2 cores the first time; a re-run reuses cached steps

Runs the component definitions the cluster runs (kfp.local's SubprocessRunner, this venv):
scripted sim demos → LeRobot dataset → norm stats, and the scripted expert's evaluation. Prints
where every artifact is and how long each step took. Everything lands under ``local-run/``
(override with VLAOPS_LOCAL_RUN).

Not yet: ``debug`` training → evaluation of the checkpoint → export → a local Triton server and a
smoke inference. Those arrive with the train, export and deploy components (see their READMEs);
``PARAMS`` already carries the values they will read.
"""

import os
from pathlib import Path

from pipelines import local
from pipelines.finetune import finetune


def params(root: Path) -> dict:
    """Tiny settings: 4 demos, 2 evaluation episodes, the ``debug`` training config."""
    return {
        "sim_task": "transfer_cube",
        "demo_episodes": 4,
        "raw_uri": str(root / "raw"),
        "dataset_uri": str(root / "dataset"),
        "repo_id": "local/transfer_cube",
        "task_prompt": "transfer the cube",
        "train_config": "debug",
        "steps": 30,
        "base_checkpoint": "",
        "checkpoint_uri": str(root / "checkpoints"),
        "eval_episodes": 2,
        "eval_uri": str(root / "eval"),
        "success_threshold": 0.0,
        "model_repository": str(root / "models"),
    }


def main() -> None:
    root = Path(os.environ.get("VLAOPS_LOCAL_RUN", "local-run")).absolute()
    with local.StepTimer() as timer:
        local.init(root)
        finetune(**params(root))

    print("\n| artifact | where |\n|---|---|")
    for name, path in [
        ("demonstrations (HDF5)", root / "raw"),
        ("LeRobot dataset", root / "dataset"),
        ("evaluation report (scripted expert)", root / "eval" / "report.html"),
        ("KFP artifacts (pointers, norm stats, metrics)", root / "pipeline-root"),
    ]:
        print(f"| {name} | {path} |")
    print("\n" + local.table(timer.seconds, timer.status))
    print(f"\npipeline {timer.total:.0f}s")


if __name__ == "__main__":
    main()
