"""Run directories: where they live, how they are named, what they log, and listing them."""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from rnntui import events


def data_dir() -> Path:
    """``$RNNTUI_HOME`` if set, else the platform's user data directory (e.g. ~/.local/share/rnntui)."""
    if os.environ.get("RNNTUI_HOME"):
        return Path(os.environ["RNNTUI_HOME"])
    from platformdirs import user_data_dir

    return Path(user_data_dir("rnntui", appauthor=False))


def runs_dir() -> Path:
    return data_dir() / "runs"


def new_run_dir(corpus: str, cell: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{corpus}-{cell}").strip("-")[:60]
    base = runs_dir() / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


class RunLog:
    """Appends a run's events to ``events.jsonl`` and its samples to ``samples.jsonl``.

    Step and grad-flow events are thinned as the run grows (every step up to 1,000, every 10th up to 10,000, ...),
    so the log stays small however long the run; every other event is kept."""

    def __init__(self, run_dir: Path, resume_step: int | None = None):
        self.events_path = run_dir / "events.jsonl"
        self.samples_path = run_dir / "samples.jsonl"
        if resume_step is not None:  # drop what a crashed run logged past the checkpoint it resumes from
            for path in (self.events_path, self.samples_path):
                if path.exists():
                    kept = [line for line in path.read_text().splitlines(keepends=True)
                            if _step_of(line) is None or _step_of(line) <= resume_step]
                    path.write_text("".join(kept))
        self._events = open(self.events_path, "a", encoding="utf-8")
        self._samples = open(self.samples_path, "a", encoding="utf-8")

    def write(self, event: events.Event) -> None:
        thinned = isinstance(event, (events.Step, events.GradFlow))
        if thinned and event.step % max(1, 10 ** (len(str(event.step)) - 3)):
            return
        line = json.dumps(event.to_dict(), ensure_ascii=False) + "\n"
        self._events.write(line)
        if isinstance(event, events.Sample):
            self._samples.write(line)
        if not isinstance(event, events.Step):
            self._events.flush()
            self._samples.flush()

    def close(self) -> None:
        self._events.close()
        self._samples.close()


def _step_of(line: str) -> int | None:
    try:
        return json.loads(line).get("step")
    except ValueError:
        return None


@dataclass
class RunSummary:
    path: Path
    name: str
    corpus: str
    cell: str
    steps: int
    best_val_loss: float | None
    created: str


def summarize(run_dir: Path) -> RunSummary | None:
    try:
        info = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    steps, best = 0, None
    checkpoints = sorted((run_dir / "checkpoints").glob("step-*.json"))
    if checkpoints:
        try:
            meta = json.loads(checkpoints[-1].read_text())
            steps, best = meta.get("step", 0), meta.get("best_val_loss")
        except (OSError, ValueError):
            pass
    if best is not None and not math.isfinite(best):
        best = None
    return RunSummary(run_dir, run_dir.name, Path(info.get("corpus", "?")).name, info["config"]["cell"], steps,
                      best, info.get("created", ""))


def list_runs(root: Path | None = None) -> list[RunSummary]:
    root = root or runs_dir()
    if not root.is_dir():
        return []
    return [s for d in sorted(root.iterdir()) if d.is_dir() and (s := summarize(d)) is not None]
