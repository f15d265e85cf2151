"""Multi-node training through a JobSet, against kmock's Kubernetes emulator (no API server or
JobSet controller runs here: the test plays the controller by writing the JobSet's status)."""

import threading
import time

import kubernetes_validate
import pytest
from kubernetes import client

from vlaops.errors import VlaopsError
from vlaops.train import distributed, jobset

G, V, P = jobset.GROUP, jobset.VERSION, jobset.PLURAL


def _manifest(name="train-run-1", nodes=2):
    return jobset.manifest(
        name,
        "vlaops",
        "registry/train:1",
        ["vlaops", "train", "--config", "pi0_aloha_sim_full"],
        num_nodes=nodes,
        gpus_per_node=8,
        node_selector=jobset.train_pool_selector("nvidia-a100-80gb"),
    )


def test_manifest_pods_find_each_other_as_jax_processes():
    m = _manifest(nodes=4)
    job = m["spec"]["replicatedJobs"][0]["template"]["spec"]
    assert (job["parallelism"], job["completions"], job["completionMode"]) == (4, 4, "Indexed")
    pod = job["template"]["spec"]
    assert pod["nodeSelector"] == {
        "vlaops.dev/pool": "train",
        "cloud.google.com/gke-accelerator": "nvidia-a100-80gb",
    }
    assert {t["key"] for t in pod["tolerations"]} == {"nvidia.com/gpu", "vlaops.dev/pool"}
    assert pod["serviceAccountName"] == "vlaops-pipeline"  # Workload Identity for gs://
    (container,) = pod["containers"]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": 8}
    assert m["spec"]["network"] == {"enableDNSHostnames": True, "subdomain": "train-run-1"}
    # what process 2 of the set computes from its environment (Kubernetes adds its index)
    env = {e["name"]: e["value"] for e in container["env"]} | {"JOB_COMPLETION_INDEX": "2"}
    assert distributed.from_env(env) == distributed.ProcessSpec(
        "train-run-1-workers-0-0.train-run-1:1234", 4, 2
    )
    # the Job inside is a valid batch/v1 Job for the Kubernetes schema
    inner = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "train-run-1-workers-0"},
        "spec": job,
    }
    kubernetes_validate.validate(inner, "1.30", strict=True)


def test_job_name_is_stable_per_run_and_a_dns_label():
    name = jobset.job_name("3F2A9c1e-77b0-4E4e-9a57-0e0c1f0c2d3e")
    assert name == jobset.job_name("3F2A9c1e-77b0-4E4e-9a57-0e0c1f0c2d3e")
    assert name.startswith("train-3f2a9c1e") and len(name) <= 30
    assert all(c.isalnum() or c == "-" for c in name) and name == name.lower()


def _controller(api, name, states, delay=0.05):
    """Write each status in turn once the JobSet exists (the JobSet controller's part)."""

    def play():
        co = client.CustomObjectsApi(api)
        while True:
            try:
                co.get_namespaced_custom_object(G, V, "vlaops", P, name)
                break
            except client.exceptions.ApiException:
                time.sleep(delay)
        for status in states:
            time.sleep(delay)
            co.patch_namespaced_custom_object(G, V, "vlaops", P, name, {"status": status})

    t = threading.Thread(target=play, daemon=True)
    t.start()
    return t


def test_run_creates_waits_and_streams_status(kube):
    running = {"replicatedJobsStatus": [{"name": "workers", "ready": 2, "active": 2}]}
    done = {"conditions": [{"type": "Completed", "status": "True", "reason": "AllJobsCompleted"}]}
    _controller(kube, "train-run-1", [running, running | done])
    lines = []
    final = jobset.run(kube, _manifest(), poll_s=0.02, say=lines.append)
    assert final["status"]["conditions"][0]["type"] == "Completed"
    stored = client.CustomObjectsApi(kube).get_namespaced_custom_object(
        G, V, "vlaops", P, "train-run-1"
    )
    assert stored["spec"]["replicatedJobs"][0]["template"]["spec"]["parallelism"] == 2
    assert lines[0] == "created JobSet vlaops/train-run-1: 2 nodes"
    assert any("workers: ready 2, active 2, succeeded 0, failed 0" in x for x in lines)
    assert "Completed" in lines[-1]


def test_a_retried_launcher_attaches_to_its_jobset(kube):
    client.CustomObjectsApi(kube).create_namespaced_custom_object(G, V, "vlaops", P, _manifest())
    _controller(kube, "train-run-1", [{"conditions": [{"type": "Completed", "status": "True"}]}])
    lines = []
    jobset.run(kube, _manifest(), poll_s=0.02, say=lines.append)
    assert "attaching to the existing JobSet" in lines[0]


def test_a_failed_jobset_fails_the_step_with_its_reason(kube):
    failed = {
        "restarts": 3,
        "conditions": [
            {
                "type": "Failed",
                "status": "True",
                "reason": "FailedJobs",
                "message": "jobset failed due to reaching max number of restarts",
            }
        ],
    }
    _controller(kube, "train-run-1", [failed])
    with pytest.raises(VlaopsError, match="failed: FailedJobs: jobset failed due to reaching max"):
        jobset.run(kube, _manifest(), poll_s=0.02, say=lambda _: None)


def test_waiting_gives_up_at_the_timeout(kube):
    with pytest.raises(VlaopsError, match="not done after 0s"):
        jobset.run(kube, _manifest(), timeout_s=0.1, poll_s=0.02, say=lambda _: None)


def test_launcher_placement_one_node_vs_several():
    one = jobset.launcher_placement("nvidia-tesla-a100", 8, 1)
    assert one["gpus"] == 8 and one["node_selector"]["vlaops.dev/pool"] == "train"
    many = jobset.launcher_placement("nvidia-tesla-a100", 8, 4)
    assert many["gpus"] == 0 and many["node_selector"] == {"vlaops.dev/pool": "cpu"}
