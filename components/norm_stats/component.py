"""Norm stats of a dataset (``vlaops norm-stats``): the JSON file plus a table for the UI."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Output

from vlaops import images


@dsl.component(base_image=images.DATA)
def norm_stats(
    dataset: Input[Dataset], action_horizon: int, stats: Output[Artifact], table: Output[Markdown]
):
    import json

    from vlaops.data import norm_stats as ns

    data = ns.compute(dataset.metadata["uri"], action_horizon or None)
    with open(stats.path, "w") as f:
        json.dump(data, f, indent=2)
    stats.metadata["uri"] = stats.uri
    with open(table.path, "w") as f:
        f.write("```\n" + ns.format_table(data) + "\n```\n")
