"""Running pipelines on this machine through ``kfp.local`` (the SubprocessRunner, this venv).

    with local.StepTimer() as timer:
        local.init("local-run")
        finetune(**params)
    print(local.table(timer.seconds))

kfp.local runs the very components the cluster runs (Lightweight Python components, executed in
this interpreter); it ignores the Kubernetes task settings. Caching works as on the cluster: a
re-run with the same inputs reuses the earlier outputs under ``<root>/kfp-cache``.
"""

import logging
import re
import time
from pathlib import Path

import kfp.local

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_START = re.compile(r"^Executing task '([^']+)'")
_END = re.compile(r"^Task '([^']+)' finished with status (\w+)")
_CACHED = re.compile(r"^Task '?([^' ]+)'? cache hit")


def init(root: str | Path, caching: bool = True) -> Path:
    """Point kfp.local at ``root`` (artifacts in ``pipeline-root/``, cache in ``kfp-cache/``)."""
    root = Path(root).absolute()
    root.mkdir(parents=True, exist_ok=True)
    kfp.local.init(
        runner=kfp.local.SubprocessRunner(use_venv=False),
        pipeline_root=str(root / "pipeline-root"),
        enable_caching=caching,
        cache_root=str(root / "kfp-cache"),
    )
    return root


class StepTimer(logging.Filter):
    """Wall time of every task kfp.local runs, read from its log lines. kfp.local logs on the root
    logger and swaps its handlers for every task, so this listens as a filter of that logger."""

    def __init__(self):
        super().__init__()
        self.seconds: dict[str, float] = {}
        self.status: dict[str, str] = {}
        self._started: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        msg = _ANSI.sub("", record.getMessage())
        if m := _START.match(msg):
            self._started[m[1]] = record.created
        elif (m := _END.match(msg)) and m[1] in self._started:
            self.seconds[m[1]] = record.created - self._started.pop(m[1])
            self.status[m[1]] = m[2]
        elif m := _CACHED.match(msg):
            self.seconds[m[1]], self.status[m[1]] = 0.0, "CACHED"
        return True

    def __enter__(self) -> "StepTimer":
        root = logging.getLogger()
        # kfp.local logs cache hits outside its own logging context: let INFO through meanwhile
        self._level = root.level
        root.setLevel(min(root.level, logging.INFO) or logging.INFO)
        root.addFilter(self)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.total = time.perf_counter() - self._t0
        logging.getLogger().removeFilter(self)
        logging.getLogger().setLevel(self._level)


def table(seconds: dict[str, float], status: dict[str, str] | None = None) -> str:
    """A Markdown table of step → wall seconds."""
    rows = ["| step | status | seconds |", "|---|---|---:|"]
    for name, s in seconds.items():
        rows.append(f"| {name} | {(status or {}).get(name, '')} | {s:.1f} |")
    return "\n".join(rows)
