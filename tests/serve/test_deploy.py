"""The deploy step's Kubernetes side against kmock's emulator (no API server or Deployment
controller runs here: the test writes the Deployment's status the way the controller would). The
smoke inference against a real Triton runs in the end-to-end ``make run-local`` test."""

import pytest
from kubernetes import client

from vlaops.errors import VlaopsError
from vlaops.serve import deploy

NS = "vlaops-serving"
LABELS = {"app.kubernetes.io/instance": "prod", "app.kubernetes.io/component": "inference"}


def _deployment(name, labels, replicas=2):
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "labels": labels, "generation": 1},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "triton", "image": "serve:1"}]},
            },
        },
        "status": {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": replicas,
        },
    }


@pytest.fixture
def cluster(kube):
    apps, core = client.AppsV1Api(kube), client.CoreV1Api(kube)
    apps.create_namespaced_deployment(NS, _deployment("prod-vlaops-triton", LABELS))
    other = {**LABELS, "app.kubernetes.io/instance": "staging"}
    apps.create_namespaced_deployment(NS, _deployment("staging-vlaops-triton", other))
    core.create_namespaced_service(
        NS,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "prod-vlaops-triton", "namespace": NS, "labels": LABELS},
            "spec": {
                "ports": [
                    {"name": "http", "port": 8000},
                    {"name": "grpc", "port": 8001},
                ]
            },
        },
    )
    return apps, core


def _status(apps, name, **status):
    apps.patch_namespaced_deployment(name, NS, {"status": status})


def test_rolling_restart_of_the_release_waits_for_every_new_pod(cluster):
    apps, core = cluster
    name = deploy.find_deployment(apps, "prod", NS)
    assert name == "prod-vlaops-triton"
    deploy.restart(apps, name, NS, "pi0:3")
    d = apps.read_namespaced_deployment(name, NS)
    assert d.spec.template.metadata.annotations == {deploy.ANNOTATION: "pi0:3"}
    other = apps.read_namespaced_deployment("staging-vlaops-triton", NS)
    assert not other.spec.template.metadata.annotations  # only the named release rolls

    # the API server bumps the generation; until the controller observes it, nothing is done
    apps.patch_namespaced_deployment(name, NS, {"metadata": {"generation": 2}})
    assert deploy.rollout_state(apps.read_namespaced_deployment(name, NS))[0] is False
    states = [
        dict(observedGeneration=2, replicas=3, updatedReplicas=1, availableReplicas=2),
        dict(observedGeneration=2, replicas=3, updatedReplicas=2, availableReplicas=3),
        dict(observedGeneration=2, replicas=2, updatedReplicas=2, availableReplicas=2),
    ]
    seen = []
    for status in states:
        _status(apps, name, **status)
        done, text = deploy.rollout_state(apps.read_namespaced_deployment(name, NS))
        seen.append((done, text))
    assert seen == [
        (False, "1/2 updated, 2 available, 2 old"),
        (False, "2/2 updated, 3 available, 1 old"),  # an old pod still serving: not done
        (True, "2/2 updated, 2 available, 0 old"),
    ]
    lines = []
    deploy.wait_rollout(apps, name, NS, timeout_s=5, poll_s=0.01, say=lines.append)
    assert lines == ["rollout prod-vlaops-triton: 2/2 updated, 2 available, 0 old"]
    assert deploy.service_address(core, "prod", NS) == (
        "prod-vlaops-triton.vlaops-serving.svc.cluster.local:8001"
    )


def test_a_stalled_rollout_fails_with_the_deployment_reason(cluster):
    apps, _ = cluster
    _status(
        apps,
        "prod-vlaops-triton",
        conditions=[
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "prod-vlaops-triton-7d9" has timed out progressing.',
            }
        ],
    )
    with pytest.raises(VlaopsError, match="stalled: ProgressDeadlineExceeded: ReplicaSet"):
        deploy.wait_rollout(apps, "prod-vlaops-triton", NS, 5, 0.01, lambda _: None)


def test_a_rollout_that_never_finishes_times_out(cluster):
    apps, _ = cluster
    _status(apps, "prod-vlaops-triton", replicas=3, updatedReplicas=1, availableReplicas=2)
    with pytest.raises(VlaopsError, match="not done after 0s: 1/2 updated"):
        deploy.wait_rollout(apps, "prod-vlaops-triton", NS, 0.05, 0.01, lambda _: None)


def test_an_unknown_release_is_a_clear_error(cluster, kube):
    apps, _ = cluster
    with pytest.raises(
        VlaopsError, match="release 'nope' .* found none — is charts/vlaops-triton installed"
    ):
        deploy.find_deployment(apps, "nope", NS)
    with pytest.raises(VlaopsError, match="found none"):
        deploy.deploy("pi0", 3, release="nope", namespace=NS, api_client=kube, say=lambda _: None)


def test_deploy_needs_a_release_or_a_server():
    with pytest.raises(VlaopsError, match="Helm release .* or a Triton --server"):
        deploy.deploy("pi0", 1)
