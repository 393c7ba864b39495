"""The events a training run produces: the one contract between the core, the CLI, the app and the logs.

Every event is a small frozen dataclass with a ``type`` tag, so it can cross a process boundary, be written as
one JSON line (``event.to_dict()``) and be read back (``from_dict``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    type: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **asdict(self)}


@dataclass(frozen=True)
class Started(Event):
    """The run is set up and about to take its first step."""

    type: ClassVar[str] = "started"
    run_dir: str
    step: int
    n_params: int
    device: str
    corpus: str
    cell: str
    train_chars: int
    val_chars: int
    vocab_size: int
    steps_per_epoch: int
    max_steps: int | None
    max_time: float | None
    resumed: bool = False


@dataclass(frozen=True)
class Step(Event):
    type: ClassVar[str] = "step"
    step: int
    epoch: float
    loss: float
    lr: float
    grad_norm: float  # global L2 norm of the gradients before clipping
    chars_per_sec: float
    elapsed: float
    eta: float | None = None


@dataclass(frozen=True)
class Eval(Event):
    type: ClassVar[str] = "eval"
    step: int
    val_loss: float
    val_bpc: float
    best_val_loss: float
    elapsed: float


@dataclass(frozen=True)
class Sample(Event):
    type: ClassVar[str] = "sample"
    step: int
    text: str
    elapsed: float
    val_loss: float | None = None
    temperature: float = 1.0


@dataclass(frozen=True)
class Checkpoint(Event):
    type: ClassVar[str] = "checkpoint"
    step: int
    path: str
    best: bool = False
    val_loss: float | None = None


@dataclass(frozen=True)
class GradFlow(Event):
    """Per-layer gradient norms, for watching gradients vanish or explode through the stack."""

    type: ClassVar[str] = "grad_flow"
    step: int
    norms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RunWarning(Event):
    type: ClassVar[str] = "warning"
    message: str
    step: int | None = None


@dataclass(frozen=True)
class Error(Event):
    type: ClassVar[str] = "error"
    message: str
    step: int | None = None
    traceback: str | None = None


@dataclass(frozen=True)
class Done(Event):
    type: ClassVar[str] = "done"
    step: int
    reason: str  # "max_steps", "max_time", "stopped", "error"
    best_val_loss: float | None
    elapsed: float


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls for cls in (Started, Step, Eval, Sample, Checkpoint, GradFlow, RunWarning, Error, Done)
}


def from_dict(data: dict[str, Any]) -> Event:
    cls = EVENT_TYPES[data["type"]]
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


# -- events of the engine (rnntui.engine), which runs a Trainer in its own process ---------------------------------
# The core never produces these; the engine adds them to the stream it sends the app.


@dataclass(frozen=True)
class RunState(Event):
    """The run's process changed state: "starting", "running", "paused", "finished" (training is over and the
    process still serves generation) or "closed"."""

    type: ClassVar[str] = "run_state"
    state: str
    step: int = 0


@dataclass(frozen=True)
class GenerationStarted(Event):
    """A prompt was accepted. ``prompt`` is what primes the model: the unknown-character policy has removed
    ``dropped``, the characters the model never saw."""

    type: ClassVar[str] = "generation_started"
    request: int
    prompt: str
    dropped: str = ""
    step: int = 0


@dataclass(frozen=True)
class GenerationChunk(Event):
    """The next characters of a continuation, drawn from the weights as they are at that step."""

    type: ClassVar[str] = "generation_chunk"
    request: int
    text: str


@dataclass(frozen=True)
class GenerationDone(Event):
    type: ClassVar[str] = "generation_done"
    request: int
    reason: str  # "length", "cancelled", "error"
    message: str | None = None


EVENT_TYPES.update({cls.type: cls for cls in (RunState, GenerationStarted, GenerationChunk, GenerationDone)})
