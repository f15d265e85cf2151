"""Sim throughput and the scripted expert's success rate.

    MUJOCO_GL=egl .venv/bin/python bench/sim.py                # throughput, ~2 min on 2 cores
    MUJOCO_GL=egl .venv/bin/python bench/sim.py --expert 50    # + expert success over 50 seeds

Throughput: episodes/min of `evaluate`'s rollout loop (a policy that looks at the `top` camera,
480×640, and replans every 10 steps; 400 steps) with 1 and 2 workers, fast vs published rendering,
and where a worker's time goes (render / physics / policy). Measured on the 2-core dev box with
nothing else running (--episodes 10):

    render     workers  episodes/min  render%  physics%  policy%
    fast             1         143.1       79        20        0
    fast             2         246.4       80        19        0
    published        1          23.0       97         3        0
    fast, rendering + encoding every step (video): 10.1 episodes/min/worker

    expert transfer_cube  success 50/50 = 100%  (reached 4: 100%) 0.26 s/episode
    expert insertion      success 46/50 = 92%  (reached 4: 94%) 0.39 s/episode

``--expert N`` plans N seeds per task (physics only) and prints the success rates (reward 4 at
the end of the joint-controlled replay) and how often reward 4 was reached at all.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "sim"))


def throughput(episodes: int) -> None:
    from sim_helpers import ConstantPolicy

    from vlaops.sim import env, rollout
    from vlaops.sim.policy import PolicySpec

    print(
        f"{'render':10} {'workers':>7} {'episodes/min':>13} {'render%':>8} {'physics%':>9} "
        f"{'policy%':>8}"
    )
    for published in (False, True):
        for workers in (1, 2):
            if published and workers == 2:
                continue
            cfg = rollout.RolloutConfig(
                "transfer_cube",
                PolicySpec("server", "in-process constant"),
                render=env.RenderConfig(published=published),
            )
            n = episodes * workers
            t0 = time.perf_counter()
            if workers == 1:
                results = rollout.run_episodes(cfg, range(n), policy=ConstantPolicy())
            else:
                results = _parallel(cfg, n, workers)
            wall = time.perf_counter() - t0
            tot = {k: sum(r.timing[k] for r in results) for k in results[0].timing}
            share = {k: 100 * tot[k] / tot["total"] for k in ("render", "physics", "policy")}
            print(
                f"{'published' if published else 'fast':10} {workers:>7} "
                f"{60 * n / wall:>13.1f} {share['render']:>8.0f} {share['physics']:>9.0f} "
                f"{share['policy']:>8.0f}"
            )
    cfg = rollout.RolloutConfig("transfer_cube", PolicySpec("server", "constant"))
    runner = rollout.Runner(cfg, ConstantPolicy())
    t0 = time.perf_counter()
    runner.episode(0, record_video=True)
    print(
        f"fast, rendering + encoding every step (video): "
        f"{60 / (time.perf_counter() - t0):.1f} episodes/min/worker"
    )
    runner.close()


def _parallel(cfg, n: int, workers: int):
    """Two processes each running the in-process constant policy (no server in between)."""
    import concurrent.futures as cf
    import multiprocessing as mp

    with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        chunks = [list(range(i, n, workers)) for i in range(workers)]
        return [r for rs in pool.map(_worker, [cfg] * workers, chunks) for r in rs]


def _worker(cfg, seeds):
    from sim_helpers import ConstantPolicy

    from vlaops.sim import rollout

    return rollout.run_episodes(cfg, seeds, policy=ConstantPolicy())


def expert_rates(n: int) -> None:
    from vlaops.sim import env, expert

    for task in ("transfer_cube", "insertion"):
        t0 = time.perf_counter()
        demos = [expert.plan(task, s) for s in range(n)]
        ok = sum(d.success for d in demos)
        reached = sum(d.rewards.max() == env.MAX_REWARD for d in demos)
        failed = [s for s, d in enumerate(demos) if not d.success]
        print(
            f"expert {task:14} success {ok}/{n} = {ok / n:.0%}  (reached 4: {reached / n:.0%}) "
            f"{(time.perf_counter() - t0) / n:.2f} s/episode; failed seeds {failed}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=3, help="episodes per worker per setting")
    p.add_argument("--expert", type=int, default=0, help="seeds per task for expert success")
    p.add_argument("--skip-throughput", action="store_true")
    args = p.parse_args()
    if not args.skip_throughput:
        throughput(args.episodes)
    if args.expert:
        expert_rates(args.expert)


if __name__ == "__main__":
    main()
