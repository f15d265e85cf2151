"""``make run-local``: the whole finetune pipeline on this CPU, through kfp.local, with a tiny model.

    make run-local        # ~5 min on 2 cores the first time; a re-run reuses cached steps

Runs the same component definitions as the cluster (kfp.local's SubprocessRunner, this venv):
scripted sim demos → LeRobot dataset → norm stats → ``debug`` training (pi0_tiny) → sim evaluation
→ export to a local model repository; then starts the real Triton server on that repository,
sends a smoke inference, and prints where every artifact is and how long each step took.
Everything lands under ``local-run/`` (override with VLAOPS_LOCAL_RUN).
"""

import os
import time
from pathlib import Path

import kfp.local

from pipelines.finetune import finetune


def main() -> None:
    root = Path(os.environ.get("VLAOPS_LOCAL_RUN", "local-run")).absolute()
    root.mkdir(parents=True, exist_ok=True)
    kfp.local.init(
        runner=kfp.local.SubprocessRunner(use_venv=False),
        pipeline_root=str(root / "pipeline-root"),
        enable_caching=True,
        cache_root=str(root / "kfp-cache"),
    )
    params = {
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
    t0 = time.perf_counter()
    finetune(**params)
    pipeline_s = time.perf_counter() - t0

    from vlaops.serve.client import TritonPolicy
    from vlaops.serve.triton import Server

    t1 = time.perf_counter()
    with Server(
        str(root / "models"), 18000, 18001, 18002, log_file=str(root / "triton.log"), exit_timeout=5
    ) as srv:
        policy = TritonPolicy(srv.grpc_url, "pi0")
        import numpy as np

        obs = {
            "images": {c: np.zeros((480, 640, 3), np.uint8) for c in policy.metadata["cameras"]},
            "state": np.zeros(policy.metadata["state_dim"], np.float32),
            "prompt": "transfer the cube",
        }
        actions = policy.infer(obs)["actions"]
    serve_s = time.perf_counter() - t1

    rows = [
        ("demonstrations (HDF5)", root / "raw"),
        ("LeRobot dataset", root / "dataset"),
        ("checkpoints + loss.png", root / "checkpoints"),
        ("evaluation report", root / "eval" / "report.html"),
        ("model repository", root / "models"),
        ("KFP artifacts", root / "pipeline-root"),
    ]
    print("\n| artifact | where |\n|---|---|")
    for name, path in rows:
        print(f"| {name} | {path} |")
    print(
        f"\npipeline {pipeline_s:.0f}s; Triton up + smoke inference {serve_s:.0f}s: actions {actions.shape}"
    )


if __name__ == "__main__":
    main()
