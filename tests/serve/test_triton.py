"""The real Triton server (bundled in nvidia-pytriton) serving a model repository we publish.

The policy here is ``echo_policy.EchoPolicy`` (its actions encode its inputs), so these tests
check the transport and the server's behaviour; the pi0 policy's numbers are tested elsewhere.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from echo_policy import METADATA, EchoPolicy

from vlaops import storage
from vlaops.errors import VlaopsError
from vlaops.serve import repository
from vlaops.serve.client import ChunkRunner, TritonPolicy, encode_batch
from vlaops.serve.triton import Server

HERE = Path(__file__).parent


def _publish(repo: str, offset: float, tmp: Path, version=None) -> int:
    d = tmp / f"policy-{offset}"
    d.mkdir(exist_ok=True)
    (d / "offset.txt").write_text(str(offset))
    shutil.copy(HERE / "echo_policy.py", d)  # the version carries its policy module
    cfg = repository.ServingConfig(max_batch_size=8, max_queue_delay_us=500, kind="KIND_CPU")
    return repository.publish(
        repo, "echo", d, "echo_policy:load", METADATA, version=version, cfg=cfg
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory, free_ports):
    tmp = tmp_path_factory.mktemp("triton")
    repo = str(tmp / "repo")
    _publish(repo, 1.0, tmp)
    srv = Server(
        repo,
        free_ports(),
        free_ports(),
        free_ports(),
        poll_seconds=1,
        log_file=str(tmp / "triton.log"),
        exit_timeout=5,
    )
    with srv:
        srv.tmp = tmp
        yield srv


def _obs(h=48, w=64, seed=0, prompt="pick up the cube"):
    rng = np.random.default_rng(seed)
    return {
        "images": {
            "cam_high": rng.integers(0, 255, (h, w, 3), np.uint8),
            "cam_low": rng.integers(0, 255, (h, w, 3), np.uint8),
        },
        "state": rng.normal(size=3).astype(np.float32),
        "prompt": prompt,
    }


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_actions_equal_in_process_policy(server, protocol):
    url = server.grpc_url if protocol == "grpc" else server.http_url
    client = TritonPolicy(url, "echo")
    assert client.metadata == METADATA
    local = EchoPolicy()
    for obs in (_obs(), _obs(480, 640, 1, "fold the towel ✓"), _obs(7, 3, 2, "")):
        got = client.infer(obs)["actions"]
        want = local.actions(obs)
        want[:, 4] = 1.0  # version 1's offset
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.slow
def test_batched_request_equals_single_requests(server):
    client = TritonPolicy(server.grpc_url, "echo")
    batch = [_obs(seed=s, prompt=f"task {s}") for s in range(5)]
    together = client.infer_batch(batch)
    alone = np.stack([client.infer(o)["actions"] for o in batch])
    np.testing.assert_array_equal(together, alone)
    assert len({together[i, 2, 0] for i in range(5)}) == 5  # rows are not copies of the first


@pytest.mark.slow
def test_concurrent_clients_are_batched_correctly(server):
    results, errors = {}, []

    def worker(k):
        try:
            c = TritonPolicy(server.grpc_url, "echo")
            for j in range(10):
                obs = _obs(seed=100 * k + j)
                results[(k, j)] = (c.infer(obs)["actions"], EchoPolicy().actions(obs))
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    for got, want in results.values():
        np.testing.assert_allclose(got[:, :4], want[:, :4], rtol=1e-6)


def _raw_infer(server, tensors: dict):
    import tritonclient.grpc as tc

    c = tc.InferenceServerClient(server.grpc_url)
    inputs = []
    for name, arr in tensors.items():
        t = tc.InferInput(name, list(arr.shape), "UINT8" if arr.dtype == np.uint8 else "FP32")
        t.set_data_from_numpy(arr)
        inputs.append(t)
    return c.infer("echo", inputs)


BAD = {
    "missing state": (lambda t: t.pop("state"), "missing input 'state'"),
    "wrong state size": (
        lambda t: t.update(state=np.zeros((1, 5), np.float32)),
        "unexpected shape for input 'state'",
    ),
    "non-utf8 prompt": (
        lambda t: t.update(prompt=np.array([[0xFF, 0xFE]], np.uint8)),
        "input 'prompt' is not UTF-8",
    ),
    "unknown camera": (
        lambda t: t.update(image_cam_top=np.zeros((1, 4, 4, 3), np.uint8)),
        "image_cam_top",
    ),
    "huge image": (
        lambda t: t.update(image_cam_high=np.zeros((1, 5000, 2, 3), np.uint8)),
        "limit is 4096",
    ),
    "wrong dtype": (lambda t: t.update(state=np.zeros((1, 3), np.float64)), "FP64"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_requests_get_a_clear_error_and_the_server_keeps_serving(server, case):
    edit, message = BAD[case]
    tensors = encode_batch([_obs()], METADATA["cameras"])
    edit(tensors)
    if case == "wrong dtype":
        import tritonclient.grpc as tc

        c = tc.InferenceServerClient(server.grpc_url)
        t = tc.InferInput("state", [1, 3], "FP64")
        t.set_data_from_numpy(tensors["state"])
        with pytest.raises(Exception, match=message):
            c.infer("echo", [t])
    else:
        with pytest.raises(Exception, match=message):
            _raw_infer(server, tensors)
    assert TritonPolicy(server.grpc_url, "echo").infer(_obs())["actions"].shape == (4, 5)


def test_unreachable_server_is_a_clear_error():
    with pytest.raises(VlaopsError, match="cannot reach model 'pi0' on Triton at 127.0.0.1:9"):
        TritonPolicy("127.0.0.1:9", "pi0")


def test_chunk_runner_replans_every_k_steps():
    calls = []

    class Counting:
        def infer(self, obs):
            calls.append(obs)
            return {"actions": np.arange(50)[:, None] + 1000 * len(calls)}

    runner = ChunkRunner(Counting(), replan_steps=10)
    actions = [int(runner.step({"t": t})[0]) for t in range(25)]
    assert len(calls) == 3
    assert actions[:3] == [1000, 1001, 1002] and actions[10] == 2000 and actions[24] == 3004


def test_versions_are_never_edited(tmp_path):
    repo = str(tmp_path / "repo")
    assert _publish(repo, 1.0, tmp_path) == 1
    assert _publish(repo, 2.0, tmp_path) == 2
    with pytest.raises(VlaopsError, match="versions are never edited"):
        _publish(repo, 3.0, tmp_path, version=2)
    assert storage.read_text(storage.join(repo, "echo/2/offset.txt")) == "2.0"
    assert "max_batch_size: 8" in storage.read_text(storage.join(repo, "echo/config.pbtxt"))


@pytest.mark.slow
def test_new_version_under_load_loses_no_request(server):
    """Publish version 2 while clients keep sending: every request succeeds, and the answers
    switch from version 1's offset to version 2's."""
    offsets, errors, stop = [], [], threading.Event()

    def load():
        c = TritonPolicy(server.grpc_url, "echo")
        while not stop.is_set():
            try:
                offsets.append(float(c.infer(_obs())["actions"][0, 4]))
            except Exception as e:
                errors.append(e)

    threads = [threading.Thread(target=load) for _ in range(3)]
    [t.start() for t in threads]
    time.sleep(1.0)
    _publish(str(server.model_repository), 2.0, server.tmp)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not offsets or offsets[-1] != 2.0):
        time.sleep(0.2)
    time.sleep(1.0)
    stop.set()
    [t.join() for t in threads]
    assert not errors, errors[:3]
    assert offsets[0] == 1.0 and offsets[-1] == 2.0
    assert len(offsets) > 20


# ── openpi protocol bridge, driven by the real openpi-client package ────────────────────────────


def _openpi_obs(seed=0):
    o = _obs(seed=seed)
    return {  # openpi's ALOHA client sends CHW images
        "images": {
            c: np.ascontiguousarray(img.transpose(2, 0, 1)) for c, img in o["images"].items()
        },
        "state": o["state"],
        "prompt": o["prompt"],
    }, o


@pytest.mark.slow
def test_openpi_client_through_bridge_to_triton(server):
    from openpi_client import websocket_client_policy

    from vlaops.serve.bridge import Bridge

    with Bridge(TritonPolicy(server.grpc_url, "echo")) as bridge:
        client = websocket_client_policy.WebsocketClientPolicy("127.0.0.1", bridge.port)
        assert client.get_server_metadata()["action_dim"] == 5
        for seed in range(3):
            request, obs = _openpi_obs(seed)
            result = client.infer(request)
            want = EchoPolicy().actions(obs)
            np.testing.assert_allclose(result["actions"][:, :4], want[:, :4], rtol=1e-6)
            assert result["policy_timing"]["infer_ms"] > 0
        import urllib.request

        assert urllib.request.urlopen(f"http://127.0.0.1:{bridge.port}/healthz").status == 200


def test_bridge_reports_errors_as_text_then_closes_1011():
    import websockets.sync.client as wsc

    from vlaops import wire
    from vlaops.serve.bridge import Bridge

    with (
        Bridge(EchoPolicy()) as bridge,
        wsc.connect(f"ws://127.0.0.1:{bridge.port}", max_size=None) as ws,
    ):
        assert wire.unpack(ws.recv())["state_dim"] == 3
        ws.send(wire.pack({"images": {}, "prompt": "no state"}))
        text = ws.recv()
        assert isinstance(text, str) and "observation has no 'state'" in text
        with pytest.raises(Exception) as e:
            ws.recv()
        assert e.value.rcvd.code == 1011


@pytest.mark.slow
def test_vlaops_serve_from_a_bucket_stops_on_sigterm(bucket, tmp_path, free_ports):
    """The CLI a pod runs: a gs:// repository on the local GCS server, one answer, then SIGTERM
    ends Triton and the command cleanly."""
    repo = f"{bucket}/models"
    _publish(repo, 1.0, tmp_path)
    http, grpc, metrics = free_ports(), free_ports(), free_ports()
    cmd = [str(Path(sys.executable).with_name("vlaops")), "serve", "--model-repository", repo]
    cmd += ["--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics)]
    cmd += ["--log-file", str(tmp_path / "triton.log")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("Triton ready"), line + proc.stdout.read()
        got = TritonPolicy(f"127.0.0.1:{grpc}", "echo").infer(_obs())["actions"]
        assert got[0, 4] == 1.0  # version 1's offset
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
