"""A policy behind HTTP: the client the evaluator uses for ``--server URL``, and a tiny server.

Wire format (msgpack, arrays encoded as openpi's msgpack-numpy does, so a bridge to openpi's
websocket protocol or to Triton only re-frames the same dicts):

    GET  /healthz   → 200
    GET  /metadata  → {"action_dim": 14, "action_horizon": 50, "cameras": ["top", ...]}
    POST /infer     observation {"images": {cam: uint8 HxWx3}, "state": float32[14], "prompt": str}
                    → {"actions": float[H, 14]}

    with remote.PolicyServer(my_policy) as server:      # 127.0.0.1, a free port
        policy = remote.RemotePolicy(server.url)

Remote policies are stateless between requests; ``reset`` is a no-op on the client.
"""

from __future__ import annotations

import http.server
import threading
import urllib.error
import urllib.request

from vlaops.errors import VlaopsError
from vlaops.wire import pack, unpack

CONTENT_TYPE = "application/msgpack"


class RemotePolicy:
    """``Policy`` over HTTP. Construction fetches the metadata, so an unreachable or wrong server
    fails here, before any episode."""

    def __init__(self, url: str, timeout: float = 60.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        try:
            self.metadata = unpack(self._request("GET", "/metadata", None, timeout=10))
        except VlaopsError:
            raise
        except Exception as e:
            raise VlaopsError(f"policy server {self.url}: bad /metadata response ({e})") from None
        if not isinstance(self.metadata, dict):
            raise VlaopsError(f"policy server {self.url}: /metadata is not a dict")

    def _request(self, method: str, path: str, body: bytes | None, timeout: float) -> bytes:
        req = urllib.request.Request(
            self.url + path, data=body, method=method, headers={"Content-Type": CONTENT_TYPE}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace").strip().splitlines()[-1:] or [""]
            raise VlaopsError(
                f"policy server {self.url}{path} answered HTTP {e.code}: {detail[0]}"
            ) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise VlaopsError(
                f"policy server {self.url} is unreachable ({reason}): start it or check --server"
            ) from None

    def reset(self, task: str, seed: int) -> None:
        pass

    def infer(self, observation: dict) -> dict:
        return unpack(self._request("POST", "/infer", pack(observation), self.timeout))


class PolicyServer:
    """Serve a ``Policy`` on 127.0.0.1 (threaded; requests to one policy are serialized)."""

    def __init__(self, policy, host: str = "127.0.0.1", port: int = 0):
        lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, body: bytes, ctype: str = CONTENT_TYPE):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == "/healthz":
                    self._send(200, b"ok", "text/plain")
                elif self.path == "/metadata":
                    self._send(200, pack(policy.metadata))
                else:
                    self._send(404, b"not found", "text/plain")

            def do_POST(self):
                if self.path != "/infer":
                    self._send(404, b"not found", "text/plain")
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    with lock:
                        result = policy.infer(unpack(body))
                    self._send(200, pack(result))
                except Exception as e:
                    self._send(500, f"{type(e).__name__}: {e}".encode(), "text/plain")

        self._httpd = http.server.ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> PolicyServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
