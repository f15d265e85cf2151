"""norm-stats: openpi-shaped normalization statistics of a dataset (``vlaops norm-stats``).

The JSON is small, so it travels as the ``stats`` artifact itself (training reads it from there);
``table`` shows it in the UI, ``metrics`` the dimensions and the time it took.
"""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Output

from vlaops import images


@dsl.component(base_image=images.DATA, install_kfp_package=False)
def norm_stats(
    dataset: Input[Dataset],
    action_horizon: int,
    stats: Output[Artifact],
    table: Output[Markdown],
    metrics: Output[Metrics],
):
    """Stats of the dataset ``dataset`` points at; ``action_horizon`` 0 counts every action once."""
    import json
    import os
    import time

    from vlaops.data import norm_stats as ns

    start = time.perf_counter()
    data = ns.compute(dataset.metadata["uri"], action_horizon or None)
    seconds = round(time.perf_counter() - start, 2)

    os.makedirs(os.path.dirname(stats.path) or ".", exist_ok=True)
    with open(stats.path, "w") as f:
        json.dump(data, f, indent=2)
    stats.metadata.update({"format": "openpi norm_stats.json", "dataset": dataset.metadata["uri"]})

    lines = [f"# Norm stats of `{dataset.metadata['uri']}`", ""]
    for name, s in data["norm_stats"].items():
        lines += [
            f"## {name}",
            "",
            "| dim | mean | std | q01 | q99 |",
            "|---:|---:|---:|---:|---:|",
        ]
        for i, row in enumerate(zip(s["mean"], s["std"], s["q01"], s["q99"], strict=True)):
            lines.append(f"| {i} | " + " | ".join(f"{v:.4f}" for v in row) + " |")
        lines.append("")
        metrics.log_metric(f"{name}_dim", len(s["mean"]))
    os.makedirs(os.path.dirname(table.path) or ".", exist_ok=True)
    with open(table.path, "w") as f:
        f.write("\n".join(lines))
    metrics.log_metric("seconds", seconds)

    # The scalars also as a file: downloadable from the store, and kfp.local's cache reuses a
    # step only when every output artifact has a file.
    os.makedirs(os.path.dirname(metrics.path) or ".", exist_ok=True)
    with open(metrics.path, "w") as f:
        json.dump(metrics.metadata, f, indent=2)
