"""The rnntui app: a live training playground. Loss curves, stage-by-stage samples, a prompt box and a status bar,
fed by a run in its own process (rnntui.engine) and pulled on a timer, so the UI never waits for the run."""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Iterable
from functools import partial
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container
from textual.screen import Screen
from textual.widgets import Footer, Input, TextArea

from rnntui import events
from rnntui.engine import Engine, RunSpec
from rnntui.tui.history import LossHistory, checkpoint_budget, load_run
from rnntui.tui.widgets.loss import LossPane
from rnntui.tui.widgets.prompt import PromptArea, PromptPane
from rnntui.tui.widgets.samples import SamplesPane
from rnntui.tui.widgets.status import ErrorPanel, StatusBar

SMOOTHING_STEP = 0.05


class RnnApp(App):
    """Train a character-level model and watch it learn."""

    CSS_PATH = "app.tcss"
    TITLE = "rnntui"
    AUTO_FOCUS = None  # nothing focused at first: the footer shows the app's keys (Tab reaches the panes)
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (34, "-tall")]

    BINDINGS = [
        Binding("q", "quit", "Quit", tooltip="Quit; asks first while a run is training"),
        Binding("question_mark", "help", "Help", key_display="?", tooltip="What each pane shows, and the keys"),
        Binding("space", "pause", "Pause", tooltip="Pause training (at the next step)"),
        Binding("space", "resume", "Resume", tooltip="Resume training"),
        Binding("space", "start", "Start", tooltip="Start the run given on the command line"),
        Binding("s", "sample_now", "Sample now", tooltip="Write a sample at the next step"),
        Binding("x", "stop", "Stop", tooltip="Stop the run, keeping a final checkpoint"),
        Binding("n", "new_run", "New run", tooltip="Choose corpus, cell and hyperparameters, and start"),
        Binding("o", "runs", "Runs", tooltip="Past runs: open, resume, compare, delete"),
        Binding("p", "plugins", "Plugins", tooltip="Loaded plugins and their failures"),
        Binding("i", "focus_prompt", "Prompt", tooltip="Type a prompt for the model to continue"),
        Binding("escape", "escape", "Stop generating", tooltip="Stop the continuation being written"),
        Binding("ctrl+up", "temperature(1)", "Temp +", key_display="^↑", tooltip="Sampling temperature up"),
        Binding("ctrl+down", "temperature(-1)", "Temp −", key_display="^↓", tooltip="Sampling temperature down"),
        Binding("l", "toggle_log", "Log y", tooltip="Logarithmic loss axis"),
        Binding("b", "toggle_bits", "Bits/nats", tooltip="Loss in bits or nats per character"),
        Binding("t", "toggle_x", "Step/time", tooltip="Loss against step or training time"),
        Binding("left_square_bracket", "smoothing(-1)", "Smooth −", key_display="[", tooltip="Less smoothing"),
        Binding("right_square_bracket", "smoothing(1)", "Smooth +", key_display="]", tooltip="More smoothing"),
        Binding("y", "toggle_outliers", "Y range", tooltip="Let the y range include the first steps' outliers"),
        Binding("f", "follow", "Follow", tooltip="Fit the plot to the data again after zooming"),
        Binding("c", "clear_overlays", "Clear compare", tooltip="Remove the earlier runs overlaid on the plot"),
        Binding("e", "toggle_error", "Error", tooltip="Show or hide the last error"),
    ]

    def __init__(self, spec: RunSpec | None = None, *, start: bool = True, open_run: str | Path | None = None,
                 poll_interval: float = 0.05, draw_interval: float = 0.25):
        super().__init__()
        self.spec = spec
        self.autostart = start
        self.open_path = Path(open_run) if open_run else None
        self.poll_interval = poll_interval
        self.draw_interval = draw_interval
        self.engine: Engine | None = None
        self.retired: list[Engine] = []  # engines being closed in the background
        self.pending_spec: RunSpec | None = None  # a run to start with `space` (rnntui --no-start)
        self.run_dir: Path | None = None
        self.opened_budget: dict | None = None  # the checkpoint budget of a run opened paused
        self.history = LossHistory()
        self.overlays: dict[str, LossHistory] = {}
        self.last_error: events.Error | None = None
        self.samples_seen = 0
        self.steps_seen = 0
        self.quitting = False
        self._ticks = 0

    # -- layout --------------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield ErrorPanel(id="error-panel")
        with Container(id="panes"):
            yield LossPane(id="loss")
            yield SamplesPane(id="samples")
            yield PromptPane(id="prompt")
        yield Footer()

    def on_mount(self) -> None:
        # the panes live as long as the app: keep them at hand (a query would fail while the app shuts down)
        self.status = self.query_one("#status", StatusBar)
        self.loss_pane = self.query_one("#loss", LossPane)
        self.samples_pane = self.query_one("#samples", SamplesPane)
        self.prompt_pane = self.query_one("#prompt", PromptPane)
        self.query_one("#error-panel").display = False
        self.set_interval(self.poll_interval, self._pump, name="pump")
        self.set_interval(self.draw_interval, self._draw, name="draw")
        self.loss_pane.set_history(self.history)
        if self.open_path is not None:
            self.open_run(self.open_path)
        elif self.spec is not None and self.autostart:
            self.start_run(self.spec)
        elif self.spec is not None:
            self.pending_spec = self.spec
            self.status.state = "idle"
            self.status.pending = True
            self.notify("Press space to start training, or n to choose another run.", title="Ready")
        self.status.refresh_status(force=True)

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
                elif isinstance(event, events.Warning):
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

    # -- actions -------------------------------------------------------------------------------------------------

    # on the other screens, only these of the app's actions are offered (the rest act on the main view)
    EVERYWHERE = {"quit", "help", "pause", "resume", "start", "command_palette"}

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action not in self.EVERYWHERE and self.screen_stack and self.screen is not self.screen_stack[0]:
            return False
        engine = self.engine
        state = self.status.state
        live = engine is not None and engine.alive
        if action == "pause":
            return live and state == "running"
        if action == "resume":
            return live and state in ("paused", "opened", "finished", "stopped")
        if action == "start":
            return self.pending_spec is not None and not (live and state in ("running", "paused", "starting"))
        if action in ("sample_now",):
            return True if live and state in ("running", "paused", "opened", "finished", "stopped") else None
        if action == "stop":
            return True if live and state in ("running", "paused", "starting") else None
        if action == "toggle_error":
            return True if self.last_error is not None else None
        if action == "clear_overlays":
            return True if self.overlays else None
        return True

    def action_pause(self) -> None:
        if self.engine is not None:
            self.engine.pause()

    def action_resume(self) -> None:
        if self.engine is None:
            return
        state = self.status.state
        budget = self.opened_budget if state == "opened" else None
        if state in ("finished", "stopped") or (budget and _budget_spent(budget)):
            self._ask_budget_and_resume()
            return
        self.engine.resume()

    def _ask_budget_and_resume(self) -> None:
        from rnntui.tui.screens.dialogs import ResumeScreen

        if self.run_dir is None:
            return
        path = self.run_dir

        def chosen(budget) -> None:
            if budget is not None:
                self.resume_run(path, *budget)

        self.push_screen(ResumeScreen(path, checkpoint_budget(path)), chosen)

    def action_start(self) -> None:
        if self.pending_spec is not None:
            self.start_run(self.pending_spec)

    def action_sample_now(self) -> None:
        if self.engine is not None:
            self.engine.sample_now()
            self.notify("A sample is written at the next step.", timeout=2)

    def action_stop(self) -> None:
        if self.engine is not None and self.engine.training:
            self.engine.stop(checkpoint=True)
            self.notify("Stopping at the next step, with a final checkpoint.", timeout=3)

    def action_new_run(self) -> None:
        from rnntui.tui.screens.new_run import NewRunScreen

        def chosen(config: dict | None) -> None:
            if config is not None:
                self.start_run(RunSpec(config=config))

        self.push_screen(NewRunScreen(), chosen)

    def action_runs(self) -> None:
        from rnntui.tui.screens.runs import RunsScreen

        self.push_screen(RunsScreen())

    def action_plugins(self) -> None:
        from rnntui.tui.screens.plugins import PluginsScreen

        self.push_screen(PluginsScreen())

    def action_help(self) -> None:
        from rnntui.tui.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def action_focus_prompt(self) -> None:
        # at once (Widget.focus waits for the next turn): keys typed right after `i` must reach the prompt
        self.screen.set_focus(self.query_one(PromptArea))

    def action_escape(self) -> None:
        pane = self.prompt_pane
        if pane.generating and pane.request is not None:
            if self.engine is not None:
                self.engine.cancel_generate(pane.request)
            pane.finish("cancelled")
            return
        error_panel = self.query_one("#error-panel")
        if error_panel.display:
            error_panel.display = False
            return
        if isinstance(self.focused, (TextArea, Input)):
            self.set_focus(None)

    def action_temperature(self, direction: int) -> None:
        value = self.prompt_pane.bump_temperature(direction)
        self.notify(f"temperature {value:g}", timeout=1.5)

    def action_toggle_log(self) -> None:
        self.loss_pane.log_y = not self.loss_pane.log_y

    def action_toggle_bits(self) -> None:
        bits = not self.loss_pane.bits
        self.loss_pane.bits = bits
        self.samples_pane.set_bits(bits)
        self.status.bits = bits
        self.status.refresh_status(force=True)

    def action_toggle_x(self) -> None:
        self.loss_pane.x_axis = "time" if self.loss_pane.x_axis == "step" else "step"

    def action_smoothing(self, direction: int) -> None:
        value = round(min(max(self.loss_pane.smoothing + direction * SMOOTHING_STEP, 0.0), 0.99), 2)
        self.loss_pane.smoothing = value
        self.status.loss = self.history.latest()[0]
        self.status.refresh_status(force=True)

    def action_toggle_outliers(self) -> None:
        self.loss_pane.skip_outliers = not self.loss_pane.skip_outliers

    def action_follow(self) -> None:
        self.loss_pane.follow_data()

    def action_clear_overlays(self) -> None:
        self.overlays.clear()
        self.loss_pane.set_overlays({})

    def action_toggle_error(self) -> None:
        panel = self.query_one("#error-panel", ErrorPanel)
        if panel.display:
            panel.display = False
        elif self.last_error is not None:
            answers = self.engine is not None and self.engine.alive and self.engine.state != "closed"
            panel.show_error(self.last_error.message, self.last_error.traceback, answers)

    @on(PromptPane.Generate)
    def _generate(self, message: PromptPane.Generate) -> None:
        engine = self.engine
        if engine is None or not engine.alive:
            self.notify("There is no model to continue the prompt: start a run (n) or open one (o).",
                        severity="warning")
            return
        request = engine.generate(message.prompt, message.temperature, message.top_k, message.top_p,
                                  message.length)
        self.prompt_pane.begin(request)

    # -- quitting ------------------------------------------------------------------------------------------------

    async def action_quit(self) -> None:
        if self.quitting:
            return
        if self.engine is not None and self.engine.training and self.status.state not in ("opened",):
            from rnntui.tui.screens.dialogs import QuitScreen

            def chosen(choice: str | None) -> None:
                if choice is not None:
                    self._quit(checkpoint=choice == "checkpoint")

            self.push_screen(QuitScreen(), chosen)
            return
        self._quit(checkpoint=False)

    def _quit(self, checkpoint: bool) -> None:
        self.quitting = True
        self._close_and_exit(checkpoint)

    @work(thread=True, exclusive=True, group="quit", exit_on_error=False)
    def _close_and_exit(self, checkpoint: bool) -> None:
        self.call_from_thread(self.notify, "Stopping the run…" if checkpoint else "Closing…", timeout=10)
        self.shutdown_engines(checkpoint)
        self.call_from_thread(self.exit)

    def shutdown_engines(self, checkpoint: bool = False) -> None:
        """Close every run process this app started (blocking); none is left behind."""
        if self.engine is not None:
            self.engine.close(checkpoint=checkpoint and self.engine.training)
        for engine in self.retired:
            engine.close()

    def on_unmount(self) -> None:
        self.shutdown_engines()

    # -- command palette -----------------------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's commands (themes, keys, screenshot, quit), then every action of the screen shown and of the
        app that can run now, under its footer description."""
        yield from super().get_system_commands(screen)
        seen = {"quit"}
        owners = [(self, self.BINDINGS)]
        if screen is not self.screen_stack[0]:
            owners.insert(0, (screen, getattr(screen, "BINDINGS", [])))
        for owner, bindings in owners:
            for binding in bindings:
                if not isinstance(binding, Binding) or binding.action in seen or not binding.description:
                    continue
                seen.add(binding.action)
                name, _, args = binding.action.partition("(")
                params = ast.literal_eval(f"({args[:-1]},)") if args[:-1] else ()
                if owner.check_action(name, params) is not True:
                    continue
                yield SystemCommand(binding.description, binding.tooltip or binding.description,
                                    partial(owner.run_action, binding.action))


def _budget_spent(budget: dict) -> bool:
    steps, time_ = budget.get("max_steps"), budget.get("max_time")
    if steps is not None and budget.get("step", 0) >= steps:
        return True
    return time_ is not None and budget.get("train_time", 0.0) >= time_ - 1e-9 and not math.isinf(time_)
