"""generate-demos: the raw demonstrations the pipeline converts (``vlaops generate-demos``).

With ``sim_task`` set, the scripted expert records that many successful ALOHA episodes in MuJoCo
into ``raw_uri`` (episode HDF5 files). With ``sim_task`` empty the step generates nothing: it checks
that ``raw_uri`` holds demonstrations in ``raw_format`` and passes the pointer on. One step covers
both sources because KFP cannot hand an artifact produced inside a ``dsl.If`` branch to a task
outside it without ``dsl.OneOf``, which ``kfp.local`` does not run.
"""

from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from vlaops import images


@dsl.component(base_image=images.SIM, install_kfp_package=False)
def generate_demos(
    sim_task: str,
    episodes: int,
    raw_uri: str,
    raw_format: str,
    seed: int,
    demos: Output[Dataset],
    metrics: Output[Metrics],
):
    """Demonstrations at ``raw_uri``: generated when ``sim_task`` is set, else checked as given."""
    import json
    import os
    import time

    from vlaops import storage
    from vlaops.data import raw
    from vlaops.errors import VlaopsError
    from vlaops.sim import demos as sim_demos

    start = time.perf_counter()
    if sim_task:
        summary = sim_demos.generate(sim_task, episodes, raw_uri, seed=seed)
        fmt = "aloha-hdf5"
        metrics.log_metric("episodes", summary["written"])
        metrics.log_metric("expert_success_rate", summary["success_rate"])
        metrics.log_metric("attempts", summary["attempts"])
    else:
        if raw_format not in raw.FORMATS:
            raise VlaopsError(
                f"raw_format {raw_format!r}: choose one of {', '.join(raw.FORMATS)} "
                "(or set sim_task to generate demonstrations)"
            )
        if not raw_uri or not storage.exists(raw_uri):
            raise VlaopsError(
                f"raw_uri {raw_uri!r}: nothing there (a path or gs:// URI of the demos)"
            )
        fmt = raw_format
        files = (
            storage.glob(storage.join(raw_uri, "*.hdf5")) if storage.isdir(raw_uri) else [raw_uri]
        )
        if not files:
            raise VlaopsError(f"raw_uri {raw_uri}: no *.hdf5 files in this folder")
        metrics.log_metric("files", len(files))
    metrics.log_metric("seconds", round(time.perf_counter() - start, 2))

    pointer = {"uri": raw_uri, "format": fmt, "sim_task": sim_task, "generated": bool(sim_task)}
    demos.metadata.update(pointer)
    os.makedirs(os.path.dirname(demos.path) or ".", exist_ok=True)
    with open(demos.path, "w") as f:
        json.dump(pointer, f, indent=2)

    # The scalars also as a file: downloadable from the store, and kfp.local's cache reuses a
    # step only when every output artifact has a file.
    os.makedirs(os.path.dirname(metrics.path) or ".", exist_ok=True)
    with open(metrics.path, "w") as f:
        json.dump(metrics.metadata, f, indent=2)
