"""Container images of the pipeline steps, defined once. The tag follows the package version.

    python -c 'import vlaops.images as i; print(i.DATA)'      # us-docker.pkg.dev/PROJECT/vlaops/data:0.1.0
    VLAOPS_IMAGE_REGISTRY=us-docker.pkg.dev/my-project/vlaops VLAOPS_IMAGE_TAG=0.1.0-rc1 make deploy-pipeline

``images/<step>/Dockerfile`` builds each one (``make images``); ``components/`` use them as the
base image of their step; the Artifact Registry repository ``vlaops`` (infra/terraform) holds them.
The environment is read at import, so set it before the components are imported (the compile,
deploy and image-build commands are fresh processes).
"""

from __future__ import annotations

import os

from vlaops import __version__

# Artifact Registry repository (infra/terraform/registry.tf); PROJECT is a placeholder to override.
DEFAULT_REGISTRY = "us-docker.pkg.dev/PROJECT/vlaops"

REGISTRY = os.environ.get("VLAOPS_IMAGE_REGISTRY", DEFAULT_REGISTRY).rstrip("/")
TAG = os.environ.get("VLAOPS_IMAGE_TAG", __version__)

# step image → what it carries (each has a Dockerfile at images/<name>/Dockerfile)
STEPS = {
    "data": "convert, norm-stats: lerobot + FFmpeg",
    "train": "train: JAX on CUDA 12",
    "sim": "generate-demos, evaluate: MuJoCo with headless EGL",
    "serve": "export, deploy, serving: Triton + the policy code",
}


def image(step: str) -> str:
    """The full reference of one step image, e.g. ``image("data")``."""
    if step not in STEPS:
        raise ValueError(f"unknown image {step!r}: choose one of {', '.join(STEPS)}")
    return f"{REGISTRY}/{step}:{TAG}"


DATA, TRAIN, SIM, SERVE = (image(s) for s in STEPS)
