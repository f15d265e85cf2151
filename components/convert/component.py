"""Raw demonstrations → LeRobot v3.0 dataset at ``dataset_uri`` (``vlaops convert``)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from vlaops import images


@dsl.component(base_image=images.DATA)
def convert(
    raw: Input[Dataset],
    dataset_uri: str,
    repo_id: str,
    fps: int,
    task: str,
    workers: int,
    dataset: Output[Dataset],
    metrics: Output[Metrics],
):
    from vlaops import storage
    from vlaops.data import convert as conv

    if not storage.is_complete(dataset_uri):
        s = conv.convert(
            raw.metadata["uri"],
            raw.metadata.get("format", "aloha-hdf5"),
            dataset_uri,
            repo_id=repo_id,
            fps=fps,
            task=task or None,
            workers=workers or None,
        )
        for key in ("episodes", "frames", "seconds", "frames_per_second"):
            metrics.log_metric(key, getattr(s, key))
    dataset.metadata.update({"uri": dataset_uri, "repo_id": repo_id})
