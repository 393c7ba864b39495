"""The run's process: builds the Trainer from a RunSpec, then loops over commands and training steps.

Scheduling, turn by turn (the one place it is written down):

1. Read every command that has arrived (Pause, Resume, Stop, Quit, SampleNow, Generate, Cancel) and apply it.
2. RUNNING: take one training step (``Trainer.step()``), then an early stage if this step is one (a validation
   and a sample at steps 10, 30, 100), then the sample asked for with SampleNow, then a slice of generation
   (GENERATE_SLICE seconds) if a prompt is being answered: the continuation comes from the weights as they are
   between two steps, and training goes on.
   PAUSED or FINISHED: a longer slice of generation if a prompt is being answered, else wait up to 0.25 s for
   the next command.
3. Send the events: step events and generated text are batched up to FLUSH_INTERVAL apart, every other event goes
   at once (and at once after each step when steps are slow).
4. Once a second, check that the app is alive; if it died, stop with a checkpoint and end.

A failure inside the Trainer ends training with Error and Done events (the process stays to answer prompts); a
failure to build the run is reported the same way and ends the process.
"""

from __future__ import annotations

import contextlib
import faulthandler
import multiprocessing as mp
import os
import queue
import signal
import sys
import time
import traceback
import warnings
from typing import Any

from rnntui import events
from rnntui.core.config import TrainConfig
from rnntui.engine.protocol import Cancel, Command, Generate, Pause, Quit, Resume, RunSpec, SampleNow, State, Stop
from rnntui.errors import UserError

FLUSH_INTERVAL = 0.05  # seconds: step events reach the parent in batches at most this far apart (~20 per second)
GENERATE_SLICE = 0.015  # seconds of generation between two training steps
IDLE_GENERATE_SLICE = 0.04  # seconds of generation per turn when the run is paused or over


class Outbox:
    """Batches events for the parent: step events and generated text wait up to FLUSH_INTERVAL, others go at once."""

    LAZY = (events.Step, events.GradFlow, events.GenerationChunk)

    def __init__(self, q, clock=time.monotonic):
        self.q = q
        self.clock = clock
        self.pending: list[dict[str, Any]] = []
        self.last_flush = clock()

    def add(self, *produced: events.Event) -> None:
        if self.q is None:
            return
        for event in produced:
            self.pending.append(event.to_dict())
            if not isinstance(event, self.LAZY) or self.due():
                self.flush()

    def due(self) -> bool:
        return bool(self.pending) and self.clock() - self.last_flush >= FLUSH_INTERVAL

    def abandon(self) -> None:
        """The app is gone: send nothing more, and do not let the process wait at exit for a pipe nobody reads
        (its buffer may be full, and this process holds the reading end too)."""
        self.pending = []
        self.q.cancel_join_thread()
        self.q = None

    def flush(self) -> None:
        if self.q is None:
            return
        if self.pending:
            self.q.put(self.pending)
            self.pending = []
        self.last_flush = self.clock()


def _redirect_output(log_path: str | None) -> None:
    """The child shares the app's terminal: anything it prints would corrupt the screen, so its stdout and stderr
    go to a log file (read back by the parent when the child dies)."""
    if not log_path:
        return
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def child_main(spec: RunSpec, commands, events_q, log_path: str | None) -> None:
    """The process's entry point (multiprocessing "spawn")."""
    _redirect_output(log_path)
    faulthandler.enable()  # a segfault leaves its traceback in the log for the parent to show
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the app, which stops the run itself
    if spec.nice and hasattr(os, "nice"):
        try:
            os.nice(spec.nice)
        except OSError:
            pass
    out = Outbox(events_q)
    out.add(events.RunState(State.STARTING.value))
    try:
        if spec.setup is not None:
            spec.setup()
        from rnntui import run  # lazy: importing torch belongs in this process, never in the app's

        if spec.resume:
            trainer = run.resume_trainer(spec.resume, spec.max_steps, spec.max_time, spec.device)
        else:
            trainer = run.build_trainer(TrainConfig.from_json(spec.config), spec.run_dir)
    except Exception as e:
        message = str(e) if isinstance(e, UserError) else f"the run could not start: {e.__class__.__name__}: {e}"
        out.add(events.Error(message, traceback=None if isinstance(e, UserError) else traceback.format_exc()),
                events.Done(0, "error", None, 0.0), events.RunState(State.CLOSED.value))
        out.flush()
        return
    try:
        RunProcess(trainer, spec, commands, out).loop()
    finally:
        trainer.close()


class RunProcess:
    """The loop described in the module docstring, around one Trainer."""

    def __init__(self, trainer, spec: RunSpec, commands, out: Outbox):
        self.trainer, self.commands, self.out = trainer, commands, out
        self.state = State.PAUSED if spec.paused else State.RUNNING
        self.sample_asked = False
        self.continuation = Continuation(trainer, out)
        self.slow_steps = False
        self.parent = mp.parent_process()
        self.next_parent_check = 0.0
        c = trainer.config
        self.early = {s for s in spec.early_samples
                      if s % c.sample_every and s % c.eval_every and s > trainer.steps_done}
        warnings.showwarning = lambda message, category, *_args, **_kw: self.out.add(
            *trainer.warn(f"{category.__name__}: {message}"))

    def loop(self) -> None:
        self.out.add(*self.trainer.start())  # before the first step: a paused run shows what it opened
        self._set_state(self.state)
        while self.state is not State.CLOSED:
            self._read_commands()
            if self.state is State.RUNNING:
                self._train_step()
                if self.continuation:
                    self.continuation.draw(GENERATE_SLICE)
            elif self.state in (State.PAUSED, State.FINISHED):
                if self.continuation:
                    self.continuation.draw(IDLE_GENERATE_SLICE)
                else:
                    self.out.flush()
                    self._read_commands(timeout=0.25)
            if self.out.due():
                self.out.flush()
            self._check_parent()
        self.out.flush()

    def _set_state(self, state: State) -> None:
        self.state = state
        self.out.add(events.RunState(state.value, self.trainer.steps_done))

    def _train_step(self) -> None:
        if self.out.pending and self.slow_steps:
            self.out.flush()
        started = time.monotonic()
        self.out.add(*self.trainer.step())
        self.slow_steps = time.monotonic() - started > FLUSH_INTERVAL / 2
        if self.trainer.finished:
            self.out.flush()
            self._set_state(State.FINISHED)
            return
        if self.trainer.steps_done in self.early:
            self.early.discard(self.trainer.steps_done)
            self.out.add(*self.trainer.evaluate())
            self._sample()
        elif self.sample_asked:
            self._sample()

    def _sample(self) -> None:
        """A sample outside the trainer's schedule (an early stage, or SampleNow)."""
        self.sample_asked = False
        try:
            self.out.add(*self.trainer.sample())
        except Exception as e:
            self.out.add(*self.trainer.warn(f"sampling failed: {e.__class__.__name__}: {e}"))

    def _stop(self, checkpoint: bool) -> None:
        if self.state in (State.RUNNING, State.PAUSED):
            self.out.add(*self.trainer.stop(checkpoint))
            self.out.flush()
            self._set_state(State.FINISHED)

    def _check_parent(self) -> None:
        now = time.monotonic()
        if now >= self.next_parent_check:
            self.next_parent_check = now + 1.0
            if self.parent is not None and not self.parent.is_alive():  # the app died: keep the work and go
                self.out.abandon()
                self._apply(Quit(checkpoint=True))

    # -- commands ----------------------------------------------------------------------------------------------

    def _read_commands(self, timeout: float | None = None) -> None:
        while self.state is not State.CLOSED:
            try:
                command = self.commands.get(timeout=timeout) if timeout else self.commands.get_nowait()
            except queue.Empty:
                return
            except (EOFError, OSError):  # the parent is gone
                self.out.abandon()
                command = Quit(checkpoint=True)
            timeout = None
            self._apply(command)

    def _apply(self, command: Command) -> None:
        match command:
            case Pause() if self.state is State.RUNNING:
                self.out.flush()
                self._set_state(State.PAUSED)
            case Resume() if self.state is State.PAUSED:
                self._set_state(State.RUNNING)
            case Stop(checkpoint=checkpoint):
                self._stop(checkpoint)
            case Quit(checkpoint=checkpoint):
                self._stop(checkpoint)
                self.continuation.cancel()
                self._set_state(State.CLOSED)
            case SampleNow():
                if self.state is State.RUNNING:
                    self.sample_asked = True  # after the step in progress
                else:
                    self._sample()
            case Generate():
                self.continuation.start(command)
            case Cancel(request=request):
                self.continuation.cancel(request)


class Continuation:
    """The prompt being answered: characters drawn in slices, between training steps, from the current weights."""

    def __init__(self, trainer, out: Outbox):
        self.trainer, self.out = trainer, out
        self.request: int | None = None
        self.chars = None  # the character iterator of the request being answered

    def __bool__(self) -> bool:
        return self.chars is not None

    def start(self, g: Generate) -> None:
        self.cancel()
        try:
            used, dropped = self.trainer.prepare_prompt(g.prompt)
            chars = self.trainer.generate(used, g.length or None, g.temperature, g.top_k, g.top_p, g.seed)
        except UserError as e:
            self.out.add(events.GenerationDone(g.request, "error", str(e)))
            return
        self.request, self.chars = g.request, chars
        self.out.add(events.GenerationStarted(g.request, used, "".join(dropped), self.trainer.steps_done))

    def cancel(self, request: int | None = None) -> None:
        if self.chars is not None and request in (None, self.request):
            with self._model_mode_kept():
                self.chars.close()
            self._end("cancelled")

    def _end(self, reason: str, message: str | None = None) -> None:
        self.out.add(events.GenerationDone(self.request, reason, message))
        self.request, self.chars = None, None

    @contextlib.contextmanager
    def _model_mode_kept(self):
        """Generation puts the model in eval mode while it draws; training between slices needs it back."""
        model = self.trainer.model
        was_training = model.training
        try:
            yield
        finally:
            model.train(was_training)

    def draw(self, seconds: float) -> None:
        """Draw characters for about ``seconds`` from the weights as they are now, then give the turn back."""
        text, reason, message = [], None, None
        deadline = time.perf_counter() + seconds
        with self._model_mode_kept():
            try:
                while True:
                    text.append(next(self.chars))
                    if len(text) % 8 == 0 and time.perf_counter() > deadline:
                        break
            except StopIteration:
                reason = "length"
            except Exception as e:
                reason, message = "error", f"{e.__class__.__name__}: {e}"
        if text:
            self.out.add(events.GenerationChunk(self.request, "".join(text)))
        if reason:
            self._end(reason, message)
