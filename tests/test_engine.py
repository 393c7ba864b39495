"""The engine: a run in its own process, commands in, events out, and no process left behind."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rnntui import events
from rnntui.engine import Engine, RunSpec
from rnntui.engine.child import FLUSH_INTERVAL, Outbox

from conftest import tiny_config, wait_for


def spec_for(corpus, early_samples=None, **overrides) -> RunSpec:
    extra = {} if early_samples is None else {"early_samples": early_samples}
    return RunSpec(config=tiny_config(corpus, **overrides).to_json(), **extra)

PLUGIN = '''
import os, signal, warnings
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


class Segfaulting(Exploding):
    """Dies of SIGSEGV in training (batch size 3), like a broken C extension."""

    name = "segfaulting"

    def step(self, x_t, state):
        if x_t.shape[0] == 3:
            os.kill(os.getpid(), signal.SIGSEGV)
        return super().step(x_t, state)


class Warning_(Cell):
    """Warns (a Python warning) in training (batch size 3), and trains on."""

    name = "warning"

    def __init__(self, input_size, hidden_size, **options):
        super().__init__(input_size, hidden_size, **options)
        self.lin = nn.Linear(input_size + hidden_size, hidden_size)

    def step(self, x_t, state):
        if x_t.shape[0] == 3:
            warnings.warn("this cell is only a test", UserWarning)
        h = torch.tanh(self.lin(torch.cat([x_t, state[0]], -1)))
        return h, (h,)


@hookimpl
def register_cells(register):
    register(Exploding)
    register(Segfaulting)
    register(Warning_)
'''


@pytest.fixture
def misbehaving_plugins(tmp_path, monkeypatch):
    """A plugin directory with misbehaving cells, seen by this process and by the run's process."""
    from rnntui.plugins import ENV_DIR_ARGS, reset_registry

    directory = tmp_path / "plugins"
    directory.mkdir()
    (directory / "misbehaving.py").write_text(PLUGIN)
    monkeypatch.setenv(ENV_DIR_ARGS, str(directory))
    reset_registry()
    yield directory
    reset_registry()


def collect(engine: Engine, until, timeout: float = 90.0, found: list | None = None) -> list[events.Event]:
    """Poll until ``until(found)`` is true; fail with what arrived if it never is."""
    found = [] if found is None else found
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found.extend(engine.poll())
        if until(found):
            return found
        time.sleep(0.02)
    raise AssertionError(f"timed out; got {[e.type for e in found][-30:]}")


def of(found, cls):
    return [e for e in found if isinstance(e, cls)]


def no_children_left() -> bool:
    return wait_for(lambda: not mp.active_children(), timeout=10, what="the run's process to end")


def test_trains_samples_generates_and_closes(small_text):
    spec = spec_for(small_text, max_steps=60)
    with Engine(spec) as engine:
        found = collect(engine, lambda f: any(isinstance(e, events.Sample) for e in f))
        steps = [e.step for e in of(found, events.Step)]
        assert steps == list(range(1, len(steps) + 1)), "every step reaches the parent, in order"
        first = of(found, events.Sample)[0]
        assert first.step == 10 and first.val_loss is not None  # an early stage, validated, within seconds
        assert of(found, events.Started)[0].run_dir == engine.run_dir
        request = engine.generate("the quick", temperature=0.5, length=120, seed=3)
        found = collect(engine, lambda f: any(isinstance(e, events.GenerationDone) for e in f), found=found)
        started = of(found, events.GenerationStarted)[0]
        assert (started.request, started.prompt, started.dropped) == (request, "the quick", "")
        text = "".join(e.text for e in of(found, events.GenerationChunk) if e.request == request)
        assert len(text) == 120
        assert of(found, events.GenerationDone)[0].reason == "length"
        found = collect(engine, lambda f: any(isinstance(e, events.Done) for e in f), found=found)
        assert of(found, events.Done)[0].reason == "max_steps"
        assert engine.alive, "a finished run still answers prompts"
        request = engine.generate("dog", length=30)
        found = collect(engine, lambda f: any(isinstance(e, events.GenerationDone) and e.request == request
                                              for e in f), found=found)
    assert not engine.alive and no_children_left()
    logged = (Path(engine.run_dir) / "samples.jsonl").read_text().splitlines()
    assert len(logged) >= 3  # the early stages are kept with the run's own samples
    # and their validations with the run's events, so a reopened run shows them
    evals = [json.loads(line) for line in (Path(engine.run_dir) / "events.jsonl").read_text().splitlines()
             if '"type": "eval"' in line]
    assert [e["step"] for e in evals][:3] == [10, 20, 30]


def test_pause_resume_sample_now_stop(small_text):
    spec = spec_for(small_text, sample_every=10_000, eval_every=10_000, early_samples=())
    with Engine(spec) as engine:
        found = collect(engine, lambda f: len(of(f, events.Step)) >= 5)
        engine.pause()
        found = collect(engine, lambda f: any(isinstance(e, events.RunState) and e.state == "paused" for e in f),
                        found=found)
        paused_at = of(found, events.Step)[-1].step
        engine.sample_now()  # while paused: at once
        found = collect(engine, lambda f: any(isinstance(e, events.Sample) for e in f), found=found)
        assert of(found, events.Sample)[-1].step == paused_at
        paused = next(i for i, e in enumerate(found) if isinstance(e, events.RunState) and e.state == "paused")
        assert not of(found[paused:], events.Step), "no step between the pause and the sample asked for after it"
        engine.generate("the", length=20)  # generation works while paused
        found = collect(engine, lambda f: any(isinstance(e, events.GenerationDone) for e in f), found=found)
        engine.resume()
        found = collect(engine, lambda f: of(f, events.Step)[-1].step >= paused_at + 5, found=found)
        engine.stop(checkpoint=True)
        found = collect(engine, lambda f: any(isinstance(e, events.Done) for e in f), found=found)
        done = of(found, events.Done)[0]
        checkpoint = of(found, events.Checkpoint)[-1]
        assert done.reason == "stopped" and checkpoint.step == done.step
        assert Path(checkpoint.path).exists()
        run_dir = Path(engine.run_dir)
    assert no_children_left()

    # resume exactly: the next step is the one after the checkpoint
    with Engine(RunSpec(resume=str(run_dir), max_steps=done.step + 3, early_samples=())) as engine:
        found = collect(engine, lambda f: any(isinstance(e, events.Done) for e in f))
        assert of(found, events.Started)[0].resumed
        assert [e.step for e in of(found, events.Step)] == [done.step + 1, done.step + 2, done.step + 3]


def test_open_paused_then_stop_without_checkpoint(small_text):
    spec = spec_for(small_text, max_steps=25, early_samples=())
    with Engine(spec) as engine:
        collect(engine, lambda f: any(isinstance(e, events.Done) for e in f))
        run_dir = Path(engine.run_dir)
    before = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    with Engine(RunSpec(resume=str(run_dir), paused=True, max_steps=100)) as engine:
        found = collect(engine, lambda f: any(isinstance(e, events.RunState) and e.state == "paused" for e in f))
        assert of(found, events.Started)[0].step == 25  # shown before the first step
        engine.generate("fox", length=10)
        found = collect(engine, lambda f: any(isinstance(e, events.GenerationDone) for e in f), found=found)
        engine.stop(checkpoint=False)
        found = collect(engine, lambda f: any(isinstance(e, events.Done) for e in f), found=found)
        assert not of(found, events.Step)
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == before


def test_bad_configuration_is_one_error_line(tmp_path):
    spec = spec_for(tmp_path / "missing.txt")
    with Engine(spec) as engine:
        found = collect(engine, lambda f: any(isinstance(e, events.Done) for e in f))
        error = of(found, events.Error)[0]
        assert "no such file" in error.message and "\n" not in error.message and error.traceback is None
        assert of(found, events.Done)[0].reason == "error"
        wait_for(lambda: not engine.alive, what="the process to end")
        assert engine.poll() == [], "a clean exit after an error is not reported as a crash"


def test_unknown_prompt_characters_are_dropped_with_a_notice(small_text):
    spec = spec_for(small_text, max_steps=5, early_samples=())
    with Engine(spec) as engine:
        request = engine.generate("the €quick ☃", length=10)
        found = collect(engine, lambda f: any(isinstance(e, events.GenerationDone) for e in f))
        started = of(found, events.GenerationStarted)[0]
        assert started.request == request and started.prompt == "the quick " and set(started.dropped) == {"€", "☃"}
        bad = engine.generate("the", temperature=0)
        found = collect(engine, lambda f: any(isinstance(e, events.GenerationDone) and e.request == bad
                                              for e in f), found=found)
        done = [e for e in of(found, events.GenerationDone) if e.request == bad][0]
        assert done.reason == "error" and "temperature" in done.message


def test_plugin_cell_that_raises_gives_an_error_with_traceback(small_text, misbehaving_plugins):
    spec = spec_for(small_text, cell="exploding", batch_size=3)
    with Engine(spec) as engine:
        found = collect(engine, lambda f: any(isinstance(e, events.Done) for e in f))
        error = of(found, events.Error)[0]
        assert "exploding cell exploded" in error.message
        assert "Traceback" in error.traceback and "misbehaving.py" in error.traceback
        assert of(found, events.Done)[0].reason == "error"
        assert engine.alive  # the process survives a failing step


def test_a_segfault_is_detected_not_waited_for(small_text, misbehaving_plugins):
    spec = spec_for(small_text, cell="segfaulting", batch_size=3)
    with Engine(spec) as engine:
        found = collect(engine, lambda f: any(isinstance(e, events.Done) for e in f))
        error = of(found, events.Error)[0]
        assert "stopped unexpectedly" in error.message and "SIGSEGV" in error.message
        assert "Segmentation fault" in (error.traceback or "")  # faulthandler's report from the child
        assert engine.state == "crashed"


def test_a_killed_run_is_detected_and_the_checkpoint_named(small_text):
    spec = spec_for(small_text, eval_every=5, early_samples=())
    with Engine(spec) as engine:
        collect(engine, lambda f: any(isinstance(e, events.Checkpoint) for e in f))
        os.kill(engine.pid, signal.SIGKILL)
        found = collect(engine, lambda f: any(isinstance(e, events.Done) for e in f))
        error = of(found, events.Error)[-1]
        assert "SIGKILL" in error.message and "checkpoint" in error.message
        engine.pause()  # commands to a dead run are ignored, not raised
    assert no_children_left()


def test_closing_a_training_run_keeps_a_checkpoint_and_leaves_no_process(small_text):
    spec = spec_for(small_text, eval_every=10_000, early_samples=())
    engine = Engine(spec).start()
    try:
        collect(engine, lambda f: len(of(f, events.Step)) >= 3)
    finally:
        engine.close(checkpoint=True)
    assert not engine.alive and no_children_left()
    assert list((Path(engine.run_dir) / "checkpoints").glob("step-*.json"))


def test_python_warnings_become_warning_events_in_the_log(small_text, misbehaving_plugins):
    spec = spec_for(small_text, cell="warning", batch_size=3, max_steps=4, early_samples=())
    with Engine(spec) as engine:
        found = collect(engine, lambda f: any(isinstance(e, events.Done) for e in f))
        warning = of(found, events.RunWarning)[0]
        assert warning.message == "UserWarning: this cell is only a test" and warning.step == 0
        assert of(found, events.Done)[0].reason == "max_steps"  # a warning does not stop the run
    assert '"message": "UserWarning: this cell is only a test"' in (Path(engine.run_dir) / "events.jsonl").read_text()


PARENT = """
import sys, time
from rnntui import events
from rnntui.engine import Engine, RunSpec
engine = Engine(RunSpec(config=__CONFIG__, early_samples=())).start()
while True:
    if any(isinstance(e, events.Step) and e.step >= 3 for e in engine.poll()):
        print(engine.pid, engine.run_dir, flush=True)
        time.sleep(600)
    time.sleep(0.02)
"""


def test_the_run_keeps_its_work_and_ends_when_the_app_dies(small_text):
    config = tiny_config(small_text, eval_every=10_000, sample_every=10_000).to_json()
    app = subprocess.Popen([sys.executable, "-c", PARENT.replace("__CONFIG__", repr(config))],
                           stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent)
    try:
        pid, run_dir = app.stdout.readline().split()
        app.kill()  # SIGKILL: the app has no chance to stop its run
        app.wait()

        def gone() -> bool:
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                return True
            return False

        wait_for(gone, timeout=30, what="the orphaned run's process to end")
    finally:
        app.kill()
    logged = [json.loads(line) for line in (Path(run_dir) / "events.jsonl").read_text().splitlines()]
    assert logged[-1]["type"] == "done" and logged[-1]["reason"] == "stopped"
    assert logged[-2]["type"] == "checkpoint" and Path(logged[-2]["path"]).exists()


def test_outbox_coalesces_steps_but_not_other_events():
    class Queue:
        def __init__(self):
            self.batches = []

        def put(self, batch):
            self.batches.append(batch)

    now = [100.0]
    q = Queue()
    out = Outbox(q, clock=lambda: now[0])
    for i in range(1, 1001):
        out.add(events.Step(i, 0.0, 2.0, 1e-3, 1.0, 1e4, 0.1))
    assert q.batches == [], "a thousand quick steps wait for one batch, not a thousand messages"
    out.add(events.Eval(1000, 1.5, 2.1, 1.5, 1.0))  # never waits, and takes the pending steps with it
    sent = [d for batch in q.batches for d in batch]
    assert len(q.batches) == 1 and [d["step"] for d in sent if d["type"] == "step"] == list(range(1, 1001))
    assert sent[-1]["type"] == "eval"
    out.add(events.Step(1001, 0.0, 2.0, 1e-3, 1.0, 1e4, 0.1))
    assert len(q.batches) == 1 and not out.due()
    now[0] += 2 * FLUSH_INTERVAL
    assert out.due()
    out.add(events.Step(1002, 0.0, 2.0, 1e-3, 1.0, 1e4, 0.1))
    assert [d["step"] for d in q.batches[-1]] == [1001, 1002], "a step after a quiet spell goes at once"
