"""Evaluate a policy in the ALOHA sim: success rates, per-episode rewards, a report with videos.

  vlaops evaluate --policy scripted --task transfer_cube --episodes 10 --output eval/scripted
  vlaops evaluate --server http://127.0.0.1:8000 --task insertion --episodes 50 \\
      --output gs://bucket/evals/run1 --workers 2 --videos 3 --replan-steps 10

Episode i uses seed ``--seed + i`` (object poses as gym-aloha samples them). Writes
``<output>/metrics.json`` (success_rate = reward 4 at the end, max_reward_success_rate,
mean_max_reward, one row per episode) and ``<output>/report.html`` (table + h264 videos of the first
``--videos`` episodes). Exits 0 whatever the score: gating is the pipeline's job. Scripted
policy, 10 episodes, 2 workers: ~1 min on two CPU cores.
"""

from __future__ import annotations

import argparse
import logging
import time

from vlaops import storage
from vlaops.errors import VlaopsError

HELP = "roll a policy out in the ALOHA sim → metrics.json + report.html"
log = logging.getLogger(__name__)


def configure(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="pi0 checkpoint URI, evaluated in-process")
    src.add_argument(
        "--server",
        help="Triton HOST:PORT (gRPC, model pi0) or http:// URL of a vlaops.sim.remote server",
    )
    src.add_argument("--policy", choices=("scripted", "random"), help="a built-in policy")
    p.add_argument("--task", required=True, help="transfer_cube or insertion")
    p.add_argument("--episodes", type=int, default=50, help="number of episodes (default 50)")
    p.add_argument("--output", required=True, help="folder URI for metrics.json and report.html")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode (default 0)")
    p.add_argument(
        "--replan-steps",
        type=int,
        default=10,
        help="actions executed from each chunk before the policy is asked again (default 10)",
    )
    p.add_argument("--workers", type=int, default=1, help="parallel episode processes")
    p.add_argument("--videos", type=int, default=0, help="record the first N episodes as videos")
    p.add_argument("--steps", type=int, default=400, help="control steps per episode (50 Hz)")
    p.add_argument(
        "--published-look",
        action="store_true",
        help="render with shadows, reflections and MSAA (as the published datasets; ~8x slower)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --output")


def run(args: argparse.Namespace) -> int:
    from vlaops.sim import policy

    if args.checkpoint:
        spec = policy.PolicySpec("checkpoint", args.checkpoint, args.replan_steps)
    elif args.server:
        spec = policy.PolicySpec("server", args.server, args.replan_steps)
    else:
        spec = policy.PolicySpec(args.policy, "", args.replan_steps)
    m = evaluate(
        args.task,
        spec,
        args.output,
        episodes=args.episodes,
        seed=args.seed,
        workers=args.workers,
        videos=args.videos,
        steps=args.steps,
        published_look=args.published_look,
        overwrite=args.overwrite,
    )
    print(
        f"{args.task}: success {m['success_rate']:.1%} (reward 4 at the end), "
        f"reached 4 {m['max_reward_success_rate']:.1%}, mean max reward {m['mean_max_reward']:.2f} "
        f"over {m['episodes']} episodes → {args.output}"
    )
    return 0


def evaluate(
    task: str,
    spec,
    output: str,
    episodes: int = 50,
    seed: int = 0,
    workers: int = 1,
    videos: int = 0,
    steps: int = 400,
    published_look: bool = False,
    overwrite: bool = False,
    policy=None,
    render=None,
) -> dict:
    """Run the evaluation and publish its folder at ``output``; returns metrics.json's content.

    ``policy`` (an in-process object) replaces building one from ``spec``; ``render`` (an
    ``env.RenderConfig``) replaces the default 480×640 one.
    """
    from vlaops.sim import env, report, rollout
    from vlaops.sim import policy as policy_lib

    env.get_task(task)
    if episodes < 1 or spec.replan_steps < 1 or not 1 <= steps <= 10_000:
        raise VlaopsError("--episodes, --replan-steps and --steps must be positive")
    storage.require_writable_output(output, overwrite)
    source = f"policy {spec.kind} {spec.uri}".strip()
    if policy is None:  # checks the checkpoint/server before any episode (and worker) starts
        policy = spec.build()
    policy_lib.check(policy, source)
    config = rollout.RolloutConfig(
        task=task,
        policy=spec,
        replan_steps=spec.replan_steps,
        steps=steps,
        render=render or env.RenderConfig(published=published_look),
    )
    seeds = list(range(seed, seed + episodes))
    started = time.perf_counter()
    in_process = workers <= 1 or spec.kind == "checkpoint"

    def progress(r):
        log.info("seed %d: max reward %d, final %d", r.seed, r.max_reward, r.rewards[-1])

    results = rollout.run_episodes(
        config,
        seeds,
        workers=workers,
        video_seeds=seeds[:videos],
        policy=policy if in_process else None,
        progress=progress,
    )
    meta = {
        "task": task,
        "policy": source,
        "replan_steps": spec.replan_steps,
        "steps": steps,
        "workers": workers,
        "render": "published" if config.render.published else "fast",
        "wall_s": round(time.perf_counter() - started, 2),
    }
    with storage.publish_dir(output, overwrite=overwrite) as staging:
        m = report.write(staging, results, meta)
    return m
