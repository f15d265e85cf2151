"""vlaops.storage against local folders and a real local GCS server."""

from __future__ import annotations

import pytest

from vlaops import storage
from vlaops.errors import VlaopsError


@pytest.fixture(params=["local", "gcs"])
def root(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "root")
    return request.getfixturevalue("bucket")


def test_write_read_list_roundtrip(root):
    storage.write_json(storage.join(root, "a/b.json"), {"x": 1})
    storage.write_bytes(storage.join(root, "a/c.bin"), b"\x00\x01")
    assert storage.read_json(storage.join(root, "a/b.json")) == {"x": 1}
    assert storage.read_bytes(storage.join(root, "a/c.bin")) == b"\x00\x01"
    assert storage.listdir(storage.join(root, "a")) == ["b.json", "c.bin"]
    assert storage.glob(storage.join(root, "a/*.json")) == [storage.join(root, "a/b.json")]
    assert not storage.is_empty(root)
    assert storage.is_empty(storage.join(root, "missing"))


def test_missing_file_names_the_uri(root):
    with pytest.raises(VlaopsError, match="missing.json: no such file"):
        storage.read_json(storage.join(root, "missing.json"))


def test_publish_dir_success(root):
    out = storage.join(root, "artifact")
    with storage.publish_dir(out, commit_files=["meta/info.json"]) as staging:
        (staging / "meta").mkdir()
        (staging / "meta/info.json").write_text("{}")
        (staging / "data.bin").write_bytes(b"123")
    assert storage.is_complete(out)
    assert storage.read_bytes(storage.join(out, "data.bin")) == b"123"
    assert storage.listdir(out) == ["_SUCCESS", "data.bin", "meta"]


def test_publish_dir_failure_leaves_nothing(root):
    out = storage.join(root, "artifact")
    with pytest.raises(RuntimeError), storage.publish_dir(out) as staging:
        (staging / "half.bin").write_bytes(b"1")
        raise RuntimeError("step crashed")
    assert storage.is_empty(out)
    assert not storage.is_complete(out)


def test_publish_dir_refuses_non_empty_output_unless_overwrite(root):
    out = storage.join(root, "artifact")
    storage.write_text(storage.join(out, "old.txt"), "old")
    with (
        pytest.raises(VlaopsError, match="already exists and is not empty"),
        storage.publish_dir(out),
    ):
        pass
    with storage.publish_dir(out, overwrite=True) as staging:
        (staging / "new.txt").write_text("new")
    assert storage.listdir(out) == ["_SUCCESS", "new.txt"]


def test_copy_between_local_and_gcs(tmp_path, bucket):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub/x.txt").write_text("x")
    (src / "y.txt").write_text("y")
    storage.copy(str(src), storage.join(bucket, "copy"))
    storage.copy(storage.join(bucket, "copy"), str(tmp_path / "back"))
    assert (tmp_path / "back/sub/x.txt").read_text() == "x"
    assert (tmp_path / "back/y.txt").read_text() == "y"
    with storage.as_local_dir(storage.join(bucket, "copy")) as local:
        assert (local / "sub/x.txt").read_text() == "x"


def test_unwritable_outputs_are_clear_errors(tmp_path, gcs_server):
    (tmp_path / "file").write_text("x")
    with pytest.raises(VlaopsError, match="is not a writable directory"):
        storage.require_writable_output(str(tmp_path / "file" / "out"))
    with pytest.raises(VlaopsError, match="bucket 'no-such-bucket' does not exist"):
        storage.require_writable_output("gs://no-such-bucket/out")
