"""Closed-loop episodes: a policy drives the sim with action chunks, replanning every K steps.

    results = rollout.run_episodes(RolloutConfig("transfer_cube", PolicySpec("scripted")),
                                   seeds=range(10), workers=2, video_seeds={0})

The sim renders only when someone looks: the policy's cameras at each replanning step, and every
step of the episodes that become videos (encoded to h264 in the worker, so only bytes travel
back). Episodes run in worker processes (spawned: EGL contexts do not survive a fork), each
building its own sim and policy from the picklable config; ``workers=1`` runs in this process.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from vlaops.sim import env, video
from vlaops.sim import policy as policy_lib


@dataclass(frozen=True)
class RolloutConfig:
    task: str
    policy: policy_lib.PolicySpec
    replan_steps: int = 10  # actions executed from each chunk (openpi's client: 10 of 50)
    steps: int = env.EPISODE_STEPS
    render: env.RenderConfig = field(default_factory=env.RenderConfig)
    video_camera: str = "top"


@dataclass
class EpisodeResult:
    seed: int
    rewards: list[int]
    timing: dict[str, float]  # seconds: physics, render, policy, total
    video: bytes | None = field(default=None, repr=False)  # h264 mp4

    @property
    def steps(self) -> int:
        return len(self.rewards)

    @property
    def success(self) -> bool:  # reward 4 at the end, not a transient touch
        return bool(self.rewards) and self.rewards[-1] == env.MAX_REWARD

    @property
    def max_reward(self) -> int:
        return max(self.rewards, default=0)


class Runner:
    """One sim and one policy, reused across the episodes of a worker."""

    def __init__(self, config: RolloutConfig, policy: policy_lib.Policy | None = None):
        self.config = config
        self.policy = policy if policy is not None else config.policy.build()
        self.source = f"policy {config.policy.kind} {config.policy.uri}".strip()
        self.cameras = policy_lib.check(self.policy, self.source)
        self.sim = env.AlohaSim(config.task, cameras=self.cameras, render=config.render)

    def episode(self, seed: int, record_video: bool = False) -> EpisodeResult:
        cfg, sim = self.config, self.sim
        sim.timing = {"physics": 0.0, "render": 0.0}
        policy_s, start = 0.0, time.perf_counter()
        writer = video.Mp4Writer(env.FPS) if record_video else None
        obs = sim.reset(seed)
        self.policy.reset(cfg.task, seed)
        rewards: list[int] = []
        chunk, used = None, 0
        for t in range(cfg.steps):
            if writer is not None:
                writer.add(sim.render(cfg.video_camera))
            if chunk is None or used >= min(cfg.replan_steps, len(chunk)):
                t0 = time.perf_counter()
                chunk = policy_lib.chunk_of(self.policy.infer(obs), self.source)
                policy_s += time.perf_counter() - t0
                used = 0
            # Render for the policy only before the step at which it will be asked again.
            observe = used + 1 >= min(cfg.replan_steps, len(chunk)) and t + 1 < cfg.steps
            obs, reward = sim.step(chunk[used], observe=observe)
            used += 1
            rewards.append(int(reward))
        if writer is not None:
            writer.add(sim.render(cfg.video_camera))
        timing = {**sim.timing, "policy": policy_s, "total": time.perf_counter() - start}
        return EpisodeResult(seed, rewards, timing, writer.finish() if writer else None)

    def close(self) -> None:
        self.sim.close()


_RUNNER: Runner | None = None


def _init_worker(config: RolloutConfig) -> None:
    global _RUNNER
    _RUNNER = Runner(config)


def _run_in_worker(seed: int, record_video: bool) -> EpisodeResult:
    assert _RUNNER is not None
    return _RUNNER.episode(seed, record_video)


def run_episodes(
    config: RolloutConfig,
    seeds: Iterable[int],
    workers: int = 1,
    video_seeds: Iterable[int] = (),
    policy: policy_lib.Policy | None = None,
    progress: Callable[[EpisodeResult], None] | None = None,
) -> list[EpisodeResult]:
    """Run one episode per seed; results in seed order. ``policy`` (an object, not a spec) runs
    in this process only."""
    seeds, videos = list(seeds), set(video_seeds)
    if workers <= 1 or len(seeds) <= 1 or policy is not None:
        runner = Runner(config, policy)
        try:
            out = []
            for s in seeds:
                out.append(runner.episode(s, s in videos))
                if progress:
                    progress(out[-1])
            return out
        finally:
            runner.close()
    # Fail in this process, with a clear message, before spawning anything.
    policy_lib.check(config.policy.build(), f"policy {config.policy.kind} {config.policy.uri}")
    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(
        max_workers=min(workers, len(seeds)),
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(config,),
    ) as pool:
        futures = {pool.submit(_run_in_worker, s, s in videos): s for s in seeds}
        results = {}
        for f in cf.as_completed(futures):
            r = f.result()
            results[r.seed] = r
            if progress:
                progress(r)
    return [results[s] for s in seeds]


def summary(results: list[EpisodeResult]) -> dict:
    n = max(len(results), 1)
    return {
        "episodes": len(results),
        "success_rate": sum(r.success for r in results) / n,
        "max_reward_success_rate": sum(r.max_reward == env.MAX_REWARD for r in results) / n,
        "mean_max_reward": float(np.mean([r.max_reward for r in results])) if results else 0.0,
    }
