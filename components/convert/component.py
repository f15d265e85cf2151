"""convert: raw demonstrations → a LeRobot v3.0 dataset at ``dataset_uri`` (``vlaops convert``).

The dataset itself goes to the URI the user chose (a bucket on the cluster); the output ``Dataset``
artifact is a small pointer (its metadata and a JSON file) so later steps and the UI find it.
"""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from vlaops import images


@dsl.component(base_image=images.DATA, install_kfp_package=False)
def convert(
    raw: Input[Dataset],
    dataset_uri: str,
    repo_id: str,
    fps: int,
    task_prompt: str,
    workers: int,
    dataset: Output[Dataset],
    metrics: Output[Metrics],
):
    """Convert ``raw`` (a pointer from generate-demos) into ``dataset_uri``; 0 workers = default."""
    import json
    import os

    from vlaops.data import convert as conv

    summary = conv.convert(
        raw.metadata["uri"],
        raw.metadata["format"],
        dataset_uri,
        repo_id=repo_id,
        fps=fps,
        task=task_prompt or None,
        workers=workers or None,
    )
    for key in ("episodes", "frames", "seconds", "frames_per_second"):
        metrics.log_metric(key, getattr(summary, key))

    pointer = {
        "uri": dataset_uri,
        "repo_id": repo_id,
        "fps": fps,
        "episodes": summary.episodes,
        "frames": summary.frames,
        "cameras": summary.cameras,
        "source": raw.metadata["uri"],
    }
    dataset.metadata.update(pointer)
    os.makedirs(os.path.dirname(dataset.path) or ".", exist_ok=True)
    with open(dataset.path, "w") as f:
        json.dump(pointer, f, indent=2)

    # The scalars also as a file: downloadable from the store, and kfp.local's cache reuses a
    # step only when every output artifact has a file.
    os.makedirs(os.path.dirname(metrics.path) or ".", exist_ok=True)
    with open(metrics.path, "w") as f:
        json.dump(metrics.metadata, f, indent=2)
