"""Scripted ALOHA demonstrations in MuJoCo → episode HDF5 files at ``output_uri``."""

from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from vlaops import images


@dsl.component(base_image=images.SIM)
def generate_demos(
    task: str,
    episodes: int,
    output_uri: str,
    seed: int,
    demos: Output[Dataset],
    metrics: Output[Metrics],
):
    from vlaops import storage
    from vlaops.sim import demos as sim_demos

    if not storage.is_complete(output_uri):  # already there (a re-run): keep it
        summary = sim_demos.generate(task, episodes, output_uri, seed=seed)
        for key in ("written", "attempts", "success_rate"):
            metrics.log_metric(f"expert_{key}", summary[key])
    demos.metadata.update({"uri": output_uri, "task": task, "format": "aloha-hdf5"})
