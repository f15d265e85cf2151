"""``make run-local``: the whole finetune pipeline on this CPU through kfp.local, with a tiny model.

    make run-local          # a few minutes on 2 cores the first time; a re-run reuses cached steps

Runs the component definitions the cluster runs (kfp.local's SubprocessRunner, this venv):
scripted sim demos → LeRobot dataset → norm stats → ``debug_lora`` training (pi0_tiny, LoRA) → evaluation of
the checkpoint in the sim → export to a local model repository → deploy. Before the pipeline starts,
a real Triton server starts on that (still empty) repository and polls it; deploy waits until Triton
has loaded the new version and sends it a smoke inference — the cluster's rollout without the
cluster. Prints where every artifact is and how long each step took. Everything lands under
``local-run/`` (override with VLAOPS_LOCAL_RUN).
"""

import os
import socket
import time
from pathlib import Path

from pipelines import local
from pipelines.finetune import finetune


def params(root: Path, triton_grpc: str) -> dict:
    """Tiny settings: 4 demos, 30 ``debug`` steps (pi0_tiny, in the pipeline's default LoRA mode:
    ``debug_lora``), 2 evaluation episodes, every version deployed."""
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
        "num_nodes": 1,
        "eval_episodes": 2,
        "eval_uri": str(root / "eval"),
        "success_threshold": 0.0,  # a 30-step tiny model succeeds at nothing; deploy it anyway
        "model_repository": str(root / "models"),
        "serving_release": "",
        "serving_url": triton_grpc,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(root: Path) -> dict:
    """Run the pipeline under ``root`` with a local Triton; returns step seconds and statuses."""
    from vlaops.serve.triton import Server

    root = Path(root).absolute()
    (root / "models").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    server = Server(
        str(root / "models"),
        free_port(),
        free_port(),
        free_port(),
        poll_seconds=1,
        log_file=str(root / "triton.log"),
        exit_timeout=5,
    )
    with server:
        triton_s = time.perf_counter() - t0
        with local.StepTimer() as timer:
            local.init(root)
            finetune(**params(root, server.grpc_url))
    return {
        "seconds": timer.seconds,
        "status": timer.status,
        "total": timer.total,
        "triton_s": triton_s,
    }


def main() -> None:
    root = Path(os.environ.get("VLAOPS_LOCAL_RUN", "local-run")).absolute()
    result = run(root)
    print("\n| artifact | where |\n|---|---|")
    for name, path in [
        ("demonstrations (HDF5)", root / "raw"),
        ("LeRobot dataset", root / "dataset"),
        ("checkpoints, metrics.jsonl, loss.png", root / "checkpoints"),
        ("evaluation report (videos)", root / "eval" / "report.html"),
        ("Triton model repository", root / "models"),
        ("Triton log", root / "triton.log"),
        ("KFP artifacts (pointers, metrics, reports)", root / "pipeline-root"),
    ]:
        print(f"| {name} | {path} |")
    print("\n" + local.table(result["seconds"], result["status"]))
    print(f"\nTriton start {result['triton_s']:.0f}s; pipeline {result['total']:.0f}s")


if __name__ == "__main__":
    main()
