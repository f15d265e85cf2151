"""Render settings for sim tests (two CPU cores: tiny images, few episodes); helpers in sim_helpers."""

from __future__ import annotations

import pytest

from vlaops.sim import env


@pytest.fixture
def tiny_render() -> env.RenderConfig:
    return env.RenderConfig(height=48, width=64)
