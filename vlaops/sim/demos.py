"""Scripted demonstrations in the ALOHA sim, written as ALOHA episode HDF5 (what `convert` reads).

  vlaops generate-demos --task transfer_cube --episodes 50 --output gs://raw/transfer_cube --workers 2
  vlaops generate-demos --task insertion --episodes 5 --output demos/ins --cameras top,left_wrist,right_wrist

Seeds are tried in order from --seed; the scripted expert plans each one (physics only, ~0.5 s)
and only episodes that end with reward 4 are rendered and written, as episode_<i>.hdf5 (i = 0…N-1)
with root attrs ``sim`` = True and ``seed``. It stops when N episodes are written or after
--max-attempts seeds, and reports the expert's success rate. 400 steps at 50 Hz per episode; one
480×640 camera renders in ~6 s per episode on a CPU core.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import logging
import multiprocessing as mp
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vlaops import storage
from vlaops.errors import VlaopsError

HELP = "scripted-expert demonstrations in the ALOHA sim → episode_<i>.hdf5 folder"
log = logging.getLogger(__name__)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True, help="transfer_cube or insertion")
    p.add_argument("--episodes", type=int, required=True, help="successful episodes to write")
    p.add_argument("--output", required=True, help="folder URI to create (must be empty)")
    p.add_argument("--seed", type=int, default=0, help="first seed to try (default 0)")
    p.add_argument(
        "--cameras", default="top", help="comma-separated: top, left_wrist, right_wrist, …"
    )
    p.add_argument("--workers", type=int, default=1, help="parallel episode processes")
    p.add_argument(
        "--max-attempts",
        type=int,
        default=None,
        help="give up after this many seeds (default: 2×episodes + 10)",
    )
    p.add_argument(
        "--resolution", default="480x640", help="image HEIGHTxWIDTH (default 480x640, as ALOHA)"
    )
    p.add_argument(
        "--published-look",
        action="store_true",
        help="render with shadows, reflections and MSAA (the published datasets' look)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --output")


def run(args: argparse.Namespace) -> int:
    try:
        h, w = (int(x) for x in args.resolution.lower().split("x"))
    except ValueError:
        raise VlaopsError(f"--resolution {args.resolution!r}: expected HEIGHTxWIDTH") from None
    s = generate(
        args.task,
        args.episodes,
        args.output,
        seed=args.seed,
        cameras=[c.strip() for c in args.cameras.split(",") if c.strip()],
        workers=args.workers,
        max_attempts=args.max_attempts,
        height=h,
        width=w,
        published_look=args.published_look,
        overwrite=args.overwrite,
    )
    print(
        f"{args.task}: wrote {s['written']} episodes to {args.output}; expert success "
        f"{s['successes']}/{s['attempts']} seeds ({s['success_rate']:.0%})"
    )
    return 0


@dataclass(frozen=True)
class _Job:
    task: str
    cameras: tuple[str, ...]
    height: int
    width: int
    published: bool
    staging: str


def _attempt(job: _Job, seed: int) -> tuple[int, bool, str | None]:
    """Plan one seed; when the expert succeeds, render the replay into staging/seed_<s>.hdf5."""
    from vlaops.sim import expert

    demo = expert.plan(job.task, seed)
    if not demo.success:
        return seed, False, None
    path = Path(job.staging) / f".seed_{seed}.hdf5"
    write_episode(job, seed, demo.actions, path)
    return seed, True, str(path)


def write_episode(job: _Job, seed: int, actions: np.ndarray, path: Path) -> None:
    import h5py

    from vlaops.sim import env

    sim = env.AlohaSim(
        job.task, job.cameras, env.RenderConfig(job.height, job.width, job.published)
    )
    T = len(actions)
    try:
        with h5py.File(path, "w") as f:
            f.attrs["sim"] = True
            f.attrs["seed"] = seed
            f.attrs["task"] = job.task
            f.attrs["prompt"] = sim.task.prompt
            qpos = f.create_dataset("observations/qpos", (T, env.ACTION_DIM), np.float32)
            qvel = f.create_dataset("observations/qvel", (T, env.ACTION_DIM), np.float32)
            images = {
                cam: f.create_dataset(
                    f"observations/images/{cam}",
                    (T, job.height, job.width, 3),
                    np.uint8,
                    chunks=(1, job.height, job.width, 3),
                    compression="gzip",
                    compression_opts=1,
                )
                for cam in job.cameras
            }
            f["action"] = actions.astype(np.float32)
            rewards = f.create_dataset("reward", (T,), np.int8)
            obs = sim.reset(seed)
            for t in range(T):  # observation t is what the robot saw before action t
                qpos[t] = obs["state"]
                qvel[t] = sim.scene.qvel()
                for cam, ds in images.items():
                    ds[t] = obs["images"][cam]
                obs, rewards[t] = sim.step(actions[t], observe=t + 1 < T)
            if rewards[-1] != env.MAX_REWARD:  # replay must reproduce the plan exactly
                raise RuntimeError(f"seed {seed}: replay ended with reward {rewards[-1]}")
    finally:
        sim.close()


def generate(
    task: str,
    episodes: int,
    output: str,
    seed: int = 0,
    cameras=("top",),
    workers: int = 1,
    max_attempts: int | None = None,
    height: int = 480,
    width: int = 640,
    published_look: bool = False,
    overwrite: bool = False,
) -> dict:
    """Write ``episodes`` successful demonstrations to ``output``; returns the counts."""
    from vlaops.sim import env

    spec = env.get_task(task)
    cams = env.check_cameras(cameras)
    if episodes < 1:
        raise VlaopsError(f"--episodes {episodes}: must be at least 1")
    max_attempts = max_attempts or 2 * episodes + 10
    storage.require_writable_output(output, overwrite)
    written, tried = [], 0
    with storage.publish_dir(output, overwrite=overwrite) as staging:
        job = _Job(spec.name, cams, height, width, published_look, str(staging))
        results: dict[int, tuple[bool, str | None]] = {}
        pool = None
        if workers > 1:
            pool = cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
        try:
            next_seed = seed
            # Batches of seeds, kept in seed order, so the output is the same for any --workers.
            while len(written) < episodes and tried < max_attempts:
                need = episodes - len(written)
                batch = list(range(next_seed, next_seed + min(need, max_attempts - tried)))
                next_seed += len(batch)
                tried += len(batch)
                if pool is None:
                    done = [_attempt(job, s) for s in batch]
                else:
                    done = list(pool.map(_attempt, [job] * len(batch), batch))
                for s, ok, path in done:
                    results[s] = (ok, path)
                    log.info("seed %d: %s", s, "success" if ok else "expert failed")
                written = [s for s in sorted(results) if results[s][0]][:episodes]
        finally:
            if pool is not None:
                pool.shutdown()
        for i, s in enumerate(written):
            os.replace(results[s][1], staging / f"episode_{i}.hdf5")
        for p in staging.glob(".seed_*.hdf5"):
            p.unlink()
        if len(written) < episodes:  # publish nothing half done
            successes = sum(ok for ok, _ in results.values())
            raise _Shortfall(len(written), tried, successes)
    successes = sum(ok for ok, _ in results.values())
    return {
        "written": len(written),
        "attempts": tried,
        "successes": successes,
        "success_rate": successes / max(tried, 1),
        "seeds": written,
    }


class _Shortfall(VlaopsError):
    def __init__(self, written: int, attempts: int, successes: int):
        super().__init__(
            f"the expert succeeded on {successes} of {attempts} seeds, fewer than asked "
            f"(nothing was published): raise --max-attempts"
        )
        self.written, self.attempts, self.successes = written, attempts, successes
