"""openpi's websocket policy protocol in front of any vlaops policy, so robots already running
openpi's client (``openpi_client.websocket_client_policy``) work unchanged.

    vlaops bridge --server 127.0.0.1:8001 --model-name pi0 --port 8000     # in front of Triton

Protocol (shared/reference/formats.md): plain websocket, ``GET /healthz`` → 200; on connect the
server sends the msgpack metadata; then one msgpack-numpy observation in, one result out:
``{"actions": [H, A], "policy_timing": {"infer_ms"}, "server_timing": {"infer_ms", "prev_total_ms"}}``.
On an error the traceback goes out as a text frame and the connection closes with 1011.
Observations may carry images CHW (openpi's ALOHA client) or HWC; the policy gets HWC.
"""

from __future__ import annotations

import argparse
import http
import logging
import threading
import time
import traceback

import numpy as np

from vlaops import wire

HELP = "openpi websocket protocol in front of a served policy (existing openpi robot clients)"
log = logging.getLogger(__name__)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", required=True, help="Triton HOST:PORT (gRPC) or http://HOST:PORT")
    p.add_argument("--model-name", default="pi0")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=8000)


def run(args: argparse.Namespace) -> None:
    from vlaops.serve.client import TritonPolicy

    bridge = Bridge(TritonPolicy(args.server, args.model_name), args.host, args.port)
    print(
        f"openpi bridge on ws://{args.host}:{bridge.port} → {args.model_name} at {args.server}",
        flush=True,
    )
    bridge.serve_forever()


def to_policy_observation(obs: dict) -> dict:
    """openpi request → vlaops observation: images HWC uint8, state float32, prompt str."""
    images = {}
    for cam, img in (obs.get("images") or {}).items():
        img = np.asarray(img)
        if img.ndim == 3 and img.shape[0] == 3 and img.shape[-1] != 3:
            img = img.transpose(1, 2, 0)  # CHW → HWC
        images[cam] = np.ascontiguousarray(img, dtype=np.uint8)
    if "state" not in obs:
        raise ValueError("observation has no 'state'")
    return {
        "images": images,
        "state": np.asarray(obs["state"], np.float32),
        "prompt": str(obs.get("prompt") or ""),
    }


class Bridge:
    """A websocket server (one thread per connection) around ``policy.infer``."""

    def __init__(self, policy, host: str = "127.0.0.1", port: int = 0):
        from websockets.sync.server import serve

        self.policy = policy
        self._server = serve(
            self._handle, host, port, compression=None, max_size=None, process_request=self._healthz
        )
        self.port = self._server.socket.getsockname()[1]
        self._thread: threading.Thread | None = None

    @staticmethod
    def _healthz(connection, request):
        if request.path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "OK\n")
        return None

    def _handle(self, ws) -> None:
        from websockets.exceptions import ConnectionClosed

        ws.send(wire.pack(dict(self.policy.metadata)))
        prev_total = None
        while True:
            try:
                message = ws.recv()
            except ConnectionClosed:
                return
            start = time.monotonic()
            try:
                obs = to_policy_observation(wire.unpack(message))
                t0 = time.monotonic()
                result = dict(self.policy.infer(obs))
                infer_ms = (time.monotonic() - t0) * 1e3
                result["actions"] = np.asarray(result["actions"])
                result["policy_timing"] = {"infer_ms": infer_ms}
                result["server_timing"] = {"infer_ms": (time.monotonic() - start) * 1e3}
                if prev_total is not None:
                    result["server_timing"]["prev_total_ms"] = prev_total
                ws.send(wire.pack(result))
                prev_total = (time.monotonic() - start) * 1e3
            except Exception:
                log.exception("request failed")
                ws.send(traceback.format_exc())
                ws.close(1011, "internal error")
                return

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def __enter__(self) -> Bridge:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        if self._thread:
            self._thread.join(5)
