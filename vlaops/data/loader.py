"""The training data loader: LeRobot v3 dataset → batches pi0 trains on, never waiting on video.

    cache = frame_cache.build(dataset_dir, cache_dir)            # once: decode every frame
    loader = Loader(DatasetArrays.load(dataset_dir), cache, LoaderConfig(action_horizon=50),
                    batch_size=32, seed=42, normalizer=Normalizer.from_norm_stats(stats))
    for batch in loader: ...                                     # prefetched in a thread
    state = loader.state_dict()                                  # exact position, for the checkpoint

A batch is a pure function of (seed, position): epoch ``e`` visits the samples in the order of a
permutation seeded by (seed, e), so resuming at a saved position replays exactly what an
uninterrupted run would have seen. With several JAX processes, each takes its own contiguous slice
of every global batch. Samples are frames of the selected episodes; each carries the action chunk
of the next H steps, clamped at the episode's end (as lerobot pads) with an ``action_is_pad`` mask.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from vlaops.data import prefetch, transforms
from vlaops.data.frame_cache import FrameCache
from vlaops.errors import VlaopsError

Tokenizer = Callable[[Sequence[str]], tuple[np.ndarray, np.ndarray]]  # prompts → (tokens, mask)


@dataclass(frozen=True)
class DatasetArrays:
    """The non-video columns of a dataset, in memory (a few MB even for large datasets)."""

    state: np.ndarray  # (N, S) float32
    action: np.ndarray  # (N, A) float32
    episode_index: np.ndarray  # (N,) int64
    episode_start: np.ndarray  # (N,) first dataset index of the frame's episode
    episode_end: np.ndarray  # (N,) one past the last
    task_index: np.ndarray  # (N,) int64
    tasks: tuple[str, ...]  # task_index → text
    cameras: tuple[str, ...]  # video features, without the observation.images. prefix
    fps: float

    @classmethod
    def load(cls, dataset: Path) -> DatasetArrays:
        import json

        info = json.loads((dataset / "meta/info.json").read_text())
        for name in ("observation.state", "action"):
            if name not in info["features"]:
                raise VlaopsError(f"{dataset}: the dataset has no feature {name!r}")
        cols = ["observation.state", "action", "episode_index", "index", "task_index"]
        t = pq.read_table(sorted(dataset.glob("data/*/*.parquet")), columns=cols)
        index = t["index"].to_numpy()
        if not np.array_equal(index, np.arange(len(index))):
            raise VlaopsError(f"{dataset}: frame index column is not 0..N-1 in file order")
        ep = t["episode_index"].to_numpy()
        bounds = np.flatnonzero(np.diff(ep)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [len(ep)]])
        which = np.repeat(np.arange(len(starts)), ends - starts)
        tasks_table = pq.read_table(dataset / "meta/tasks.parquet").to_pandas()
        tasks = [""] * (int(tasks_table["task_index"].max()) + 1)
        for task, row in tasks_table.iterrows():
            tasks[int(row["task_index"])] = str(row.get("task", task))
        return cls(
            state=_matrix(t, "observation.state"),
            action=_matrix(t, "action"),
            episode_index=ep,
            episode_start=starts[which],
            episode_end=ends[which],
            task_index=t["task_index"].to_numpy(),
            tasks=tuple(tasks),
            cameras=tuple(
                k.removeprefix("observation.images.")
                for k, f in info["features"].items()
                if f["dtype"] == "video"
            ),
            fps=float(info["fps"]),
        )

    def frames_of(self, episodes: Sequence[int] | None) -> np.ndarray:
        """Dataset indices of every frame of the given episodes (all when None)."""
        if episodes is None:
            return np.arange(len(self.state))
        return np.flatnonzero(np.isin(self.episode_index, np.asarray(episodes)))


def _matrix(table, name: str) -> np.ndarray:
    col = table[name].combine_chunks()
    return col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), -1).astype(np.float32)


@dataclass(frozen=True)
class LoaderConfig:
    action_horizon: int = 50  # H: actions per sample, padded by repeating the episode's last
    model_dim: int = 32  # state and actions are zero-padded to this
    cameras: dict[str, str] | None = (
        None  # model camera → dataset camera; None: ALOHA names or in order
    )
    delta_action_mask: tuple[bool, ...] | None = None  # dims made relative to the current state
    default_prompt: str | None = None  # overrides the dataset's task strings when set
    image_size: int = 224


@dataclass
class Loader:
    data: DatasetArrays
    cache: FrameCache | None
    config: LoaderConfig
    batch_size: int  # global batch, over all processes
    seed: int = 0
    normalizer: transforms.Normalizer | None = None
    tokenizer: Tokenizer | None = None
    episodes: Sequence[int] | None = None  # None: all episodes
    process_index: int = 0
    process_count: int = 1
    prefetch: int = 2
    position: int = 0  # batches produced so far (global, across epochs)
    _samples: np.ndarray = field(init=False, repr=False)
    _cameras: dict[str, str | None] = field(init=False, repr=False)
    _prompts: dict[int, tuple[np.ndarray, np.ndarray]] = field(
        init=False, repr=False, default_factory=dict
    )

    def __post_init__(self):
        if self.batch_size % self.process_count:
            raise VlaopsError(
                f"batch size {self.batch_size} does not split over {self.process_count} processes"
            )
        self._samples = self.data.frames_of(self.episodes)
        if len(self._samples) < self.batch_size:
            raise VlaopsError(
                f"{len(self._samples)} frames are fewer than one batch of {self.batch_size}"
            )
        self._cameras = transforms.camera_mapping(self.data.cameras, self.config.cameras)
        for dim, name in (
            (self.data.state.shape[1], "observation.state"),
            (self.data.action.shape[1], "action"),
        ):
            if dim > self.config.model_dim:
                raise VlaopsError(
                    f"feature {name!r} has {dim} dims, more than the model's {self.config.model_dim}"
                )
        mask = self.config.delta_action_mask
        if mask is not None and len(mask) > self.data.action.shape[1]:
            raise VlaopsError(
                f"delta_action_mask has {len(mask)} dims, feature 'action' has {self.data.action.shape[1]}"
            )
        if self.cache is not None:
            missing = [c for c in self._cameras.values() if c and c not in self.cache.cameras]
            if missing:
                raise VlaopsError(f"frame cache has no camera {missing[0]!r}")

    @property
    def batches_per_epoch(self) -> int:
        return len(self._samples) // self.batch_size

    def state_dict(self) -> dict:
        return {"position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        if state["seed"] != self.seed:
            raise VlaopsError(
                f"loader state was saved with seed {state['seed']}, this run uses {self.seed}"
            )
        self.position = int(state["position"])

    def indices_at(self, position: int) -> np.ndarray:
        """Dataset indices of this process's share of global batch ``position``."""
        epoch, b = divmod(position, self.batches_per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self._samples))
        per = self.batch_size // self.process_count
        start = b * self.batch_size + self.process_index * per
        return self._samples[order[start : start + per]]

    def batch_at(self, position: int) -> dict:
        return self.batch(self.indices_at(position))

    def batch(self, idx: np.ndarray) -> dict:
        """Assemble the model inputs for dataset indices ``idx``."""
        cfg, d = self.config, self.data
        steps = idx[:, None] + np.arange(cfg.action_horizon)
        last = d.episode_end[idx, None] - 1
        actions = d.action[np.minimum(steps, last)]
        state = d.state[idx]
        if cfg.delta_action_mask is not None:
            actions = transforms.DeltaActions(cfg.delta_action_mask).to_delta(actions, state)
        if self.normalizer is not None:
            state, actions = self.normalizer.state_in(state), self.normalizer.actions_in(actions)
        out = {
            "state": transforms.pad_to_dim(state, cfg.model_dim),
            "actions": transforms.pad_to_dim(actions, cfg.model_dim),
            "action_is_pad": steps > last,
            "images": {},
            "image_masks": {},
        }
        order = np.argsort(idx)  # read the memory map in ascending order, then restore
        for model_cam, cam in self._cameras.items():
            if cam is None or self.cache is None:
                out["images"][model_cam] = np.zeros(
                    (len(idx), cfg.image_size, cfg.image_size, 3), np.uint8
                )
                out["image_masks"][model_cam] = np.zeros(len(idx), bool)
                continue
            frames = np.empty((len(idx), cfg.image_size, cfg.image_size, 3), np.uint8)
            frames[order] = self.cache.frames(cam)[idx[order]]
            out["images"][model_cam] = frames
            out["image_masks"][model_cam] = np.ones(len(idx), bool)
        if self.tokenizer is not None:
            tokens, masks = zip(*(self._prompt(int(t)) for t in d.task_index[idx]), strict=True)
            out["tokenized_prompt"], out["tokenized_prompt_mask"] = (
                np.stack(tokens),
                np.stack(masks),
            )
        return out

    def _prompt(self, task: int) -> tuple[np.ndarray, np.ndarray]:
        if task not in self._prompts:
            text = self.config.default_prompt or self.data.tasks[task]
            tokens, mask = self.tokenizer([text])
            self._prompts[task] = (tokens[0], mask[0])
        return self._prompts[task]

    def __iter__(self) -> Iterator[dict]:
        """Batches from ``position`` on, assembled ``prefetch`` ahead in a background thread."""

        def batches(start: int):
            for pos in itertools.count(start):
                yield pos, self.batch_at(pos)

        for pos, batch in prefetch.background(batches(self.position), self.prefetch):
            self.position = pos + 1
            yield batch
