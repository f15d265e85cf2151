"""pipelines/cluster.py against a fake KFP REST server: the requests kfp.Client makes to upload
the pipeline (create, then new versions) and to start a run."""

import json

import pytest
import yaml
from kfp_fake_server import FakeKFP

from pipelines import cluster, finetune
from vlaops.errors import VlaopsError


@pytest.fixture
def kfp_server():
    with FakeKFP() as server:
        yield server


def test_first_upload_creates_the_pipeline_then_new_versions(kfp_server, capsys):
    assert cluster.main(["--host", kfp_server.url, "upload"]) == 0
    (create,) = kfp_server.calls("POST", "/pipelines/upload")
    assert create.query["name"] == "finetune"
    package = yaml.safe_load_all(create.files["uploadfile"])
    assert next(package)["pipelineInfo"]["name"] == "finetune"  # the compiled pipeline itself
    (pipeline_id,) = kfp_server.pipelines
    first = kfp_server.versions[pipeline_id][0]["pipeline_version_id"]
    assert f"{kfp_server.url}/#/pipelines/details/{pipeline_id}/version/{first}" in (
        capsys.readouterr().out
    )

    up = cluster.upload(kfp_server.url, token="secret-token", version="v-test")
    (new,) = kfp_server.calls("POST", "/pipelines/upload_version")
    assert new.query == {"name": "v-test", "pipelineid": pipeline_id}
    assert new.headers["authorization"] == "Bearer secret-token"
    assert up.pipeline_id == pipeline_id and up.version_name == "v-test"
    assert up.version_id == kfp_server.versions[pipeline_id][1]["pipeline_version_id"]
    assert up.link.endswith(f"/#/pipelines/details/{pipeline_id}/version/{up.version_id}")
    assert len(kfp_server.pipelines) == 1  # the same pipeline, one more version


def test_server_refusal_is_reported_not_a_traceback(kfp_server, capsys):
    cluster.upload(kfp_server.url)
    cluster.upload(kfp_server.url, version="same")
    assert cluster.main(["--host", kfp_server.url, "upload", "--version", "same"]) == 2
    assert "KFP answered 409" in capsys.readouterr().err


def test_version_names_say_what_was_uploaded():
    name = cluster.version_name()
    assert name.startswith("v0.") and name.count("-") >= 3


def test_run_uses_the_newest_version_the_params_file_and_the_service_account(
    kfp_server, tmp_path, capsys
):
    cluster.upload(kfp_server.url, version="ignored-first")
    newest = cluster.upload(kfp_server.url, version="v2")
    params = tmp_path / "params.yaml"
    params.write_text("sim_task: insertion\ndemo_episodes: 3\nsuccess_threshold: 1\n")

    rc = cluster.main(["--host", kfp_server.url, "run", "--params", str(params)])
    assert rc == 0, capsys.readouterr().err
    (exp,) = kfp_server.calls("POST", "/experiments")
    assert exp.json()["display_name"] == "vlaops"
    (run,) = kfp_server.calls("POST", "/runs")
    body = run.json()
    assert body["service_account"] == "vlaops-pipeline"
    assert body["pipeline_version_reference"] == {
        "pipeline_id": newest.pipeline_id,
        "pipeline_version_id": newest.version_id,
    }
    assert body["runtime_config"]["parameters"] == {
        "sim_task": "insertion",
        "demo_episodes": 3,
        "success_threshold": 1,
    }
    assert body["experiment_id"] == kfp_server.requests[-1].json()["experiment_id"]
    assert body["experiment_id"] in kfp_server.experiments
    (run_id,) = kfp_server.runs
    assert f"{kfp_server.url}/#/runs/details/{run_id}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stepz: 3\n", "unknown parameter.s. stepz"),
        ("demo_episodes: many\n", "demo_episodes = 'many' should be a int"),
        ("- a list\n", "expected a mapping"),
    ],
)
def test_bad_params_file_fails_before_any_request(kfp_server, tmp_path, text, message):
    params = tmp_path / "params.yaml"
    params.write_text(text)
    with pytest.raises(VlaopsError, match=message):
        cluster.read_params(str(params))


def test_run_before_any_upload_says_what_to_do(kfp_server, tmp_path, capsys):
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"eval_episodes": 5}))
    assert cluster.main(["--host", kfp_server.url, "run", "--params", str(params)]) == 2
    assert "make deploy-pipeline first" in capsys.readouterr().err
    assert not kfp_server.calls("POST", "/runs")


def test_missing_host_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.delenv("KFP_HOST", raising=False)
    assert cluster.main(["upload"]) == 2
    assert "KFP_HOST is not set" in capsys.readouterr().err


def test_every_default_parameter_is_a_valid_run_parameter(tmp_path):
    params = tmp_path / "all.yaml"
    params.write_text(yaml.safe_dump(finetune.parameters()))
    assert cluster.read_params(str(params)) == finetune.parameters()


def test_the_example_params_file_is_valid():
    assert cluster.read_params("pipelines/params/example.yaml")["sim_task"] == "transfer_cube"
