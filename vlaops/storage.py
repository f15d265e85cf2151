"""URIs in one place: local paths, ``file://`` and ``gs://``.

Every stage reads and writes through this module, so a step runs the same against a laptop folder,
a bucket, or the local GCS server the tests start. Directory artifacts are published atomically:

    with storage.publish_dir("gs://bucket/datasets/pick", overwrite=False) as staging:
        write_everything_into(staging)        # a local folder
    # only now is anything visible at the URI; a failure above leaves nothing there

Locally that is a rename of a sibling staging folder. On a bucket, where there is no rename of a
prefix, files are uploaded with the *commit files* last (``_SUCCESS`` always, plus e.g.
``meta/info.json`` for a LeRobot dataset), so a crash mid-upload leaves a prefix that no reader
takes for a complete artifact; a failed upload removes what it wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import fsspec

from vlaops.errors import VlaopsError

SUCCESS_MARKER = "_SUCCESS"


def is_remote(uri: str | os.PathLike) -> bool:
    """True for URIs that live in an object store (anything with a scheme other than file://)."""
    s = str(uri)
    return "://" in s and not s.startswith("file://")


def local_path(uri: str | os.PathLike) -> Path:
    """The local path of a local URI (plain path or file://)."""
    s = str(uri)
    if is_remote(s):
        raise ValueError(f"{s} is not a local path")
    return Path(s.removeprefix("file://")).expanduser()


def join(uri: str | os.PathLike, *parts: str) -> str:
    """Join path components onto a URI with '/' (never os.sep tricks on remote URIs)."""
    out = str(uri).rstrip("/")
    for p in parts:
        out = f"{out}/{str(p).strip('/')}"
    return out


def filesystem(uri: str | os.PathLike) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem for a URI and the path inside it."""
    s = str(uri)
    if not is_remote(s):
        return fsspec.filesystem("file"), str(local_path(s).absolute())
    protocol, _, path = s.partition("://")
    if protocol in ("gs", "gcs"):
        return _gcs(), path.rstrip("/")
    fs, path = fsspec.core.url_to_fs(s)
    return fs, path


def _gcs() -> fsspec.AbstractFileSystem:
    import gcsfs

    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    # No listings cache: another process (a pipeline step, the test) may have written since.
    return gcsfs.GCSFileSystem(
        token="anon" if emulator else None,
        endpoint_url=emulator or None,
        use_listings_cache=False,
        skip_instance_cache=True,
    )


def gcs_emulator_env(url: str) -> dict[str, str]:
    """Environment that points every GCS client we use (gcsfs, tensorstore, Triton) at ``url``."""
    return {
        "STORAGE_EMULATOR_HOST": url,
        "TENSORSTORE_GCS_HTTP_URL": url,
        "CLOUD_STORAGE_EMULATOR_ENDPOINT": url,
        # Without this gcsfs probes for hierarchical-namespace buckets and stalls ~60 s per call.
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
    }


def exists(uri: str | os.PathLike) -> bool:
    fs, path = filesystem(uri)
    return fs.exists(path)


def isdir(uri: str | os.PathLike) -> bool:
    fs, path = filesystem(uri)
    return fs.isdir(path)


def open(uri: str | os.PathLike, mode: str = "rb"):
    fs, path = filesystem(uri)
    return fs.open(path, mode)


def read_bytes(uri: str | os.PathLike) -> bytes:
    fs, path = filesystem(uri)
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        raise VlaopsError(f"{uri}: no such file") from None


def read_text(uri: str | os.PathLike) -> str:
    return read_bytes(uri).decode()


def read_json(uri: str | os.PathLike):
    data = read_bytes(uri)
    try:
        return json.loads(data)
    except json.JSONDecodeError as e:
        raise VlaopsError(f"{uri}: not valid JSON ({e})") from None


def write_bytes(uri: str | os.PathLike, data: bytes) -> None:
    """Write a whole file. Local writes go through a temporary file and a rename; an object-store
    upload is atomic by itself."""
    if is_remote(uri):
        fs, path = filesystem(uri)
        fs.pipe_file(path, data)
        return
    path = local_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_text(uri: str | os.PathLike, text: str) -> None:
    write_bytes(uri, text.encode())


def write_json(uri: str | os.PathLike, obj) -> None:
    write_text(uri, json.dumps(obj, indent=2) + "\n")


def listdir(uri: str | os.PathLike) -> list[str]:
    """Names (not paths) directly under a directory URI, sorted; [] if it does not exist."""
    fs, path = filesystem(uri)
    try:
        entries = fs.ls(path, detail=False)
    except FileNotFoundError:
        return []
    own = path.rstrip("/")
    return sorted({e.rstrip("/").rsplit("/", 1)[-1] for e in entries if e.rstrip("/") != own})


def glob(uri_pattern: str) -> list[str]:
    """URIs matching a glob pattern, sorted, with the input's scheme kept."""
    fs, path = filesystem(uri_pattern)
    matches = sorted(fs.glob(path))
    if not is_remote(uri_pattern):
        return matches
    scheme = str(uri_pattern).split("://", 1)[0]
    return [f"{scheme}://{m}" for m in matches]


def is_empty(uri: str | os.PathLike) -> bool:
    """True when nothing is at the URI, or it is an empty directory."""
    fs, path = filesystem(uri)
    if not fs.exists(path):
        return True
    return fs.isdir(path) and not fs.find(path, maxdepth=None)


def remove(uri: str | os.PathLike) -> None:
    fs, path = filesystem(uri)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy a file or a directory tree between any two URIs."""
    sfs, spath = filesystem(src)
    if not sfs.exists(spath):
        raise VlaopsError(f"{src}: nothing to copy, no such file or directory")
    if not is_remote(src) and not is_remote(dst):
        s, d = Path(spath), local_path(dst)
        d.parent.mkdir(parents=True, exist_ok=True)
        if s.is_dir():
            shutil.copytree(s, d, dirs_exist_ok=True)
        else:
            shutil.copy2(s, d)
        return
    if not sfs.isdir(spath):
        if not is_remote(dst):
            local_path(dst).parent.mkdir(parents=True, exist_ok=True)
        with open(src, "rb") as fi, open(dst, "wb") as fo:
            shutil.copyfileobj(fi, fo, length=16 << 20)
        return
    for rel in _relative_files(sfs, spath):
        copy(join(src, rel), join(dst, rel))


def _relative_files(fs: fsspec.AbstractFileSystem, root: str) -> list[str]:
    root = root.rstrip("/")
    return sorted(p[len(root) + 1 :] for p in fs.find(root) if p.rstrip("/") != root)


def require_writable_output(uri: str | os.PathLike, overwrite: bool = False) -> None:
    """Fail early, before any work, when an output URI already holds something or cannot be
    written (a missing bucket, a file where a folder must go)."""
    try:
        empty = is_empty(uri)
        if is_remote(uri):
            fs, path = filesystem(uri)
            bucket = path.split("/", 1)[0]
            if not fs.exists(bucket):
                raise VlaopsError(f"output {uri}: bucket {bucket!r} does not exist")
        else:
            parent = local_path(uri).absolute()
            while not parent.exists():
                parent = parent.parent
            if not parent.is_dir() or not os.access(parent, os.W_OK):
                raise VlaopsError(f"output {uri}: {parent} is not a writable directory")
    except VlaopsError:
        raise
    except Exception as e:
        raise VlaopsError(f"output {uri} is not accessible: {e}") from None
    if not empty and not overwrite:
        raise VlaopsError(
            f"output {uri} already exists and is not empty: choose another URI or pass --overwrite"
        )


@contextlib.contextmanager
def publish_dir(
    uri: str | os.PathLike, overwrite: bool = False, commit_files: Sequence[str] = ()
) -> Iterator[Path]:
    """Yield a local staging folder; publish it at ``uri`` only if the block succeeds.

    ``commit_files`` (relative paths) are uploaded after everything else, then ``_SUCCESS``.
    """
    require_writable_output(uri, overwrite)
    if is_remote(uri):
        with tempfile.TemporaryDirectory(prefix="vlaops-stage-") as tmp:
            staging = Path(tmp)
            yield staging
            (staging / SUCCESS_MARKER).touch()
            _upload_in_order(staging, str(uri), [*commit_files, SUCCESS_MARKER], overwrite)
        return

    dest = local_path(uri)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.with_name(f".{dest.name}.staging-{uuid.uuid4().hex[:8]}")
    staging.mkdir()
    try:
        yield staging
        (staging / SUCCESS_MARKER).touch()
        if dest.exists():
            if not overwrite and any(dest.iterdir()):
                raise VlaopsError(f"output {uri} appeared while this step ran; not replacing it")
            shutil.rmtree(dest)
        os.rename(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _upload_in_order(staging: Path, uri: str, last: Sequence[str], overwrite: bool) -> None:
    files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
    last = [f for f in last if f in files]
    ordered = [f for f in files if f not in last] + list(last)
    if overwrite:
        remove(uri)
    fs, root = filesystem(uri)
    try:
        for rel in ordered:
            fs.put_file(str(staging / rel), f"{root}/{rel}")
    except BaseException:
        with contextlib.suppress(Exception):
            remove(uri)
        raise


def is_complete(uri: str | os.PathLike) -> bool:
    """True when a directory artifact was published whole (its ``_SUCCESS`` marker exists)."""
    return exists(join(uri, SUCCESS_MARKER))


@contextlib.contextmanager
def as_local_dir(uri: str | os.PathLike) -> Iterator[Path]:
    """A local folder with the contents of a directory URI (the folder itself when local)."""
    if not is_remote(uri):
        yield local_path(uri)
        return
    with tempfile.TemporaryDirectory(prefix="vlaops-fetch-") as tmp:
        copy(uri, tmp)
        yield Path(tmp)
