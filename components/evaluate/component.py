"""Evaluate a checkpoint in the MuJoCo ALOHA sim (``vlaops evaluate``): success rates + videos."""

from kfp import dsl
from kfp.dsl import HTML, Input, Metrics, Model, Output

from vlaops import images


@dsl.component(base_image=images.SIM)
def evaluate(
    checkpoint: Input[Model],
    task: str,
    episodes: int,
    output_uri: str,
    videos: int,
    metrics: Output[Metrics],
    report: Output[HTML],
) -> float:
    from vlaops import storage
    from vlaops.sim import evaluate as ev
    from vlaops.sim import policy

    spec = policy.PolicySpec("checkpoint", checkpoint.metadata["uri"])
    m = ev.evaluate(task, spec, output_uri, episodes=episodes, videos=videos, overwrite=True)
    for key in ("success_rate", "max_reward_success_rate", "mean_max_reward"):
        metrics.log_metric(key, m[key])
    with open(report.path, "w") as f:
        f.write(storage.read_text(storage.join(output_uri, "report.html")))
    return float(m["success_rate"])  # the pipeline gates deployment on it
