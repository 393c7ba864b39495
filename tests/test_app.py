"""Pilot tests of the app's main flows, each against a real run in its own process (small models, small texts)."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
from pathlib import Path

import pytest
from textual.widgets import Input, Select

from rnntui import events
from rnntui.engine import RunSpec
from rnntui.tui.app import RnnApp
from rnntui.tui.screens.dialogs import ConfirmScreen, QuitScreen, ResumeScreen
from rnntui.tui.screens.help import HelpScreen
from rnntui.tui.screens.new_run import NewRunScreen
from rnntui.tui.screens.plugins import PluginsScreen
from rnntui.tui.screens.runs import RunsScreen
from rnntui.tui.widgets.samples import KEEP_FIRST, MAX_SHOWN, SampleEntry

from conftest import TINY, tiny_config, wait_for


def spec_for(corpus, **overrides) -> RunSpec:
    return RunSpec(config=tiny_config(corpus, **overrides).to_json())


CRASHING_PLUGIN = '''
import torch
from torch import nn
from rnntui import hookimpl
from rnntui.core.cells import Cell


class Exploding(Cell):
    """A tanh cell that passes its registration check, then raises in training (batch size 3)."""

    name = "exploding"

    def __init__(self, input_size, hidden_size, **options):
        super().__init__(input_size, hidden_size, **options)
        self.lin = nn.Linear(input_size + hidden_size, hidden_size)

    def step(self, x_t, state):
        if x_t.shape[0] == 3:
            raise RuntimeError("the exploding cell exploded")
        h = torch.tanh(self.lin(torch.cat([x_t, state[0]], -1)))
        return h, (h,)


@hookimpl
def register_cells(register):
    register(Exploding)
'''

BROKEN_PLUGIN = "import this_module_does_not_exist\n"


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A plugin directory (as --plugins-dir gives) seen by the app and by the run's process."""
    from rnntui.plugins import ENV_DIR_ARGS, reset_registry

    directory = tmp_path / "plugins"
    directory.mkdir()
    (directory / "crashing.py").write_text(CRASHING_PLUGIN)
    (directory / "broken.py").write_text(BROKEN_PLUGIN)
    monkeypatch.setenv(ENV_DIR_ARGS, str(directory))
    reset_registry()
    yield directory
    reset_registry()


async def wait_until(pilot, predicate, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def wait_exit(app: RnnApp, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while app.is_running and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def no_children_left() -> bool:
    return wait_for(lambda: not mp.active_children(), timeout=10, what="the run's processes to end")


def train_past_run(corpus: Path, steps: int = 20) -> Path:
    from rnntui.core.config import apply_preset
    from rnntui.run import build_trainer

    trainer = build_trainer(apply_preset("default", corpus=str(corpus), max_steps=steps, **TINY))
    for _ in trainer.run():
        pass
    trainer.close()
    return trainer.run_dir


async def test_first_run_trains_samples_answers_a_prompt_pauses_and_quits(small_text):
    app = RnnApp(spec_for(small_text))
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: app.samples_pane.count >= 1, "a first sample")
        entry = app.query(SampleEntry).first()
        assert entry.sample.step == 10 and "val" in str(entry.query_one(".sample-header").render())
        first = app.status.last.step
        await wait_until(pilot, lambda: app.status.last.step > first + 3, "the step count to rise")
        assert app.status.state == "running" and "training" in str(app.status.render_status())
        await wait_until(pilot, lambda: app.status.grad_flow, "the gradient norms by layer")
        assert list(app.status.grad_flow) == ["embedding", "layer 1", "head"]
        assert "‖g‖ by layer, embedding→head " in str(app.status.render_status())
        assert len(app.history.train) >= first + 3

        # the prompt: Enter streams a continuation from the current weights, while training goes on
        await pilot.press("i")
        await pilot.press(*"the ")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.prompt_pane.shown_chars >= 30, "a streamed continuation")
        assert app.prompt_pane.prompt_used == "the "
        await pilot.press("escape")  # stops generating
        assert not app.prompt_pane.generating
        await pilot.press("escape")  # leaves the prompt

        # pause and resume act at the next step
        await pilot.press("space")
        await wait_until(pilot, lambda: app.status.state == "paused", "paused")
        paused_at = app.status.last.step
        await pilot.pause(1.0)
        assert app.status.last.step == paused_at
        await pilot.press("space")
        await wait_until(pilot, lambda: app.status.last.step > paused_at, "training to resume")

        # quitting while training asks; keeping a checkpoint writes one
        run_dir = app.run_dir
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, QuitScreen), "the quit dialog")
        await pilot.press("k")
        await wait_exit(app)
    assert not app.is_running
    assert list((run_dir / "checkpoints").glob("step-*.json")), "the final checkpoint"
    assert no_children_left()


async def test_new_run_with_a_plugin_cell_on_a_synthetic_corpus_and_a_refused_value():
    app = RnnApp()
    async with app.run_test(size=(120, 44)) as pilot:
        await pilot.press("n")
        screen = app.screen
        assert isinstance(screen, NewRunScreen)
        await wait_until(pilot, lambda: screen.inventory is not None and screen.query_one("#form").display,
                         "cells and corpora to load")
        listed = screen.inventory
        bundled = [row["name"] for row in listed.cells if row["source"] != "built-in"]
        assert bundled, "the gallery's cells are offered"
        cell = "mgu" if "mgu" in bundled else bundled[0]
        assert listed.corpus("hello") is not None
        synthetic = "hello"
        screen.query_one("#corpus", Select).value = synthetic
        screen.query_one("#cell", Select).value = cell
        await pilot.pause()
        assert str(screen.query_one("#corpus-details").render()).strip(), "the corpus is described"
        assert str(screen.query_one("#cell-details").render()).strip(), "the cell's docstring is shown"
        for field, value in {"layers": "1", "hidden": "0", "seq-len": "16", "batch": "8", "max-steps": "30",
                             "max-time": ""}.items():
            screen.query_one(f"#{field}", Input).value = value
        await pilot.press("ctrl+s")
        error = str(screen.query_one("#form-error").render())
        assert "hidden" in error and "positive" in error, error
        assert app.screen is screen, "an invalid value keeps the form open"
        screen.query_one("#lr", Input).value = "fast"
        screen.query_one("#hidden", Input).value = "32"
        await pilot.press("ctrl+s")
        assert "learning rate" in str(screen.query_one("#form-error").render())
        screen.query_one("#lr", Input).value = "0.003"
        await pilot.press("ctrl+s")
        assert app.screen is not screen
        await wait_until(pilot, lambda: app.status.last is not None and app.status.last.step >= 3, "training")
        started = app.status.started
        assert (started.cell, started.corpus) == (cell, synthetic) and started.max_steps == 30
        assert app.status.shape == "1×32"


async def test_open_compare_resume_and_delete_past_runs(small_text):
    opened = train_past_run(small_text, steps=20)
    other = train_past_run(small_text, steps=20)
    app = RnnApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("o")
        runs = app.screen
        assert isinstance(runs, RunsScreen) and set(runs.paths) == {opened, other}

        # compare: the other run is overlaid on the loss plot
        runs.query_one("DataTable").move_cursor(row=runs.paths.index(other))
        await pilot.press("c")
        assert other.name in app.overlays and other.name in app.loss_pane.overlays

        # delete, with confirmation
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("y")
        await wait_until(pilot, lambda: not other.exists(), "the run to be deleted")
        assert other.name not in app.overlays and runs.paths == [opened]

        # open: curves and samples from the logs, the model loaded paused
        runs.query_one("DataTable").move_cursor(row=0)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.status.state == "opened", "the run to open")
        assert len(app.history.train) == 20 and app.samples_pane.count >= 1
        await pilot.press("i")
        await pilot.press(*"the")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.prompt_pane.shown_chars > 0 and not app.prompt_pane.generating,
                         "the opened run to answer")
        await pilot.press("escape")

        # resume exactly: the budget is spent, so the app asks for a new one
        await pilot.press("space")
        await wait_until(pilot, lambda: isinstance(app.screen, ResumeScreen), "the budget dialog")
        app.screen.query_one("#max-steps", Input).value = "28"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.status.state == "finished", "the resumed run to finish")
        steps = [int(s) for s in app.history.train.means("step", "raw")[0]]
        assert steps == list(range(1, 29)), "the resumed run continues at step 21, after the logged 20"


async def test_a_crashing_plugin_cell_shows_the_error_panel_and_the_app_stays_usable(small_text, plugin_dir):
    app = RnnApp(spec_for(small_text, cell="exploding", batch_size=3))
    async with app.run_test(size=(120, 36)) as pilot:
        panel = app.query_one("#error-panel")
        await wait_until(pilot, lambda: panel.display, "the error panel")
        assert "exploding cell exploded" in str(app.query_one("#error-message").render())
        assert "Traceback" in str(app.query_one("#error-traceback-text").render())
        assert app.status.state == "error"
        await pilot.press("e")
        assert not panel.display
        await pilot.press("e")
        assert panel.display
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("p")
        plugins = app.screen
        assert isinstance(plugins, PluginsScreen)
        await wait_until(pilot, lambda: plugins.rows, "the plugin list")
        broken = [row for row in plugins.rows if row["name"] == "broken"]
        assert broken and broken[0]["errors"] and "this_module_does_not_exist" in broken[0]["errors"][0]
        assert any(row["name"] == "crashing" and "exploding" in row["cells"] for row in plugins.rows)
        plugins.query_one("DataTable").move_cursor(row=plugins.rows.index(broken[0]))
        await pilot.pause()
        assert "Traceback" in str(plugins.query_one("#plugin-text").render())
        await pilot.press("escape")
        await pilot.press("q")  # nothing is training: quits at once
        await wait_exit(app)
    assert no_children_left()


async def test_quit_without_a_run_and_no_start(small_text):
    app = RnnApp(spec_for(small_text), start=False)
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.engine is None and app.check_action("start", ()) is True
        await pilot.press("q")
        await wait_exit(app)
    assert not app.is_running


async def test_every_action_has_a_shown_binding_and_a_palette_entry():
    app = RnnApp()
    async with app.run_test(size=(100, 30)) as pilot:
        titles = {command.title for command in app.get_system_commands(app.screen)}
        for binding in RnnApp.BINDINGS:
            name = binding.action.split("(")[0]
            assert hasattr(app, f"action_{name}"), name
            assert binding.show and binding.description
            if app.check_action(name, ()) is True and name != "quit":
                assert binding.description in titles, binding.description
        assert {"Quit", "Theme"} <= titles
        await pilot.press("o")
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert {"Open", "Resume", "Compare", "Delete", "Back", "Quit", "Help"} <= titles
        assert "Log y" not in titles, "the main view's actions are not offered over another screen"


async def test_the_mouse_works():
    app = RnnApp()
    async with app.run_test(size=(200, 40)) as pilot:
        await pilot.pause()
        runs_key = [key for key in app.query("FooterKey") if key.action == "runs"][0]
        await pilot.click(runs_key)
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("escape")
        await pilot.click("#prompt-input")
        assert app.focused is app.query_one("#prompt-input")
        await pilot.click("#temperature")
        await pilot.press("up")
        assert app.query_one("#temperature").number == 0.9


async def test_feeding_a_long_run_is_fast_and_drawn_at_the_pane_width():
    app = RnnApp()
    async with app.run_test(size=(100, 30)) as pilot:
        found = [events.Step(i, i / 1000, 4.0 * 0.999**i + 1.0, 1e-3, 1.0, 5e4, i * 0.01) for i in range(1, 100_001)]
        app.feed(found)
        app.loss_pane.redraw()
        await pilot.pause()
        app.loss_pane.redraw()  # at the pane's final size
        plot = app.query_one("LossPlot")
        width = plot.size.width
        assert all(len(d.x) <= 2 * width + 2 for d in plot._datasets)
        assert app.status.last.step == 100_000
        # every colour comes from the theme, and the plot follows a change of theme
        primary = lambda: app.get_css_variables()["primary"].lower()  # noqa: E731
        assert plot._datasets[-1].line_style.lower() == primary()
        app.theme = "gruvbox"
        await pilot.pause()
        app.loss_pane.redraw(force=True)
        assert plot._datasets[-1].line_style.lower() == primary() and app.theme == "gruvbox"


async def test_a_long_runs_samples_pane_keeps_the_first_stages_and_the_latest():
    app = RnnApp()
    async with app.run_test(size=(120, 36)) as pilot:
        # one at a time, as a run sends them, and in batches, as a reopened run's history arrives
        for batch in (range(0, 1), range(1, 2), range(2, 150), range(150, 160), range(160, 700), range(700, 701)):
            app.feed([events.Sample(i, f"sample {i}", i * 0.1, 2.0, 0.8) for i in batch])
            await pilot.pause()
        pane = app.samples_pane
        steps = [entry.sample.step for entry in pane.query(SampleEntry)]
        assert pane.count == 701 and len(steps) == MAX_SHOWN
        assert steps[:KEEP_FIRST] == list(range(KEEP_FIRST))
        assert steps[KEEP_FIRST:] == list(range(701 - (MAX_SHOWN - KEEP_FIRST), 701))
        assert "701" in pane.border_title and "shown" in pane.border_title


def test_the_command_line_opens_the_app(monkeypatch, small_text, tmp_path):
    from rnntui import cli

    opened = []
    monkeypatch.setattr(RnnApp, "run", lambda self: opened.append(self))
    assert cli.main([]) == 0
    app = opened[-1]
    assert app.autostart and app.spec.config["corpus"] == "python-docs" and app.spec.config["preset"] == "default"

    assert cli.main([str(small_text), "--cell", "gru", "--hidden", "64", "--no-start"]) == 0
    app = opened[-1]
    assert not app.autostart
    config = app.spec.config
    assert (config["corpus"], config["cell"], config["n_hidden"]) == (str(small_text), "gru", 64)

    run_dir = tmp_path / "a-run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text("{}")
    assert cli.main([str(run_dir)]) == 0
    assert opened[-1].open_path == run_dir and opened[-1].spec is None


def test_help_lists_every_subcommand_without_loading_torch_or_textual():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "import sys; from rnntui.cli import main; sys.exit(main(['--help']))"],
                         capture_output=True, text=True, check=True).stdout
    for command in ("app", "train", "sample", "runs", "corpora", "plugins", "cells"):
        assert f"    {command} " in out
    code = ("import sys; from rnntui.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'textual', 'numpy') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


SCREENS_WITHOUT_TORCH = """
import asyncio, sys
from rnntui.core.config import TrainConfig
from rnntui.engine import RunSpec
from rnntui.tui.app import RnnApp
from rnntui.tui.screens.new_run import NewRunScreen
from rnntui.tui.screens.plugins import PluginsScreen
from rnntui.tui.screens.runs import RunsScreen


async def main():
    spec = RunSpec(config=TrainConfig(**CONFIG).to_json())
    app = RnnApp(spec)
    async with app.run_test(size=(120, 36)) as pilot:
        async def until(predicate):
            for _ in range(1200):
                if predicate():
                    return
                await pilot.pause(0.1)
            raise SystemExit("timed out")

        await until(lambda: app.status.last is not None)  # the run trains, in its own process
        for key, screen, ready in (("n", NewRunScreen, lambda s: s.inventory is not None),
                                   ("o", RunsScreen, lambda s: True), ("p", PluginsScreen, lambda s: s.rows)):
            await pilot.press(key)
            await until(lambda: isinstance(app.screen, screen) and ready(app.screen))
            await pilot.press("escape")
        print(sorted(m for m in ("torch", "rnntui.run", "rnntui.plugins.cell_check") if m in sys.modules))
        app.shutdown_engines()

asyncio.run(main())
"""


def test_new_run_runs_and_plugins_open_while_training_without_torch_in_the_app(small_text):
    import subprocess
    import sys

    script = SCREENS_WITHOUT_TORCH.replace("CONFIG", repr(tiny_config(small_text).to_json()))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]", "the app's process imported torch or built the registry"
