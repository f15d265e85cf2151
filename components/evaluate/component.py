"""evaluate: roll a policy out in the MuJoCo ALOHA sim (``vlaops evaluate``).

Writes ``metrics.json``, ``report.html`` and videos to ``output_uri``; the UI gets the success
rates as ``Metrics`` and the self-contained report (inline videos) as ``HTML``. Returns the
success rate, which the pipeline's gate compares with its threshold.
``policy``: ``checkpoint`` (the ``checkpoint`` input, from train) or a built-in ``scripted`` /
``random`` policy (no input needed; the scripted expert is the baseline a trained policy is
measured against).
"""

from kfp import dsl
from kfp.dsl import HTML, Input, Metrics, Model, Output

from vlaops import images


@dsl.component(base_image=images.SIM, install_kfp_package=False)
def evaluate(
    task: str,
    episodes: int,
    output_uri: str,
    policy: str,
    replan_steps: int,
    videos: int,
    workers: int,
    metrics: Output[Metrics],
    report: Output[HTML],
    checkpoint: Input[Model] = None,
) -> float:
    """Success rate of ``policy`` on ``task`` over ``episodes`` seeded episodes."""
    import json
    import os

    from vlaops import storage
    from vlaops.errors import VlaopsError
    from vlaops.sim import evaluate as ev
    from vlaops.sim import policy as policy_lib

    if policy == "checkpoint":
        if checkpoint is None:
            raise VlaopsError("policy 'checkpoint' needs the checkpoint input (the train step's)")
        spec = policy_lib.PolicySpec("checkpoint", checkpoint.metadata.get("uri", checkpoint.uri))
    elif policy in ("scripted", "random"):
        spec = policy_lib.PolicySpec(policy)
    else:
        raise VlaopsError(f"policy {policy!r}: choose checkpoint, scripted or random")
    spec = policy_lib.PolicySpec(spec.kind, spec.uri, replan_steps)

    # overwrite: a re-run (cache off, or a retried pod) replaces this evaluation's own folder
    m = ev.evaluate(
        task, spec, output_uri, episodes=episodes, workers=workers, videos=videos, overwrite=True
    )
    for key in ("success_rate", "max_reward_success_rate", "mean_max_reward", "episodes"):
        metrics.log_metric(key, m[key])
    metrics.log_metric("seconds", m["wall_s"])

    os.makedirs(os.path.dirname(report.path) or ".", exist_ok=True)
    with open(report.path, "w") as f:
        f.write(storage.read_text(storage.join(output_uri, "report.html")))
    report.metadata.update({"uri": output_uri, "policy": f"{spec.kind} {spec.uri}".strip()})
    # The scalars also as a file: downloadable from the store, and kfp.local's cache reuses a
    # step only when every output artifact has a file.
    os.makedirs(os.path.dirname(metrics.path) or ".", exist_ok=True)
    with open(metrics.path, "w") as f:
        json.dump(metrics.metadata, f, indent=2)
    return float(m["success_rate"])
