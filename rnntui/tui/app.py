"""The rnntui app: a live training playground. Loss curves, stage-by-stage samples, a prompt box and a status bar,
fed by a run in its own process (rnntui.engine) and pulled on a timer, so the UI never waits for the run."""

from __future__ import annotations

import ast
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
from rnntui.core.config import budget_spent
from rnntui.core.runs import checkpoint_budget
from rnntui.engine import Engine, RunSpec, inventory
from rnntui.tui.history import LossHistory
from rnntui.tui.live_run import LiveRun
from rnntui.tui.screens.dialogs import QuitScreen, ResumeScreen
from rnntui.tui.screens.help import HelpScreen
from rnntui.tui.screens.new_run import NewRunScreen
from rnntui.tui.screens.plugins import PluginsScreen
from rnntui.tui.screens.runs import RunsScreen
from rnntui.tui.widgets.loss import LossPane
from rnntui.tui.widgets.prompt import PromptArea, PromptPane
from rnntui.tui.widgets.samples import SamplesPane
from rnntui.tui.widgets.status import ErrorPanel, StatusBar

SMOOTHING_STEP = 0.05


class RnnApp(LiveRun, App):
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

    PREFETCH_INVENTORY = True  # build the plugin inventory in the background at start (the tests turn it off)

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
        if self.PREFETCH_INVENTORY and inventory.cached() is None:  # so New run and Plugins open at once later
            self.run_worker(inventory.load, thread=True, group="inventory", exit_on_error=False,
                            description="listing plugins, cells and corpora")
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
        if state in ("finished", "stopped") or (budget and budget_spent(
                budget.get("max_steps"), budget.get("max_time"), budget.get("step", 0), budget.get("train_time", 0.0))):
            self._ask_budget_and_resume()
            return
        self.engine.resume()

    def _ask_budget_and_resume(self) -> None:
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
        def chosen(config: dict | None) -> None:
            if config is not None:
                self.start_run(RunSpec(config=config))

        self.push_screen(NewRunScreen(), chosen)

    def action_runs(self) -> None:
        self.push_screen(RunsScreen())

    def action_plugins(self) -> None:
        self.push_screen(PluginsScreen())

    def action_help(self) -> None:
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

