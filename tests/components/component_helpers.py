"""Helpers for calling a component's Python function directly, as KFP's executor would."""

from __future__ import annotations

from pathlib import Path

from kfp import dsl

from vlaops.data.synthetic import aloha_episode


def output(cls: type[dsl.Artifact], root: Path, name: str) -> dsl.Artifact:
    """An empty output artifact whose file lands under ``root`` (KFP gives a path per output)."""
    return cls(name=name, uri=str(root / "artifacts" / name), metadata={})


def raw_episodes(root: Path, n: int = 2, length: int = 8) -> Path:
    """A folder of ``n`` tiny synthetic ALOHA episode files (one 32×48 camera)."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        aloha_episode(root / f"episode_{i}.hdf5", length, ("top",), (32, 48), seed=i)
    return root
