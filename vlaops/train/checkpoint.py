"""Training checkpoints with orbax, one directory per step, local or gs://:

    <dir>/<step>/params/                        the parameter tree, openpi's layout ({"params": ...})
    <dir>/<step>/train_state/                   optimizer state, step, RNG key, EMA, loader position
    <dir>/<step>/assets/<asset_id>/norm_stats.json
    <dir>/<step>/assets/config.json             the resolved training config (eval/export read it)

Orbax writes a step under a temporary name and renames it when every item is written, so a crash
never leaves a step that looks complete. Restoring walks back from the newest step: a step that
fails to restore (corrupt, truncated) is skipped with a warning and the one before it is used.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import orbax.checkpoint as ocp

from vlaops import storage

log = logging.getLogger(__name__)


class _AssetsHandler(ocp.CheckpointHandler):
    """Plain files (JSON text) inside the step: norm stats per asset id and the config."""

    def save(self, directory, args: AssetsSave):
        for rel, text in args.files.items():
            storage.write_text(storage.join(str(directory), rel), text)

    def restore(self, directory, args: AssetsRestore | None = None):
        root = str(directory)
        fs, path = storage.filesystem(root)
        return {
            p[len(path) + 1 :]: storage.read_text(storage.join(root, p[len(path) + 1 :]))
            for p in fs.find(path)
        }

    def metadata(self, directory):
        return None

    def finalize(self, directory):
        pass

    def close(self):
        pass


@ocp.args.register_with_handler(_AssetsHandler, for_save=True)
@dataclasses.dataclass
class AssetsSave(ocp.args.CheckpointArgs):
    files: dict[str, str]


@ocp.args.register_with_handler(_AssetsHandler, for_restore=True)
@dataclasses.dataclass
class AssetsRestore(ocp.args.CheckpointArgs):
    pass


def manager(directory: str, keep: int = 3, keep_period: int | None = None) -> ocp.CheckpointManager:
    """A synchronous CheckpointManager (a save returns once the step is durable)."""
    if not storage.is_remote(directory):
        storage.local_path(directory).mkdir(parents=True, exist_ok=True)
        directory = str(storage.local_path(directory).absolute())
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, keep_period=keep_period, enable_async_checkpointing=False, create=True
    )
    return ocp.CheckpointManager(
        directory,
        options=options,
        item_handlers={
            "params": ocp.PyTreeCheckpointHandler(),
            "train_state": ocp.PyTreeCheckpointHandler(),
            "assets": _AssetsHandler(),
        },
    )


def save(
    mgr: ocp.CheckpointManager,
    step: int,
    params,
    train_state,
    norm_stats: dict,
    asset_id: str,
    config: dict,
) -> None:
    files = {
        f"{asset_id}/norm_stats.json": json.dumps(norm_stats, indent=2),
        "config.json": json.dumps(config, indent=2, default=str),
    }
    mgr.save(
        step,
        args=ocp.args.Composite(
            params=ocp.args.PyTreeSave({"params": params}),
            train_state=ocp.args.PyTreeSave(train_state),
            assets=AssetsSave(files),
        ),
        force=True,
    )
    mgr.wait_until_finished()


def restore_latest(
    mgr: ocp.CheckpointManager, params_target, train_state_target
) -> tuple[int, Any, Any] | None:
    """(step, params, train_state) of the newest step that restores; None when there is none.

    Targets are abstract trees (``jax.ShapeDtypeStruct`` with shardings) so arrays land where the
    trainer wants them, whatever the device count was when they were saved.
    """
    bad = []
    for step in sorted(mgr.all_steps(), reverse=True):
        try:
            out = mgr.restore(
                step,
                args=ocp.args.Composite(
                    params=ocp.args.PyTreeRestore(
                        {"params": params_target},
                        restore_args=_restore_args({"params": params_target}),
                    ),
                    train_state=ocp.args.PyTreeRestore(
                        train_state_target, restore_args=_restore_args(train_state_target)
                    ),
                ),
            )
        except Exception as e:
            log.warning(
                "checkpoint step %d does not restore (%s); trying the previous one",
                step,
                str(e).splitlines()[0][:200],
            )
            bad.append(step)
            continue
        _quarantine(mgr, bad)
        return step, out["params"]["params"], out["train_state"]
    _quarantine(mgr, bad)
    return None


def _quarantine(mgr: ocp.CheckpointManager, steps: list[int]) -> None:
    """Move unreadable steps aside (``<step>.corrupt``) so training can write those steps again;
    nothing is deleted."""
    root = str(mgr.directory)
    for step in steps:
        storage.copy(storage.join(root, str(step)), storage.join(root, f"{step}.corrupt"))
        storage.remove(storage.join(root, str(step)))
    if steps:
        mgr.reload()


def _restore_args(target):
    import jax

    def one(x):
        if hasattr(x, "sharding") and x.sharding is not None:
            return ocp.ArrayRestoreArgs(sharding=x.sharding, global_shape=x.shape, dtype=x.dtype)
        return ocp.RestoreArgs()

    return jax.tree.map(one, target)


def read_assets(step_dir: str) -> dict[str, str]:
    """Files under ``<step>/assets`` (relative path → text)."""
    return _AssetsHandler().restore(storage.join(step_dir, "assets"))
