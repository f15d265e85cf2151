"""components/evaluate called as a plain function (scripted policy, one short episode)."""

from pathlib import Path

import pytest
from component_helpers import output
from kfp.dsl import HTML, Metrics

from components.evaluate.component import evaluate
from vlaops.errors import VlaopsError


def _run(tmp_path, **kw):
    metrics, report = output(Metrics, tmp_path, "metrics"), output(HTML, tmp_path, "report")
    args = {
        "task": "transfer_cube",
        "episodes": 1,
        "output_uri": str(tmp_path / "eval"),
        "policy": "scripted",
        "replan_steps": 10,
        "videos": 1,
        "workers": 1,
        **kw,
    }
    rate = evaluate.python_func(metrics=metrics, report=report, **args)
    return rate, metrics, report


def test_scripted_evaluation_reports_success_and_videos(tmp_path):
    rate, metrics, report = _run(tmp_path)
    assert rate == metrics.metadata["success_rate"] == 1.0
    assert metrics.metadata["episodes"] == 1
    html = Path(report.path).read_text()
    assert "data:video/mp4;base64," in html
    assert (tmp_path / "eval" / "metrics.json").exists()


@pytest.mark.parametrize(
    ("policy", "message"),
    [("checkpoint", "needs the checkpoint input"), ("openpi", "policy 'openpi'")],
)
def test_bad_policy_fails_before_any_episode(tmp_path, policy, message):
    with pytest.raises(VlaopsError, match=message):
        _run(tmp_path, policy=policy)
    assert not (tmp_path / "eval").exists()
