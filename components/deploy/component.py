"""deploy: make the running Triton service serve the version export just published, then send a
smoke inference (``vlaops deploy``, ``vlaops.serve.deploy``).

With a Helm release: a rolling restart of the release's Deployment (no failed requests: the
chart keeps every old pod until a new one is ready, and drains before stopping), waited for, then
the smoke inference through the release's Service. Without one (``make run-local``): waits until
the Triton at ``server`` — polling its repository — has loaded the version, then the same smoke
inference. Kubernetes calls run as the run's service account (``vlaops-pipeline``, allowed to patch
Deployments in the serving namespace: infra/k8s). Never cached: a deploy always happens.
"""

from kfp import dsl
from kfp.dsl import Input, Markdown, Metrics, Model, Output

from vlaops import images


@dsl.component(base_image=images.SERVE, install_kfp_package=False)
def deploy(
    served: Input[Model],
    release: str,
    namespace: str,
    server: str,
    metrics: Output[Metrics],
    report: Output[Markdown],
):
    import json
    import os

    from vlaops.serve import deploy as dep

    name, version = served.metadata["model_name"], int(served.metadata["version"])
    result = dep.deploy(name, version, release=release, namespace=namespace, server=server)

    metrics.log_metric("version", version)
    metrics.log_metric("smoke_latency_ms", round(result["latency_ms"], 2))
    metrics.log_metric("seconds", round(result["seconds"], 1))
    os.makedirs(os.path.dirname(metrics.path) or ".", exist_ok=True)
    with open(metrics.path, "w") as f:
        json.dump(metrics.metadata, f, indent=2)

    where = f"Helm release `{release}` in `{namespace}`" if release else "the local Triton"
    lines = [
        f"# {name} version {version} is serving",
        "",
        "| | |",
        "|---|---|",
        f"| where | {where} |",
        f"| endpoint (gRPC) | `{result['server']}` |",
        f"| model files | `{served.metadata['uri']}` |",
        f"| smoke inference | actions {tuple(result['actions_shape'])} in {result['latency_ms']:.1f} ms |",
    ]
    os.makedirs(os.path.dirname(report.path) or ".", exist_ok=True)
    with open(report.path, "w") as f:
        f.write("\n".join(lines) + "\n")
