"""The engine: one training run in its own process, driven by commands and reporting events.

The app (or a test, or a benchmark) describes a run with a ``RunSpec`` and starts an ``Engine``. A child process
(multiprocessing's "spawn" context, so it shares nothing with the parent but the spec) builds the ``Trainer`` and
iterates ``Trainer.run()``. Between steps it reads its command queue: pause, resume, stop (with or without a final
checkpoint), sample now, generate (stream a continuation of a prompt from the current weights, a slice of
characters between training steps, so training goes on) and cancel. Events go back as ``event.to_dict()`` in
batches: step events are sent at most ``FLUSH_INTERVAL`` apart (every step is kept, for the loss curve), every
other event at once. ::

    engine = Engine(RunSpec(preset="default", overrides={"corpus": "input.txt"}))
    engine.start()
    for event in engine.poll():   # never blocks
        ...
    request = engine.generate("ROMEO:", temperature=0.7)
    engine.close(checkpoint=True)  # stops the run, waits for the process, never leaves it behind

Whatever happens in the child (a bad configuration, a plugin cell that raises, NaN, a segfault, a kill), the parent
gets an ``Error`` event and a ``Done`` event and never blocks. This module imports neither Textual nor torch; the
child imports torch.
"""

from __future__ import annotations

import collections
import contextlib
import faulthandler
import itertools
import math
import multiprocessing as mp
import os
import queue
import signal
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnntui import events

FLUSH_INTERVAL = 0.05  # seconds: step events reach the parent in batches at most this far apart (~20 per second)
GENERATE_SLICE = 0.015  # seconds of generation between two training steps
IDLE_GENERATE_SLICE = 0.04  # seconds of generation per turn when the run is paused or over
EARLY_SAMPLES = (10, 30, 100)  # extra stages (with a validation) early on, so the first samples come in seconds


@dataclass
class RunSpec:
    """What to run. Exactly one of ``config`` (TrainConfig fields), ``args`` (the options of `rnntui train`, as a
    dict) and ``resume`` is used; with none of them the run is ``preset`` with ``overrides``."""

    config: dict[str, Any] | None = None
    args: dict[str, Any] | None = None
    preset: str = "default"
    overrides: dict[str, Any] = field(default_factory=dict)
    resume: str | None = None  # a run directory or checkpoint to continue exactly
    max_steps: int | None = None  # budget of a resumed run (None: the run's own)
    max_time: float | None = None
    device: str = "auto"  # device of a resumed run
    run_dir: str | None = None
    paused: bool = False  # build the trainer but wait for resume() before the first step
    early_samples: tuple[int, ...] = EARLY_SAMPLES
    setup: Callable[[], None] | None = None  # a picklable function the child calls first (e.g. registers plugins)
    # added to the run's process niceness (POSIX): the run takes all the CPU the app leaves, but the app gets the
    # CPU at once when it needs it (a key press), so the UI stays responsive while training uses every core
    nice: int = 5


# -- the child process ---------------------------------------------------------------------------------------------


class _Outbox:
    """Batches events for the parent: step events and generated text wait up to FLUSH_INTERVAL, others go at once."""

    LAZY = (events.Step, events.GradFlow, events.GenerationChunk)

    def __init__(self, q):
        self.q = q
        self.pending: list[dict[str, Any]] = []
        self.last_flush = time.monotonic()

    def add(self, event: events.Event) -> None:
        self.pending.append(event.to_dict())
        if not isinstance(event, self.LAZY) or time.monotonic() - self.last_flush >= FLUSH_INTERVAL:
            self.flush()

    def due(self) -> bool:
        return bool(self.pending) and time.monotonic() - self.last_flush >= FLUSH_INTERVAL

    def flush(self) -> None:
        if self.pending:
            self.q.put(self.pending)
            self.pending = []
        self.last_flush = time.monotonic()


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


def _child_main(spec: RunSpec, commands, events_q, log_path: str | None) -> None:
    _redirect_output(log_path)
    faulthandler.enable()  # a segfault leaves its traceback in the log for the parent to show
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the app, which stops the run itself
    if spec.nice and hasattr(os, "nice"):
        try:
            os.nice(spec.nice)
        except OSError:
            pass
    out = _Outbox(events_q)
    out.add(events.RunState("starting"))
    try:
        if spec.setup is not None:
            spec.setup()
        trainer = _make_trainer(spec)
    except Exception as e:
        from rnntui.core.errors import UserError

        if isinstance(e, UserError):
            out.add(events.Error(str(e)))
        else:
            out.add(events.Error(f"the run could not start: {e.__class__.__name__}: {e}",
                                 traceback=traceback.format_exc()))
        out.add(events.Done(0, "error", None, 0.0))
        out.add(events.RunState("closed"))
        out.flush()
        return
    _Child(trainer, spec, commands, out).loop()


def _make_trainer(spec: RunSpec):
    from rnntui.core.train import TrainConfig, Trainer, apply_preset

    run_dir = Path(spec.run_dir) if spec.run_dir else None
    if spec.resume:
        budget = TrainConfig(max_steps=spec.max_steps, max_time=spec.max_time, device=spec.device)
        return Trainer(budget, resume=Path(spec.resume))
    if spec.config is not None:
        config = TrainConfig.from_json(spec.config)
    elif spec.args is not None:
        import argparse

        from rnntui.commands.train import config_from_args

        config = config_from_args(argparse.Namespace(**spec.args))
    else:
        config = apply_preset(spec.preset, **spec.overrides)
    return Trainer(config, run_dir)


class _Child:
    def __init__(self, trainer, spec: RunSpec, commands, out: _Outbox):
        self.trainer = trainer
        self.spec = spec
        self.commands = commands
        self.out = out
        self.gen = None  # trainer.run(), created at the first step
        self.state = "paused" if spec.paused else "running"
        self.quit = False
        self.sample_requested = False
        self.generation: tuple[int, Any] | None = None  # (request id, character iterator)
        self.last_checkpoint_step = trainer.step if trainer.resumed_from else None
        self.last_val_loss = trainer.resumed_from[1].get("val_loss") if trainer.resumed_from else None
        self.slow_steps = False
        self.parent = mp.parent_process()
        self.next_parent_check = 0.0
        c = trainer.config
        self.early = {s for s in spec.early_samples if s % c.sample_every and s % c.eval_every and s > trainer.step}
        warnings.showwarning = self._warning

    def _warning(self, message, category, filename, lineno, file=None, line=None) -> None:
        self.out.add(events.Warning(f"{category.__name__}: {message}", self.trainer.step))

    # -- the loop ----------------------------------------------------------------------------------------------

    def loop(self) -> None:
        if self.state == "paused":  # the app shows what it opened before the first step
            self.out.add(self._started())
        self._set_state(self.state)
        while not self.quit:
            self._read_commands()
            if self.quit:
                break
            if self.state == "running":
                if self.out.pending and self.slow_steps:
                    self.out.flush()
                self._advance()
                if self.generation:
                    self._generate(GENERATE_SLICE)
            elif self.generation:
                self._generate(IDLE_GENERATE_SLICE)
            else:
                self.out.flush()
                self._read_commands(timeout=0.25)
            if self.out.due():
                self.out.flush()
            self._check_parent()
        self.out.add(events.RunState("closed", self.trainer.step))
        self.out.flush()

    def _check_parent(self) -> None:
        now = time.monotonic()
        if now < self.next_parent_check:
            return
        self.next_parent_check = now + 1.0
        if self.parent is not None and not self.parent.is_alive():  # the app died: keep the work and go
            self._stop(checkpoint=True)
            self.quit = True

    def _set_state(self, state: str) -> None:
        self.state = state
        self.out.add(events.RunState(state, self.trainer.step))

    def _started(self) -> events.Started:
        t, c = self.trainer, self.trainer.config
        return events.Started(str(t.run_dir), t.step, t.n_params, str(t.device), t.corpus_name, c.cell,
                              len(t.dataset.train), len(t.dataset.val), len(t.vocab), t.streams.per_epoch,
                              c.max_steps, c.max_time, t.resumed_from is not None)

    def _advance(self) -> None:
        """Take the trainer's next event (a step, or what follows one)."""
        if self.gen is None:
            self.gen = self.trainer.run()
        started = time.monotonic()
        try:
            event = next(self.gen)
        except StopIteration:
            self._finish()
            return
        self.slow_steps = time.monotonic() - started > FLUSH_INTERVAL / 2
        self.out.add(event)
        if isinstance(event, events.Step):
            if event.step in self.early:
                self.early.discard(event.step)
                self._early_stage()
            if self.sample_requested:
                self._sample()
        elif isinstance(event, events.Eval):
            self.last_val_loss = event.val_loss
        elif isinstance(event, events.Checkpoint):
            self.last_checkpoint_step = event.step
        elif isinstance(event, events.Sample):
            self.sample_requested = False
        elif isinstance(event, events.Done):
            self._finish()

    def _finish(self) -> None:
        if self.gen is not None:
            self.gen.close()
            self.gen = None
        self.out.flush()
        self._set_state("finished")

    def _early_stage(self) -> None:
        t = self.trainer
        val = t.evaluate()
        if val is not None:
            self.last_val_loss = val
            event = events.Eval(t.step, val, events.bits(val), min(val, t.best_val_loss), t.train_time)
            self.out.add(event)
            self._log(event)
        self._sample()

    def _sample(self) -> None:
        """A sample outside the trainer's schedule (an early stage, or "sample now"), kept in the run's log."""
        self.sample_requested = False
        t = self.trainer
        try:
            text = t.sample(seed=t.config.seed + t.step)
        except Exception as e:
            self.out.add(events.Warning(f"sampling failed: {e.__class__.__name__}: {e}", t.step))
            return
        event = events.Sample(t.step, text, t.train_time, self.last_val_loss, t.config.sample_temperature)
        self.out.add(event)
        self._log(event)

    def _log(self, event: events.Event) -> None:
        """Into the run's log through the trainer's own writer while it runs (one writer keeps lines whole and in
        order); a sample asked for after the run ended goes to samples.jsonl."""
        if self.trainer.log is not None:
            self.trainer.log.write(event)
        else:
            self._append_log(event, samples_only=True)

    def _append_log(self, *logged: events.Event, samples_only: bool = False) -> None:
        import json

        name = "samples.jsonl" if samples_only else "events.jsonl"
        try:
            with open(self.trainer.run_dir / name, "a", encoding="utf-8") as f:
                for event in logged:
                    f.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
        except OSError as e:
            self.out.add(events.Warning(f"could not write the run log: {e}"))

    def _stop(self, checkpoint: bool) -> None:
        if self.state == "finished":
            return
        t = self.trainer
        logged = []
        if self.gen is not None:
            self.gen.close()  # the run's own log closes here; what follows is appended to it
            self.gen = None
            if checkpoint and t.step != self.last_checkpoint_step:
                try:
                    event = t.save_checkpoint()
                    self.last_checkpoint_step = t.step
                    self.out.add(event)
                    logged.append(event)
                except Exception as e:
                    self.out.add(events.Error(f"the final checkpoint failed: {e.__class__.__name__}: {e}", t.step,
                                              traceback.format_exc()))
        best = None if math.isinf(t.best_val_loss) else t.best_val_loss
        done = events.Done(t.step, "stopped", best, t.train_time)
        self.out.add(done)
        if logged:
            self._append_log(*logged, done)
        self._finish()

    # -- commands ----------------------------------------------------------------------------------------------

    def _read_commands(self, timeout: float | None = None) -> None:
        while True:
            try:
                command = self.commands.get(timeout=timeout) if timeout else self.commands.get_nowait()
            except queue.Empty:
                return
            except (EOFError, OSError):  # the parent is gone
                self._stop(checkpoint=True)
                self.quit = True
                return
            timeout = None
            self._apply(*command)

    def _apply(self, name: str, *args: Any) -> None:
        if name == "pause" and self.state == "running":
            self.out.flush()
            self._set_state("paused")
        elif name == "resume" and self.state == "paused":
            self._set_state("running")
        elif name == "stop":
            self._stop(checkpoint=args[0])
        elif name == "quit":
            self._stop(checkpoint=args[0])
            self._cancel_generation()
            self.quit = True
        elif name == "sample_now":
            if self.state == "running":
                self.sample_requested = True  # after the step in progress
            else:
                self._sample()
        elif name == "generate":
            self._start_generation(*args)
        elif name == "cancel":
            if self.generation and (args[0] is None or args[0] == self.generation[0]):
                self._cancel_generation()

    # -- generation --------------------------------------------------------------------------------------------

    def _start_generation(self, request: int, prompt: str, temperature: float, top_k: int | None,
                          top_p: float | None, length: int | None, seed: int | None) -> None:
        from rnntui.core.errors import UserError
        from rnntui.core.sampling import check_sampling, generate, prepare_prime

        self._cancel_generation()
        t = self.trainer
        try:
            check_sampling(temperature, top_k, top_p)
            used, dropped = prepare_prime(t.vocab, prompt, skip_unknown=True)
        except UserError as e:
            self.out.add(events.GenerationDone(request, "error", str(e)))
            return
        chars = generate(t.model, t.vocab, used, length or None, temperature, top_k, top_p, seed)
        self.generation = (request, chars)
        self.out.add(events.GenerationStarted(request, used, "".join(dropped), t.step))

    def _cancel_generation(self) -> None:
        if self.generation:
            request, chars = self.generation
            self.generation = None
            self._close_chars(chars)
            self.out.add(events.GenerationDone(request, "cancelled"))

    def _close_chars(self, chars) -> None:
        model = self.trainer.model
        was_training = model.training
        chars.close()
        model.train(was_training)

    def _generate(self, seconds: float) -> None:
        """Draw characters for about ``seconds`` from the weights as they are now, then give the turn back."""
        request, chars = self.generation
        model = self.trainer.model
        was_training = model.training
        model.eval()
        text, reason, message = [], None, None
        deadline = time.perf_counter() + seconds
        try:
            for i in itertools.count():
                try:
                    text.append(next(chars))
                except StopIteration:
                    reason = "length"
                    break
                if i % 8 == 7 and time.perf_counter() > deadline:
                    break
        except Exception as e:
            reason, message = "error", f"{e.__class__.__name__}: {e}"
        finally:
            model.train(was_training)
        if text:
            self.out.add(events.GenerationChunk(request, "".join(text)))
        if reason:
            self.generation = None
            self.out.add(events.GenerationDone(request, reason, message))


# -- the parent side -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _real_stdio():
    """Textual replaces sys.stdout/sys.stderr with objects that have no file descriptor, and multiprocessing's
    resource tracker passes sys.stderr's descriptor to its process: give it the real streams while starting."""
    saved = sys.stdout, sys.stderr
    try:
        for name in ("stdout", "stderr"):
            try:
                usable = getattr(sys, name).fileno() >= 0
            except (AttributeError, OSError, ValueError):
                usable = False
            if not usable:
                setattr(sys, name, getattr(sys, f"__{name}__") or open(os.devnull, "w"))
        yield
    finally:
        sys.stdout, sys.stderr = saved


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Engine:
    """Runs one ``RunSpec`` in a child process. Every method returns at once; ``poll()`` hands over the events
    that have arrived. Use it as a context manager, or call ``close()``: no child process outlives it."""

    def __init__(self, spec: RunSpec):
        self.spec = spec
        self.process: mp.process.BaseProcess | None = None
        self.state = "new"  # the last RunState reported, or "crashed"
        self.step = 0
        self.run_dir: str | None = None
        self.done: events.Done | None = None
        self.last_checkpoint: str | None = None
        self._requests = itertools.count(1)
        self._inbox: collections.deque[events.Event] = collections.deque()
        self._reader: threading.Thread | None = None
        self._closing = False
        self._crash_reported = False
        self._log_path: str | None = None
        self._close_lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- lifetime ------------------------------------------------------------------------------------------------

    def start(self) -> Engine:
        ctx = mp.get_context("spawn")
        fd, self._log_path = tempfile.mkstemp(prefix="rnntui-run-", suffix=".log")
        os.close(fd)
        with _real_stdio():
            self._commands = ctx.Queue()
            self._events = ctx.Queue()
            self.process = ctx.Process(target=_child_main, name="rnntui-run", daemon=True,
                                       args=(self.spec, self._commands, self._events, self._log_path))
            self.process.start()
        self.state = "starting"
        self._reader = threading.Thread(target=self._read, name="rnntui-engine-reader", daemon=True)
        self._reader.start()
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    @property
    def training(self) -> bool:
        """True while the run has steps left to take (running or paused)."""
        return self.alive and self.state in ("starting", "running", "paused")

    def close(self, checkpoint: bool = False, timeout: float = 10.0) -> None:
        """Stop the run (saving a final checkpoint if asked), then end the process: politely, then by force."""
        with self._close_lock:
            self._close(checkpoint, timeout)

    def _close(self, checkpoint: bool, timeout: float) -> None:
        if self.process is None or self._closed:
            return
        self._closing = True
        if self.process.is_alive():
            self._send("quit", checkpoint)
            self.process.join(timeout if checkpoint else min(timeout, 3.0))
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(2.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(2.0)
        if self._reader is not None:
            self._reader.join(1.0)
        for q in (self._commands, self._events):
            q.cancel_join_thread()
            q.close()
        if self._log_path:
            try:
                os.unlink(self._log_path)
            except OSError:
                pass
        self._closed = True
        if self.state not in ("crashed",):
            self.state = "closed"

    # -- commands (each acts at the run's next step) -----------------------------------------------------------

    def _send(self, *command: Any) -> None:
        if self.process is not None and self.process.is_alive():
            try:
                self._commands.put(command)
            except (ValueError, OSError):  # the queue is closed
                pass

    def pause(self) -> None:
        self._send("pause")

    def resume(self) -> None:
        self._send("resume")

    def stop(self, checkpoint: bool = True) -> None:
        self._send("stop", checkpoint)

    def sample_now(self) -> None:
        self._send("sample_now")

    def generate(self, prompt: str, temperature: float = 0.8, top_k: int | None = None, top_p: float | None = None,
                 length: int | None = 500, seed: int | None = None) -> int:
        """Stream a continuation of ``prompt``; returns the request id its Generation* events carry."""
        request = next(self._requests)
        self._send("generate", request, prompt, temperature, top_k, top_p, length, seed)
        return request

    def cancel_generate(self, request: int | None = None) -> None:
        self._send("cancel", request)

    # -- events ------------------------------------------------------------------------------------------------

    def _read(self) -> None:
        """Reader thread: moves event batches from the pipe to the inbox, so poll() never blocks on the pipe."""
        while True:
            try:
                batch = self._events.get(timeout=0.1)
            except queue.Empty:
                if self.process is None or not self.process.is_alive():
                    try:  # what the child sent just before it ended
                        batch = self._events.get(timeout=0.2)
                    except (queue.Empty, EOFError, OSError, ValueError):
                        break
                else:
                    continue
            except (EOFError, OSError, ValueError):
                break
            for data in batch:
                try:
                    self._inbox.append(events.from_dict(data))
                except (KeyError, TypeError):
                    continue

    def poll(self, limit: int | None = None) -> list[events.Event]:
        """The events that arrived since the last call (at most ``limit``), oldest first. Never blocks. When the
        process has died without finishing, an Error (with the tail of its output) and a Done are made up here."""
        out: list[events.Event] = []
        while self._inbox and (limit is None or len(out) < limit):
            event = self._inbox.popleft()
            self._observe(event)
            out.append(event)
        if (not out and not self._inbox and self.process is not None and not self._closing
                and not self._crash_reported and not self.process.is_alive()
                and (self._reader is None or not self._reader.is_alive())):
            out.extend(self._crashed())
        return out

    def _observe(self, event: events.Event) -> None:
        if isinstance(event, events.RunState):
            self.state = event.state
            self.step = max(self.step, event.step)
        elif isinstance(event, events.Step):
            self.step = event.step
        elif isinstance(event, events.Started):
            self.run_dir = event.run_dir
            self.step = event.step
        elif isinstance(event, events.Checkpoint):
            self.last_checkpoint = event.path
        elif isinstance(event, events.Done):
            self.done = event

    def _crashed(self) -> list[events.Event]:
        self._crash_reported = True
        code = self.process.exitcode
        if self.state == "closed" and code == 0:
            return []
        was = self.state
        self.state = "crashed"
        message = f"the run's process stopped unexpectedly ({_describe_exit(code)})"
        if self.done is not None or was == "finished":
            message += "; the run was over, but prompts can no longer be answered"
        elif self.last_checkpoint:
            message += f"; the last good checkpoint ({Path(self.last_checkpoint).name}) is kept"
        tail = self._log_tail()
        found: list[events.Event] = [events.Error(message, self.step, tail or None)]
        if self.done is None:
            self.done = events.Done(self.step, "error", None, 0.0)
            found.append(self.done)
        return found

    def _log_tail(self, limit: int = 4000) -> str:
        try:
            with open(self._log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - limit))
                return f.read().decode("utf-8", "replace").strip()
        except (OSError, TypeError):
            return ""
