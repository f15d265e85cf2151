"""components/norm_stats called as a plain function on a tiny converted dataset."""

import json
from pathlib import Path

from component_helpers import output
from kfp.dsl import Artifact, Dataset, Markdown, Metrics

from components.norm_stats.component import norm_stats
from vlaops.data import norm_stats as ns
from vlaops.data.synthetic import aloha_dataset


def test_norm_stats_artifact_table_and_metrics(tmp_path):
    ds = aloha_dataset(tmp_path / "data", [6, 9], cameras=("top",), hw=(32, 48))
    dataset = Dataset(name="dataset", uri=str(tmp_path / "ptr"), metadata={"uri": str(ds)})
    stats, table = output(Artifact, tmp_path, "stats"), output(Markdown, tmp_path, "table")
    metrics = output(Metrics, tmp_path, "metrics")
    norm_stats.python_func(
        dataset=dataset, action_horizon=0, stats=stats, table=table, metrics=metrics
    )
    data = json.loads(Path(stats.path).read_text())
    assert data == ns.compute(str(ds))  # the same function the CLI calls
    text = Path(table.path).read_text()
    assert "| dim | mean | std | q01 | q99 |" in text and text.count("\n| 13 |") == 2
    assert metrics.metadata["state_dim"] == metrics.metadata["actions_dim"] == 14
