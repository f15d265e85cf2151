"""Run the real NVIDIA Triton server on a vlaops model repository (a folder or gs://).

    vlaops serve --model-repository gs://models/repo --grpc-port 8001
    vlaops serve --model-repository local-run/models --http-port 8000 --grpc-port 8001 --metrics-port 8002

Locally the server is the ``tritonserver`` binary bundled in the ``nvidia-pytriton`` wheel, with a
backend folder assembled from its Python backend and the stub built for this Python; the stub runs
our model code in this venv (PATH and LD_LIBRARY_PATH point there). In the cluster image the
official Triton install is used instead (``TRITON_HOME``, default /opt/tritonserver, when present).
Runs in the foreground until interrupted; SIGTERM stops Triton gracefully (in-flight requests finish).

Against a local GCS server, set ``CLOUD_STORAGE_EMULATOR_ENDPOINT=http://127.0.0.1:4443`` (with the
scheme; ``storage.gcs_emulator_env`` gives every variable our clients read). Triton's GCS client
(google-cloud-cpp) reads objects through the XML API path ``GET /<bucket>/<object>``, which
fake-gcs-server answers only for its ``-public-host``: start it with ``-public-host 127.0.0.1:4443``
(the host:port clients use), as tests/conftest.py does, or Triton fails with "Permanent error in
Read()".
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from vlaops import storage
from vlaops.errors import VlaopsError

HELP = "serve a model repository with the real Triton server (local binary or cluster image)"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model-repository", required=True, help="model repository URI (folder or gs://)"
    )
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument("--grpc-port", type=int, default=8001)
    p.add_argument("--metrics-port", type=int, default=8002)
    p.add_argument(
        "--poll-seconds",
        type=int,
        default=0,
        help="re-scan the repository every N s and load new versions (0: load once)",
    )
    p.add_argument("--log-file", help="Triton's log (default: this terminal)")


def run(args: argparse.Namespace) -> None:
    server = Server(
        args.model_repository,
        args.http_port,
        args.grpc_port,
        args.metrics_port,
        poll_seconds=args.poll_seconds,
        log_file=args.log_file,
    )
    with server:
        print(
            f"Triton ready: http://127.0.0.1:{args.http_port}  grpc 127.0.0.1:{args.grpc_port}  "
            f"metrics http://127.0.0.1:{args.metrics_port}/metrics",
            flush=True,
        )
        # Only forward the signal: Triton drains and exits, wait() returns, the with-block cleans
        # up. (Stopping inside the handler would wait on the process wait() is already waiting on.)
        signal.signal(signal.SIGTERM, lambda *_: server.terminate())
        with contextlib.suppress(KeyboardInterrupt):
            server.wait()


def _installation() -> tuple[Path, dict[str, Path]]:
    """The tritonserver binary and the files of its Python backend."""
    home = Path(os.environ.get("TRITON_HOME", "/opt/tritonserver"))
    if (home / "bin/tritonserver").exists():
        return home / "bin/tritonserver", {"python": home / "backends/python"}
    package = _pytriton_dir()
    if package is None:
        raise VlaopsError(
            "no Triton found: install nvidia-pytriton (make setup does) or set TRITON_HOME"
        )
    root = package / "tritonserver"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.exists():
        raise VlaopsError(f"nvidia-pytriton ships no Python backend stub for Python {version}")
    files = {
        "libtriton_python.so": root / "backends/python/libtriton_python.so",
        "triton_python_backend_utils.py": root / "backends/python/triton_python_backend_utils.py",
        "triton_python_backend_stub": stub,
    }
    return root / "bin/tritonserver", files


def _pytriton_dir() -> Path | None:
    """Where the nvidia-pytriton wheel put its files (without importing it: it wants numpy<2)."""
    spec = importlib.util.find_spec("pytriton")
    return Path(next(iter(spec.submodule_search_locations))) if spec else None


@dataclass
class Server:
    """A Triton process; a context manager that returns once every model is ready."""

    model_repository: str
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    poll_seconds: int = 0
    log_file: str | None = None
    startup_timeout: float = 300.0
    exit_timeout: int = 30  # seconds Triton waits for in-flight requests on SIGTERM
    _proc: subprocess.Popen | None = field(default=None, init=False, repr=False)
    _tmp: tempfile.TemporaryDirectory | None = field(default=None, init=False, repr=False)

    def command(self, backends: Path) -> list[str]:
        repo = (
            str(storage.local_path(self.model_repository).absolute())
            if not storage.is_remote(self.model_repository)
            else self.model_repository
        )
        cmd = [
            f"--model-repository={repo}",
            f"--backend-directory={backends}",
            f"--http-port={self.http_port}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-port={self.metrics_port}",
            f"--exit-timeout-secs={self.exit_timeout}",
            "--strict-readiness=true",
        ]
        if self.poll_seconds:
            cmd += ["--model-control-mode=poll", f"--repository-poll-secs={self.poll_seconds}"]
        return cmd

    def start(self) -> Server:
        binary, files = _installation()
        self._tmp = tempfile.TemporaryDirectory(prefix="vlaops-triton-")
        backends = Path(self._tmp.name) / "backends"
        if "python" in files:  # an official install already has the layout
            backends = files["python"].parent
        else:
            (backends / "python").mkdir(parents=True)
            for name, src in files.items():
                shutil.copy2(src, backends / "python" / name)
        env = dict(os.environ)
        venv_bin = str(Path(sys.executable).parent)
        env["PATH"] = f"{venv_bin}:{env.get('PATH', '')}"  # the stub runs model code in this venv
        libs = [sysconfig.get_config_var("LIBDIR") or ""]
        if (package := _pytriton_dir()) is not None:
            libs.append(str(package.parent / "nvidia_pytriton.libs"))
        env["LD_LIBRARY_PATH"] = ":".join([*libs, env.get("LD_LIBRARY_PATH", "")])
        log = open(self.log_file, "ab") if self.log_file else None  # noqa: SIM115 - lives with the process
        self._proc = subprocess.Popen(
            [str(binary), *self.command(backends)], env=env, stdout=log, stderr=log
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        url = f"http://127.0.0.1:{self.http_port}/v2/health/ready"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                errors = self._log_errors() if self.log_file else ""
                where = f" (log: {self.log_file}){errors}" if self.log_file else ""
                if "Permanent error in Read()" in errors and os.environ.get(
                    "CLOUD_STORAGE_EMULATOR_ENDPOINT"
                ):
                    where += (
                        "\n  a local GCS server must answer GET /<bucket>/<object> (XML API) for"
                        " Triton: fake-gcs-server needs -public-host <the host:port in"
                        " CLOUD_STORAGE_EMULATOR_ENDPOINT>"
                    )
                raise VlaopsError(
                    f"tritonserver exited with status {self._proc.returncode} while starting{where}"
                )
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(url, timeout=2).status == 200:
                    return
            time.sleep(0.25)
        self.stop()
        raise VlaopsError(
            f"Triton not ready after {self.startup_timeout:.0f}s on {self.model_repository}"
        )

    def _log_errors(self, limit: int = 5) -> str:
        """Triton's last error lines (``E…`` log records, ``error: …``), to quote in a failure."""
        try:
            lines = Path(self.log_file).read_text(errors="replace").splitlines()
        except OSError:
            return ""
        errors = [
            line.strip()
            for line in lines
            if re.match(r"E\d{4} |error: ", line)
            and "CudaDriverHelper" not in line  # no GPU: noise
        ]
        return "".join(f"\n  {line}" for line in errors[-limit:])

    def wait(self) -> int:
        return self._proc.wait() if self._proc else 0

    def terminate(self) -> None:
        """Ask Triton to stop (SIGTERM: in-flight requests finish) without waiting for it."""
        if self._proc and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self.terminate()
            try:
                self._proc.wait(timeout=self.exit_timeout + 10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._tmp:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"
