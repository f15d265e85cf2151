"""Container images of the pipeline steps, defined once. The tag follows the package version.

VLAOPS_IMAGE_REGISTRY=us-docker.pkg.dev/my-project/vlaops VLAOPS_IMAGE_TAG=0.1.0-rc1 make deploy-pipeline
"""

from __future__ import annotations

import os

from vlaops import __version__

REGISTRY = os.environ.get("VLAOPS_IMAGE_REGISTRY", "us-docker.pkg.dev/PROJECT/vlaops")
TAG = os.environ.get("VLAOPS_IMAGE_TAG", __version__)


def image(step: str) -> str:
    """``data`` (lerobot + ffmpeg), ``train`` (JAX CUDA), ``sim`` (MuJoCo + EGL), ``serve`` (Triton)."""
    return f"{REGISTRY}/{step}:{TAG}"


DATA, TRAIN, SIM, SERVE = (image(s) for s in ("data", "train", "sim", "serve"))
