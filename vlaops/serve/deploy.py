"""Make the running Triton service serve a freshly exported model version, then prove it with one
inference.

  vlaops deploy --model-name pi0 --version 3 --release vlaops-triton --namespace vlaops-serving
  vlaops deploy --model-name pi0 --version 3 --server 127.0.0.1:8001     # a local Triton, no Kubernetes

On Kubernetes (``--release``): a rolling restart of the release's Deployment — its pod template gets
the annotation ``vlaops.dev/model-version=<name>:<version>`` — so new pods load the newest version
from the bucket while the old ones keep serving. The chart makes that lossless: ``maxUnavailable:
0``, readiness on ``/v2/health/ready`` and a preStop drain before Triton's own exit timeout. The
step waits for the rollout (failing with the Deployment's own reason when it stalls), then sends a
smoke inference to the release's Service and checks that the version is the one being served. The
annotation also records in the cluster which version each rollout brought in.

Without a release (``--server``): waits until a Triton that polls its repository (``vlaops serve``,
``make run-local``) has loaded the version, then the same smoke inference.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from collections.abc import Callable

from vlaops import kube
from vlaops.errors import VlaopsError

HELP = "roll the Triton service onto a new model version (or wait for a local one), smoke-test it"
ANNOTATION = "vlaops.dev/model-version"
log = logging.getLogger(__name__)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-name", default="pi0")
    p.add_argument("--version", type=int, required=True, help="the version export published")
    p.add_argument("--release", default="", help="Helm release of charts/vlaops-triton")
    p.add_argument("--namespace", default="vlaops-serving", help="the release's namespace")
    p.add_argument(
        "--server",
        default="",
        help="Triton gRPC HOST:PORT for the smoke inference (default: the release's Service)",
    )
    p.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the rollout")


def run(args: argparse.Namespace) -> None:
    result = deploy(
        args.model_name,
        args.version,
        release=args.release,
        namespace=args.namespace,
        server=args.server,
        timeout_s=args.timeout,
    )
    print(
        f"{args.model_name} version {args.version} serving at {result['server']}: actions "
        f"{tuple(result['actions_shape'])} in {result['latency_ms']:.1f} ms"
    )


def deploy(
    model_name: str,
    version: int,
    release: str = "",
    namespace: str = "vlaops-serving",
    server: str = "",
    timeout_s: float = 1800,
    poll_s: float = 2.0,
    api_client=None,
    say: Callable[[str], None] = print,
) -> dict:
    """Everything ``vlaops deploy`` does; returns what the smoke inference saw."""
    start = time.monotonic()
    if not release and not server:
        raise VlaopsError("deploy needs a Helm release (Kubernetes) or a Triton --server address")
    if release:
        from kubernetes import client

        api_client = api_client or kube.api_client()
        apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
        name = find_deployment(apps, release, namespace)
        restart(apps, name, namespace, f"{model_name}:{version}")
        say(f"rolling {namespace}/{name} onto {model_name} version {version}")
        wait_rollout(apps, name, namespace, timeout_s, poll_s, say)
        server = server or service_address(core, release, namespace)
    remaining = max(30.0, timeout_s - (time.monotonic() - start))
    wait_version(server, model_name, version, remaining, poll_s, say)
    result = smoke_inference(server, model_name)
    result.update(server=server, version=version, seconds=time.monotonic() - start)
    say(f"smoke inference: actions {tuple(result['actions_shape'])}, {result['latency_ms']:.1f} ms")
    return result


def _selector(release: str) -> str:
    # the chart's selector labels (charts/vlaops-triton/templates/_helpers.tpl)
    return f"app.kubernetes.io/instance={release}"


def _of_release(listing, release: str) -> list:
    """The release's inference objects of a listing (filtered here too: cheap, and safe whatever
    the server does with the selector)."""
    return [
        o
        for o in listing.items
        if (o.metadata.labels or {}).get("app.kubernetes.io/instance") == release
        and (o.metadata.labels or {}).get("app.kubernetes.io/component", "inference") == "inference"
    ]


def find_deployment(apps, release: str, namespace: str) -> str:
    """The name of the release's Triton Deployment."""
    items = _of_release(
        apps.list_namespaced_deployment(namespace, label_selector=_selector(release)), release
    )
    if len(items) != 1:
        found = ", ".join(d.metadata.name for d in items) or "none"
        raise VlaopsError(
            f"Helm release {release!r} in namespace {namespace!r}: expected one Triton Deployment "
            f"(label {_selector(release)}), found {found} — is charts/vlaops-triton installed there?"
        )
    return items[0].metadata.name


def restart(apps, name: str, namespace: str, model_version: str) -> None:
    """A rolling restart that records the model version in the pod template."""
    patch = {"spec": {"template": {"metadata": {"annotations": {ANNOTATION: model_version}}}}}
    apps.patch_namespaced_deployment(name, namespace, patch)


def rollout_state(d) -> tuple[bool, str]:
    """(done, a one-line description) of a Deployment's rollout, as ``kubectl rollout status``
    judges it: the new template observed, every replica updated and available, no old ones left."""
    want = d.spec.replicas if d.spec.replicas is not None else 1
    s = d.status
    for c in s.conditions or []:
        if c.type == "Progressing" and c.status == "False":
            raise VlaopsError(
                f"rollout of {d.metadata.name} stalled: {c.reason}: {c.message or ''}".strip()
            )
    observed = (
        d.metadata.generation is None or (s.observed_generation or 0) >= d.metadata.generation
    )
    updated, available, total = s.updated_replicas or 0, s.available_replicas or 0, s.replicas or 0
    text = f"{updated}/{want} updated, {available} available, {total - updated} old"
    return observed and updated == want and available == want and total == want, text


def wait_rollout(apps, name: str, namespace: str, timeout_s: float, poll_s: float, say) -> None:
    deadline, last = time.monotonic() + timeout_s, None
    while True:
        done, text = rollout_state(apps.read_namespaced_deployment(name, namespace))
        if text != last:
            say(f"rollout {name}: {text}")
            last = text
        if done:
            return
        if time.monotonic() > deadline:
            raise VlaopsError(
                f"rollout of {namespace}/{name} not done after {timeout_s:.0f}s: {text}"
            )
        time.sleep(poll_s)


def service_address(core, release: str, namespace: str) -> str:
    """host:port of the release's Service gRPC port, as the cluster's DNS names it."""
    for svc in _of_release(
        core.list_namespaced_service(namespace, label_selector=_selector(release)), release
    ):
        for port in svc.spec.ports or []:
            if port.name == "grpc":
                return f"{svc.metadata.name}.{namespace}.svc.cluster.local:{port.port}"
    raise VlaopsError(f"Helm release {release!r} in {namespace!r}: no Service with a 'grpc' port")


def wait_version(server: str, model_name: str, version: int, timeout_s: float, poll_s: float, say):
    """Wait until Triton at ``server`` has ``version`` of the model loaded and ready."""
    import tritonclient.grpc as tc

    c = tc.InferenceServerClient(server.removeprefix("grpc://"))
    deadline, error = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        try:
            if c.is_model_ready(model_name, str(version)):
                return
            error = "not ready yet"
        except Exception as e:  # not reachable yet: keep waiting until the deadline
            error = str(e).splitlines()[0]
        time.sleep(poll_s)
    raise VlaopsError(
        f"Triton at {server}: {model_name} version {version} not ready after {timeout_s:.0f}s ({error})"
    )


def smoke_inference(server: str, model_name: str) -> dict:
    """One request shaped from the model's metadata; the chunk must be finite and of that shape."""
    from vlaops.serve.client import TritonPolicy, random_observation

    policy = TritonPolicy(server, model_name)
    obs = random_observation(policy.metadata, "smoke test")
    t0 = time.perf_counter()
    actions = policy.infer(obs)["actions"]
    latency_ms = (time.perf_counter() - t0) * 1e3
    want = (policy.metadata["action_horizon"], policy.metadata["action_dim"])
    if actions.shape != want or not all(math.isfinite(v) for v in actions.ravel().tolist()):
        raise VlaopsError(f"smoke inference on {server}: bad actions {actions.shape} (want {want})")
    return {"actions_shape": list(actions.shape), "latency_ms": latency_ms}
