"""A tiny fake of the Kubeflow Pipelines v2beta1 REST API: a real HTTP server on 127.0.0.1 that
keeps pipelines, versions, experiments and runs in memory and records every request, so tests
can check what ``kfp.Client`` sent (paths, query, headers, uploaded YAML, run bodies)."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

API = "/apis/v2beta1"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    files: dict[str, bytes] = field(default_factory=dict)

    def json(self) -> dict:
        return json.loads(self.body)


class FakeKFP:
    def __init__(self):
        self.requests: list[Request] = []
        self.pipelines: dict[str, dict] = {}
        self.versions: dict[str, list[dict]] = {}
        self.experiments: dict[str, dict] = {}
        self.runs: dict[str, dict] = {}
        self._clock = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeKFP:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def calls(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path == API + path]

    # ── the API ───────────────────────────────────────────────────────────────────────────
    def _now(self) -> str:
        self._clock += 1
        return f"2026-01-01T00:00:{self._clock:02d}Z"

    def _add_version(self, pipeline_id: str, name: str, package: bytes) -> dict:
        version = {
            "pipeline_id": pipeline_id,
            "pipeline_version_id": uuid.uuid4().hex,
            "display_name": name,
            "created_at": self._now(),
            "package": package.decode(),
        }
        self.versions.setdefault(pipeline_id, []).append(version)
        return {k: v for k, v in version.items() if k != "package"}

    def handle(self, req: Request) -> tuple[int, dict]:
        path = req.path.removeprefix(API)
        if req.method == "GET" and path == "/healthz":
            return 200, {"multi_user": False}
        if req.method == "GET" and path == "/pipelines":
            wanted = _filter_value(req.query.get("filter"))
            found = [p for p in self.pipelines.values() if wanted in (None, p["display_name"])]
            return 200, {"pipelines": found, "total_size": len(found)} if found else {}
        if req.method == "POST" and path == "/pipelines/upload":
            pipeline = {
                "pipeline_id": uuid.uuid4().hex,
                "display_name": req.query["name"],
                "description": req.query.get("description", ""),
                "created_at": self._now(),
            }
            self.pipelines[pipeline["pipeline_id"]] = pipeline
            self._add_version(pipeline["pipeline_id"], req.query["name"], req.files["uploadfile"])
            return 200, pipeline
        if req.method == "POST" and path == "/pipelines/upload_version":
            pid = req.query["pipelineid"]
            if pid not in self.pipelines:
                return 404, {"error": f"pipeline {pid} not found"}
            names = {v["display_name"] for v in self.versions[pid]}
            if req.query["name"] in names:
                return 409, {"error": "a version with this name exists"}
            return 200, self._add_version(pid, req.query["name"], req.files["uploadfile"])
        if req.method == "GET" and path.startswith("/pipelines/") and path.endswith("/versions"):
            pid = path.split("/")[2]
            versions = sorted(self.versions.get(pid, []), key=lambda v: v["created_at"])
            if req.query.get("sort_by", "").endswith("desc"):
                versions.reverse()
            size = int(req.query.get("page_size", 100))
            rows = [{k: v for k, v in x.items() if k != "package"} for x in versions[:size]]
            return 200, {"pipeline_versions": rows, "total_size": len(versions)}
        if req.method == "GET" and path == "/experiments":
            wanted = _filter_value(req.query.get("filter"))
            found = [e for e in self.experiments.values() if wanted in (None, e["display_name"])]
            return 200, {"experiments": found, "total_size": len(found)} if found else {}
        if req.method == "POST" and path == "/experiments":
            exp = {**req.json(), "experiment_id": uuid.uuid4().hex, "created_at": self._now()}
            self.experiments[exp["experiment_id"]] = exp
            return 200, exp
        if req.method == "POST" and path == "/runs":
            run = {**req.json(), "run_id": uuid.uuid4().hex, "state": "PENDING"}
            self.runs[run["run_id"]] = run
            return 200, run
        return 404, {"error": f"fake KFP: no route for {req.method} {req.path}"}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                url = urlparse(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                req = Request(
                    self.command,
                    url.path,
                    {k: v[0] for k, v in parse_qs(url.query).items()},
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                if self.headers.get_content_type() == "multipart/form-data":
                    req.files = _multipart(self.headers, body)
                fake.requests.append(req)
                status, payload = fake.handle(req)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, *args):
                pass

        return Handler


def _filter_value(raw: str | None) -> str | None:
    """The string a ``display_name EQUALS`` filter asks for."""
    if not raw:
        return None
    (predicate,) = json.loads(raw)["predicates"]
    assert predicate["key"] == "display_name", predicate
    return predicate["string_value"] if "string_value" in predicate else predicate["stringValue"]


def _multipart(headers, body: bytes) -> dict[str, bytes]:
    """Form field name → content of a multipart/form-data body."""
    head = f"Content-Type: {headers['Content-Type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    return {
        part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
        for part in message.iter_parts()
    }
