"""The app's side of a run: starts the run's process, sends it commands and hands over the events it reports.

    engine = Engine(RunSpec(config=apply_preset("default", corpus="input.txt").to_json()))
    engine.start()
    for event in engine.poll():   # never blocks
        ...
    request = engine.generate("ROMEO:", temperature=0.7)
    engine.close(checkpoint=True)  # stops the run, waits for the process, never leaves it behind

Whatever happens in the child (a bad configuration, a plugin cell that raises, NaN, a segfault, a kill), the parent
gets an ``Error`` event and a ``Done`` event and never blocks. This module imports neither Textual nor torch.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import multiprocessing as mp
import os
import queue
import signal
import sys
import tempfile
import threading
from pathlib import Path

from rnntui import events
from rnntui.engine.child import child_main
from rnntui.engine.protocol import Cancel, Command, Generate, Pause, Quit, Resume, RunSpec, SampleNow, Stop


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
            self.process = ctx.Process(target=child_main, name="rnntui-run", daemon=True,
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
            self._send(Quit(checkpoint))
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

    def _send(self, command: Command) -> None:
        if self.process is not None and self.process.is_alive():
            try:
                self._commands.put(command)
            except (ValueError, OSError):  # the queue is closed
                pass

    def pause(self) -> None:
        self._send(Pause())

    def resume(self) -> None:
        self._send(Resume())

    def stop(self, checkpoint: bool = True) -> None:
        self._send(Stop(checkpoint))

    def sample_now(self) -> None:
        self._send(SampleNow())

    def generate(self, prompt: str, temperature: float = 0.8, top_k: int | None = None, top_p: float | None = None,
                 length: int | None = 500, seed: int | None = None) -> int:
        """Stream a continuation of ``prompt``; returns the request id its Generation* events carry."""
        request = next(self._requests)
        self._send(Generate(request, prompt, temperature, top_k, top_p, length, seed))
        return request

    def cancel_generate(self, request: int | None = None) -> None:
        self._send(Cancel(request))

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
