"""What crosses between the app and a run's process: the RunSpec that starts it and the commands that steer it.
Events come back (rnntui.events). Plain dataclasses, no torch, so the app can import them."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

EARLY_SAMPLES = (10, 30, 100)  # extra stages (with a validation) early on, so the first samples come in seconds
# Added to the run's process niceness (POSIX): the run takes all the CPU the app leaves, but the app gets the CPU
# at once when it needs it (a key press), so the UI stays responsive while training uses every core.
RUN_NICENESS = 5


@dataclass
class RunSpec:
    """What to run: a new run of ``config`` (TrainConfig fields, presets and options already applied), or the
    exact continuation of the run at ``resume`` with a new budget (None keeps the run's own)."""

    config: dict[str, Any] | None = None
    resume: str | None = None  # a run directory or checkpoint
    max_steps: int | None = None  # budget of a resumed run
    max_time: float | None = None
    device: str | None = None  # device of a resumed run (None: the run's own)
    run_dir: str | None = None  # where a new run lives (None: a new directory under the runs directory)
    paused: bool = False  # build the trainer but wait for Resume before the first step
    early_samples: tuple[int, ...] = EARLY_SAMPLES
    setup: Callable[[], None] | None = None  # a picklable function the child calls first (e.g. registers plugins)
    nice: int = RUN_NICENESS

    def __post_init__(self) -> None:
        if (self.config is None) == (self.resume is None):
            raise ValueError("a RunSpec is either a config or a resume path")


class State(enum.Enum):
    """The run process's state, reported to the app in RunState events (by value)."""

    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"  # training is over; the process still answers prompts
    CLOSED = "closed"


# -- commands, each acted on at the run's next turn ----------------------------------------------------------------


@dataclass(frozen=True)
class Pause:
    pass


@dataclass(frozen=True)
class Resume:
    pass


@dataclass(frozen=True)
class Stop:
    """End training (Done "stopped"), with a final checkpoint if asked; the process stays to answer prompts."""

    checkpoint: bool = True


@dataclass(frozen=True)
class Quit:
    """Stop (as above) and end the process."""

    checkpoint: bool = False


@dataclass(frozen=True)
class SampleNow:
    pass


@dataclass(frozen=True)
class Generate:
    """Stream a continuation of ``prompt`` from the current weights (GenerationStarted, Chunk…, Done)."""

    request: int
    prompt: str
    temperature: float = 0.8
    top_k: int | None = None
    top_p: float | None = None
    length: int | None = 500  # None: until cancelled
    seed: int | None = None


@dataclass(frozen=True)
class Cancel:
    """Stop the generation ``request`` (None: whichever is running)."""

    request: int | None = None


Command = Pause | Resume | Stop | Quit | SampleNow | Generate | Cancel
