"""metrics.json and report.html of an evaluation: scores, per-episode rows, inline h264 videos."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from vlaops.sim import env, rollout


def metrics(results: list[rollout.EpisodeResult], meta: dict) -> dict:
    return {
        **meta,
        **rollout.summary(results),
        "episodes_detail": [
            {
                "seed": r.seed,
                "steps": r.steps,
                "success": r.success,
                "max_reward": r.max_reward,
                "final_reward": r.rewards[-1] if r.rewards else 0,
                "rewards": r.rewards,
                "timing_s": {k: round(v, 3) for k, v in r.timing.items()},
            }
            for r in results
        ],
    }


def write(out: Path, results: list[rollout.EpisodeResult], meta: dict) -> dict:
    """Write metrics.json, videos/episode_<seed>.mp4 and report.html into the folder ``out``."""
    m = metrics(results, meta)
    (out / "metrics.json").write_text(json.dumps(m, indent=2) + "\n")
    videos = [r for r in results if r.video]
    if videos:
        (out / "videos").mkdir(exist_ok=True)
        for r in videos:
            (out / "videos" / f"episode_{r.seed}.mp4").write_bytes(r.video)
    (out / "report.html").write_text(_html(m, videos))
    return m


def _html(m: dict, videos: list[rollout.EpisodeResult]) -> str:
    esc = html.escape
    head = (
        f"<h1>{esc(m.get('task', ''))}: {esc(str(m.get('policy', '')))}</h1>"
        f"<p>success rate (reward {env.MAX_REWARD} at the end) <b>{m['success_rate']:.1%}</b> · "
        f"reached reward {env.MAX_REWARD} at some step {m['max_reward_success_rate']:.1%} · "
        f"mean max reward {m['mean_max_reward']:.2f} · {m['episodes']} episodes</p>"
    )
    rows = "".join(
        f"<tr><td>{e['seed']}</td><td>{e['steps']}</td><td>{'✔' if e['success'] else '✘'}</td>"
        f"<td>{e['max_reward']}</td><td>{e['final_reward']}</td>"
        f"<td>{e['timing_s'].get('total', 0):.1f}</td></tr>"
        for e in m["episodes_detail"]
    )
    table = (
        "<table><tr><th>seed</th><th>steps</th><th>success</th><th>max reward</th>"
        f"<th>final reward</th><th>seconds</th></tr>{rows}</table>"
    )
    # Inline data URIs: the report stays one self-contained file (a KFP HTML artifact).
    clips = "".join(
        f'<figure><video controls muted playsinline width="320" '
        f'src="data:video/mp4;base64,{base64.b64encode(r.video).decode()}"></video>'
        f"<figcaption>seed {r.seed}: {'success' if r.success else 'failure'}, "
        f"max reward {r.max_reward}</figcaption></figure>"
        for r in videos
    )
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
        "figure{display:inline-block;margin:4px}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>sim evaluation</title>"
        f"<style>{style}</style></head><body>{head}<div>{clips}</div>{table}</body></html>\n"
    )
