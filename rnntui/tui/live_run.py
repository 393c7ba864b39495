"""The part of the app that runs: starting a run, opening or resuming a past one, and applying the events a run
reports to the panes. A mixin of RnnApp (rnntui.tui.app), which owns the panes and the engine."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import partial
from pathlib import Path

from rnntui import events
from rnntui.core.runs import checkpoint_budget
from rnntui.engine import Engine, RunSpec
from rnntui.tui.history import LossHistory, load_run
from rnntui.tui.widgets.status import ErrorPanel


class LiveRun:
    """Runs and their events; expects the attributes RnnApp.__init__ and on_mount set."""

    # -- runs ----------------------------------------------------------------------------------------------------

    def _retire_engine(self, checkpoint: bool = True, reuse: Path | None = None) -> None:
        """Stop the current run's process (with a final checkpoint if it was training) in the background; at
        once when its run directory is about to be ``reuse``d, so the two processes never share it."""
        old, self.engine = self.engine, None
        if old is None:
            return
        keep = checkpoint and old.training and self.status.state not in ("opened",)
        if keep:
            self.notify(f"{Path(old.run_dir or '').name or 'The previous run'} stopped with a final checkpoint.",
                        timeout=4)
        if reuse is not None and old.run_dir is not None and Path(old.run_dir) == Path(reuse):
            old.close(checkpoint=keep)
            return
        self.retired.append(old)
        self.run_worker(partial(old.close, checkpoint=keep), thread=True, group="close",
                        description="stopping the previous run", exit_on_error=False)

    def _reset_view(self) -> None:
        self.history = LossHistory(self.loss_pane.smoothing)
        self.loss_pane.set_history(self.history)
        self.samples_pane.clear()
        self.status.clear()
        self.status.bits = self.loss_pane.bits
        self.query_one("#error-panel").display = False
        self.last_error = None
        self.run_dir = None
        self.opened_budget = None
        self.steps_seen = 0
        self.samples_seen = 0
        if self.prompt_pane.generating:
            self.prompt_pane.finish("cancelled")

    def start_run(self, spec: RunSpec) -> None:
        """Start a run (the current one, if training, is stopped with a final checkpoint)."""
        self._retire_engine()
        self._reset_view()
        self.pending_spec = None
        self.engine = Engine(spec).start()
        self.status.state = "starting"
        self.status.dirty = True
        self.refresh_bindings()

    def _show_run(self, path: Path) -> Path:
        """Replace the view with a past run's curves and samples, read from its logs."""
        path = Path(path)
        self._retire_engine(reuse=path)
        record = load_run(path, self.loss_pane.smoothing)
        self._reset_view()
        self.pending_spec = None
        self.history = record.history
        self.loss_pane.set_history(self.history)
        self.samples_pane.add_samples(record.samples)
        self.samples_seen = len(record.samples)
        self.run_dir = path
        return path

    def open_run(self, path: Path) -> None:
        """Show a past run (curves and samples from its logs) and load it paused: the prompt answers from its
        last checkpoint, and `space` resumes it exactly."""
        path = self._show_run(path)
        self.opened_budget = checkpoint_budget(path)
        if not self.opened_budget:
            self.status.state = "idle"
            self.notify(f"{path.name} has no checkpoint yet: there is nothing to resume or to generate from.",
                        severity="warning")
            return
        self.engine = Engine(RunSpec(resume=str(path), paused=True)).start()
        self.status.state = "starting"
        self.status.dirty = True
        self.refresh_bindings()

    def resume_run(self, path: Path, max_steps: int | None = None, max_time: float | None = None) -> None:
        """Continue a run exactly where its last checkpoint left off, up to the given budget (total steps/time)."""
        path = self._show_run(path)
        self.engine = Engine(RunSpec(resume=str(path), max_steps=max_steps, max_time=max_time)).start()
        self.status.state = "starting"
        self.status.dirty = True
        self.refresh_bindings()

    def toggle_overlay(self, path: Path) -> bool:
        """Overlay (or remove) a past run's curves on the loss plot; returns whether it is now overlaid."""
        name = Path(path).name
        if name in self.overlays:
            del self.overlays[name]
            shown = False
        else:
            self.overlays[name] = load_run(Path(path), self.loss_pane.smoothing).history
            shown = True
        self.loss_pane.set_overlays(dict(self.overlays))
        return shown

    # -- events from the run -------------------------------------------------------------------------------------

    def _pump(self) -> None:
        if self.engine is None:
            return
        found = self.engine.poll(limit=50_000)
        if found:
            self.feed(found)

    def feed(self, found: Iterable[events.Event]) -> None:
        """Apply events (from the engine, or recorded ones in tests) to the panes."""
        samples: list[events.Sample] = []
        status = self.status
        with self.batch_update():
            for event in found:
                if isinstance(event, events.Step):
                    self.history.add_step(event.step, event.elapsed, event.loss)
                    status.add_step(event)
                    self.steps_seen += 1
                elif isinstance(event, events.Eval):
                    self.history.add_eval(event.step, event.elapsed, event.val_loss)
                    status.val, status.best = event.val_loss, event.best_val_loss
                elif isinstance(event, events.Sample):
                    samples.append(event)
                elif isinstance(event, events.GradFlow):
                    status.grad_flow = event.norms
                elif isinstance(event, (events.GenerationStarted, events.GenerationChunk, events.GenerationDone)):
                    self._generation_event(event)
                elif isinstance(event, events.Started):
                    self._started(event)
                elif isinstance(event, events.RunState):
                    self._run_state(event)
                elif isinstance(event, events.Done):
                    self._done(event)
                elif isinstance(event, events.Error):
                    self._error(event)
                elif isinstance(event, events.RunWarning):
                    self.notify(event.message, title="Warning", severity="warning", timeout=8)
                status.dirty = True
            if samples:
                self.samples_seen += len(samples)
                self.samples_pane.add_samples(samples)
            status.loss = self.history.latest()[0]

    def _started(self, event: events.Started) -> None:
        self.run_dir = Path(event.run_dir)
        shape = ""
        try:
            config = json.loads((self.run_dir / "config.json").read_text())["config"]
            shape = f"{config['n_layer']}×{config['n_hidden']}"
        except (OSError, ValueError, KeyError, TypeError):
            pass
        self.status.set_started(event, shape)
        self.sub_title = self.run_dir.name

    def _run_state(self, event: events.RunState) -> None:
        state = event.state
        if state == "paused" and self.opened_budget is not None and self.steps_seen == 0:
            state = "opened"
        if state in ("closed",) and self.status.state in ("finished", "stopped", "error", "crashed"):
            return
        if state == "finished" and self.status.state in ("stopped", "error", "crashed"):
            return
        self.status.state = state
        self.refresh_bindings()

    def _done(self, event: events.Done) -> None:
        if event.reason == "error":
            self.status.state = "error" if self.status.state != "crashed" else "crashed"
        else:
            self.status.state = "stopped" if event.reason == "stopped" else "finished"
            best = f"; best validation loss {event.best_val_loss:.3f}" if event.best_val_loss is not None else ""
            self.notify(f"{event.reason.replace('_', ' ')} at step {event.step:,}{best}. The prompt still answers.",
                        title="Run over")
        self.refresh_bindings()

    def _error(self, event: events.Error) -> None:
        self.last_error = event
        if self.engine is not None and self.engine.state == "crashed":
            self.status.state = "crashed"
        else:
            self.status.state = "error"
        answers = self.engine is not None and self.engine.alive and self.engine.state != "closed"
        self.query_one("#error-panel", ErrorPanel).show_error(event.message, event.traceback, answers)
        if self.prompt_pane.generating and self.engine is not None and not self.engine.alive:
            self.prompt_pane.finish("error", "the run's process is gone")
        self.refresh_bindings()

    def _generation_event(self, event) -> None:
        pane = self.prompt_pane
        if event.request != pane.request:
            return
        if isinstance(event, events.GenerationStarted):
            pane.started(event.prompt, event.dropped)
            if event.dropped:
                self.notify(f"Dropped characters the model never saw: {event.dropped!r}", severity="warning",
                            title="Unknown characters")
        elif isinstance(event, events.GenerationChunk):
            pane.add_text(event.text)
        else:
            pane.finish(event.reason, event.message)
            if event.reason == "error" and event.message:
                self.notify(event.message, severity="error", title="Generation failed")

    def _draw(self) -> None:
        """The timer's redraw: the status every tick, the plot every other (what a user does redraws at once)."""
        if not self.status.is_attached:
            return
        if self.screen is not self.screen_stack[0] and not self.screen.is_modal:
            return  # another full screen covers the panes
        self._ticks += 1
        if self._ticks % 2 == 0:
            self.loss_pane.redraw()
        self.status.refresh_status()
