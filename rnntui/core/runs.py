"""Run directories: where they live, how they are named, what they log, the checkpoint files in them, and listing
them. No torch here: the app and `rnntui runs` read run directories without it (tensors are rnntui.core.checkpoint's).

A run directory holds ``config.json``, ``events.jsonl``, ``samples.jsonl`` and ``checkpoints/``, where a checkpoint
is the pair ``step-00000100.safetensors`` + ``step-00000100.json`` and ``best.json`` names the one with the lowest
validation loss.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnntui import events
from rnntui.errors import UserError
from rnntui.util.files import read_json, sha256_file
from rnntui.util.paths import runs_dir

FORMAT = "rnntui-checkpoint"
FORMAT_VERSION = 1
PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")  # pickle protocol 2+ and torch.save's zip container
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".bin", ".ckpt")


class CheckpointError(UserError):
    """A checkpoint that cannot be used; the message is one line that says what to do."""


def new_run_dir(corpus: str, cell: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{corpus}-{cell}").strip("-")[:60]
    base = runs_dir() / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def run_dir_of(checkpoint_json: Path) -> Path:
    """The run directory a checkpoint's JSON file belongs to."""
    return checkpoint_json.parent.parent


# -- checkpoint files ------------------------------------------------------------------------------------------


def refuse_pickle(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(4)
    if any(head.startswith(m) for m in PICKLE_MAGIC) or path.suffix in PICKLE_SUFFIXES:
        raise CheckpointError(
            f"{path} is a pickle/torch.save file, which rnntui never loads (unpickling can run arbitrary code); "
            "give an rnntui run directory or its .json checkpoint"
        )


def checkpoint_files(run_dir: Path) -> list[Path]:
    """The run's checkpoint JSON files, oldest first (``run_dir`` may also be its checkpoints directory)."""
    run_dir = Path(run_dir)
    directory = run_dir / "checkpoints" if (run_dir / "checkpoints").is_dir() else run_dir
    return sorted(directory.glob("step-*.json"))


def resolve(path: str | Path) -> Path:
    """A run directory, a checkpoints directory, or a checkpoint file -> the checkpoint's JSON file (latest in a
    directory)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such run directory or checkpoint; list runs with `rnntui runs`")
    if path.is_dir():
        found = checkpoint_files(path)
        if not found:
            raise CheckpointError(f"{path} holds no checkpoint; train first, or give a run directory that has one")
        return found[-1]
    refuse_pickle(path)
    if path.suffix == ".safetensors":
        path = path.with_suffix(".json")
    return path


def read_meta(json_path: Path) -> dict[str, Any]:
    """A checkpoint's JSON, checked to be an rnntui checkpoint of the version this rnntui reads."""
    try:
        meta = json.loads(Path(json_path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{json_path} is damaged ({e.__class__.__name__}); use an earlier checkpoint") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{json_path} is not an rnntui checkpoint")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{json_path} has checkpoint format version {meta.get('format_version')}, this rnntui reads version "
            f"{FORMAT_VERSION}; use the rnntui version that wrote it"
        )
    return meta


def verify_checkpoint(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """Find and check a checkpoint (format, version, the tensor file's sha256) -> (its tensor file, its JSON).
    Needs no torch: generation with the built-in cells reads the tensors with numpy."""
    json_path = resolve(path)
    meta = read_meta(json_path)
    tensor_path = json_path.parent / meta["tensors"]
    if not tensor_path.exists():
        raise CheckpointError(f"{tensor_path} is missing; use an earlier checkpoint")
    if sha256_file(tensor_path) != meta["tensors_sha256"]:
        raise CheckpointError(f"{tensor_path} is truncated or damaged (checksum mismatch); use an earlier checkpoint")
    return tensor_path, meta


def latest_meta(run_dir: Path) -> dict[str, Any] | None:
    """The newest checkpoint's JSON, or None when the run has none (or it is unreadable)."""
    found = checkpoint_files(run_dir)
    return read_json(found[-1]) if found else None


def best_pointer(run_dir: Path) -> dict[str, Any] | None:
    """``best.json``: {"checkpoint": file name, "step", "val_loss"} of the best checkpoint, or None."""
    pointer = read_json(Path(run_dir) / "checkpoints" / "best.json")
    return pointer if isinstance(pointer, dict) and "checkpoint" in pointer else None


def best_checkpoint(run_dir: Path) -> Path:
    pointer = best_pointer(run_dir)
    if pointer is None:
        raise CheckpointError(f"{run_dir} has no best checkpoint yet (none was validated); drop --best")
    return Path(run_dir) / "checkpoints" / pointer["checkpoint"]


def prune(directory: Path, keep: int, protect: set[str]) -> None:
    """Delete all but the newest ``keep`` checkpoints, never those named in ``protect`` (the best one)."""
    found = sorted(directory.glob("step-*.json"))
    for json_path in found[: max(0, len(found) - keep)]:
        if json_path.name in protect:
            continue
        json_path.unlink(missing_ok=True)  # the JSON goes first: a checkpoint without it no longer exists
        json_path.with_suffix(".safetensors").unlink(missing_ok=True)


def checkpoint_budget(run_dir: Path) -> dict[str, Any]:
    """The newest checkpoint's step, budget and training time ({} without one)."""
    meta = latest_meta(run_dir)
    if not meta:
        return {}
    config = meta.get("config", {})
    return {"step": meta.get("step", 0), "max_steps": config.get("max_steps"), "max_time": config.get("max_time"),
            "train_time": meta.get("train_time", 0.0)}


# -- the run's log -----------------------------------------------------------------------------------------------


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
                            if (_step_of(line) or 0) <= resume_step]
                    path.write_text("".join(kept))
        self._events = open(self.events_path, "a", encoding="utf-8")
        self._samples = open(self.samples_path, "a", encoding="utf-8")

    def write(self, event: events.Event) -> None:
        if isinstance(event, (events.Step, events.GradFlow)) and not keeps_step(event.step):
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


def keeps_step(step: int) -> bool:
    """Whether the log keeps the step event of ``step``: all up to 999, then every 10th, every 100th from 10,000..."""
    return step % max(1, 10 ** (len(str(step)) - 3)) == 0


def _step_of(line: str) -> int | None:
    try:
        return json.loads(line).get("step")
    except ValueError:
        return None


# -- listing runs ------------------------------------------------------------------------------------------------


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
    info = read_json(run_dir / "config.json")
    if not isinstance(info, dict) or "config" not in info:
        return None
    meta = latest_meta(run_dir) or {}
    steps, best = meta.get("step", 0), meta.get("best_val_loss")
    if best is not None and not math.isfinite(best):
        best = None
    return RunSummary(run_dir, run_dir.name, Path(info.get("corpus", "?")).name, info["config"]["cell"], steps,
                      best, info.get("created", ""))


def list_runs(root: Path | None = None) -> list[RunSummary]:
    root = root or runs_dir()
    if not root.is_dir():
        return []
    return [s for d in sorted(root.iterdir()) if d.is_dir() and (s := summarize(d)) is not None]
