"""The pipeline on a Kubeflow Pipelines endpoint: upload a new version, start a run.

    KFP_HOST=https://kfp.example.com KFP_TOKEN=$(gcloud auth print-identity-token) \\
        python -m pipelines.cluster upload           # make deploy-pipeline; prints the UI link
    KFP_HOST=... python -m pipelines.cluster run --params pipelines/params/example.yaml
                                                     # make run-pipeline; prints the run's link

``upload`` compiles ``finetune`` and uploads it as a new version of the pipeline named ``finetune``
(creating the pipeline the first time). ``run`` starts a run of its newest version (or
``--version``) in an experiment, with the parameters of a YAML/JSON file checked against the
pipeline's before anything is sent, as the Kubernetes service account ``vlaops-pipeline``.
KFP_HOST is the API endpoint (``http://localhost:8080`` through ``kubectl port-forward``); KFP_TOKEN,
when set, is sent as a bearer token; KFP_NAMESPACE is the profile namespace of a multi-user KFP.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import urllib3
import yaml
from kfp_server_api.exceptions import ApiException

from pipelines import finetune, task_settings
from vlaops import __version__
from vlaops.errors import VlaopsError


@dataclass(frozen=True)
class Uploaded:
    pipeline_id: str
    version_id: str
    version_name: str
    link: str


def client(host: str, token: str | None = None, namespace: str | None = None):
    """A ``kfp.Client`` for ``host`` (bearer ``token`` if given)."""
    import kfp

    if not host:
        raise VlaopsError(
            "KFP_HOST is not set: the Kubeflow Pipelines API endpoint, e.g. "
            "http://localhost:8080 after kubectl port-forward svc/ml-pipeline-ui"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "only works with KFP v2.0.0-beta.2+"
        return kfp.Client(
            host=host, existing_token=token or None, namespace=namespace or "kubeflow"
        )


def version_name() -> str:
    """``v<package version>-<git commit>-<UTC time>``: unique, and says what was uploaded."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "nogit"
    return f"v{__version__}-{commit}-{stamp}"


def ui_link(host: str, pipeline_id: str, version_id: str = "") -> str:
    link = f"{host.rstrip('/')}/#/pipelines/details/{pipeline_id}"
    return f"{link}/version/{version_id}" if version_id else link


def upload(
    host: str,
    token: str | None = None,
    name: str = finetune.NAME,
    package: str | None = None,
    version: str | None = None,
    namespace: str | None = None,
) -> Uploaded:
    """Compile (unless ``package`` is given) and upload as a new version of pipeline ``name``."""
    kfp_client = client(host, token, namespace)
    version = version or version_name()
    with tempfile.TemporaryDirectory() as tmp:
        package = package or finetune.compile_pipeline(str(Path(tmp) / "finetune.yaml"))
        pipeline_id = kfp_client.get_pipeline_id(name)
        if pipeline_id is None:  # first upload: the pipeline and its first version in one call
            created = kfp_client.upload_pipeline(
                package,
                pipeline_name=name,
                description=finetune.finetune.description,
                namespace=namespace,
            )
            pipeline_id = created.pipeline_id
            version_id = latest_version(kfp_client, pipeline_id)
            version = name
        else:
            uploaded = kfp_client.upload_pipeline_version(
                package, pipeline_version_name=version, pipeline_id=pipeline_id
            )
            version_id = uploaded.pipeline_version_id
    return Uploaded(pipeline_id, version_id, version, ui_link(host, pipeline_id, version_id))


def latest_version(kfp_client, pipeline_id: str) -> str:
    versions = kfp_client.list_pipeline_versions(
        pipeline_id, page_size=1, sort_by="created_at desc"
    ).pipeline_versions
    if not versions:
        raise VlaopsError(f"pipeline {pipeline_id} has no versions: run make deploy-pipeline")
    return versions[0].pipeline_version_id


def read_params(path: str) -> dict:
    """Run parameters from a YAML or JSON file, checked against the pipeline's parameters."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as e:
        raise VlaopsError(f"--params {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise VlaopsError(f"--params {path}: not valid YAML/JSON ({e})") from None
    if not isinstance(data, dict):
        raise VlaopsError(f"--params {path}: expected a mapping of parameter → value")
    known = finetune.parameters()
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise VlaopsError(
            f"--params {path}: unknown parameter(s) {', '.join(unknown)}; "
            f"the pipeline takes {', '.join(sorted(known))}"
        )
    for key, value in data.items():
        kind = type(known[key])
        ok = isinstance(value, kind) or (kind is float and type(value) is int)
        if known[key] is not None and (not ok or (kind is int and isinstance(value, bool))):
            raise VlaopsError(f"--params {path}: {key} = {value!r} should be a {kind.__name__}")
    return data


def start_run(
    host: str,
    params: dict,
    token: str | None = None,
    name: str = finetune.NAME,
    version_id: str | None = None,
    experiment: str = "vlaops",
    run_name: str | None = None,
    service_account: str = task_settings.SERVICE_ACCOUNT,
    namespace: str | None = None,
) -> str:
    """Start a run of pipeline ``name`` (its newest version unless ``version_id``); returns the
    run's UI link."""
    kfp_client = client(host, token, namespace)
    pipeline_id = kfp_client.get_pipeline_id(name)
    if pipeline_id is None:
        raise VlaopsError(f"no pipeline named {name!r} at {host}: run make deploy-pipeline first")
    version_id = version_id or latest_version(kfp_client, pipeline_id)
    exp = kfp_client.create_experiment(experiment, namespace=namespace)  # gets it if it exists
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    run = kfp_client.run_pipeline(
        experiment_id=exp.experiment_id,
        job_name=run_name or f"{name}-{stamp}",
        params=params,
        pipeline_id=pipeline_id,
        version_id=version_id,
        service_account=service_account,
    )
    return f"{host.rstrip('/')}/#/runs/details/{run.run_id}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--host", default=os.environ.get("KFP_HOST", ""), help="default $KFP_HOST")
    p.add_argument("--name", default=finetune.NAME, help="pipeline name in KFP")
    p.add_argument("--namespace", default=os.environ.get("KFP_NAMESPACE") or None)
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upload", help="compile and upload a new pipeline version")
    up.add_argument("--package", help="an already compiled YAML (default: compile now)")
    up.add_argument("--version", help="version name (default: v<version>-<commit>-<time>)")
    run = sub.add_parser("run", help="start a run")
    run.add_argument("--params", required=True, help="YAML/JSON file of pipeline parameters")
    run.add_argument("--version-id", help="pipeline version (default: the newest)")
    run.add_argument("--experiment", default="vlaops")
    run.add_argument("--run-name")
    run.add_argument(
        "--service-account",
        default=os.environ.get("KFP_SERVICE_ACCOUNT", task_settings.SERVICE_ACCOUNT),
    )
    args = p.parse_args(argv)
    token = os.environ.get("KFP_TOKEN") or None
    try:
        if args.command == "upload":
            up = upload(args.host, token, args.name, args.package, args.version, args.namespace)
            print(f"uploaded {args.name} version {up.version_name}\n{up.link}")
        else:
            params = read_params(args.params)
            link = start_run(
                args.host,
                params,
                token,
                args.name,
                args.version_id,
                args.experiment,
                args.run_name,
                args.service_account,
                args.namespace,
            )
            print(f"started a run of {args.name} with {json.dumps(params)}\n{link}")
    except VlaopsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ApiException as e:
        print(f"error: KFP answered {e.status} {e.reason}: {e.body}", file=sys.stderr)
        return 2
    except urllib3.exceptions.HTTPError as e:
        print(f"error: cannot reach KFP at {args.host}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
